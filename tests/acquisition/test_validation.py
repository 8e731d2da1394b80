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
