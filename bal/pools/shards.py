"""Packed pools on disk: ``pool.json`` plus ``.npy`` shards (memory-mapped) or ArrayRecord shards (through Grain).

See :mod:`bal.pools.pack` for the layout and :mod:`bal.pools.sources` for the
interface. :class:`NpyShards` copies rows out of the mapping and hands the
pages read back to the kernel (``madvise(MADV_DONTNEED)``), so a pass over a
pool of any size keeps the process's resident memory flat (the file stays in
the kernel's page cache, not in this process). :class:`ArrayRecordShards`
reads one record per row through Grain's ``ArrayRecordDataSource``:
deterministic and index-addressable, so a scoring job resumes at any row.
Every inconsistency (missing or corrupt index, missing shard, a shard whose
size, dtype or shape differs from the index) is a one-line error naming the file.
"""

from __future__ import annotations

import abc
import importlib
import json
import mmap
import os
import pathlib
from collections import OrderedDict

import numpy as np

from bal.pools.sources import FORMAT, INDEX_FILE, PoolSource, _check_range, as_float32

__all__ = ["read_index", "NpyShards", "ArrayRecordShards", "array_record_available"]

# bytes released below a read: a page fault maps the cached pages around it (fault-around, 64 KB) or of
# its whole large folio (up to 2 MB), including pages below the rows read that an earlier read released
_FAULT_AROUND = 1 << 22


