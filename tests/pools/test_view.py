"""bal.pools.view: a pool as a lazy float32 array, and packed datasets opened for the loop."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from bal import pools
from bal.active import strategy as bstrategy
from bal.pools.view import PoolArray, open_labeled

from tests.pools.helpers import pool_array, tiny_posterior


class CountingSource(pools.ArraySource):
    """An in-memory source that records how many rows each read returns."""

    def __init__(self, array):
        super().__init__(array)
        self.reads = []

    def read_raw(self, start, stop):
        self.reads.append(int(stop) - int(start))
        return super().read_raw(start, stop)


def test_indexing_reads_rows_like_the_array():
    raw = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
    want = raw.astype(np.float32) / 255.0
    a = PoolArray(pools.ArraySource(raw))
    assert a.shape == (50, 4, 4, 1) and a.ndim == 4 and a.dtype == np.float32 and len(a) == 50
    np.testing.assert_array_equal(np.asarray(a), want)
    np.testing.assert_array_equal(a[7], want[7])
    np.testing.assert_array_equal(a[-1], want[-1])
    np.testing.assert_array_equal(a[10:20], want[10:20])
    np.testing.assert_array_equal(a[(slice(45, 60),)], want[45:60])  # predict's last chunk: past the end
    np.testing.assert_array_equal(a[::7], want[::7])
    idx = np.array([9, 3, 3, 40, -2])
    view = a[idx]
    assert isinstance(view, PoolArray) and view.shape == (5, 4, 4, 1)
    np.testing.assert_array_equal(np.asarray(view), want[idx])
    np.testing.assert_array_equal(view[1:4], want[idx][1:4])  # a view of a view
    np.testing.assert_array_equal(np.asarray(view[[4, 0]]), want[idx][[4, 0]])
    mask = np.zeros(50, bool)
    mask[[2, 30]] = True
    np.testing.assert_array_equal(np.asarray(a[mask]), want[mask])
    np.testing.assert_array_equal(a[:, 1], want[:, 1])  # several axes: read, then index
    with pytest.raises(IndexError):
        a[50]
    with pytest.raises(IndexError):
        a[np.array([0, 50])]


def test_isfinite_needs_no_read_when_the_pool_is_finite():
    counting = CountingSource(np.random.default_rng(0).integers(0, 256, (100, 4, 4, 1), dtype=np.uint8))
    a = PoolArray(counting)
    finite = np.isfinite(a[np.arange(100)])
    assert finite.shape == (100, 4, 4, 1) and finite.all() and counting.reads == []  # uint8: nothing read
    x = pool_array(30)
    x[17, 0, 0, 0] = np.nan
    b = PoolArray(pools.ArraySource(x))
    np.testing.assert_array_equal(np.isfinite(b), np.isfinite(x))  # exact when some value is not finite
    assert not np.isfinite(b).all() and np.isfinite(b[:17]).all()
    np.testing.assert_allclose(np.sqrt(b[:3]), np.sqrt(x[:3]))  # other ufuncs see the rows


def test_scoring_a_view_streams_the_pool_chunk_by_chunk():
    post, variables = tiny_posterior()
    x = pool_array(300, seed=3)
    counting = CountingSource(x)
    candidates = np.arange(5, 300, 2)
    key = jax.random.key(4)
    for name in ("bald", "coreset"):  # pointwise, and batch-aware with embeddings of the labeled set
        select = bstrategy.resolve(name)
        counting.reads.clear()
        got = select.select(post, variables, PoolArray(counting), candidates, np.arange(5), 7, key, chunk_size=32)
        want = select.select(post, variables, x, candidates, np.arange(5), 7, key, chunk_size=32)
        np.testing.assert_array_equal(got[0], want[0])
        if name == "bald":
            np.testing.assert_array_equal(got[1], want[1])
        assert counting.reads and max(counting.reads) <= 32  # never the whole candidate set at once


def test_open_labeled_reads_a_packed_dataset(tmp_path):
    from bal import data

    pools.pack_dataset("digits", tmp_path / "d", shard_size=500, format="npy")
    ds = open_labeled(tmp_path / "d")
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert ds.num_classes == 10 and ds.class_names == train.class_names
    np.testing.assert_array_equal(ds.train_y, train.labels)
    np.testing.assert_array_equal(ds.test_y, test.labels)
    np.testing.assert_array_equal(np.asarray(ds.test_x), test.images.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(ds.train_x[[3, 1000]], train.images[[3, 1000]].astype(np.float32) / 255.0)
    assert pools.open_pool(tmp_path / "d" / "test").names([4]) == ["digits/test/4"]


def test_open_labeled_names_the_missing_piece(tmp_path):
    x = (pool_array(40) * 255).astype(np.uint8)
    pools.pack(pools.ArraySource(x), tmp_path / "unlabeled", format="npy")
    with pytest.raises(ValueError, match=r"unlabeled/pool.json: the pool has no labels"):
        open_labeled(tmp_path / "unlabeled")
    labels = np.arange(40) % 10
    pools.pack(pools.ArraySource(x), tmp_path / "no_classes", labels=labels, format="npy")
    with pytest.raises(ValueError, match=r"no_classes/pool.json: no num_classes recorded"):
        open_labeled(tmp_path / "no_classes")
    pools.pack(pools.ArraySource(x), tmp_path / "no_test", labels=labels, num_classes=10, format="npy")
    with pytest.raises(ValueError, match=r"no_test/pool.json: no test split recorded"):
        open_labeled(tmp_path / "no_test")
    index = json.loads((tmp_path / "no_test" / "pool.json").read_text())
    (tmp_path / "no_test" / "pool.json").write_text(json.dumps({**index, "test": "test"}))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_labeled(tmp_path / "no_test")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        pools.pack(pools.ArraySource(x), tmp_path / "bad", labels=labels, num_classes=5, format="npy")
    with pytest.raises(ValueError, match="3 class_names for num_classes=10"):
        pools.pack(pools.ArraySource(x), tmp_path / "bad", labels=labels, num_classes=10, class_names="abc",
                   format="npy")
