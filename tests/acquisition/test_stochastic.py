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


# NaN scores: drawn last, in every mode, both directions and at any coldness.
NAN_SCORES = jnp.asarray([np.nan, 0.3, np.nan, 0.05, 0.9, 0.5, 0.2, np.nan], jnp.float32)  # NaN at index 0 too
NAN_MASK = np.isnan(np.asarray(NAN_SCORES))
DIRECTIONS = (True, False)


@jax.jit
def _all_keys(keys, scores, coldness):
    """Perturbed keys ``[len(keys), len(MODES) * 2, N]`` (mode-major, then most_informative True / False)."""
    def one(k):
        return jnp.stack([_perturbed(k, scores, coldness, 0, mode=m, most_informative=mi)
                          for m in MODES for mi in DIRECTIONS])
    return jax.vmap(one)(keys)


@pytest.mark.parametrize("coldness", [0.0, 0.5, 2.0, 1e5])
def test_nan_scores_rank_below_every_scored_item(draw_keys, coldness):
    keys = np.asarray(_all_keys(draw_keys[:500], NAN_SCORES, jnp.float32(coldness)))
    assert np.all(keys[..., NAN_MASK] == -np.inf)
    lowest_scored = keys[..., ~NAN_MASK].min(-1)
    assert np.all(lowest_scored > -np.inf)  # strictly above every NaN item, whatever the draw
    for j, (mode, mi) in enumerate((m, mi) for m in MODES for mi in DIRECTIONS):
        first = keys[:, j].argmax(-1)
        assert not NAN_MASK[first].any(), (mode, mi)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("most_informative", DIRECTIONS)
def test_nan_items_are_selected_only_when_nothing_else_is_left(key, mode, most_informative):
    n_scored = int((~NAN_MASK).sum())
    for coldness in (0.0, 1.0):
        order = np.asarray(stochastic_select(key, NAN_SCORES, len(NAN_SCORES), mode=mode, coldness=coldness,
                                             most_informative=most_informative))
        assert sorted(order.tolist()) == list(range(len(NAN_SCORES)))
        assert not NAN_MASK[order[:n_scored]].any(), (coldness, order)
        assert NAN_MASK[order[n_scored:]].all()
        np.testing.assert_array_equal(  # as many as there are scored items: no NaN item at all
            stochastic_select(key, NAN_SCORES, n_scored, mode=mode, coldness=coldness,
                              most_informative=most_informative), order[:n_scored])


def test_least_informative_draws_ignore_nan_items(draw_keys):
    """With NaN items present, the first draw follows the paper's weights over the scored items only."""
    beta = 2.0
    keys = np.asarray(_all_keys(draw_keys, NAN_SCORES, jnp.float32(beta)))
    s = np.asarray(NAN_SCORES, np.float64)[~NAN_MASK]
    ranks = np.argsort(np.argsort(-s)) + 1  # among the scored items: 1..M
    expected = {"softmax": np.exp(-beta * s), "power": s ** -beta, "softrank": ranks ** beta}
    for j, mode in enumerate(MODES):
        picks = keys[:, 2 * j + 1].argmax(-1)  # most_informative=False
        assert not NAN_MASK[picks].any(), mode
        scored_index = np.cumsum(~NAN_MASK) - 1  # pool index -> index among the scored items
        probs = expected[mode] / expected[mode].sum()
        assert _chi2_pvalue(scored_index[picks], probs) > 1e-3, mode


def test_zero_weight_items_come_before_nan_items(key):
    # softmax: a -inf score has weight 0 (most informative) -- still drawn before the NaN item
    scores = jnp.asarray([np.nan, -np.inf, 0.5, 1.0], jnp.float32)
    for coldness in (0.0, 1.0):
        order = np.asarray(stochastic_select(key, scores, 4, mode="softmax", coldness=coldness))
        assert order[-1] == 0, (coldness, order)
    order = np.asarray(stochastic_select(key, scores, 4, mode="softmax", coldness=1.0))
    assert order[2] == 1  # after the two positive-weight items
    # least informative: the -inf score has the top weight; the NaN item still comes last
    order = np.asarray(stochastic_select(key, scores, 4, mode="softmax", coldness=1.0, most_informative=False))
    assert order[0] == 1 and order[-1] == 0


def test_perturbed_scores_put_nan_last_chunk_by_chunk(key):
    whole = perturbed_scores(key, NAN_SCORES, mode="softmax", most_informative=False)
    chunked = jnp.concatenate([perturbed_scores(key, NAN_SCORES[:3], mode="softmax", most_informative=False),
                               perturbed_scores(key, NAN_SCORES[3:], mode="softmax", most_informative=False,
                                                offset=3)])
    np.testing.assert_array_equal(whole, chunked)
    assert np.all(np.asarray(whole)[NAN_MASK] == -np.inf) and np.all(np.isfinite(np.asarray(whole)[~NAN_MASK]))
