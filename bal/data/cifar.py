"""CIFAR-10 and CIFAR-100, "python version": pickled batches, read safely.

Each batch file is a Python-2 pickle of a dict with ``b"data"`` (``uint8
[n, 3072]``: per image the 1024 red, then green, then blue values, each plane
row-major 32x32) and the labels: ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` / ``b"coarse_labels"`` (CIFAR-100).  The meta file holds
the class names (``b"label_names"``; ``b"fine_label_names"`` /
``b"coarse_label_names"``).

Safety: a pickle can run arbitrary code, so (1) every file's bytes are
checked against the published MD5 *before* unpickling, and (2) unpickling
uses :class:`RestrictedUnpickler`, whose ``find_class`` admits only numpy's
array reconstruction (``_reconstruct``, ``ndarray``, ``dtype``) — the only
globals these files reference; everything else they hold (dicts, lists,
ints, byte strings) is built by pickle opcodes without any global.
"""

from __future__ import annotations

import errno
import io
import pickle
from pathlib import Path

import numpy as np

from .checksum import FileSpec, read_verified, verify_bytes, verify_file
from .errors import ChecksumError, DatasetNotFoundError, FormatError, UnsafePickleError
from .registry import DatasetInfo
from . import archive as _archive

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["RestrictedUnpickler", "safe_unpickle", "load_cifar", "LABEL_MODES"]

LABEL_MODES = ("fine", "coarse")

# (module, name) -> object.  Python-2 era files name numpy.core; numpy 2 writes numpy._core.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the numpy globals the CIFAR format needs."""

    def find_class(self, module, name):
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"pickle references the forbidden global {module}.{name}")
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError("pickle uses persistent ids, which the CIFAR format never does")


def safe_unpickle(data: bytes, name: str) -> object:
    """Unpickle ``data`` (file ``name``) with :class:`RestrictedUnpickler`, bytes-decoding Python-2 strings.

    Raises :class:`UnsafePickleError` if the pickle asks for any other global
    (nothing it names is imported or called), :class:`FormatError` if it is malformed.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except UnsafePickleError as e:
        raise UnsafePickleError(
            f"refusing to unpickle {name!r}: {e}. Only numpy arrays, dicts, lists, numbers and "
            "strings are allowed in CIFAR files; this file is not the official one — delete it."
        ) from None
    except Exception as e:  # truncated / garbage pickles raise many types
        raise FormatError(f"{name!r} is not a valid CIFAR pickle ({type(e).__name__}: {e})") from None


def _get(d: dict, key: str, name: str):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise FormatError(f"{name!r} has no {key!r} entry (keys: {sorted(map(repr, d))}); not a CIFAR file")


def _decode_batch(obj, name: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict):
        raise FormatError(f"{name!r} holds a {type(obj).__name__}, expected the CIFAR batch dict")
    data = _get(obj, "data", name)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise FormatError(
            f"{name!r}: 'data' must be uint8 [n, 3072]; got {getattr(data, 'dtype', type(data).__name__)} "
            f"{getattr(data, 'shape', '')}"
        )
    labels = np.asarray(_get(obj, label_key, name))
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise FormatError(f"{name!r}: {label_key!r} must be {len(data)} integers; got {labels.dtype} {labels.shape}")
    return data, labels.astype(np.int32)


def _decode_names(obj, name: str, key: str) -> tuple[str, ...]:
    if not isinstance(obj, dict):
        raise FormatError(f"{name!r} holds a {type(obj).__name__}, expected the CIFAR meta dict")
    raw = _get(obj, key, name)
    if not isinstance(raw, list):
        raise FormatError(f"{name!r}: {key!r} must be a list of names")
    return tuple(n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in raw)


def _sources(info: DatasetInfo, directory: Path, specs: dict[str, FileSpec | None], needed, hint_for):
    """Return a ``name -> bytes`` reader for ``needed`` members: extracted files, else the tarball.

    Prefers the extracted folder when every needed file is there; otherwise
    verifies the tarball and extracts it (or, if ``directory`` is not
    writable, reads the members straight from the tarball).
    """
    tarball = directory / info.archive.name
    if all((directory / n).is_file() for n in needed):
        try:
            for n in needed:
                if specs[n] is not None:
                    verify_file(directory / n, specs[n], hint_for(n, corrupt=True))
            return lambda n: read_verified(directory / n, specs[n], hint_for(n, corrupt=True))
        except ChecksumError:
            if not tarball.is_file():
                raise
            # a damaged extracted file but a tarball at hand: extract it again below
    if not tarball.is_file():
        absent = next(n for n in needed if not (directory / n).is_file())
        archive_spec, absent_spec = specs.get(info.archive.name), specs.get(absent)
        raise DatasetNotFoundError(
            f"{info.title} not found: neither the archive {info.archive.name!r}"
            + (f" (expected {archive_spec.describe()})" if archive_spec else "")
            + f" nor the extracted {absent!r}"
            + (f" (expected {absent_spec.describe()})" if absent_spec else "")
            + f" is in {directory}. {hint_for(None)}"
        )
    archive_spec = specs.get(info.archive.name)
    if archive_spec is not None:
        verify_file(tarball, archive_spec, hint_for(info.archive.name, corrupt=True))

    def check(path: Path, n: str) -> None:
        if specs[n] is not None:
            verify_file(path, specs[n], hint_for(n, corrupt=True))

    try:
        _archive.extract(tarball, directory, list(info.files), check)  # every split: one pass
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # read-only data directory: decode the members from the archive in memory
        blobs = _archive.read_members(tarball, needed)
        return lambda n: verify_bytes(blobs[n], specs[n], f"{tarball}", hint_for(n, corrupt=True))
    return lambda n: read_verified(directory / n, specs[n], hint_for(n, corrupt=True))


def load_cifar(
    info: DatasetInfo,
    directory: Path,
    split: str,
    specs: dict[str, FileSpec | None],
    hint_for,
    label_mode: str = "fine",
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load one split of CIFAR-10/100 from ``directory``.

    Args:
        info: the dataset's registry entry.
        directory: ``{data_dir}/cifar10`` or ``{data_dir}/cifar100``.
        split: ``"train"`` or ``"test"``.
        specs: expected digest per file (``None`` entries skip verification).
        hint_for: ``hint_for(file, corrupt=False) -> str``, the how-to-fix sentence.
        label_mode: CIFAR-100 only: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Returns:
        ``images uint8 [N, 32, 32, 3]``, ``labels int32 [N]``, class names.
    """
    if info.name == "cifar10":
        label_key, names_key = "labels", "label_names"
    else:
        label_key, names_key = f"{label_mode}_labels", f"{label_mode}_label_names"
    meta = info.split_files["meta"][0]
    files = info.split_files[split]
    read = _sources(info, directory, specs, list(files) + [meta], hint_for)
    class_names = _decode_names(safe_unpickle(read(meta), meta), meta, names_key)
    parts = [_decode_batch(safe_unpickle(read(f), f), f, label_key) for f in files]
    data = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    # [n, 3072] = per image R, G, B planes of 32x32 -> [n, 32, 32, 3], one contiguous copy
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    labels = np.concatenate([p[1] for p in parts])
    return images, labels, class_names
