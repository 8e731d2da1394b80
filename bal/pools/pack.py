"""Writing a pool as shards: ``.npy`` files (and ArrayRecord files) plus a small JSON index.

A packed pool is a folder::

    pool.json                  the index (written last, atomically)
    shard-00000.npy            rows [0, 65536) as one .npy array [n, *item_shape] (stored dtype)
    shard-00000.array_record   the same rows, one record per row (with --format array_record|both)
    shard-00000.names.txt      one name per row (image folders: the relative file paths)
    labels.npy                 int32 [N] labels (datasets only)
    test/                      datasets: the test split, itself a packed pool with labels

``pool.json``::

    {"format": "bal.pool", "version": 1, "num_items": N, "dtype": "uint8",
     "item_shape": [28, 28, 1], "name_prefix": "mnist/train/", "source": "...",
     "shards": [{"size": 65536, "npy": "shard-00000.npy", "array_record": "...", "names": "..."}, ...],
     "labels": "labels.npy", "num_classes": 10, "class_names": ["0", ...], "test": "test"}

A dataset packed with its labels, classes and test split is what the
active-learning loop reads as ``dataset = "pool:PATH"``
(:func:`bal.pools.view.open_labeled`).

Rows are streamed from the source ``chunk`` rows at a time and written with
plain file writes, so packing a pool of any size keeps memory flat. Pixels stay
``uint8`` on disk (readers turn them into ``float32 / 255``).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np

from bal.pools.images import ImageFolder
from bal.pools.shards import array_record_available
from bal.pools.sources import FORMAT, INDEX_FILE, ArraySource, PoolSource

__all__ = ["pack", "pack_dataset", "pack_images", "FORMATS", "DEFAULT_SHARD_SIZE"]

FORMATS = ("npy", "array_record", "both", "auto")
DEFAULT_SHARD_SIZE = 65536


def _formats(fmt: str) -> tuple[str, ...]:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {fmt!r}")
    if fmt == "auto":
        return ("npy", "array_record") if array_record_available() else ("npy",)
    out = {"npy": ("npy",), "array_record": ("array_record",), "both": ("npy", "array_record")}[fmt]
    if "array_record" in out and not array_record_available():
        raise ImportError("writing ArrayRecord shards needs Grain and ArrayRecord: pip install 'bal[pools]'")
    return out


def _fsync_dir(path: pathlib.Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pack(source: PoolSource, out, *, shard_size: int = DEFAULT_SHARD_SIZE, format: str = "npy",
         name_prefix: str | None = None, with_names: bool | None = None, labels=None,
         num_classes: int | None = None, class_names=None, description: str = "", overwrite: bool = False,
         chunk: int = 4096) -> pathlib.Path:
    """Write ``source`` into shards under the folder ``out``; returns the index path.

    Args:
      source: any :class:`~bal.pools.sources.PoolSource` (its ``read_raw`` rows are stored).
      shard_size: rows per shard.
      format: ``"npy"``, ``"array_record"``, ``"both"`` or ``"auto"`` (both when
        Grain / ArrayRecord import, else ``.npy``).
      name_prefix: row names are ``prefix + index`` (no names files).
      with_names: write the source's names per shard (default: for image folders).
      labels: optional ``int [N]`` labels, written as ``labels.npy``.
      num_classes, class_names: the classes of the labels (recorded in the index).
      overwrite: replace an existing pool in ``out``.
    """
    for name, v in (("shard_size", shard_size), ("chunk", chunk)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {v!r}")
    formats = _formats(format)
    out = pathlib.Path(out)
    index_path = out / INDEX_FILE
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite (--overwrite) to replace it")
        if not index_path.is_file():
            raise FileExistsError(f"{out} is not empty and is not a packed pool; refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(source)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape [{n}]; got {labels.dtype} {labels.shape}")
    if num_classes is not None:
        if labels is None:
            raise ValueError("num_classes describes labels; pass the labels too")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1; got {num_classes!r}")
        if n and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}); got values in [{labels.min()}, {labels.max()}]")
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if num_classes is None or len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class_names for num_classes={num_classes}")
    with_names = isinstance(source, ImageFolder) if with_names is None else bool(with_names)
    dtype, item_shape = np.dtype(source.dtype), tuple(source.item_shape)
    shards = []
    for s, begin in enumerate(range(0, n, shard_size)):
        end = min(n, begin + shard_size)
        entry = {"size": end - begin}
        stem = f"shard-{s:05d}"
        npy = open(out / f"{stem}.npy.tmp", "wb") if "npy" in formats else None
        writer = None
        if "array_record" in formats:
            from array_record.python.array_record_module import ArrayRecordWriter

            writer = ArrayRecordWriter(str(out / f"{stem}.array_record.tmp"), "group_size:1")
        names = open(out / f"{stem}.names.txt.tmp", "w", encoding="utf-8") if with_names else None
        if npy is not None:
            np.lib.format.write_array_header_1_0(npy, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                       "fortran_order": False, "shape": (end - begin,) + item_shape})
        for a in range(begin, end, chunk):
            b = min(end, a + chunk)
            rows = np.ascontiguousarray(source.read_raw(a, b), dtype)
            if rows.shape != (b - a,) + item_shape:
                raise ValueError(f"source gave rows of shape {rows.shape} for [{a}, {b}); expected "
                                 f"{(b - a,) + item_shape}")
            if npy is not None:
                npy.write(rows.tobytes())
            if writer is not None:
                for row in rows:
                    writer.write(row.tobytes())
            if names is not None:
                for name in source.names(source.indices(a, b)):
                    if "\n" in name:
                        raise ValueError(f"row name {name!r} holds a newline")
                    names.write(name + "\n")
        for f, suffix, key in ((npy, ".npy", "npy"), (names, ".names.txt", "names")):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
                f.close()
                os.replace(out / f"{stem}{suffix}.tmp", out / f"{stem}{suffix}")
                entry[key] = f"{stem}{suffix}"
        if writer is not None:
            writer.close()
            os.replace(out / f"{stem}.array_record.tmp", out / f"{stem}.array_record")
            entry["array_record"] = f"{stem}.array_record"
        shards.append(entry)
    index = {"format": FORMAT, "version": 1, "num_items": n, "dtype": dtype.str if dtype.byteorder not in "=|"
             else dtype.name, "item_shape": list(item_shape), "source": description, "shards": shards}
    if name_prefix is not None:
        index["name_prefix"] = name_prefix
    if labels is not None:
        np.save(out / "labels.npy", labels.astype(np.int32))
        index["labels"] = "labels.npy"
    if num_classes is not None:
        index["num_classes"] = int(num_classes)
    if class_names is not None:
        index["class_names"] = class_names
    _write_index(index_path, index)
    return index_path


def _write_index(index_path: pathlib.Path, index: dict) -> None:
    """Write ``pool.json`` atomically (temporary file, fsync, rename)."""
    tmp = index_path.with_name(f"{INDEX_FILE}.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_path)
    _fsync_dir(index_path.parent)


def pack_dataset(name: str, out, *, split: str = "train", test_split: str | None = "test", data_dir=None,
                 **options) -> pathlib.Path:
    """Pack a :func:`bal.data.load` dataset (``digits``, ``mnist``, ...): ``uint8`` images, labels, classes and
    names ``"<name>/<split>/<i>"``; with ``test_split`` (unless it is ``split``), that split goes into the
    sub-folder ``test/`` (a packed pool of its own, recorded as ``"test"`` in the index), so the loop can
    run on the folder (``dataset = "pool:OUT"``)."""
    from bal import data

    ds = data.load(name, split, data_dir=data_dir)
    # the test split is loaded first: a bad one must not leave a half-written pool behind
    test = data.load(name, test_split, data_dir=data_dir) if test_split not in (None, split) else None
    classes = dict(num_classes=ds.num_classes, class_names=ds.class_names)
    index_path = pack(ArraySource(ds.images), out, name_prefix=f"{name}/{split}/", labels=ds.labels,
                      description=f"bal.data {name} {split}", **classes, **options)
    if test is not None:
        options = {k: v for k, v in options.items() if k != "overwrite"}
        pack(ArraySource(test.images), index_path.parent / "test", name_prefix=f"{name}/{test_split}/",
             labels=test.labels, description=f"bal.data {name} {test_split}", **classes, **options)
        index = json.loads(index_path.read_text())
        index["test"] = "test"
        _write_index(index_path, index)
    return index_path


def pack_images(folder, out, *, size=None, mode=None, workers: int = 4, **options) -> pathlib.Path:
    """Pack a folder of PNG / JPEG images (names: their relative paths)."""
    source = ImageFolder(folder, size=size, mode=mode, workers=workers)
    return pack(source, out, description=f"images {pathlib.Path(folder).resolve()}", **options)
