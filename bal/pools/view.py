"""A pool source seen as a read-only array, and a packed dataset opened for the active-learning loop.

:class:`PoolArray` lets code written for ``float32 [N, ...]`` arrays — the loop,
:func:`bal.predict.predict`, the strategies — run on a pool in shards
without loading it: fancy indexing (the loop's ``train_x[candidates]``) gives
another lazy view, and slicing (what ``predict`` does chunk by chunk) reads
just those rows, so scoring the pool streams it from the shards. Converting a
view with ``np.asarray`` reads its rows (the labeled set ``fit`` trains on).

:func:`open_labeled` opens a folder written by ``bal pool pack DATASET OUT``
(:func:`bal.pools.pack.pack_dataset`: labels, classes and the test split in
``OUT/test``) as the arrays of a classification problem; the loop uses it for
``dataset = "pool:OUT"``.
"""

from __future__ import annotations

import dataclasses
import numbers
import pathlib

import numpy as np

from bal.pools.sources import PoolSource

__all__ = ["PoolArray", "LabeledPool", "open_labeled", "POOL_PREFIX"]

#: the prefix of a ``dataset`` setting that names a packed pool folder
POOL_PREFIX = "pool:"

_CHUNK = 4096  # rows read at once by a pass over a view


class PoolArray:
    """A read-only ``float32 [n, *item_shape]`` view of rows of a :class:`~bal.pools.sources.PoolSource`.

    Indexing:

    - ``a[i]`` (an integer): row ``i``, ``float32 [*item_shape]``, read now;
    - ``a[start:stop:step]``: those rows, ``float32``, read now;
    - ``a[indices]`` (an integer array or list, or a boolean mask): a lazy
      :class:`PoolArray` of those rows, in that order (nothing read);
    - anything else (tuples of several axes, ``...``): read every row, then index.

    ``np.asarray(a)`` reads every row (``source.read`` / ``source.take``:
    ``uint8`` pixels become ``float32 / 255``). ``np.isfinite(a)`` is answered
    without reading when the stored dtype is an integer one (and after one
    streamed pass otherwise) as long as every value is finite; every other
    numpy function sees the rows read.

    Args:
      source: the pool.
      rows: ``int [n]`` positions in ``source`` (default: every row, in order).
    """

    def __init__(self, source: PoolSource, rows=None, *, _finite: dict | None = None):
        self.source = source
        self.rows = None if rows is None else np.asarray(rows, np.int64)
        if self.rows is not None and self.rows.ndim != 1:
            raise ValueError(f"rows must be a 1-D array of positions; got shape {self.rows.shape}")
        n = len(source) if self.rows is None else self.rows.size
        self.shape = (n,) + tuple(source.item_shape)
        self.dtype = np.dtype(np.float32)
        self._finite = {} if _finite is None else _finite  # shared by the views of one source

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"PoolArray({self.shape}, float32, of {self.source!r})"

    def _positions(self) -> np.ndarray:
        return np.arange(len(self.source), dtype=np.int64) if self.rows is None else self.rows

    def _row(self, i) -> int:
        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for a pool of {n} items")
        return i % n

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            p = self._row(key) if self.rows is None else int(self.rows[self._row(key)])
            return self.source.read(p, p + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if self.rows is None and step == 1:
                return self.source.read(start, max(start, stop))
            return self.source.take(self._positions()[key])
        if isinstance(key, (list, np.ndarray)):
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (len(self),):
                    raise IndexError(f"a boolean mask of shape {idx.shape} for a pool of {len(self)} items")
                idx = np.flatnonzero(idx)
            elif idx.size == 0:
                idx = idx.astype(np.int64)
            if idx.ndim == 1 and np.issubdtype(idx.dtype, np.integer):
                n = len(self)
                if idx.size and (idx.min() < -n or idx.max() >= n):
                    raise IndexError(f"indices out of bounds for a pool of {n} items")
                idx = idx % n if n else idx
                rows = idx if self.rows is None else self.rows[idx]
                return PoolArray(self.source, rows, _finite=self._finite)
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        rows = self.source.read(0, len(self.source)) if self.rows is None else self.source.take(self.rows)
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def all_finite(self) -> bool:
        """Whether every value is finite, streamed ``_CHUNK`` rows at a time (integer storage: always)."""
        if np.issubdtype(np.dtype(self.source.dtype), np.integer) or self._finite.get("all"):
            return True
        positions = self._positions()
        ok = all(np.isfinite(self.source.take(positions[a:a + _CHUNK])).all()
                 for a in range(0, positions.size, _CHUNK))
        if self.rows is None:
            self._finite["all"] = ok
        return ok

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.isfinite and method == "__call__" and inputs == (self,) and not kwargs and self.all_finite():
            return np.broadcast_to(np.True_, self.shape)  # exact, and no memory
        args = [np.asarray(a) if isinstance(a, PoolArray) else a for a in inputs]
        return getattr(ufunc, method)(*args, **kwargs)


@dataclasses.dataclass(frozen=True)
class LabeledPool:
    """A packed dataset for the loop: pool and test inputs as :class:`PoolArray` views, labels in memory.

    Attributes:
      train_x: ``float32 [N, *item_shape]`` (lazy); train_y: ``int32 [N]``.
      test_x: ``float32 [T, *item_shape]`` (lazy); test_y: ``int32 [T]``.
      num_classes: ``C``; class_names: ``C`` names.
    """

    train_x: PoolArray
    train_y: np.ndarray
    test_x: PoolArray
    test_y: np.ndarray
    num_classes: int
    class_names: tuple


def _labeled_split(folder: pathlib.Path, what: str):
    from bal.pools.sources import open_pool

    source = open_pool(folder)
    index_path = getattr(source, "index_path", folder)
    labels = source.labels() if hasattr(source, "labels") else None
    if labels is None:
        raise ValueError(f"{index_path}: the {what} has no labels (pack a labeled dataset: bal pool pack mnist OUT)")
    if labels.shape != (len(source),):
        raise ValueError(f"{index_path}: {labels.shape[0]} labels for {len(source)} items")
    return source, labels.astype(np.int32)


def open_labeled(path) -> LabeledPool:
    """Open a packed dataset (``bal pool pack mnist OUT``) for classification; one-line errors name the file.

    The folder's ``pool.json`` must list labels, ``num_classes`` and a test
    split (``"test"``: a packed pool with labels), as
    :func:`bal.pools.pack.pack_dataset` writes them.
    """
    folder = pathlib.Path(path)
    train, train_y = _labeled_split(folder, "pool")
    index_path, index = train.index_path, train.index
    num_classes = index.get("num_classes")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{index_path}: no num_classes recorded (repack it with bal pool pack DATASET OUT)")
    if index.get("test") is None:
        raise ValueError(f"{index_path}: no test split recorded (repack it with bal pool pack DATASET OUT, "
                         "which packs the test split into OUT/test)")
    test, test_y = _labeled_split(index_path.parent / index["test"], "test split")
    if tuple(test.item_shape) != tuple(train.item_shape):
        raise ValueError(f"{test.index_path}: test items of shape {tuple(test.item_shape)}, but the pool's are "
                         f"{tuple(train.item_shape)}")
    for name, labels in (("pool", train_y), ("test split", test_y)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{index_path}: {name} labels outside [0, {num_classes})")
    names = tuple(index.get("class_names") or (str(c) for c in range(num_classes)))
    return LabeledPool(PoolArray(train), train_y, PoolArray(test), test_y, num_classes, names)
