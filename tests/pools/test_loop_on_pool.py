"""`bal run` on a packed pool (dataset = "pool:PATH") acquires exactly what it acquires on the dataset in memory."""

from __future__ import annotations

import json

import pytest

from bal.active.config import ExperimentConfig
from bal.active.results import read_records
from bal.active.run import run as run_experiment
from bal.cli import main

# pointwise and batch-aware strategies, the random baseline, early stopping on a held-out set, a stop set
SETTINGS = dict(model="mlp", posterior="mc_dropout", num_samples=5, strategies=["bald", "coreset"], seeds=[0],
                cycles=2, epochs=4, initial_labels=20, acquisition_size=10, validation_size=20, patience=1,
                stop_set_size=100, quiet=True)
TIMING = ("train_seconds", "acquisition_seconds")


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_bal_run_on_a_packed_pool_equals_the_dataset_in_memory(tmp_path, capsys):
    assert main(["pool", "pack", "digits", str(tmp_path / "pool"), "--shard-size", "500", "--format", "npy"]) == 0
    assert "packed the test split: 359 items" in capsys.readouterr().out
    (tmp_path / "pool.json").write_text(json.dumps({**SETTINGS, "dataset": f"pool:{tmp_path / 'pool'}"}))
    assert main(["run", str(tmp_path / "pool.json"), "--out", str(tmp_path / "on_pool")]) == 0
    on_pool = read_records(tmp_path / "on_pool")
    in_memory = run_experiment(ExperimentConfig(**{**SETTINGS, "dataset": "digits"}), tmp_path / "in_memory")
    assert len(on_pool) == 9  # 3 strategies x 3 records
    assert _strip(on_pool) == _strip(in_memory)


@pytest.mark.parametrize("dataset, extra, message", [
    ("pool:", {}, "names no folder"),
    ("pool:{tmp}/missing", {}, "missing does not exist"),
    ("pool:{tmp}/pool", {"repeat": 3}, "repeat = 3 copies an in-memory dataset"),
])
def test_bad_pool_datasets_stop_with_one_line(tmp_path, capsys, dataset, extra, message):
    from bal import pools

    pools.pack_dataset("digits", tmp_path / "pool", test_split=None, format="npy")
    settings = {**SETTINGS, **extra, "dataset": dataset.format(tmp=tmp_path)}
    (tmp_path / "cfg.json").write_text(json.dumps(settings))
    assert main(["run", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


def test_a_pool_without_its_test_split_is_refused(tmp_path, capsys):
    assert main(["pool", "pack", "digits", str(tmp_path / "pool"), "--test-split", "none", "--format", "npy"]) == 0
    assert "test split" not in capsys.readouterr().out
    (tmp_path / "cfg.json").write_text(json.dumps({**SETTINGS, "dataset": f"pool:{tmp_path / 'pool'}"}))
    assert main(["run", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "out")]) == 2
    assert "pool.json: no test split recorded" in capsys.readouterr().err
