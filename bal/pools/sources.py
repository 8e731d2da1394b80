"""Pool sources: one interface over pools held in memory, in files, or as images.

Every source is a sequence of items of one shape, addressed by position::

    len(source)                      # N
    source.item_shape                # e.g. (28, 28, 1)
    source.read(start, stop)         # float32 [stop - start, *item_shape], the model's inputs
    source.read_raw(start, stop)     # the stored dtype (uint8 pixels stay uint8; for packing)
    source.indices(start, stop)      # int64 global index of each row (ties and results use it)
    source.names(indices)            # a stable name per row (file path, "mnist/train/17", ...)
    source.take(positions)           # float32 rows at arbitrary positions (candidates)

``read`` turns ``uint8`` into ``float32 / 255`` (what the active-learning
tasks feed the models) and any other dtype into ``float32`` as is.

Sources:

- :class:`ArraySource` — an array in memory (or any ``np.memmap``).
- :class:`~bal.pools.shards.NpyShards` — a folder of ``.npy`` shards plus
  ``pool.json`` (written by :mod:`bal.pools.pack`), memory-mapped. Rows are
  copied out of the mapping and the pages read are handed back
  (``madvise(MADV_DONTNEED)``), so a pass over a pool of any size keeps the
  process's resident memory flat (the file stays in the kernel's page cache,
  not in this process).
- :class:`~bal.pools.shards.ArrayRecordShards` — the same pool as ArrayRecord
  shards (one record per row), read through Grain's ``ArrayRecordDataSource``:
  deterministic and index-addressable (so a scoring job resumes at any row);
  needs the ``pools`` extra (``pip install 'bal[pools]'``).
- :class:`~bal.pools.images.ImageFolder` — PNG / JPEG files under a folder
  (sorted relative paths are the names), decoded by a pool of worker threads, in order.
- :class:`Subset` — some rows of another source (e.g. the unlabelled ones),
  keeping the parent's global indices.

:func:`open_pool` opens a folder: shards when it holds ``pool.json``, else images.
"""

from __future__ import annotations

import abc
import pathlib
from typing import Sequence

import numpy as np

__all__ = ["PoolSource", "ArraySource", "Subset", "open_pool", "as_float32", "INDEX_FILE", "IMAGE_SUFFIXES"]

INDEX_FILE = "pool.json"
FORMAT = "bal.pool"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def as_float32(raw: np.ndarray) -> np.ndarray:
    """Model inputs from stored rows: ``uint8 -> float32 / 255``, anything else ``-> float32``."""
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / np.float32(255.0)
    return np.asarray(raw, np.float32)


def _check_range(start, stop, n: int) -> tuple[int, int]:
    start, stop = int(start), int(stop)
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows [{start}, {stop}) are outside the pool of {n} items")
    return start, stop


