"""Stopping criteria: Cohen's kappa against scikit-learn, the rules on synthetic histories, and a
run that stops exactly where the criteria say, resumes exactly, and reports what it gave up."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from bal.active.config import ExperimentConfig
from bal.active.results import RunDirectory
from bal.active.run import run
from bal.active.stopping import (cohen_kappa, decode_predictions, encode_predictions, stop_reason,
                                 would_stop)


@pytest.mark.parametrize("seed", range(6))
def test_kappa_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n, c = rng.integers(1, 400), rng.integers(2, 12)
    a = rng.integers(0, c, n)
    b = np.where(rng.uniform(size=n) < rng.uniform(), a, rng.integers(0, c, n))
    expected = cohen_kappa_score(a, b) if len(set(a) | set(b)) > 1 else 1.0
    assert cohen_kappa(a, b) == pytest.approx(expected, abs=1e-12)


def test_kappa_edge_cases():
    assert cohen_kappa(np.full(5, 3), np.full(5, 3)) == 1.0  # identical constant labelings
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equal length"):
        cohen_kappa(np.zeros(3), np.zeros(4))


def test_predictions_round_trip_and_corruption():
    for classes in (np.arange(10).repeat(3), np.array([0, 300, 999])):
        np.testing.assert_array_equal(decode_predictions(encode_predictions(classes)), classes)
    for bad in ("9:AAAA", "1:not base64!", "no colon"):
        with pytest.raises(ValueError, match="stop_predictions is corrupt"):
            decode_predictions(bad)


def config(**settings):
    base = dict(stop_set_size=50, stop_on=("kappa", "plateau"), kappa_threshold=0.9, stop_window=2,
                plateau_threshold=0.1, plateau_epsilon=None)
    return ExperimentConfig(**{**base, **settings})


@pytest.mark.parametrize("history, settings, expected", [
    ([{"stop_kappa": None}, {"stop_kappa": 0.95}], {}, None),  # the first cycle has no kappa
    ([{"stop_kappa": 0.95}, {"stop_kappa": 0.95}], {}, "kappa"),
    ([{"stop_kappa": 0.99}, {"stop_kappa": 0.80}], {}, None),  # mean 0.895 < 0.9
    ([{"stop_kappa": 0.5, "stop_entropy": 0.05}], {}, "plateau"),  # below the entropy threshold
    ([{"stop_entropy": 0.5}, {"stop_entropy": 0.45}, {"stop_entropy": 0.47}],
     dict(plateau_threshold=None, plateau_epsilon=0.06), "plateau"),  # changed 0.05 < 0.06 over 2 cycles
    ([{"stop_entropy": 0.5}, {"stop_entropy": 0.40}, {"stop_entropy": 0.47}],
     dict(plateau_threshold=None, plateau_epsilon=0.06), None),
    ([{"stop_kappa": 1.0}, {"stop_kappa": 1.0}], dict(stop_on=("plateau",)), None),  # kappa not chosen
])
def test_rules(history, settings, expected):
    assert stop_reason(config(**settings), history) == expected


@pytest.mark.parametrize("bad, message", [
    (dict(stop_on=("kappa",)), "needs a stop set"),
    (dict(stop_set_size=10, stop_on=("plateau",)), "plateau_threshold or plateau_epsilon"),
    (dict(stop_set_size=10, stop_on=("entropy",)), "stop_on must be one of kappa, plateau"),
    (dict(kappa_threshold=1.5), r"kappa_threshold must lie in \(0, 1\]"),
    (dict(stop_window=0), "stop_window must be >= 1"),
])
def test_settings_are_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**bad)


RUN = dict(dataset="digits", model="mlp", num_samples=4, seeds=(1,), cycles=7, epochs=20, initial_labels=20,
           acquisition_size=10, strategies=("bald",), include_random=False, quiet=True, stop_set_size=300)


@pytest.fixture(scope="module")
def unstopped_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("unstopped")
    run(ExperimentConfig(**RUN), path)
    return path


@pytest.fixture(scope="module")
def unstopped(unstopped_dir):
    return RunDirectory(unstopped_dir).records()


def test_recorded_kappa_is_the_kappa_of_consecutive_predictions(unstopped):
    assert unstopped[0]["stop_kappa"] is None
    for prev, cur in zip(unstopped, unstopped[1:]):
        a, b = decode_predictions(prev["stop_predictions"]), decode_predictions(cur["stop_predictions"])
        assert a.shape == (300,) and cur["stop_kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
        assert cur["stop_entropy"] > 0


def test_a_run_stops_where_the_criterion_says_and_resumes_exactly(unstopped, tmp_path):
    kappas = [r["stop_kappa"] for r in unstopped[1:]]
    threshold = float(np.mean(kappas[2:4]))  # a threshold the run crosses part-way
    where = would_stop(unstopped, kappa_threshold=threshold, window=2)["kappa"]
    assert where is not None and where["cycle"] < unstopped[-1]["cycle"]
    assert where["labels_saved"] == unstopped[-1]["num_labels"] - where["num_labels"] > 0
    assert where["accuracy_given_up"] == pytest.approx(unstopped[-1]["accuracy"] - where["accuracy"], abs=1e-6)
    stopping = ExperimentConfig(**RUN, stop_on=("kappa",), kappa_threshold=threshold, stop_window=2)
    stopped = run(stopping, tmp_path / "stopped")
    assert [r["cycle"] for r in stopped] == list(range(where["cycle"] + 1))
    assert stopped[-1]["stopped_by"] == "kappa" and stopped[-1]["final"] and stopped[-1]["acquired"] == []
    for a, b in zip(stopped[:-1], unstopped):
        assert a["acquired"] == b["acquired"] and a["stop_kappa"] == b["stop_kappa"]
    # interrupted after cycle 2: the resume replays the stop-set history and stops at the same cycle
    resumed = RunDirectory(tmp_path / "resumed")
    with resumed.lock():
        resumed.prepare(stopping, resume=False, overwrite=False)
        for r in stopped[:3]:
            resumed.append(r)
    again = run(stopping, tmp_path / "resumed", resume=True)
    assert [(r["cycle"], r["acquired"], r.get("stopped_by")) for r in again] == \
        [(r["cycle"], r["acquired"], r.get("stopped_by")) for r in stopped]


def test_bal_summary_shows_where_each_criterion_would_stop(unstopped_dir, unstopped, capsys):
    from bal.cli import main

    assert main(["summary", str(unstopped_dir), "--write"]) == 0
    out = capsys.readouterr().out
    where = would_stop(unstopped, kappa_threshold=0.96, window=3)["kappa"]  # the run's default threshold
    row = [line for line in out.splitlines() if line.startswith("| bald | 1 | kappa |")]
    assert "kappa >= 0.96 over 3 cycles" in out and len(row) == 1
    assert ("not before the end" in row[0]) == (where is None)
    assert "| bald | 1 | kappa |" in (unstopped_dir / "summary.md").read_text()


def test_settings_of_unused_criteria_do_not_orphan_a_run_directory(tmp_path):
    """A changed threshold of a criterion the run does not use cannot change its records (e.g. the
    default kappa_threshold moved from 0.99 to 0.96): resuming is allowed; a used one is refused."""
    plain = dict(stop_on=(), stop_set_size=0, plateau_threshold=None)
    RunDirectory(tmp_path / "a").prepare(config(**plain, kappa_threshold=0.99, stop_window=3), resume=False,
                                         overwrite=False)
    assert RunDirectory(tmp_path / "a").prepare(config(**plain, kappa_threshold=0.96, stop_window=2),
                                                resume=True, overwrite=False) == []
    RunDirectory(tmp_path / "b").prepare(config(stop_on=("kappa",), kappa_threshold=0.99), resume=False,
                                         overwrite=False)
    with pytest.raises(ValueError, match=r"differs in kappa_threshold\)"):
        RunDirectory(tmp_path / "b").prepare(config(stop_on=("kappa",), kappa_threshold=0.96), resume=True,
                                             overwrite=False)
    # the plateau settings still matter to a run that stops on the plateau
    assert config(stop_on=("kappa",)).inert() == {"plateau_threshold", "plateau_epsilon"}
    assert config(stop_on=("plateau",)).inert() == {"kappa_threshold"}
    assert config(**plain).inert() == {"kappa_threshold", "plateau_threshold", "plateau_epsilon", "stop_window"}


def test_default_kappa_threshold_is_the_one_validated_in_results():
    assert ExperimentConfig().kappa_threshold == 0.96
