"""Pointwise scores: closed forms, independent numpy/scipy references, NaN-freedom."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from bal.acquisition import scores as S
from bal.acquisition.scores import (
    SCORES,
    bald,
    conditional_entropy,
    entropy,
    least_confidence,
    margin,
    mean_std,
    random_scores,
    variation_ratios,
)


def _np_probs(log_probs):
    return np.exp(np.asarray(log_probs, np.float64))


def test_entropy_of_uniform_predictive_is_log_c():
    lp = jnp.full((3, 4, 5), -np.log(5.0), jnp.float32)
    np.testing.assert_allclose(entropy(lp), np.full(4, np.log(5.0)), rtol=1e-6)
    np.testing.assert_allclose(bald(lp), np.zeros(4), atol=1e-6)


def test_entropy_of_uniform_mean_from_disagreeing_one_hots_is_log_c():
    # Each sample is certain, but they disagree uniformly: H[p̄] = log C, mean_s H[p_s] = 0, BALD = log C.
    c = 4
    lp = jnp.log(jnp.eye(c, dtype=jnp.float32))[:, None, :]  # [S=C, N=1, C], entries 0 and -inf
    np.testing.assert_allclose(entropy(lp), [np.log(c)], rtol=1e-6)
    np.testing.assert_allclose(bald(lp), [np.log(c)], rtol=1e-6)
    np.testing.assert_allclose(conditional_entropy(lp), [0.0], atol=0)


def test_bald_is_zero_when_all_samples_agree(make_log_probs):
    one = np.asarray(make_log_probs(1, 24, 4, seed=3))
    lp = jnp.asarray(np.repeat(one, 6, axis=0))
    np.testing.assert_allclose(bald(lp), np.zeros(24), atol=2e-6)


def test_bald_matches_scipy_entropy_of_mean_minus_mean_entropy(make_log_probs):
    lp = make_log_probs(6, 24, 4, seed=11)
    p = _np_probs(lp)
    h_mean = stats.entropy(p.mean(axis=0), axis=-1)
    mean_h = stats.entropy(p, axis=-1).mean(axis=0)
    np.testing.assert_allclose(bald(lp), h_mean - mean_h, atol=2e-6)
    np.testing.assert_allclose(entropy(lp), h_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conditional_entropy(lp), mean_h, rtol=1e-5, atol=1e-6)
    assert float(jnp.min(bald(lp))) > -1e-6


def test_margin_and_least_confidence_hand_computed():
    # two samples whose mean is p̄ = [0.5, 0.3, 0.2] (item 0) and p̄ = [0.25, 0.25, 0.5] (item 1)
    p = np.array([[[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]],
                  [[0.4, 0.3, 0.3], [0.3, 0.2, 0.5]]], np.float32)
    lp = jnp.log(p)
    np.testing.assert_allclose(margin(lp), [1 - (0.5 - 0.3), 1 - (0.5 - 0.25)], rtol=1e-6)
    np.testing.assert_allclose(least_confidence(lp), [1 - 0.5, 1 - 0.5], rtol=1e-6)


def test_margin_of_a_tie_at_the_top_is_maximal():
    lp = jnp.log(jnp.array([[[0.4, 0.4, 0.2], [0.9, 0.05, 0.05]]], jnp.float32))
    scores = margin(lp)
    np.testing.assert_allclose(scores, [1.0, 1 - 0.85], rtol=1e-6)


def test_variation_ratios_counts_votes_of_the_modal_class():
    # four samples vote 0, 0, 1, 2 for item 0; all vote 1 for item 1
    p = np.full((4, 2, 3), 0.1, np.float32)
    for s, vote in enumerate([0, 0, 1, 2]):
        p[s, 0, vote] = 0.8
    p[:, 1, 1] = 0.8
    np.testing.assert_allclose(variation_ratios(jnp.log(p)), [1 - 2 / 4, 0.0], atol=1e-7)


def test_mean_std_matches_numpy(make_log_probs):
    lp = make_log_probs(6, 24, 4, seed=5)
    p = _np_probs(lp)
    np.testing.assert_allclose(mean_std(lp), p.std(axis=0).mean(axis=-1), rtol=1e-4, atol=1e-6)


def test_scores_are_nan_free_at_probabilities_zero_and_one():
    # exact one-hot predictions (log p in {0, -inf}), agreeing and disagreeing, plus a mix with zeros
    eye = np.eye(3, dtype=np.float32)
    p = np.stack([
        np.stack([eye[0], eye[0], eye[1], np.array([0.5, 0.5, 0.0], np.float32)]),
        np.stack([eye[0], eye[2], eye[1], np.array([0.0, 0.5, 0.5], np.float32)]),
    ])  # [S=2, N=4, C=3]
    with np.errstate(divide="ignore"):
        lp = jnp.asarray(np.log(p))
    assert bool(jnp.any(jnp.isneginf(lp)))
    for name, fn in SCORES.items():
        out = fn(lp)
        assert bool(jnp.all(jnp.isfinite(out))), name
    np.testing.assert_allclose(entropy(lp), [0.0, np.log(2), 0.0, stats.entropy([0.25, 0.5, 0.25])], atol=1e-6)
    np.testing.assert_allclose(bald(lp)[:3], [0.0, np.log(2), 0.0], atol=1e-6)


def test_scores_are_non_negative_and_bounded(make_log_probs):
    lp = make_log_probs(6, 24, 4, seed=2)
    c = lp.shape[-1]
    for name, fn in SCORES.items():
        out = np.asarray(fn(lp))
        assert out.shape == (24,), name
        assert out.min() >= -1e-6, name
    assert np.asarray(entropy(lp)).max() <= np.log(c) + 1e-6
    assert np.asarray(least_confidence(lp)).max() <= 1 - 1 / c + 1e-6
    assert np.asarray(margin(lp)).max() <= 1 + 1e-6


def test_random_scores_depend_on_global_index_only(key):
    lp = np.full((2, 24, 4), -np.log(4.0), np.float32)
    whole = random_scores(key, lp)
    parts = np.concatenate([random_scores(key, lp[:, :12], offset=0), random_scores(key, lp[:, 12:], offset=12)])
    np.testing.assert_array_equal(whole, parts)
    assert float(whole.min()) >= 0 and float(whole.max()) < 1
    assert not np.array_equal(whole, random_scores(jax.random.key(1), lp))


def test_higher_precision_inputs_are_accepted(make_log_probs):
    lp16 = make_log_probs(3, 5, 4).astype(jnp.bfloat16)
    # bfloat16 rows normalise only to ~1e-2; skip the value check and see that scores come back in float32
    out = S.bald(lp16, validate=False)
    assert out.dtype == jnp.float32 and out.shape == (5,)


def test_scores_identical_jitted_and_not(make_log_probs):
    lp = make_log_probs(6, 24, 4, seed=7)
    eager = {name: fn(lp) for name, fn in SCORES.items()}
    jitted = jax.jit(lambda x: {name: fn(x) for name, fn in SCORES.items()})(lp)
    for name in SCORES:
        np.testing.assert_array_equal(eager[name], jitted[name], err_msg=name)