class PoolSource(abc.ABC):
    """The interface (and shared behaviour) of every pool source.

    Subclasses set ``item_shape`` and ``dtype`` and define ``__len__``,
    ``read_raw`` and ``_name``.
    """

    item_shape: tuple
    dtype: np.dtype

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of items in the pool."""

    @abc.abstractmethod
    def read_raw(self, start: int, stop: int) -> np.ndarray:
        """Items ``[start, stop)`` in their stored dtype ``[stop - start, *item_shape]``."""

    def _name(self, position: int) -> str:
        return str(position)

    def read(self, start: int, stop: int) -> np.ndarray:
        """``float32 [stop - start, *item_shape]`` model inputs of rows ``start .. stop - 1``."""
        return as_float32(self.read_raw(start, stop))

    def indices(self, start: int, stop: int) -> np.ndarray:
        """``int64 [stop - start]`` global pool index of each row (its position, unless a :class:`Subset`)."""
        start, stop = _check_range(start, stop, len(self))
        return np.arange(start, stop, dtype=np.int64)

    def positions(self, indices) -> np.ndarray:
        """The rows (positions) of global ``indices`` (the inverse of :meth:`indices`)."""
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)})")
        return idx

    def names(self, indices) -> list[str]:
        """A stable name for each global index in ``indices``."""
        return [self._name(int(p)) for p in self.positions(indices)]

    def take(self, positions) -> np.ndarray:
        """``float32 [m, *item_shape]`` rows at ``positions`` (any order), read run by run."""
        pos = np.asarray(positions, np.int64)
        out = np.empty((pos.size,) + tuple(self.item_shape), np.float32)
        if pos.size == 0:
            return out
        order = np.argsort(pos, kind="stable")
        sorted_pos = pos[order]
        breaks = np.flatnonzero(np.diff(sorted_pos) != 1) + 1
        for run in np.split(np.arange(pos.size), breaks):
            a, b = int(sorted_pos[run[0]]), int(sorted_pos[run[-1]]) + 1
            rows = self.read(a, b)
            out[order[run]] = rows[sorted_pos[run] - a]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} items of {tuple(self.item_shape)} {np.dtype(self.dtype).name})"


class ArraySource(PoolSource):
    """A pool held as an array ``[N, ...]`` (numpy or ``np.memmap``).

    Args:
      array: the items.
      names: optional ``N`` names, or a string prefix (name = prefix + position).
    """

    def __init__(self, array, names: Sequence[str] | str | None = None):
        a = np.asarray(array) if not isinstance(array, np.ndarray) else array
        if a.ndim < 1 or a.shape[0] == 0:
            raise ValueError(f"a pool array must have shape [N, ...] with N >= 1; got {a.shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"a pool array must hold numbers; got dtype {a.dtype}")
        if names is not None and not isinstance(names, str) and len(names) != a.shape[0]:
            raise ValueError(f"{len(names)} names for {a.shape[0]} items")
        self.array, self._names = a, names
        self.item_shape, self.dtype = tuple(a.shape[1:]), a.dtype

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read_raw(self, start, stop):
        start, stop = _check_range(start, stop, len(self))
        return np.array(self.array[start:stop])

    def _name(self, position):
        if isinstance(self._names, str):
            return f"{self._names}{position}"
        return str(position) if self._names is None else str(self._names[position])


class Subset(PoolSource):
    """Rows ``positions`` (sorted, unique) of ``parent``; global indices and names stay the parent's.

    E.g. the unlabelled part of a pool: scoring it returns indices into the
    whole pool. A subset of a subset is flattened onto the first parent.
    """

    def __init__(self, parent: PoolSource, positions):
        pos = np.asarray(positions, np.int64)
        if pos.ndim != 1 or pos.size == 0:
            raise ValueError("a subset needs a non-empty 1-D array of positions")
        if np.any(np.diff(pos) <= 0) or pos[0] < 0 or pos[-1] >= len(parent):
            raise ValueError(f"subset positions must be sorted, unique and in [0, {len(parent)})")
        if isinstance(parent, Subset):
            parent, pos = parent.parent, parent.rows[pos]
        self.parent, self.rows = parent, pos
        self.item_shape, self.dtype = parent.item_shape, parent.dtype

    def __len__(self):
        return int(self.rows.size)

    def read_raw(self, start, stop):
        start, stop = _check_range(start, stop, len(self))
        rows = self.rows[start:stop]
        if rows.size == 0:
            return np.zeros((0,) + self.item_shape, self.dtype)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        parts = [self.parent.read_raw(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, breaks)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def indices(self, start, stop):
        start, stop = _check_range(start, stop, len(self))
        return self.rows[start:stop].copy()

    def positions(self, indices):
        idx = np.asarray(indices, np.int64)
        pos = np.searchsorted(self.rows, idx)
        inside = np.minimum(pos, self.rows.size - 1)
        if idx.size and (np.any(pos >= self.rows.size) or np.any(self.rows[inside] != idx)):
            raise ValueError("indices are not in this subset")
        return pos

    def names(self, indices):
        self.positions(indices)  # checks membership
        return self.parent.names(np.asarray(indices, np.int64))


def open_pool(path, *, storage: str = "auto", **image_options) -> PoolSource:
    """A source for ``path``: a packed pool folder (``pool.json``) or a folder of images.

    Args:
      storage: for packed pools, ``"npy"``, ``"array_record"`` or ``"auto"``
        (``.npy`` shards when listed, else ArrayRecord).
      **image_options: :class:`~bal.pools.images.ImageFolder` options (``size``, ``mode``, ``workers``).
    """
    from bal.pools.images import ImageFolder
    from bal.pools.shards import ArrayRecordShards, NpyShards, read_index

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pool {path} does not exist")
    if path.is_file() or (path / INDEX_FILE).is_file():
        index_path, index = read_index(path)
        shards = index["shards"]
        if storage == "auto":
            storage = "npy" if all("npy" in s for s in shards) else "array_record"
        if storage == "npy":
            return NpyShards(index_path)
        if storage == "array_record":
            return ArrayRecordShards(index_path)
        raise ValueError(f"storage must be 'auto', 'npy' or 'array_record'; got {storage!r}")
    return ImageFolder(path, **image_options)
