"""The analysis scripts of experiments/analysis, on tiny offline runs."""

import importlib.util
import json
import pathlib

import pytest

from bal.active.config import ExperimentConfig
from bal.active.run import run

ANALYSIS = pathlib.Path(__file__).parent.parent / "experiments" / "analysis"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ANALYSIS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retrain_kappa_compares_two_models_on_the_same_labels_and_resumes(tmp_path):
    retrain = _load("retrain_kappa")
    config = ExperimentConfig(dataset="digits", model="mlp", strategies=("bald",), include_random=False,
                              initial_labels=20, acquisition_size=10, cycles=2, epochs=5, num_samples=3,
                              seeds=(0,), stop_set_size=200, quiet=True)
    records = run(config, tmp_path / "run")
    out = tmp_path / "kappa.jsonl"
    rows = retrain.retrain_kappa(tmp_path / "run", "bald", 0, out)
    assert [r["cycle"] for r in rows] == [0, 1, 2] and [r["num_labels"] for r in rows] == [20, 30, 40]
    assert [r["consecutive_kappa"] for r in rows] == [r.get("stop_kappa") for r in records]
    assert all(-1 <= r["retrain_kappa"] <= 1 for r in rows)
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in records]
    # other keys: the second model is another model (not the recorded one again)
    assert any(r["second_accuracy"] != round(r["accuracy"], 6) or r["retrain_kappa"] < 1 for r in rows)
    # cut the file after one cycle: the resumed file equals the uninterrupted one up to timings
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n")
    resumed = retrain.retrain_kappa(tmp_path / "run", "bald", 0, out)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]
    assert strip(resumed) == strip(json.loads(l) for l in lines)
    with pytest.raises(ValueError, match="no run of 'entropy'"):
        retrain.retrain_kappa(tmp_path / "run", "entropy", 0, tmp_path / "x.jsonl")
