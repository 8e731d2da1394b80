"""bal.pools.score: streamed scoring equals the loop's selection; resumable after an interruption or kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import acquisition, pools
from bal.active.strategy import resolve
from bal.predict import predict
from bal.pools.score import map_pool

from tests.pools.helpers import pool_array, tiny_posterior

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def model():
    return tiny_posterior()


@pytest.fixture(scope="module")
def x():
    return pool_array(1000)


@pytest.mark.parametrize("strategy,most_informative", [("bald", True), ("margin", False), ("power_bald", True),
                                                       ("random", True)])
def test_score_pool_equals_the_loops_selector(model, x, strategy, most_informative):
    post, variables = model
    key = jax.random.key(7)
    k = 25
    want = resolve(strategy)(post, variables, x, np.arange(len(x)), np.zeros(0, int), k, key, chunk_size=64,
                             most_informative=most_informative)
    got = pools.score_pool(post, variables, pools.ArraySource(x), key, k, strategy=strategy, chunk_size=64,
                           most_informative=most_informative)
    np.testing.assert_array_equal(got.indices, want)
    assert got.num_scored == 1000 and got.scores.shape == (k,)
    assert np.all(np.diff(got.scores) <= 0)


def test_payload_equals_predict_outputs_and_subset_keeps_global_indices(model, x):
    post, variables = model
    key = jax.random.key(3)
    rows = np.arange(0, 1000, 2)
    got = pools.score_pool(post, variables, pools.Subset(pools.ArraySource(x), rows), key, 10,
                           chunk_size=64, payload=("log_probs", "mean_log_probs", "embedding"))
    pk, _ = jax.random.split(key)
    lp, emb = predict(post, variables, x[rows], pk, chunk_size=64, with_embeddings=True)
    ref = np.asarray(acquisition.top_k(None, acquisition.bald(jnp.asarray(lp)), 10))
    np.testing.assert_array_equal(got.indices, rows[ref])
    np.testing.assert_allclose(got.payload["log_probs"], np.swapaxes(lp[:, ref], 0, 1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.payload["embedding"], emb[:, ref].mean(0), rtol=1e-5, atol=1e-6)
    pbar = np.log(np.exp(lp[:, ref]).mean(0))
    np.testing.assert_allclose(got.payload["mean_log_probs"], pbar, rtol=1e-4, atol=1e-5)


def test_ranges_on_the_chunk_grid_merge_to_the_whole(model, x):
    post, variables = model
    key = jax.random.key(1)
    src = pools.ArraySource(x)
    whole = pools.score_pool(post, variables, src, key, 30, chunk_size=64)
    parts = [pools.score_pool(post, variables, src, key, 30, chunk_size=64, start=a, stop=b)
             for a, b in [(0, 384), (384, 640), (640, 1000)]]
    merged = pools.merge_results([pools.TopKResult(p.scores, p.indices, p.payload) for p in parts], 30)
    np.testing.assert_array_equal(merged.indices, whole.indices)
    np.testing.assert_array_equal(merged.values, whole.scores)


def test_custom_score_callable_and_map_pool(model, x):
    post, variables = model

    def first_class_mass(chunk, key):
        return jnp.mean(jnp.exp(chunk.log_probs[..., 0]), axis=0)

    got = pools.score_pool(post, variables, pools.ArraySource(x), jax.random.key(0), 5, strategy=first_class_mass,
                           chunk_size=128)
    pk, _ = jax.random.split(jax.random.key(0))
    p0 = np.exp(predict(post, variables, x, pk, chunk_size=128)[..., 0]).mean(0)
    np.testing.assert_array_equal(got.indices, np.lexsort((np.arange(1000), -p0))[:5])
    ids = map_pool(post, variables, pools.ArraySource(x), pk, lambda c: jnp.argmax(c.log_probs[0], -1),
                   chunk_size=128)
    assert ids.shape == (1000,) and ids.max() < 10


def test_batch_aware_strategy_is_refused(model, x):
    post, variables = model
    with pytest.raises(ValueError, match="not pointwise.*prefilter"):
        pools.score_pool(post, variables, pools.ArraySource(x), jax.random.key(0), 5, strategy="batchbald")


# ----------------------------------------------------------------------------- resuming
class _Failing(pools.ArraySource):
    """Raises once a read reaches row ``fail_at`` (a crash mid-job)."""

    def __init__(self, array, fail_at):
        super().__init__(array)
        self.fail_at = fail_at

    def read_raw(self, start, stop):
        if stop > self.fail_at:
            raise RuntimeError("disk gone")
        return super().read_raw(start, stop)


def test_resume_after_an_interruption_gives_the_same_result(model, x, tmp_path):
    post, variables = model
    key = jax.random.key(5)
    opts = dict(chunk_size=64, payload=("embedding",), save_every=2)
    want = pools.score_pool(post, variables, pools.ArraySource(x), key, 40, **opts)
    state = tmp_path / "job.state"
    with pytest.raises(RuntimeError, match="disk gone"):
        pools.score_pool(post, variables, _Failing(x, 700), key, 40, state_path=state, **opts)
    assert state.exists()
    got = pools.score_pool(post, variables, pools.ArraySource(x), key, 40, state_path=state, **opts)
    assert 0 < got.resumed_from < 700 and got.resumed_from % 64 == 0
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(got.payload["embedding"], want.payload["embedding"])
    again = pools.score_pool(post, variables, pools.ArraySource(x), key, 40, state_path=state, **opts)
    assert again.resumed_from == 1000  # finished: nothing left to score
    np.testing.assert_array_equal(again.indices, want.indices)
    with pytest.raises(ValueError, match=r"job\.state: the state of a different scoring job \(differs in k\)"):
        pools.score_pool(post, variables, pools.ArraySource(x), key, 41, state_path=state, **opts)
    state.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"job\.state: unreadable scoring state"):
        pools.score_pool(post, variables, pools.ArraySource(x), key, 40, state_path=state, **opts)


_KILLED_JOB = textwrap.dedent("""
    import sys, time
    import jax
    from bal import pools
    from tests.pools.helpers import pool_array, tiny_posterior

    class Slow(pools.ArraySource):
        def read_raw(self, start, stop):
            time.sleep(0.1)
            return super().read_raw(start, stop)

    post, variables = tiny_posterior()
    pools.score_pool(post, variables, Slow(pool_array(1000)), jax.random.key(5), 40, chunk_size=64,
                     save_every=1, state_path=sys.argv[1])
    print("finished", flush=True)
""")


def test_resume_after_kill_9_gives_the_same_result(model, x, tmp_path):
    post, variables = model
    state = tmp_path / "killed.state"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_JOB, str(state)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if state.exists():
                with np.load(state) as z:
                    import json

                    progress = json.loads(bytes(z["meta"]).decode())["next"]
                if progress >= 256:
                    break
            if proc.poll() is not None:
                pytest.fail(f"the job ended before it was killed: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("the job wrote no progress within 60 s")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    key = jax.random.key(5)
    want = pools.score_pool(post, variables, pools.ArraySource(x), key, 40, chunk_size=64)
    got = pools.score_pool(post, variables, pools.ArraySource(x), key, 40, chunk_size=64, state_path=state,
                           save_every=1)
    assert 256 <= got.resumed_from < 1000
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.scores, want.scores)
