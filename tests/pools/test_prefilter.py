"""bal.pools.prefilter: pointwise top-M, then BatchBALD / BADGE / core-set; indices mapped back to the pool."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import acquisition, pools
from bal.pools.prefilter import prefilter, prefilter_pool
from bal.predict import predict

from tests.pools.helpers import pool_array, tiny_posterior


@pytest.fixture(scope="module")
def model():
    return tiny_posterior()


@pytest.fixture(scope="module")
def x():
    return pool_array(400, seed=3)


def _mean_embedding(chunk):
    return jnp.mean(chunk.embeddings, axis=0)


def test_array_prefilter_factor_one_is_the_pointwise_top_k_and_full_is_the_method():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 80, 4)).astype(np.float32) * 2
    lp = jax.nn.log_softmax(jnp.asarray(logits))
    key = jax.random.key(0)
    top = np.asarray(acquisition.top_k(None, acquisition.bald(lp), 5))
    assert set(prefilter(key, lp, 5, factor=1)) == set(top)
    full = prefilter(key, lp, 5, factor=16)  # M = N: BatchBALD on the whole pool, candidates in BALD order
    order = np.asarray(acquisition.top_k(None, acquisition.bald(lp), 80))
    _, select_key = jax.random.split(key)
    want = order[np.asarray(acquisition.batchbald(select_key, lp[:, order], 5).indices)]
    np.testing.assert_array_equal(full, want)
    chosen = prefilter(key, lp, 6, factor=3)
    assert len(set(chosen)) == 6 and set(chosen) <= set(order[:18])


def test_array_prefilter_badge_and_coreset_pick_from_the_candidates():
    rng = np.random.default_rng(1)
    lp = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(4, 120, 3)).astype(np.float32)))
    emb = rng.normal(size=(120, 5)).astype(np.float32)
    cand = set(np.asarray(acquisition.top_k(None, acquisition.entropy(lp), 40)))
    for method in ("badge", "coreset"):
        got = prefilter(jax.random.key(2), lp, 8, method=method, score="entropy", factor=5, embeddings=emb,
                        labeled_embeddings=emb[:3] if method == "coreset" else None)
        assert len(set(got)) == 8 and set(got) <= cand
    with pytest.raises(ValueError, match="needs embeddings"):
        prefilter(jax.random.key(0), lp, 4, method="badge")
    with pytest.raises(ValueError, match="method must be one of"):
        prefilter(jax.random.key(0), lp, 4, method="bald")
    with pytest.raises(ValueError, match="factor"):
        prefilter(jax.random.key(0), lp, 4, factor=0)


def test_pool_prefilter_batchbald_equals_the_array_version(model, x):
    post, variables = model
    key = jax.random.key(9)
    got = prefilter_pool(post, variables, pools.ArraySource(x), key, 6, method="batchbald", factor=5, chunk_size=64)
    score_key, _ = jax.random.split(key)
    lp = predict(post, variables, x, jax.random.split(score_key)[0], chunk_size=64)
    np.testing.assert_array_equal(got, prefilter(key, lp, 6, method="batchbald", factor=5))


def test_pool_prefilter_coreset_with_labeled_items_equals_the_array_version(model, x):
    post, variables = model
    key = jax.random.key(5)
    rows = np.arange(20, 400)
    pool = pools.Subset(pools.ArraySource(x), rows)
    labeled = pools.ArraySource(x[:20])
    got = prefilter_pool(post, variables, pool, key, 7, method="coreset", factor=4, labeled=labeled, chunk_size=64)
    assert set(got) <= set(rows)  # global indices of the whole pool
    pk = jax.random.split(jax.random.split(key)[0])[0]
    lp = predict(post, variables, x[rows], pk, chunk_size=64)
    emb = predict(post, variables, x[rows], pk, chunk_size=64, reduce=_mean_embedding)
    lab = predict(post, variables, x[:20], pk, chunk_size=64, reduce=_mean_embedding)
    want = prefilter(key, lp, 7, method="coreset", factor=4, embeddings=emb, labeled_embeddings=lab)
    np.testing.assert_array_equal(got, rows[want])


def test_pool_prefilter_badge_picks_distinct_candidates(model, x):
    post, variables = model
    key = jax.random.key(1)
    got = prefilter_pool(post, variables, pools.ArraySource(x), key, 10, method="badge", factor=3, chunk_size=64)
    top = pools.score_pool(post, variables, pools.ArraySource(x), jax.random.split(key)[0], 30, chunk_size=64)
    assert len(set(got)) == 10 and set(got) <= set(top.indices)
