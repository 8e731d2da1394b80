"""bal.pools.distributed: two processes on jax.distributed (127.0.0.1, Gloo) give one process's exact top-k."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from bal.pools.distributed import process_range

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    return env


def test_process_ranges_follow_the_chunk_grid_and_cover_the_pool():
    for n, chunk, count in [(1000, 64, 2), (1000, 64, 3), (64, 64, 1), (130, 64, 3), (10**6, 128, 7)]:
        ranges = [process_range(n, chunk, count, i) for i in range(count)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert all(start % chunk == 0 for start, _ in ranges)
    with pytest.raises(ValueError):
        process_range(10, 4, 2, 2)


def test_two_processes_equal_one_process(tmp_path):
    port = _free_port()
    cmd = [sys.executable, "-m", "tests.pools.dist_worker"]
    procs = [subprocess.Popen(cmd + [str(tmp_path / f"p{i}.json"), str(port), "2", str(i)], cwd=REPO, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    single = subprocess.run(cmd + [str(tmp_path / "single.json")], cwd=REPO, env=_env(), capture_output=True,
                            text=True, timeout=240)
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=240))
        finally:
            p.kill()
    assert single.returncode == 0, single.stderr[-3000:]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    one = json.loads((tmp_path / "single.json").read_text())
    two = [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(2)]
    assert one["count"] == 1 and [t["count"] for t in two] == [2, 2]
    assert two[0]["range"] == [0, 512] and two[1]["range"] == [512, 1000]
    for t in two:  # every process gets the same, exact global top-k
        assert t["bald"] == one["bald"] and t["bald_scores"] == one["bald_scores"]
        assert t["embedding"] == one["embedding"]
        assert t["tied"] == one["tied"] and t["tied_scores"] == one["tied_scores"]
        assert t["num_scored"] == 1000
    # the coarse score has ties across the two ranges: lowest global index first within a tie
    scores, indices = one["tied_scores"], one["tied"]
    assert len(set(scores)) < len(scores)
    assert all(s1 > s2 or (s1 == s2 and i1 < i2)
               for (s1, i1), (s2, i2) in zip(zip(scores, indices), zip(scores[1:], indices[1:])))
    assert any(i >= 512 for i in indices) and any(i < 512 for i in indices)
    assert (tmp_path / "p0.json.state.0-of-2").exists() and (tmp_path / "p1.json.state.1-of-2").exists()


def test_the_command_line_across_two_processes_equals_one(tmp_path):
    from bal import checkpoint, pools
    from tests.pools.helpers import pool_array, tiny_posterior

    pools.pack(pools.ArraySource(pool_array(700, seed=8)), tmp_path / "pool", shard_size=256, format="npy")
    _, variables = tiny_posterior()
    checkpoint.save(tmp_path / "ckpt", variables)
    args = [sys.executable, "-m", "bal.pools", "score", str(tmp_path / "pool"), "--checkpoint", str(tmp_path / "ckpt"),
            "--model", "mlp", "--posterior", "mc_dropout", "--num-classes", "10", "--model-kwargs",
            '{"hidden_sizes": [16]}', "-k", "50", "--num-samples", "4", "--chunk-size", "64"]
    port = _free_port()
    procs = [subprocess.Popen(args + ["--out", str(tmp_path / "two.json"), "--distributed", "--coordinator",
                                      f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                              cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    single = subprocess.run(args + ["--out", str(tmp_path / "one.json")], cwd=REPO, env=_env(), capture_output=True,
                            text=True, timeout=240)
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=240))
        finally:
            p.kill()
    assert single.returncode == 0, single.stderr[-3000:]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "2 process(es)" in outs[0][0] and "written to" not in outs[1][0]  # process 0 reports and writes
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert two["processes"] == 2 and one["processes"] == 1
    for field in ("indices", "names", "scores"):
        assert one[field] == two[field]
