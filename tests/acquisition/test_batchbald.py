"""BatchBALD against an independent brute-force enumeration (numpy + itertools)."""

import importlib
import itertools
from functools import partial
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import bald, batchbald, joint_entropy, top_k
from .acq_helpers import random_log_probs


def brute_joint_entropy(p):
    """H[y_1..y_n] for p [S, n, C] (float64) by enumerating every label configuration."""
    s, n, c = p.shape
    h = 0.0
    for config in itertools.product(range(c), repeat=n):
        prob = np.mean(np.prod(p[:, np.arange(n), list(config)], axis=1))
        if prob > 0:
            h -= prob * np.log(prob)
    return h


def brute_mutual_information(p, batch):
    """I[y_batch; θ] = H[y_batch] − Σ_j mean_s H[p_s(y_j)]."""
    batch = list(batch)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = -np.nansum(p * np.log(p), axis=-1).mean(axis=0)
    return brute_joint_entropy(p[:, batch]) - cond[batch].sum()


def brute_batchbald(p, k):
    """Greedy BatchBALD by brute force; ties go to the lowest index."""
    chosen, scores = [], []
    for _ in range(k):
        gains = {i: brute_mutual_information(p, chosen + [i]) for i in range(p.shape[1]) if i not in chosen}
        best = max(gains, key=lambda i: (round(gains[i], 9), -i))
        chosen.append(best)
        scores.append(gains[best])
    return chosen, scores


@pytest.fixture(scope="module")
def tiny():
    return random_log_probs(5, 10, 3, seed=21, scale=1.0)


@pytest.mark.parametrize("lazy, chunk_size, padded", [(True, None, False), (False, 3, True)])
def test_exact_batchbald_equals_brute_force_greedy(tiny, key, lazy, chunk_size, padded):
    p = np.exp(np.asarray(tiny, np.float64))
    expected, expected_scores = brute_batchbald(p, 4)
    lp, candidates = tiny, None
    if padded:  # a pool padded with 5 uniform rows that are not candidates: same batch
        pad = np.full((5, 5, 3), -np.log(3.0), np.float32)
        lp = jnp.concatenate([tiny, jnp.asarray(pad)], axis=1)
        candidates = np.arange(15) < 10
    # 3^3 = 27 <= 100: exact throughout; lazy or full evaluation, any chunking: the same batch
    result = batchbald(key, lp, 4, num_configs=100, lazy=lazy, chunk_size=chunk_size, candidates=candidates)
    np.testing.assert_array_equal(result.indices, expected)
    np.testing.assert_allclose(result.scores, expected_scores, rtol=1e-4, atol=1e-5)
    assert result.indices.dtype == jnp.int32


def test_batch_of_one_is_the_top_bald_item(tiny, key):
    for lp in (tiny, tiny[:, ::-1]):
        np.testing.assert_array_equal(batchbald(key, lp, 1).indices, top_k(None, bald(lp), 1))


def test_exact_joint_entropy_equals_enumeration(tiny):
    p = np.exp(np.asarray(tiny, np.float64))
    for n in (1, 3, 4):
        np.testing.assert_allclose(joint_entropy(None, tiny[:, :n]), brute_joint_entropy(p[:, :n]), rtol=1e-5)


def test_sampled_joint_entropy_converges_to_the_exact_value():
    lp = random_log_probs(8, 7, 3, seed=9, scale=1.0)
    exact = float(joint_entropy(None, lp, num_configs=3**7))
    np.testing.assert_allclose(exact, brute_joint_entropy(np.exp(np.asarray(lp, np.float64))), rtol=1e-5)
    rmse = []
    for num_configs in (8 * 4, 8 * 256):  # both < 3^7 = 2187: Monte Carlo
        estimates = [float(joint_entropy(jax.random.key(i), lp, num_configs=num_configs)) for i in range(8)]
        rmse.append(np.sqrt(np.mean((np.array(estimates) - exact) ** 2)))
    assert rmse[1] < rmse[0] / 3 and rmse[1] < 0.06, rmse  # Monte Carlo error ~ 1 / sqrt(num_configs)


def test_sampled_candidate_entropies_converge_to_the_exact_ones():
    # BatchBALD's per-candidate term H[y_i | y_B] from sampled configurations vs all 3^4 configurations
    bb = importlib.import_module("bal.acquisition.batchbald")  # the module (the package exports the function)
    lp = random_log_probs(6, 9, 3, seed=17, scale=1.0)
    batch, candidates = jnp.arange(4, dtype=jnp.int32), jnp.arange(4, 9, dtype=jnp.int32)
    probs = jnp.transpose(jnp.exp(lp), (1, 2, 0))

    @jax.jit
    def exact():
        log_joint = lp[:, 0]
        for j in range(1, 4):
            log_joint = bb._extend_exact(log_joint, lp[:, j])
        w, log_pi = bb._config_weights(log_joint)
        return bb._conditional_entropy_given(probs, w, jnp.exp(log_pi), 81, candidates, 81)

    @partial(jax.jit, static_argnums=1)
    def sampled(key, per_sample):
        w, _ = bb._config_weights(bb._sample_log_joint(key, lp, batch, 4, per_sample))
        m = 6 * per_sample
        return bb._conditional_entropy_given(probs, w, jnp.full((m,), 1.0 / m), m, candidates, m)

    truth = np.asarray(exact())
    p = np.exp(np.asarray(lp, np.float64))
    expected = [brute_joint_entropy(p[:, [0, 1, 2, 3, i]]) - brute_joint_entropy(p[:, :4]) for i in range(4, 9)]
    np.testing.assert_allclose(truth, expected, rtol=1e-4)  # chain rule: H[y_i | y_B] = H[y_B, y_i] − H[y_B]
    rmse = [np.sqrt(np.mean([(np.asarray(sampled(jax.random.key(i), r)) - truth) ** 2 for i in range(6)]))
            for r in (2, 512)]
    assert rmse[1] < rmse[0] / 4 and rmse[1] < 0.01, rmse


def test_never_picks_an_item_twice_even_when_sampling(key):
    lp = random_log_probs(5, 12, 3, seed=2)
    result = batchbald(key, lp, 12, num_configs=30)  # 3^4 > 30: steps 4.. sample configurations
    assert sorted(np.asarray(result.indices).tolist()) == list(range(12))
    assert bool(jnp.all(jnp.diff(result.scores) >= -1e-3))  # I[y_batch; θ] grows (up to MC noise)
    again = batchbald(key, lp, 12, num_configs=30)  # same key, same batch (identity under jit: test_registry)
    np.testing.assert_array_equal(result.indices, again.indices)
    np.testing.assert_array_equal(result.scores, again.scores)


def test_avoids_exact_duplicates_that_bald_takes_together(key):
    # "Repeated MNIST": every item appears three times (copies at i, i + 20, i + 40).
    base = random_log_probs(8, 20, 3, seed=13, scale=0.5, disagreement=2.0)
    lp = jnp.concatenate([base, base, base], axis=1)
    k = 6
    bald_batch = np.asarray(top_k(None, bald(lp), k))
    assert len(set(bald_batch % 20)) == 2  # top-k BALD takes all three copies of each item it picks
    batch = np.asarray(batchbald(key, lp, k, num_configs=1000).indices)  # 3^5 = 243 <= 1000: exact
    assert len(set(batch % 20)) == k  # BatchBALD: never two copies of one item
    # and the joint mutual information of its batch is far higher than that of BALD's batch
    p = np.exp(np.asarray(lp, np.float64))
    assert brute_mutual_information(p, batch) > brute_mutual_information(p, bald_batch) + 0.1
