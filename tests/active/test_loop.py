"""The active-learning loop: records, kill-and-resume, reports, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bal.active.config import ExperimentConfig
from bal.active.run import run as run_experiment
from bal.active.results import read_records
from bal.report import format_summary, labels_to_reach, plot_learning_curves, summarize

from .interrupt import Stop, StopAfter

FAST = dict(dataset="digits", model="mlp", posterior="mc_dropout", num_samples=5,
            strategies=("bald",), seeds=(0,), cycles=3, epochs=8, initial_labels=20,
            acquisition_size=10, quiet=True)
TIMING = ("train_seconds", "acquisition_seconds")


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _cli(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return [sys.executable, "-m", "bal.cli", *args], env


def test_records_hold_every_field_and_grow_the_labeled_set(tmp_path):
    config = ExperimentConfig(**{**FAST, "strategies": ("entropy",), "pool_subset": 200})
    records = run_experiment(config, tmp_path)
    assert read_records(tmp_path) == records
    assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()
    for strategy in ("entropy", "random"):
        run = [r for r in records if r["strategy"] == strategy]
        assert [r["cycle"] for r in run] == [0, 1, 2, 3]
        assert [r["num_labels"] for r in run] == [20, 30, 40, 50]
        for r in run:
            assert set(r) >= {"strategy", "seed", "cycle", "num_labels", "accuracy", "nll", "ece",
                              "train_seconds", "acquisition_seconds", "acquired"}
        acquired = np.concatenate([r["acquired"] for r in run[:-1]])
        assert len(set(acquired.tolist())) == 30 and run[-1]["acquired"] == []


def test_growth_fraction_and_label_budget(tmp_path):
    config = ExperimentConfig(**{**FAST, "acquisition_size": None, "growth": 0.5, "cycles": None,
                                 "label_budget": 60, "include_random": False})
    run = run_experiment(config, tmp_path)
    assert [r["num_labels"] for r in run] == [20, 30, 45, 60]


def test_kill_and_resume_gives_the_uninterrupted_results(tmp_path):
    settings = {**FAST, "strategies": ["bald"], "seeds": [0, 1], "cycles": 4}
    (tmp_path / "cfg.json").write_text(json.dumps(settings))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd, env = _cli("run", str(tmp_path / "cfg.json"), "--out", str(straight))
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)

    cmd, env = _cli("run", str(tmp_path / "cfg.json"), "--out", str(killed))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = killed / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill mid-run, once a few cycles are on disk
        if results.exists() and results.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    partial = read_records(killed)
    total = len(read_records(straight))
    assert 3 <= len(partial) < total, "the kill should land mid-run"

    # without --resume the directory is refused, before any training
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--resume" in res.stderr and len(res.stderr.strip().splitlines()) == 1

    cmd, env = _cli("run", str(tmp_path / "cfg.json"), "--out", str(killed), "--resume")
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    resumed = read_records(killed)
    assert _strip(resumed) == _strip(read_records(straight))  # nothing lost, nothing duplicated


def test_summary_and_plot_match_the_records(tmp_path):
    config = ExperimentConfig(**{**FAST, "seeds": (0, 1), "cycles": 2})
    records = run_experiment(config, tmp_path)
    rows = {r["strategy"]: r for r in summarize(records, thresholds=(0.5, 0.99))}
    for strategy in ("bald", "random"):
        runs = [[r for r in records if r["strategy"] == strategy and r["seed"] == s] for s in (0, 1)]
        finals = [run[-1]["accuracy"] for run in runs]
        assert rows[strategy]["final_accuracy"] == pytest.approx((np.mean(finals), np.std(finals)))
        reach = [labels_to_reach(run, 0.5) for run in runs]
        reached = [r for r in reach if r is not None]
        mean, std, hits = rows[strategy]["reach"][0.5]
        assert hits == len(reached)
        if reached:
            assert mean == pytest.approx(np.mean(reached))
    table = format_summary(summarize(records))
    assert "bald" in table and "random" in table
    png = plot_learning_curves(tmp_path)
    assert png.exists() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the CLI reads the same files
    for sub in ("summary", "plot"):
        cmd, env = _cli(sub, str(tmp_path))
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("flags, message", [
    (["--strategies", "nonsense"], "unknown acquisition strategy 'nonsense'; valid names"),
    (["--acquisition-size", "5000"], "acquisition size 5000 is larger than the pool"),
    (["--initial-labels", "5000"], "initial_labels=5000 (+ validation_size=0) is larger than the training set"),
    (["--pool-subset", "5", "--acquisition-size", "10"], "larger than the pool"),
    (["--seeds"], "expected at least one argument"),
])
def test_bad_settings_stop_with_one_line_before_training(tmp_path, flags, message):
    cmd, env = _cli("run", "--out", str(tmp_path / "r"), "--quiet", *flags)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "r" / "results.jsonl").exists()


def test_incompatible_config_in_results_dir_is_refused(tmp_path):
    run_experiment(ExperimentConfig(**{**FAST, "cycles": 1}), tmp_path)
    with pytest.raises(ValueError, match="different config.*cycles"):
        run_experiment(ExperimentConfig(**{**FAST, "cycles": 2}), tmp_path, resume=True)
    again = run_experiment(ExperimentConfig(**{**FAST, "cycles": 2}), tmp_path, overwrite=True)
    assert max(r["cycle"] for r in again) == 2


def test_custom_oracle_is_used(tmp_path):
    from bal.active.tasks.classification import load_problem

    config = ExperimentConfig(**{**FAST, "cycles": 1, "include_random": False})
    problem = load_problem(config)
    asked = []

    def oracle(indices):
        asked.append(np.asarray(indices).copy())
        return problem.train_y[indices]

    run_experiment(config, tmp_path, problem=problem, oracle=oracle)
    assert sum(len(a) for a in asked) == 30  # 20 initial + 10 acquired


def test_run_help_documents_every_setting():
    import dataclasses

    from bal.active.config import HELP

    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    assert set(HELP) == fields
    res = subprocess.run([sys.executable, "-m", "bal.cli", "run", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    for name in fields:
        assert "--" + name.replace("_", "-") in text
    assert "acquire this fraction of the current labeled set per cycle" in text


def test_summary_and_plot_of_segmentation_records_use_mean_iou(tmp_path):
    from bal.report import default_metric

    path = tmp_path / "results.jsonl"
    recs = [{"strategy": s, "seed": 0, "cycle": c, "num_labels": 100 * (c + 1), "num_labeled_pixels": 100 * (c + 1),
             "mean_iou": 0.3 + 0.2 * c + (0.1 if s == "entropy" else 0.0), "final": c == 1}
            for s in ("entropy", "random") for c in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    records = read_records(path)
    assert default_metric(records) == "mean_iou"
    rows = {r["strategy"]: r for r in summarize(records, thresholds=(0.35,))}
    assert rows["entropy"]["reach"][0.35][:1] == (100.0,) and rows["random"]["reach"][0.35][:1] == (200.0,)
    assert rows["entropy"]["final_accuracy"][0] == pytest.approx(0.6)
    assert "final mean_iou" in format_summary(list(rows.values()))
    png = plot_learning_curves(path)
    assert png.exists() and png.stat().st_size > 0


def test_chunk_size_defaults_to_the_backend_and_rejects_nonpositive():
    assert ExperimentConfig().chunk_size is None  # bal.predict.default_chunk_size at prediction time
    assert ExperimentConfig(chunk_size=64).chunk_size == 64
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        ExperimentConfig(chunk_size=0)


def test_warm_start_resumes_from_the_saved_weights(tmp_path):
    """Warm starts carry weights between cycles; an interrupted run resumes from the weights of
    its last recorded cycle and ends exactly as the uninterrupted run."""
    config = ExperimentConfig(**{**FAST, "warm_start": True, "cycles": 3, "include_random": False})
    reference = run_experiment(config, tmp_path / "straight")
    cold = run_experiment(ExperimentConfig(**{**FAST, "cycles": 3, "include_random": False}), tmp_path / "cold")
    assert _strip(cold)[1:] != _strip(reference)[1:]  # the carried weights change the results

    out = tmp_path / "killed"
    with pytest.raises(Stop):
        run_experiment(config, out, progress=StopAfter(2))
    assert sorted(p.name for p in (out / "weights").iterdir()) == ["bald-seed0-cycle0.pkl", "bald-seed0-cycle1.pkl"]
    resumed = run_experiment(config, out, resume=True)
    assert _strip(resumed) == _strip(reference)
