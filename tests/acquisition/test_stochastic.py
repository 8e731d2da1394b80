"""Stochastic batch acquisition: limits in the coldness, and the sampling distribution itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bal.acquisition import acquire, bald, top_k
from bal.acquisition.selection import bottom_k
from bal.acquisition.stochastic import MODES, _perturbed, perturbed_scores, power_select, stochastic_select
from .acq_helpers import random_log_probs

N_DRAWS = 3000
SCORES = jnp.asarray(np.linspace(0.05, 1.0, 8), jnp.float32)  # distinct, positive


@jax.jit
def _first_picks(keys, scores, coldness):
    """Index drawn first (the top of the Gumbel-perturbed keys), per key and mode: ``[len(keys), 3]``."""
    def one(k):
        return jnp.stack([jnp.argmax(_perturbed(k, scores, coldness, 0, mode=m, most_informative=True))
                          for m in MODES])
    return jax.vmap(one)(keys)


@pytest.fixture(scope="module")
def draw_keys():
    return jax.random.split(jax.random.key(42), N_DRAWS)


def _chi2_pvalue(picks, probs):
    counts = np.bincount(picks, minlength=len(probs))
    return stats.chisquare(counts, N_DRAWS * np.asarray(probs)).pvalue


def test_zero_coldness_is_uniform_sampling(draw_keys):
    picks = np.asarray(_first_picks(draw_keys, SCORES, jnp.float32(0.0)))
    uniform = np.full(len(SCORES), 1 / len(SCORES))
    for j, mode in enumerate(MODES):
        assert _chi2_pvalue(picks[:, j], uniform) > 1e-3, mode


def test_tiny_coldness_is_close_to_uniform(draw_keys):
    picks = np.asarray(_first_picks(draw_keys, SCORES, jnp.float32(1e-4)))
    uniform = np.full(len(SCORES), 1 / len(SCORES))
    for j, mode in enumerate(MODES):
        assert _chi2_pvalue(picks[:, j], uniform) > 1e-3, mode


def test_first_draw_follows_the_papers_distributions(draw_keys):
    beta = 2.0
    s = np.asarray(SCORES, np.float64)
    ranks = np.argsort(np.argsort(-s)) + 1
    expected = {"softmax": np.exp(beta * s), "power": s**beta, "softrank": ranks ** -beta}
    picks = np.asarray(_first_picks(draw_keys, SCORES, jnp.float32(beta)))
    for j, mode in enumerate(MODES):
        probs = expected[mode] / expected[mode].sum()
        assert _chi2_pvalue(picks[:, j], probs) > 1e-3, mode


@pytest.mark.parametrize("mode", MODES)
def test_large_coldness_is_top_k(mode, key):
    scores = jnp.asarray(np.random.default_rng(0).permutation(np.linspace(0.01, 1.0, 40)), jnp.float32)
    np.testing.assert_array_equal(stochastic_select(key, scores, 10, mode=mode, coldness=1e5),
                                  top_k(None, scores, 10))


def test_large_coldness_least_informative_is_bottom_k(key):
    scores = jnp.asarray(np.random.default_rng(0).permutation(np.linspace(0.01, 1.0, 40)), jnp.float32)
    np.testing.assert_array_equal(stochastic_select(key, scores, 10, mode="softrank", coldness=1e5,
                                                    most_informative=False), bottom_k(None, scores, 10))


def test_selection_is_distinct_and_reproducible(key):
    scores = jnp.asarray(np.random.default_rng(1).uniform(size=30), jnp.float32)
    a = power_select(key, scores, 30)
    assert sorted(np.asarray(a).tolist()) == list(range(30))
    np.testing.assert_array_equal(a, power_select(key, scores, 30))
    assert not np.array_equal(a, power_select(jax.random.key(7), scores, 30))


def test_power_handles_zero_scores_and_perturbations_stream(key):
    scores = jnp.array([0.0, 0.5, -1e-8, 0.2], jnp.float32)  # BALD can be 0 or round below it
    out = perturbed_scores(key, scores, mode="power", coldness=1.0)
    assert bool(jnp.all(jnp.isfinite(out)))
    chunked = jnp.concatenate([perturbed_scores(key, scores[:3], mode="power", offset=0),
                               perturbed_scores(key, scores[3:], mode="power", offset=3)])
    np.testing.assert_array_equal(out, chunked)


def test_powerbald_is_power_sampling_of_bald(key):
    lp = random_log_probs(4, 30, 3, seed=3)
    np.testing.assert_array_equal(acquire("powerbald", key, lp, 5),
                                  power_select(key, bald(lp), 5))


def test_bad_coldness_and_mode_are_rejected(key):
    with pytest.raises(ValueError, match="coldness"):
        stochastic_select(key, SCORES, 2, coldness=-1.0)
    with pytest.raises(ValueError, match="unknown stochastic mode 'boltzmann'"):
        stochastic_select(key, SCORES, 2, mode="boltzmann")
    with pytest.raises(ValueError, match="PRNG key"):
        stochastic_select(None, SCORES, 2)
