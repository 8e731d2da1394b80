"""The benchmark suite runs and prints well-formed records (tiny sizes; no timing asserts)."""

import json
import subprocess
import sys
import pathlib

import pytest

ROOT = pathlib.Path(__file__).parent.parent


def test_measure_reports_median_and_compile_separately():
    from benchmarks.harness import measure

    calls = []
    timing = measure(lambda: calls.append(1), repeats=5)
    assert len(calls) == 6  # one untimed first call (compilation) + 5 timed
    assert timing["repeats"] == 5
    assert timing["min_seconds"] <= timing["median_seconds"] <= timing["max_seconds"]
    assert timing["compile_seconds"] >= 0


@pytest.mark.parametrize("case,params", [
    ("acquisition_scores", dict(score="bald", n=64, num_samples=4)),
    ("batchbald", dict(batch=3, n=32, num_samples=4)),
    ("pool_scoring", dict(model="mlp", family="mc_dropout", n=40, num_samples=4, chunk_size=16)),
    ("train", dict(model="mlp", family="ensemble", batch_size=8, steps=2, num_members=2)),
    ("detection_scoring", dict(n=8, num_samples=2, height=32, width=48, chunk_size=4,
                               model_kwargs={"widths": (4, 8, 8), "head_width": 8, "num_groups": 4})),
    ("detection_cycle", dict(num_train=24, num_test=8, labeled=8, acquire=4, epochs=1, min_steps=0, num_samples=2,
                             height=32, width=48, batch_size=4, chunk_size=8,
                             model_kwargs={"widths": (4, 8, 8), "head_width": 8, "num_groups": 4})),
])
def test_case_records_state_params_timing_and_hardware(case, params):
    from benchmarks.cases import CASES

    rec = CASES[case](repeats=2, **params)
    json.dumps(rec)
    assert rec["case"] in (case, "train")
    if case == "detection_scoring":
        assert rec["images_per_second"] > 0
    if case == "detection_cycle":  # 1 epoch of ceil(8 / 4) steps, 16 unlabeled images scored
        assert rec["last_split"]["train_steps"] == 2 and rec["images_scored_per_second"] > 0
        assert 0 <= rec["last_split"]["map"] <= 1 and rec["cpu_seconds_per_cycle"] > 0
        assert rec["params"]["labeled"] == 8 and len(rec["load_average_1min"]) == 2
    assert rec["median_seconds"] > 0 and rec["repeats"] == 2
    assert rec["env"]["backend"] == "cpu" and rec["env"]["jax"]
    assert rec["peak_rss_mb"] > 0


def test_runner_rejects_unknown_cases():
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "nope"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "unknown cases" in res.stderr


def test_peer_comparison_says_how_to_install_the_peers():
    pytest.importorskip("jax")
    try:
        import torch  # noqa: F401
        pytest.skip("the peers are installed here")
    except ImportError:
        pass
    res = subprocess.run([sys.executable, "-m", "benchmarks.peers.compare", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "notes-peers.md" in res.stderr
