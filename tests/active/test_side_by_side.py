"""Seeds side by side (``run_map = "vmap"``) give the records of runs one after another.

The accelerator policy advances all seeds of a strategy as one vmapped program
per cycle. Forced on the CPU, a whole ``run`` under it must acquire exactly
what the sequential runs acquire, with the same metrics, for pointwise,
batch-aware and random strategies, warm starts and an interrupted resume.
"""

import dataclasses

import jax
import numpy as np
import pytest

from bal import backend
from bal.active import kernel
from bal.active.config import ExperimentConfig
from bal.active.run import run, run_side_by_side
from bal.active.tasks.classification import ClassificationTask, load_problem

BASE = dict(dataset="digits", model="mlp", posterior="mc_dropout", num_samples=4, seeds=(0, 1, 2), cycles=2,
            epochs=3, initial_labels=20, acquisition_size=5, pool_subset=120, quiet=True,
            strategies=("bald", "coreset"), include_random=True)
METRICS = ("accuracy", "nll", "brier", "ece")


@pytest.fixture(scope="module")
def problem():
    return load_problem(ExperimentConfig(**BASE))


def side_by_side_policy():
    return dataclasses.replace(backend.policy(), run_map="vmap")


def by_run(records):
    return {(r["strategy"], r["seed"], r["cycle"]): r for r in records}


def assert_same_records(got, want):
    got, want = by_run(got), by_run(want)
    assert got.keys() == want.keys()
    for key, w in want.items():
        g = got[key]
        assert g["acquired"] == w["acquired"], key
        assert g["num_labels"] == w["num_labels"] and g["final"] == w["final"], key
        for m in METRICS:
            assert g[m] == pytest.approx(w[m], rel=1e-5, abs=1e-6), (key, m)
        if "scores" in w:
            np.testing.assert_allclose(g["scores"], w["scores"], rtol=1e-4, atol=1e-6)


def sequential_records(problem, tmp_path, **settings):
    config = ExperimentConfig(**{**BASE, **settings})
    return run(config, tmp_path / "sequential", problem=problem)


@pytest.mark.parametrize("settings", [{}, {"warm_start": True, "strategies": ("entropy",)}],
                         ids=["fresh", "warm_start"])
def test_run_side_by_side_equals_sequential(problem, tmp_path, settings):
    want = sequential_records(problem, tmp_path, **settings)
    config = ExperimentConfig(**{**BASE, **settings})
    with backend.use(side_by_side_policy()):
        got = run(config, tmp_path / "vmap", problem=problem)
    assert_same_records(got, want)
    # strategy-major on disk: all seeds of the first strategy before the second's
    strategies = [r["strategy"] for r in got]
    assert strategies == sorted(strategies, key=config.all_strategies.index)


def test_the_task_trains_the_seeds_as_one_program(problem, monkeypatch):
    """``step_runs`` hands the whole group to the task's side-by-side methods (no per-seed fit)."""
    task = ClassificationTask(ExperimentConfig(**BASE), problem=problem)
    calls = []
    original = task.train_and_evaluate
    monkeypatch.setattr(task, "train_and_evaluate", lambda *a, **k: calls.append(1) or original(*a, **k))
    states = [kernel.init(task, seed) for seed in (0, 1, 2)]
    out = kernel.step_runs(task, "bald", states)
    assert calls == [] and [s.cycle for s, _ in out] == [1, 1, 1]
    alone = kernel.step(task, "bald", states[1])
    assert out[1][1].record["acquired"] == alone[1].record["acquired"]
    assert out[1][1].record["accuracy"] == pytest.approx(alone[1].record["accuracy"], abs=1e-6)


def test_resume_catches_up_runs_at_different_cycles(problem, tmp_path):
    """A kill in the middle of a side-by-side cycle leaves seeds at different cycles; the resume
    steps the laggards alone until the group is level, and the records match sequential runs."""
    settings = {"strategies": ("bald",), "include_random": False}
    want = sequential_records(problem, tmp_path, **settings)
    config = ExperimentConfig(**{**BASE, **settings})
    task = ClassificationTask(config, problem=problem)
    from bal.active.results import RunDirectory, runs

    run_dir = RunDirectory(tmp_path / "resumed")
    with run_dir.lock():
        run_dir.prepare(config, resume=False, overwrite=False)
    kept = [r for r in want if (r["seed"], r["cycle"]) in {(0, 0), (0, 1), (1, 0)}]
    assert len(kept) == 3
    for r in kept:  # seed 0 after cycle 1, seed 1 after cycle 0, seed 2 not started
        run_dir.append(r)
    seen = []
    with backend.use(side_by_side_policy()):
        records = run_side_by_side(task, "bald", (0, 1, 2), run_dir, runs(run_dir.records()),
                                   on_cycle=lambda r: seen.append((r["seed"], r["cycle"])))
    assert_same_records(records, want)
    assert seen == [(2, 0), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]


def test_fit_runs_matches_fit_per_run(problem):
    from bal import posteriors
    from bal.train import fit

    post = posteriors.build("variational", "mlp", 10, model_kwargs={"hidden_sizes": (16,)})
    rng = np.random.default_rng(0)
    idx = np.stack([rng.choice(500, 40, replace=False) for _ in range(2)])
    x, y = problem.train_x[idx], problem.train_y[idx]
    keys = jax.random.split(jax.random.key(7), 2)
    inits = [post.init(k, x[r][:1]) for r, k in enumerate(jax.random.split(jax.random.key(8), 2))]
    alone = [fit(post, inits[r], x[r], y[r], keys[r], num_epochs=2, batch_size=16) for r in range(2)]
    stacked = jax.tree.map(lambda *a: np.stack(a), *inits)
    both = fit(post, stacked, x, y, keys, num_epochs=2, batch_size=16, runs=True)
    for r in range(2):
        for a, b in zip(jax.tree.leaves(alone[r].variables), jax.tree.leaves(both.variables)):
            np.testing.assert_allclose(np.asarray(b[r]), np.asarray(a), rtol=1e-5, atol=1e-6)
        assert both.history[-1]["loss"][r] == pytest.approx(alone[r].history[-1]["loss"], rel=1e-5)
    with pytest.raises(ValueError, match="early-stop"):
        fit(post, stacked, x, y, keys, num_epochs=1, runs=True, validation=(x[0], y[0]), patience=1)


def test_the_whole_accelerator_policy_gives_the_cpu_records(problem, tmp_path):
    """Runs side by side *and* vmapped ensemble members, XLA's own convolutions: the GPU path."""
    settings = dict(posterior="ensemble", num_members=2, seeds=(0, 1), strategies=("bald",), include_random=False,
                    cycles=1)
    want = sequential_records(problem, tmp_path, **settings)
    with backend.use(backend.accelerator_policy()):
        got = run(ExperimentConfig(**{**BASE, **settings}), tmp_path / "accelerator", problem=problem)
    assert_same_records(got, want)
