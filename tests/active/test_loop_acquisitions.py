"""The loop acquires what its strategy says: recomputed independently from the trained model.

Each test runs one cycle of the classification task through the kernel, then
recomputes the strategy's choice from the cycle's own model and keys with
numpy/scipy (scores) or a direct greedy (k-center), and compares the sets.
"""

import jax
import numpy as np
import pytest
from scipy.stats import entropy

from bal.active import kernel
from bal.active.config import ExperimentConfig
from bal.active.tasks.classification import ClassificationTask, load_problem
from bal.predict import predict

BASE = dict(dataset="digits", model="mlp", posterior="mc_dropout", num_samples=6, seeds=(3,), cycles=1,
            epochs=5, initial_labels=20, acquisition_size=7, pool_subset=150, quiet=True)


@pytest.fixture(scope="module")
def problem():
    return load_problem(ExperimentConfig(**BASE))


def one_cycle(problem, **settings):
    config = ExperimentConfig(**{**BASE, **settings})
    task = ClassificationTask(config, problem=problem)
    state = kernel.init(task, 3)
    new, info = kernel.step(task, config.all_strategies[0], state)
    # the cycle's model and keys, as the kernel derived them
    init_key, fit_key, eval_key, acq_key = jax.random.split(kernel.cycle_key(3, 0), 4)
    variables, _ = task.train_and_evaluate((init_key, fit_key, eval_key), state.labels, None, seed=3, cycle=0)
    rng = np.random.default_rng([3, 0])
    candidates = np.sort(rng.choice(state.labels.pool.unlabeled, config.pool_subset, replace=False))
    return task, state, new, info, variables, candidates, acq_key


def test_top_k_entropy_within_the_pool_subset(problem):
    task, state, new, info, variables, candidates, acq_key = one_cycle(problem, strategies=("entropy",))
    predict_key, _ = jax.random.split(acq_key)
    log_probs = predict(task.posterior, variables, problem.train_x[candidates], predict_key)  # [S, P, C]
    mean = np.exp(np.asarray(log_probs, np.float64)).mean(axis=0)
    scores = entropy(mean, axis=1)
    expected = candidates[np.argsort(-scores)[:7]]
    assert set(info.acquired.tolist()) == set(expected.tolist())
    assert set(info.acquired.tolist()) <= set(candidates.tolist())
    assert new.labels.pool.num_labeled == 27 and not set(info.acquired) & set(state.labels.pool.labeled)
    np.testing.assert_array_equal(new.labels.y[info.acquired], problem.train_y[info.acquired])


def test_bottom_k_when_least_informative(problem):
    task, _, _, info, variables, candidates, acq_key = one_cycle(
        problem, strategies=("bald",), most_informative=False, include_random=False)
    predict_key, _ = jax.random.split(acq_key)
    lp = np.asarray(predict(task.posterior, variables, problem.train_x[candidates], predict_key), np.float64)
    p = np.exp(lp)
    bald = entropy(p.mean(axis=0), axis=1) - entropy(p, axis=2).mean(axis=0)
    expected = candidates[np.argsort(bald)[:7]]
    assert set(info.acquired.tolist()) == set(expected.tolist())


def test_batchbald_starts_with_the_bald_maximiser(problem):
    # BatchBALD's first pick maximises the joint mutual information of one item: BALD
    task, _, _, info, variables, candidates, acq_key = one_cycle(problem, strategies=("batchbald",))
    predict_key, _ = jax.random.split(acq_key)
    lp = np.asarray(predict(task.posterior, variables, problem.train_x[candidates], predict_key), np.float64)
    p = np.exp(lp)
    bald = entropy(p.mean(axis=0), axis=1) - entropy(p, axis=2).mean(axis=0)
    assert info.acquired[0] == candidates[np.argmax(bald)]
    assert len(set(info.acquired.tolist())) == 7 and set(info.acquired.tolist()) <= set(candidates.tolist())


def test_coreset_is_the_greedy_k_center_of_the_embeddings(problem):
    task, state, _, info, variables, candidates, acq_key = one_cycle(problem, strategies=("coreset",))
    predict_key, _ = jax.random.split(acq_key)
    _, pool_emb = predict(task.posterior, variables, problem.train_x[candidates], predict_key,
                          with_embeddings=True)
    labeled = state.labels.pool.labeled
    _, lab_emb = predict(task.posterior, variables, problem.train_x[labeled], predict_key, with_embeddings=True)
    pool_emb, lab_emb = np.asarray(pool_emb).mean(0), np.asarray(lab_emb).mean(0)
    # Sener & Savarese's greedy: repeatedly take the point farthest from every center
    d = ((pool_emb[:, None, :] - lab_emb[None]) ** 2).sum(-1).min(axis=1)
    chosen = []
    for _ in range(7):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, ((pool_emb - pool_emb[i]) ** 2).sum(-1))
    assert set(info.acquired.tolist()) == set(candidates[chosen].tolist())


def test_repeated_pool_subset_keeps_the_copies_of_an_image_together():
    """Repeated MNIST: the scored subset holds whole images (every unlabeled copy), so the copies
    that make top-k BALD redundant meet there; a uniform draw would almost never pair them."""
    config = ExperimentConfig(**{**BASE, "repeat": 3, "pool_subset": 200, "acquisition_size": 10})
    task = ClassificationTask(config)
    labels = kernel.init(task, 3).labels
    n = labels.pool.num_examples // 3
    assert np.array_equal(task.problem.train_y[:n], task.problem.train_y[n:2 * n])  # copy c of i is i + c * n
    for cycle in range(3):
        subset = task._candidates(labels, 3, cycle)
        assert subset.size == 200 and np.unique(subset).size == 200 and np.isin(subset, labels.pool.unlabeled).all()
        images, counts = np.unique(subset % n, return_counts=True)
        unlabeled = np.isin(images[:, None] + n * np.arange(3), labels.pool.unlabeled).sum(axis=1)
        # every image drawn comes with all its unlabeled copies, but the last one, cut at 200
        assert (counts == unlabeled).sum() >= images.size - 1
    assert not np.array_equal(task._candidates(labels, 3, 0), task._candidates(labels, 3, 1))
    assert np.array_equal(task._candidates(labels, 3, 0), task._candidates(labels, 3, 0))  # a function of (seed, cycle)
