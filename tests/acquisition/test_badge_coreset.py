"""BADGE (gradient embeddings + k-means++) and core-set (greedy k-center), against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bal.acquisition import badge, coreset, gradient_embedding_factors, gradient_embeddings, min_sq_distances
from bal.acquisition.badge import _badge
from .acq_helpers import random_log_probs


def _np_gradient_embeddings(log_probs, h):
    """(p̄ − onehot(argmax p̄)) ⊗ h, materialised in numpy: [N, C*D]."""
    p = np.exp(np.asarray(log_probs, np.float64)).mean(axis=0)
    a = p - np.eye(p.shape[1])[p.argmax(axis=1)]
    return np.einsum("nc,nd->ncd", a, np.asarray(h, np.float64)).reshape(len(p), -1)


@pytest.fixture(scope="module")
def pool():
    # the registry tests' shapes ([4, 24, 3], [24, 5], k = 4): compiled programs are shared
    rng = np.random.default_rng(0)
    lp = random_log_probs(4, 24, 3, seed=1)
    h = jnp.asarray(rng.normal(size=(24, 5)), jnp.float32)
    return lp, h


def test_gradient_embeddings_are_the_last_layer_cross_entropy_gradient(pool):
    lp, h = pool
    g = _np_gradient_embeddings(lp, h)
    np.testing.assert_allclose(gradient_embeddings(lp, h), g, rtol=1e-5, atol=1e-6)
    # the gradient of CE(softmax(W h + b), ŷ) w.r.t. W, for a deterministic prediction p = p̄, by autodiff
    @jax.jit
    def autodiff_grads(lp, h):
        p_bar = jnp.mean(jnp.exp(lp), axis=0)
        y_hat = jnp.argmax(p_bar, axis=-1)

        def ce(w, x, logit_offset, y):  # logits = W x + log p̄, evaluated at W = 0: softmax = p̄
            return -jax.nn.log_softmax(w @ x + logit_offset)[y]

        return jax.vmap(jax.grad(ce), in_axes=(None, 0, 0, 0))(jnp.zeros((3, 5)), h, jnp.log(p_bar), y_hat)

    np.testing.assert_allclose(np.asarray(autodiff_grads(lp, h)).reshape(24, -1), g, rtol=1e-4, atol=1e-5)
    a, hh = gradient_embedding_factors(lp, h)
    assert a.shape == (24, 3) and hh.shape == (24, 5)


def test_badge_first_center_has_the_largest_gradient_norm(pool, key):
    lp, h = pool
    g = _np_gradient_embeddings(lp, h)
    picks = badge(key, lp, h, 4)
    assert int(picks[0]) == int(np.argmax(np.linalg.norm(g, axis=1)))
    assert len(set(np.asarray(picks).tolist())) == 4 and picks.dtype == jnp.int32


def test_badge_second_center_is_drawn_proportional_to_squared_distance(pool):
    # k-means++: P(second = i) ∝ ||g_i − g_first||², computed here from the materialised embeddings
    lp, h = pool
    a, hh = gradient_embedding_factors(lp, h)
    g = _np_gradient_embeddings(lp, h)
    first = int(np.argmax(np.linalg.norm(g, axis=1)))
    d2 = np.sum((g - g[first]) ** 2, axis=1)
    keys = jax.random.split(jax.random.key(5), 4000)
    seconds = np.asarray(jax.vmap(lambda kk: _badge(kk, a, hh, k=2, first="max_norm")[1])(keys))
    assert first not in set(seconds.tolist())
    counts = np.bincount(seconds, minlength=24)
    expected = 4000 * d2 / d2.sum()
    big = expected >= 5  # chi-square on the cells with enough mass, the rest pooled
    obs, exp = counts[big], expected[big]
    if counts[~big].sum() or expected[~big].sum() >= 1:
        obs, exp = np.append(obs, counts[~big].sum()), np.append(exp, expected[~big].sum())
    assert stats.chisquare(obs, exp).pvalue > 1e-3


def test_badge_takes_one_item_per_group_of_duplicates(key):
    # three groups of 8 identical items: after one pick per group every remaining distance is 0
    rng = np.random.default_rng(3)
    base_lp = np.asarray(random_log_probs(4, 3, 3, seed=2))
    base_h = rng.normal(size=(3, 5)).astype(np.float32)
    group = np.repeat(np.arange(3), 8)
    lp, h = base_lp[:, group], base_h[group]
    for first in ("max_norm", "random"):
        picks = np.asarray(badge(key, lp, h, 4, first=first))
        assert sorted(group[picks[:3]].tolist()) == [0, 1, 2]
        assert len(set(picks.tolist())) == 4  # the 4th: uniform among the (zero-distance) rest


def _np_k_center(x, labeled, k, first=None):
    x = np.asarray(x, np.float64)
    if len(labeled):
        d = ((x[:, None] - np.asarray(labeled, np.float64)[None]) ** 2).sum(-1).min(1)
        chosen = []
    else:
        chosen = [first]
        d = ((x - x[first]) ** 2).sum(-1)
        d[first] = -np.inf
    while len(chosen) < k:
        u = int(np.argmax(d))  # lowest index on ties
        chosen.append(u)
        d = np.minimum(d, ((x - x[u]) ** 2).sum(-1))
        d[chosen] = -np.inf
    return chosen


def test_coreset_matches_numpy_greedy_k_center(key):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    labeled = rng.normal(size=(7, 3)).astype(np.float32)
    expected = _np_k_center(x, labeled, 12)
    np.testing.assert_array_equal(coreset(key, x, 12, labeled_embeddings=labeled, chunk_size=3), expected)
    np.testing.assert_allclose(min_sq_distances(x, labeled, chunk_size=3),
                               ((x[:, None] - labeled[None]) ** 2).sum(-1).min(1), rtol=1e-4, atol=1e-5)


def test_coreset_without_labeled_set_starts_at_random(key):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 2)).astype(np.float32)
    picks = np.asarray(coreset(key, x, 8))
    assert picks.dtype == np.int32 and len(set(picks.tolist())) == 8
    np.testing.assert_array_equal(picks, _np_k_center(x, [], 8, first=int(picks[0])))
    with pytest.raises(ValueError, match="PRNG key"):
        coreset(None, x, 3)


def test_coreset_prefers_points_far_from_the_labeled_set(key):
    x = np.array([[0.0], [0.1], [5.0], [10.0], [0.2]], np.float32)
    np.testing.assert_array_equal(coreset(key, x, 2, labeled_embeddings=np.zeros((1, 1), np.float32)), [3, 2])
