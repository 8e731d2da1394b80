"""Selection rules, deterministic tie-breaking, and streaming top-k over chunks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import acquire, acquire_streaming, bald
from bal.acquisition.selection import RULES, bottom_k, random_k, select, top_k
from bal.acquisition.streaming import (
    chunk_top_k,
    merge_top_k,
    streaming_top_k,
    topk_init,
    topk_result,
    topk_update,
)


def _np_top_k(scores, k, descending=True):
    """Reference: sort by (score desc, index asc) with numpy's stable lexsort."""
    s = np.asarray(scores, np.float64)
    key = -s if descending else s
    return np.lexsort((np.arange(len(s)), key))[:k]


def test_lax_top_k_breaks_ties_by_lowest_index():
    # The documented behaviour of jax.lax.top_k, verified on heavy ties.
    scores = np.random.default_rng(0).integers(0, 4, size=5000).astype(np.float32)
    _, idx = jax.lax.top_k(jnp.asarray(scores), 3000)
    np.testing.assert_array_equal(idx, _np_top_k(scores, 3000))


def test_top_k_and_bottom_k_ties_lowest_index_first():
    scores = jnp.array([1.0, 3.0, 3.0, 0.0, 3.0, 0.0, -0.0])
    np.testing.assert_array_equal(top_k(None, scores, 4), [1, 2, 4, 0])
    # -0.0 == 0.0: the tie goes to the lowest index, not by the sign bit
    np.testing.assert_array_equal(bottom_k(None, scores, 3), [3, 5, 6])
    assert top_k(None, scores, 2).dtype == jnp.int32


def test_nan_scores_are_never_preferred():
    scores = jnp.array([jnp.nan, 0.5, jnp.nan, 0.1])
    np.testing.assert_array_equal(top_k(None, scores, 2), [1, 3])
    np.testing.assert_array_equal(bottom_k(None, scores, 2), [3, 1])


def test_random_k_is_a_deterministic_uniform_subset(key):
    a = random_k(key, jnp.zeros(50), 20)
    assert len(set(np.asarray(a).tolist())) == 20 and int(a.min()) >= 0 and int(a.max()) < 50
    np.testing.assert_array_equal(a, random_k(key, 50, 20))  # pool size as an int
    assert not np.array_equal(a, random_k(jax.random.key(1), 50, 20))
    # uniform over items: across 40 keys each of the 50 items is picked 40 * 20/50 = 16 times on average
    counts = np.bincount(np.concatenate([np.asarray(random_k(jax.random.key(i), 50, 20)) for i in range(40)]),
                         minlength=50)
    assert counts.sum() == 800 and counts.min() >= 4 and counts.max() <= 30


def test_select_by_rule_name(key):
    scores = jnp.array([0.1, 0.9, 0.5])
    assert set(RULES) == {"top_k", "bottom_k", "random"}
    np.testing.assert_array_equal(select("top_k", key, scores, 2), [1, 2])
    np.testing.assert_array_equal(select("bottom_k", key, scores, 1), [0])
    with pytest.raises(ValueError, match="unknown selection rule 'best'.*valid rules"):
        select("best", key, scores, 1)


@pytest.mark.parametrize("most_informative", [True, False])
def test_streaming_top_k_equals_global_top_k_with_ties(most_informative):
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=1000).astype(np.float32)  # many ties
    chunks = np.split(scores, [300, 600, 900])  # ties straddle chunk borders
    expected = _np_top_k(scores, 37, descending=most_informative)
    got = streaming_top_k(lambda chunk, offset: chunk, chunks, 37, most_informative=most_informative)
    np.testing.assert_array_equal(got, expected)
    rule = top_k if most_informative else bottom_k
    np.testing.assert_array_equal(rule(None, jnp.asarray(scores), 37), expected)


def test_chunks_smaller_than_k_and_explicit_state_updates():
    scores = np.array([5, 1, 5, 7, 5, 0, 7], np.float32)
    state = topk_init(4)
    for offset in range(0, 7, 2):  # chunks of 2 (and 1) items < k
        state = topk_update(state, scores[offset:offset + 2], offset)
    np.testing.assert_array_equal(topk_result(state, pool_size=7), [3, 6, 0, 2])


def test_merge_top_k_orders_by_value_then_global_index():
    values = jnp.array([2.0, 3.0, 3.0, 2.0, 3.0])
    indices = jnp.array([40, 17, 5, 3, 9], jnp.int32)
    merged = merge_top_k(values, indices, 4)
    np.testing.assert_array_equal(merged.indices, [5, 9, 17, 3])
    np.testing.assert_array_equal(merged.values, [3.0, 3.0, 3.0, 2.0])
    cand = chunk_top_k(jnp.array([1.0, 4.0, 4.0]), 2, 100)
    np.testing.assert_array_equal(cand.indices, [101, 102])


def test_streaming_rejects_a_pool_smaller_than_k():
    with pytest.raises(ValueError, match="larger than the pool"):
        streaming_top_k(lambda c, o: c, [np.ones(3, np.float32)], 5)
    with pytest.raises(ValueError, match="pool is empty"):
        streaming_top_k(lambda c, o: c, [], 2)


@pytest.mark.parametrize("name", ["bald", "power_bald"])
def test_acquire_streaming_equals_acquire_on_the_whole_pool(name, make_log_probs, key):
    lp = make_log_probs(4, 24, 3, seed=4)
    chunks = np.split(np.asarray(lp), 2, axis=1)
    for most in (True, False):
        np.testing.assert_array_equal(acquire_streaming(name, key, chunks, 7, most_informative=most),
                                      acquire(name, key, lp, 7, most_informative=most))


def test_streaming_bald_over_chunks_equals_top_k_of_bald(make_log_probs):
    lp = make_log_probs(3, 64, 4, seed=8)
    chunks = [lp[:, i:i + 16] for i in range(0, 64, 16)]
    got = streaming_top_k(lambda chunk, offset: bald(chunk), chunks, 10)
    np.testing.assert_array_equal(got, top_k(None, bald(lp), 10))
