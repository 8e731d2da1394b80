"""The benchmark suite runs and prints well-formed records (tiny sizes; no timing asserts)."""

import json
import subprocess
import sys
import pathlib

import numpy as np
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


# --------------------------------------------------------------------------- pools on disk (benchmarks/pool_scale.py)
TINY_POOL = dict(num_samples=4, k=50, chunk_size=64, shard_size=256, tiny=True)


def _tiny_model():
    import jax

    from bal import posteriors

    post = posteriors.build("mc_dropout", "mlp", 10, num_samples=4, model_kwargs={"hidden_sizes": (16,)})
    return post, post.init(jax.random.key(0), np.zeros((1, 28, 28, 1), np.float32)), jax.random.key(1)


def test_generated_rows_are_deterministic_whatever_the_chunking():
    from benchmarks.pool_scale import generated_rows

    whole = generated_rows(0, 1000, seed=3)
    assert whole.dtype == np.uint8 and whole.shape == (1000, 28, 28, 1)
    np.testing.assert_array_equal(np.concatenate([generated_rows(0, 417, 3), generated_rows(417, 1000, 3)]), whole)
    assert not np.array_equal(generated_rows(0, 1000, seed=4), whole)
    assert 0.5 < np.mean(whole == 0) < 0.75 and whole.max() > 200


def test_pool_scale_scores_every_size_in_its_own_process(tmp_path):
    from bal import pools
    from benchmarks.cases import CASES
    from benchmarks.pool_scale import pool_in, selection_file

    rec = CASES["pool_scale"](sizes=(1200, 300), workdir=tmp_path, **TINY_POOL)
    json.dumps(rec)
    assert [r["n"] for r in rec["runs"]] == [300, 1200] and rec["params"]["model"] == "mlp (16 hidden)"
    for r in rec["runs"]:
        assert r["num_scored"] == r["n"] and r["selected"] == 50 and r["seconds"] > 0
        assert r["peak_rss_mb"] >= r["rss_after_warmup_mb"] > 0 and len(r["load_average"]) == 2
    assert rec["seconds_per_item_vs_smallest"][0] == 1.0 and rec["median_seconds"] == rec["runs"][-1]["seconds"]
    # the selection the child wrote is score_pool's on the same pool, model and key
    folder, seconds = pool_in(tmp_path, 1200, shard_size=256)
    assert seconds == 0.0  # the case's pool, reused
    post, variables, key = _tiny_model()
    want = pools.score_pool(post, variables, pools.open_pool(folder), key, 50, num_samples=4, chunk_size=64)
    np.testing.assert_array_equal(np.load(selection_file(folder, "bald", 50, 4, 64, tiny=True)), want.indices)
    assert rec["runs"][-1]["selection_head"] == want.indices[:5].tolist()


def test_pool_processes_select_what_one_process_selects(tmp_path):
    from benchmarks.cases import CASES

    rec = CASES["pool_processes"](n=1000, processes=2, workdir=tmp_path, **TINY_POOL)
    json.dumps(rec)
    assert rec["equal_selection"] is True and rec["selected"] == 50
    assert [r["process_index"] for r in rec["many_processes"]] == [0, 1]
    assert all(r["processes"] == 2 and r["num_scored"] == 1000 for r in rec["many_processes"])
    assert rec["one_process"]["processes"] == 1 and rec["items_per_second_one_process"] > 0
    assert rec["items_per_second"] > 0


def test_pool_resume_after_three_kills_equals_an_uninterrupted_pass(tmp_path):
    from bal import pools
    from benchmarks.cases import CASES
    from benchmarks.pool_scale import pool_in, selection_file

    # the uninterrupted pass, scored here: the case finds it beside the pool and compares against it
    folder, _ = pool_in(tmp_path, 3000, shard_size=256)
    post, variables, key = _tiny_model()
    want = pools.score_pool(post, variables, pools.open_pool(folder), key, 50, num_samples=4, chunk_size=64)
    np.save(selection_file(folder, "bald", 50, 4, 64, tiny=True), want.indices)
    rec = CASES["pool_resume"](n=3000, kills=3, chunk_delay=0.03, workdir=tmp_path, **TINY_POOL)
    json.dumps(rec)
    assert rec["equal_to_uninterrupted"] is True and rec["reference"] == "reused from an earlier uninterrupted pass"
    attempts = rec["attempts"]
    assert len(attempts) == 3 and [a["kill_at_row"] for a in attempts] == sorted(a["kill_at_row"] for a in attempts)
    for a in attempts:  # killed where it was told; every chunk it reported done was in its state
        assert a["reported_done"] >= a["kill_at_row"] and a["state_next"] >= a["reported_done"]
    assert rec["final"]["resumed_from"] == attempts[-1]["state_next"] > 0
    assert rec["final"]["num_scored"] == 3000 and rec["chunks_rescored"] == 0 and rec["finished_shards_rescored"] == 0
    np.testing.assert_array_equal(np.load(folder / f"resumed-{selection_file(folder, 'bald', 50, 4, 64, True).name}"),
                                  want.indices)


def test_pool_cluster_margin_equals_cluster_margin_pool(tmp_path):
    from bal import pools
    from benchmarks.cases import CASES
    from benchmarks.pool_scale import pool_in, selection_file

    rec = CASES["pool_cluster_margin"](n=1000, num_clusters=5, sample_size=200, workdir=tmp_path,
                                       **{**TINY_POOL, "k": 20})
    json.dumps(rec)
    assert rec["selected"] == rec["distinct_selected"] == 20 and rec["child"]["num_clusters"] == 5
    assert rec["clustering_seconds"] > 0 and rec["margin_pass_seconds"] > 0 and rec["selection_step_seconds"] > 0
    folder, _ = pool_in(tmp_path, 1000, shard_size=256)
    post, variables, key = _tiny_model()
    clusters = pools.Clusters.load(folder / "clusters-c5-m200")
    want = pools.cluster_margin_pool(post, variables, pools.open_pool(folder), key, 20, clusters, num_samples=4,
                                     chunk_size=64)
    got = np.load(selection_file(folder, "cluster-margin-c5-m200", 20, 4, 64, tiny=True))
    np.testing.assert_array_equal(got, want)


def test_step_profile_times_every_piece(capsys):
    from benchmarks import step_profile

    assert step_profile.main(["--batch-size", "2", "--repeats", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    pieces = out["pieces"]
    assert {"step (grad + Adam)", "conv2 forward", "conv2 kernel gradient", "conv2 input gradient",
            "Adam update"} <= set(pieces)
    assert all(p["ms"] > 0 for p in pieces.values())
    # FLOPs from the loop-free program: the three conv2 pieces do the same arithmetic
    conv2 = [pieces[f"conv2 {k}"]["gflop"] for k in ("forward", "kernel gradient", "input gradient")]
    assert max(conv2) == pytest.approx(min(conv2), rel=0.05) and conv2[0] > 0
    assert pieces["step (grad + Adam)"]["gflop"] > sum(conv2)
