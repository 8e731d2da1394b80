"""The initial pool helpers (Gal et al. 2017 class-balanced start) and Pool."""

import numpy as np
import pytest

import bal.data as bd


LABELS = np.repeat(np.arange(10), 30)[np.random.default_rng(1).permutation(300)]


def test_initial_pool_balanced_sorted_deterministic():
    pool = bd.initial_pool(LABELS, 2, 0)
    assert pool.labeled.dtype == np.int64 and pool.unlabeled.dtype == np.int64
    assert pool.num_labeled == 20 and pool.num_unlabeled == 280 and pool.num_examples == 300
    assert np.all(np.diff(pool.labeled) > 0) and np.all(np.diff(pool.unlabeled) > 0)
    assert np.array_equal(np.union1d(pool.labeled, pool.unlabeled), np.arange(300))
    assert np.bincount(LABELS[pool.labeled], minlength=10).tolist() == [2] * 10
    assert np.array_equal(bd.initial_pool(LABELS, 2, 0).labeled, pool.labeled)
    assert not np.array_equal(bd.initial_pool(LABELS, 2, 1).labeled, pool.labeled)
    assert np.array_equal(bd.initial_pool(LABELS, 2, np.random.default_rng(0)).labeled, pool.labeled)


def test_seed_forms():
    key = np.array([0, 42], np.uint32)  # a legacy raw jax key
    a = bd.initial_pool(LABELS, 1, key)
    assert np.array_equal(a.labeled, bd.initial_pool(LABELS, 1, key.copy()).labeled)
    assert np.array_equal(bd.initial_pool(LABELS, 1, np.int64(3)).labeled, bd.initial_pool(LABELS, 1, 3).labeled)
    with pytest.raises(TypeError, match="jax.random.key_data"):
        bd.initial_pool(LABELS, 1, "seed")
    with pytest.raises(TypeError):
        bd.initial_pool(LABELS, 1, True)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        bd.initial_pool(LABELS, 1, -1)


def test_initial_pool_with_num_classes():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert bd.initial_pool(labels, 1, 0, num_classes=3).num_labeled == 3
    with pytest.raises(ValueError, match="class 3: 0"):
        bd.initial_pool(labels, 1, 0, num_classes=4)


@pytest.mark.parametrize(
    "labels, k, c, fragment",
    [
        (np.array([0, 0, 1, 1, 1, 1, 1]), 3, None, "class 0: 2"),
        (np.array([0, 1, 2]), 2, None, "2 \\* 3 = 6 exceeds the 3 examples"),
        (np.array([0, 1, 5]), 1, 3, "found label 5"),
        (np.array([0, -1, 1]), 1, None, "labels must be >= 0"),
        (np.array([0.0, 1.0]), 1, None, "1-D integer array"),
        (np.array([[0, 1]]), 1, None, "1-D integer array"),
        (np.array([0, 1]), 0, None, "num_per_class must be >= 1"),
        (np.array([], np.int64), 1, None, "empty"),
    ],
)
def test_initial_pool_errors(labels, k, c, fragment):
    with pytest.raises(ValueError, match=fragment):
        bd.initial_pool(labels, k, 0, num_classes=c)


def test_random_pool():
    p = bd.random_pool(100, 15, 7)
    assert p.num_labeled == 15 and p.num_unlabeled == 85 and p.labeled.dtype == np.int64
    assert np.all(np.diff(p.labeled) > 0)
    assert np.array_equal(bd.random_pool(100, 15, 7).labeled, p.labeled)
    assert bd.random_pool(5, 0, 0).num_labeled == 0
    with pytest.raises(ValueError, match="size must lie in \\[0, 100\\]"):
        bd.random_pool(100, 101, 0)


def test_pool_acquire_and_validation():
    p = bd.random_pool(10, 3, 0)
    target = p.unlabeled[:2]
    q = p.acquire(target[::-1])
    assert q.num_labeled == 5 and set(target) <= set(q.labeled.tolist())
    assert not np.intersect1d(q.labeled, q.unlabeled).size
    with pytest.raises(ValueError, match="not in the unlabeled pool"):
        q.acquire([int(q.labeled[0])])
    with pytest.raises(ValueError, match="repeated"):
        q.acquire([int(q.unlabeled[0])] * 2)
    with pytest.raises(ValueError, match="must lie in \\[0, 10\\)"):
        q.acquire([10])
    with pytest.raises(ValueError, match="both labeled and unlabeled"):
        bd.Pool(np.array([1, 2]), np.array([2, 3]), 5)
    with pytest.raises(ValueError, match="sorted and unique"):
        bd.Pool(np.array([2, 1]), np.array([3]), 5)
    with pytest.raises(ValueError):
        p.labeled[0] = 5  # read-only
