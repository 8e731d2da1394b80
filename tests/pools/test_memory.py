"""Scoring a memory-mapped pool keeps host memory flat: peak RSS does not grow with the pool size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bal import pools

from tests.pools.helpers import GeneratedSource

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_JOB = textwrap.dedent("""
    import json, sys
    import jax
    from bal import pools
    from tests.pools.helpers import tiny_posterior

    def vm(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    post, variables = tiny_posterior()
    source = pools.open_pool(sys.argv[1])
    # warm up (compile) on the first chunks, so both runs pay the same fixed costs
    pools.score_pool(post, variables, source, jax.random.key(0), 100, chunk_size=1024, stop=2048)
    before = vm("VmHWM")
    r = pools.score_pool(post, variables, source, jax.random.key(0), 100, chunk_size=1024,
                         payload=("embedding",))
    print(json.dumps({"hwm": vm("VmHWM"), "hwm_before": before, "n": r.num_scored}))
""")


def _peak(folder) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", BAL_TUNE_ALLOCATOR="0")
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run([sys.executable, "-c", _JOB, str(folder)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_peak_rss_does_not_grow_with_the_pool(tmp_path):
    small, big = 20_000, 200_000
    for n in (small, big):
        pools.pack(GeneratedSource(n), tmp_path / str(n), shard_size=32_768, format="npy")
    a, b = _peak(tmp_path / str(small)), _peak(tmp_path / str(big))
    assert (a["n"], b["n"]) == (small, big)
    pool_bytes = big * 8 * 8 * 4  # 51 MB of float32 inputs
    growth = b["hwm"] - a["hwm"]
    # a pool read into memory (or left mapped) would add ~pool_bytes; streaming adds (nearly) nothing
    assert growth < 0.15 * pool_bytes, (a, b, growth)
