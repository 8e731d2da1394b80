"""Bad input raises a ValueError that names the problem, at the API edge."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import acquire, bald, batchbald, entropy, top_k
from .acq_helpers import random_log_probs


@pytest.fixture(scope="module")
def lp():
    return random_log_probs(3, 6, 4, seed=0)


def test_acquisition_size_larger_than_the_pool(lp, key):
    with pytest.raises(ValueError, match=r"k = 7 is larger than the pool \(N = 6\)"):
        acquire("bald", key, lp, 7)
    with pytest.raises(ValueError, match="larger than the pool"):
        batchbald(key, lp, 7)
    with pytest.raises(ValueError, match="larger than the pool"):
        top_k(None, jnp.zeros(3), 4)


@pytest.mark.parametrize("k", [0, -2])
def test_k_below_one(lp, key, k):
    with pytest.raises(ValueError, match=f"k must be >= 1; got {k}"):
        acquire("entropy", key, lp, k)


def test_k_must_be_an_integer(lp, key):
    with pytest.raises(ValueError, match="k must be an integer"):
        acquire("bald", key, lp, 2.5)
    with pytest.raises(ValueError, match="static Python int"):
        acquire("bald", key, lp, True)


def test_empty_pool(key):
    with pytest.raises(ValueError, match="pool is empty"):
        acquire("bald", key, jnp.zeros((3, 0, 4)), 1)
    with pytest.raises(ValueError, match="pool is empty"):
        top_k(None, jnp.zeros(0), 1)


def test_wrong_rank(key):
    with pytest.raises(ValueError, match=r"rank 3, i.e. \[S, N, C\].*got shape \(6, 4\)"):
        bald(jnp.full((6, 4), -np.log(4.0)))
    with pytest.raises(ValueError, match="rank 3"):
        acquire("batchbald", key, jnp.zeros((1, 2, 3, 4)), 1)


def test_log_probs_that_do_not_normalise(lp, key):
    with pytest.raises(ValueError, match="do not normalise.*log_softmax"):
        entropy(jnp.exp(lp))  # probabilities instead of log-probabilities
    with pytest.raises(ValueError, match="do not normalise"):
        acquire("bald", key, lp + 0.5, 2)  # logits, shifted
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        bald(lp.at[0, 0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="at least 2 classes"):
        bald(jnp.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="floating-point"):
        bald(jnp.zeros((2, 3, 4), jnp.int32))


def test_value_checks_are_skipped_on_tracers_and_optional(lp):
    bad = lp + 0.5
    out = jax.jit(bald)(bad)  # tracers carry no values: documented skip, no error
    assert out.shape == (6,)
    assert bald(bad, validate=False).shape == (6,)


def test_negative_infinity_is_valid_input(key):
    # one-hot samples: log p in {0, -inf}; (same shape and batch size as the registry tests: cached compiles)
    labels = np.random.default_rng(0).integers(0, 3, size=(4, 24))
    with np.errstate(divide="ignore"):
        lp = jnp.asarray(np.log(np.eye(3, dtype=np.float32)[labels]))
    for name in ("bald", "entropy", "margin", "variation_ratios", "mean_std", "least_confidence"):
        assert acquire(name, key, lp, 4).shape == (4,)
    result = batchbald(key, lp, 4, num_configs=8)  # exact, then sampled configurations
    assert len(set(np.asarray(result.indices).tolist())) == 4
    assert bool(jnp.all(jnp.isfinite(result.scores)))


def test_embeddings_are_checked(lp, key):
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, D\]"):
        acquire("badge", key, lp, 2, embeddings=jnp.zeros(6))
    with pytest.raises(ValueError, match="embeddings has 5 rows but the pool has N = 6"):
        acquire("badge", key, lp, 2, embeddings=jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match="labeled_embeddings have D = 3"):
        acquire("coreset", key, lp, 2, embeddings=jnp.zeros((6, 2)), labeled_embeddings=jnp.zeros((1, 3)))


def test_batch_parameters_are_checked(lp, key):
    with pytest.raises(ValueError, match="num_configs must be >= 1"):
        batchbald(key, lp, 2, num_configs=0)
    with pytest.raises(ValueError, match="chunk_size must be an integer"):
        batchbald(key, lp, 2, chunk_size=2.5)
    with pytest.raises(ValueError, match="lazy_tolerance must be >= 0"):
        batchbald(key, lp, 2, lazy_tolerance=-1.0)
    with pytest.raises(ValueError, match="pass a PRNG key"):
        batchbald(None, lp, 4, num_configs=10)  # 4^3 > 10: configurations are sampled
    with pytest.raises(ValueError, match="coldness"):
        acquire("powerbald", key, lp, 2, coldness=-0.5)
    with pytest.raises(ValueError, match=r"larger than the number of candidates \(2 marked True\)"):
        batchbald(key, lp, 3, candidates=np.arange(6) < 2)
    with pytest.raises(ValueError, match="candidates must be a bool array of shape"):
        batchbald(key, lp, 3, candidates=np.ones(5, bool))


# The normalisation check scales its tolerance with the input dtype.
LOW_PRECISION = [jnp.float32, jnp.float16, jnp.bfloat16]


def _logits(c, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=(3, 16, c)).astype(np.float32) * scale


@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("c", [4, 10, 100])
def test_genuine_log_softmax_is_accepted_in_every_dtype(dtype, c):
    from bal.acquisition._validation import check_log_probs

    for scale in (0.1, 1.0, 5.0):
        lp = jax.nn.log_softmax(jnp.asarray(_logits(c, seed=c, scale=scale), dtype), axis=-1)
        assert lp.dtype == dtype
        out = check_log_probs(lp)  # computed and stored in dtype: bf16 rows normalise only to ~1e-2
        assert out.dtype == jnp.float32
    assert bald(lp).shape == (16,) and entropy(lp).dtype == jnp.float32


UNNORMALISED = {
    "probabilities": lambda logits, lp: np.exp(lp),
    "logits": lambda logits, lp: logits,
    "shifted by +0.1": lambda logits, lp: lp + 0.1,
    "shifted by -0.1": lambda logits, lp: lp - 0.1,
}


@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("c", [4, 100])
@pytest.mark.parametrize("what", list(UNNORMALISED))
def test_unnormalised_input_is_rejected_in_every_dtype(dtype, c, what):
    logits = _logits(c, seed=1)
    lp = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), axis=-1))
    x = jnp.asarray(UNNORMALISED[what](logits, lp), dtype)
    with pytest.raises(ValueError, match=f"do not normalise.*{jnp.dtype(dtype).name} input, C = {c}"):
        bald(x)


def test_tolerance_grows_with_the_dtypes_epsilon_and_the_class_count():
    from bal.acquisition._validation import NORMALISATION_ATOL, normalisation_atol

    assert normalisation_atol(jnp.float32, 10) == NORMALISATION_ATOL == 1e-3
    assert normalisation_atol(jnp.float64, 10**6) == NORMALISATION_ATOL
    for c in (2, 10, 1000):
        assert NORMALISATION_ATOL <= normalisation_atol(jnp.float16, c) < normalisation_atol(jnp.bfloat16, c)
    assert normalisation_atol(jnp.bfloat16, 10) < normalisation_atol(jnp.bfloat16, 1000) < 0.1
    eps = float(jnp.finfo(jnp.bfloat16).eps)
    assert normalisation_atol(jnp.bfloat16, 10) == pytest.approx(eps * (1 + 1.5 * np.log(10)))


def test_low_precision_rows_just_outside_the_tolerance_are_rejected():
    from bal.acquisition._validation import check_log_probs, normalisation_atol

    c = 4
    lp = np.asarray(jax.nn.log_softmax(jnp.asarray(_logits(c, seed=2)), axis=-1), np.float64)
    for dtype in LOW_PRECISION:
        atol = normalisation_atol(dtype, c)
        # shift one row so that its mass is off by 3x the tolerance, in dtype's own rounding
        bad = lp.copy()
        bad[0, 0] += np.log1p(3 * atol)
        with pytest.raises(ValueError, match="do not normalise"):
            check_log_probs(jnp.asarray(bad, dtype))