def read_index(folder) -> tuple[pathlib.Path, dict]:
    """``(path, index)`` of a packed pool's ``pool.json``, checked; one-line errors naming the file."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"pool folder {folder} does not exist")
    path = folder / INDEX_FILE if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a packed pool (write one with bal pool pack)")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupt pool index (not JSON: {e})") from None
    problems = []
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        problems.append(f"format is not {FORMAT!r}")
    else:
        shards = index.get("shards")
        if not isinstance(shards, list) or not shards:
            problems.append("no shards listed")
        elif not all(isinstance(s, dict) and isinstance(s.get("size"), int) and s["size"] >= 1 for s in shards):
            problems.append("every shard needs an integer size >= 1")
        try:
            np.dtype(index.get("dtype"))
        except TypeError:
            problems.append(f"unknown dtype {index.get('dtype')!r}")
        shape = index.get("item_shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 1 for d in shape):
            problems.append(f"bad item_shape {shape!r}")
        if not problems and index.get("num_items") != sum(s["size"] for s in shards):
            problems.append(f"num_items {index.get('num_items')} is not the sum of the shard sizes")
    if problems:
        raise ValueError(f"{path}: corrupt pool index ({'; '.join(problems)})")
    return path, index


class _Sharded(PoolSource):
    """Shared by the shard readers: shard boundaries, names, reading across shards."""

    storage = ""

    def __init__(self, folder):
        self.index_path, self.index = read_index(folder)
        self.folder = self.index_path.parent
        self.dtype = np.dtype(self.index["dtype"])
        self.item_shape = tuple(self.index["item_shape"])
        self.sizes = np.array([s["size"] for s in self.index["shards"]], np.int64)
        self.bounds = np.concatenate([[0], np.cumsum(self.sizes)])
        self._name_cache: tuple[int, list[str]] | None = None
        self.row_bytes = int(self.dtype.itemsize * int(np.prod(self.item_shape, dtype=np.int64)))

    def __len__(self):
        return int(self.bounds[-1])

    def _file(self, shard: int) -> pathlib.Path:
        entry = self.index["shards"][shard]
        name = entry.get(self.storage)
        if not isinstance(name, str):
            raise ValueError(f"{self.index_path}: shard {shard} has no {self.storage!r} file")
        return self.folder / name

    @abc.abstractmethod
    def _read_shard(self, shard: int, a: int, b: int) -> np.ndarray:
        """Rows ``[a, b)`` of shard ``shard`` (NpyShards: memmap; ArrayRecordShards: Grain)."""

    def read_raw(self, start, stop):
        start, stop = _check_range(start, stop, len(self))
        out = np.empty((stop - start,) + self.item_shape, self.dtype)
        pos = start
        while pos < stop:
            shard = int(np.searchsorted(self.bounds, pos, side="right") - 1)
            end = min(stop, int(self.bounds[shard + 1]))
            base = int(self.bounds[shard])
            out[pos - start:end - start] = self._read_shard(shard, pos - base, end - base)
            pos = end
        return out

    def _name(self, position):
        shard = int(np.searchsorted(self.bounds, position, side="right") - 1)
        names_file = self.index["shards"][shard].get("names")
        if names_file is None:
            return f"{self.index.get('name_prefix', '')}{position}"
        if self._name_cache is None or self._name_cache[0] != shard:
            path = self.folder / names_file
            try:
                lines = path.read_text(encoding="utf-8").split("\n")
            except FileNotFoundError:
                raise FileNotFoundError(f"names file {path} (listed in {self.index_path}) not found") from None
            lines = lines[:-1] if lines and lines[-1] == "" else lines
            if len(lines) != self.sizes[shard]:
                raise ValueError(f"{path}: {len(lines)} names for a shard of {self.sizes[shard]} rows "
                                 f"(per {self.index_path})")
            self._name_cache = (shard, lines)
        return self._name_cache[1][position - int(self.bounds[shard])]

    def labels(self) -> np.ndarray | None:
        """``int32 [N]`` labels packed with the pool (``labels.npy``), or None."""
        name = self.index.get("labels")
        if name is None:
            return None
        path = self.folder / name
        try:
            labels = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"labels file {path} (listed in {self.index_path}) not found") from None
        except (ValueError, OSError, EOFError) as err:  # empty, truncated, pickled or not .npy at all
            raise ValueError(f"{path} is corrupt: {str(err).splitlines()[0] or type(err).__name__}") from None
        if labels.ndim != 1 or labels.shape[0] != len(self):
            raise ValueError(f"{path} holds labels of shape {list(labels.shape)}; the pool has {len(self)} rows")
        return labels


class NpyShards(_Sharded):
    """A packed pool's ``.npy`` shards, memory-mapped (see the module docstring).

    Args:
      folder: the folder holding ``pool.json`` (or the index file itself).
      max_open: shards kept mapped at once (least recently used are unmapped).
      release: hand read pages back to the kernel (flat resident memory).
    """

    storage = "npy"

    def __init__(self, folder, *, max_open: int = 32, release: bool = True):
        super().__init__(folder)
        self.max_open, self.release = int(max_open), bool(release)
        self._open: OrderedDict[int, tuple] = OrderedDict()
        for shard in range(len(self.sizes)):  # fail now, naming the file, not mid-way through a job
            self._check_header(shard)

    def _header(self, path):
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                reader = {(1, 0): np.lib.format.read_array_header_1_0,
                          (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if reader is None:
                    raise ValueError(f"unsupported .npy version {version}")
                shape, fortran, dtype = reader(f)
                return shape, fortran, dtype, f.tell()
        except FileNotFoundError:
            raise FileNotFoundError(f"shard {path} (listed in {self.index_path}) not found") from None
        except ValueError as e:
            raise ValueError(f"{path}: not a readable .npy shard ({e})") from None

    def _check_header(self, shard):
        path = self._file(shard)
        shape, fortran, dtype, offset = self._header(path)
        size = int(self.sizes[shard])
        if tuple(shape[1:]) != self.item_shape or dtype != self.dtype or fortran:
            raise ValueError(f"{path}: holds {dtype} {tuple(shape)}, but {self.index_path} says "
                             f"{self.dtype} items of {self.item_shape}")
        if shape[0] != size:
            raise ValueError(f"{path}: shard size mismatch: the file holds {shape[0]} rows, "
                             f"{self.index_path} says {size}")
        if os.path.getsize(path) < offset + size * self.row_bytes:
            raise ValueError(f"{path}: truncated: {os.path.getsize(path)} bytes for {size} rows")
        return offset

    def _mapping(self, shard):
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        path = self._file(shard)
        offset = self._check_header(shard)
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        rows = np.frombuffer(mm, self.dtype, count=int(self.sizes[shard]) * int(np.prod(self.item_shape)),
                             offset=offset).reshape((-1,) + self.item_shape)
        self._open[shard] = (mm, rows, offset)
        while len(self._open) > self.max_open:
            _, (old_mm, old_rows, _) = self._open.popitem(last=False)
            del old_rows
            try:
                old_mm.close()
            except BufferError:  # a view is still alive somewhere; the mapping goes with it
                pass
        return self._open[shard]

    def _read_shard(self, shard, a, b):
        mm, rows, offset = self._mapping(shard)
        out = np.array(rows[a:b])
        if self.release and hasattr(mm, "madvise"):
            page = mmap.PAGESIZE
            # release a margin below the rows read as well (see _FAULT_AROUND)
            lo = max(0, offset + a * self.row_bytes - _FAULT_AROUND) // page * page
            hi = min(len(mm), -(-(offset + b * self.row_bytes) // page) * page)
            if hi > lo:
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        return out

    def close(self) -> None:
        """Unmap every shard."""
        while self._open:
            _, (mm, rows, _) = self._open.popitem()
            del rows
            try:
                mm.close()
            except BufferError:
                pass


def array_record_available() -> bool:
    """Whether Grain and ArrayRecord import (the ``pools`` extra)."""
    try:
        importlib.import_module("grain")
        importlib.import_module("array_record.python.array_record_module")
    except ImportError:
        return False
    return True


def _grain():
    try:
        import grain
    except ImportError as e:
        raise ImportError("ArrayRecord pools need Grain and ArrayRecord: pip install 'bal[pools]' "
                          "(grain, array-record)") from e
    return grain


class ArrayRecordShards(_Sharded):
    """A packed pool's ArrayRecord shards, read through Grain's ``ArrayRecordDataSource``.

    Random access by row, deterministic, so scoring resumes at any row. One
    record holds one row's bytes (C order, the index's dtype and item shape).
    An open ArrayRecord reader holds its shard's record index (about 90 bytes
    per row with one record per chunk), so at most ``max_open`` shards are open
    at once (one Grain data source each, least recently used closed): memory
    stays flat however many shards a pass reads. :meth:`dataset` gives all
    rows as a ``grain.MapDataset`` for Grain pipelines (shuffling, sharding,
    checkpointable iterators).
    """

    storage = "array_record"

    def __init__(self, folder, *, max_open: int = 2):
        super().__init__(folder)
        _grain()
        from array_record.python.array_record_module import ArrayRecordReader

        self.paths = []
        for shard in range(len(self.sizes)):
            path = self._file(shard)
            if not path.is_file():
                raise FileNotFoundError(f"shard {path} (listed in {self.index_path}) not found")
            try:
                reader = ArrayRecordReader(str(path))
                count = reader.num_records()
                reader.close()
            except Exception as e:  # array_record raises RuntimeError / ValueError on a bad file
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ValueError(f"{path}: not a readable ArrayRecord shard ({reason})") from None
            if count != self.sizes[shard]:
                raise ValueError(f"{path}: shard size mismatch: the file holds {count} records, "
                                 f"{self.index_path} says {int(self.sizes[shard])}")
            self.paths.append(str(path))
        self.max_open = max(1, int(max_open))
        self._open: OrderedDict[int, object] = OrderedDict()

    def _source(self, shard: int):
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        self._open[shard] = _grain().sources.ArrayRecordDataSource([self.paths[shard]])
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.__exit__(None, None, None)  # closes its reader
        return self._open[shard]

    def _read_shard(self, shard, a, b):
        records = self._source(shard).__getitems__(list(range(a, b)))
        data = b"".join(records)
        if len(data) != (b - a) * self.row_bytes:
            raise ValueError(f"{self.paths[shard]}: records [{a}, {b}) hold {len(data)} bytes, "
                             f"expected {(b - a) * self.row_bytes} ({self.row_bytes} per row)")
        return np.frombuffer(data, self.dtype).reshape((b - a,) + self.item_shape)

    def close(self) -> None:
        """Close every open reader."""
        while self._open:
            _, old = self._open.popitem()
            old.__exit__(None, None, None)

    def dataset(self):
        """All rows as a ``grain.MapDataset`` of ``float32`` items."""
        grain = _grain()
        dtype, shape = self.dtype, self.item_shape
        return grain.MapDataset.source(grain.sources.ArrayRecordDataSource(self.paths)).map(
            lambda record: as_float32(np.frombuffer(record, dtype).reshape(shape)))
