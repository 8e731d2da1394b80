"""The IDX file format of MNIST and Fashion-MNIST, gzip-compressed.

An IDX file is a big-endian header followed by raw data::

    bytes 0-1   0x00 0x00
    byte  2     element type (0x08 = uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
    byte  3     number of dimensions d
    d x uint32  the size of each dimension (big-endian)
    ...         the data, row-major

MNIST images are magic ``0x00000803`` (uint8, 3-D: ``[N, 28, 28]``) and labels
``0x00000801`` (uint8, 1-D: ``[N]``).  Decoding is zero-copy: ``np.frombuffer``
on the decompressed bytes.
"""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np

from .errors import FormatError

__all__ = ["parse_idx", "decompress", "encode_idx", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def decompress(data: bytes, name: str) -> bytes:
    """Gunzip ``data`` (the bytes of file ``name``); a :class:`FormatError` if it is not valid gzip."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncation is EOFError
        raise FormatError(
            f"{name!r} is not a valid gzip file ({type(e).__name__}: {e}); it is probably truncated or "
            "corrupt. Delete it and download it again (download=True)."
        ) from None


def parse_idx(raw: bytes, name: str, expect_magic: int | None = None) -> np.ndarray:
    """Decode uncompressed IDX bytes into an array of the header's shape (a view of ``raw``).

    Raises :class:`FormatError` naming ``name`` when the header is malformed,
    the magic number is not ``expect_magic``, or the data length differs from
    the product of the dimensions.
    """
    if len(raw) < 4:
        raise FormatError(f"{name!r}: IDX file too short for a header ({len(raw)} bytes)")
    zero, code, ndim = struct.unpack_from(">HBB", raw, 0)
    magic = struct.unpack_from(">I", raw, 0)[0]
    if zero != 0 or code not in _TYPES or ndim == 0:
        raise FormatError(
            f"{name!r}: bad IDX magic number 0x{magic:08X} (expected 0x{expect_magic or IMAGES_MAGIC:08X}); "
            "this is not an IDX file"
        )
    if expect_magic is not None and magic != expect_magic:
        raise FormatError(f"{name!r}: IDX magic number is 0x{magic:08X}, expected 0x{expect_magic:08X}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FormatError(f"{name!r}: IDX header declares {ndim} dimensions but the file ends at {len(raw)} bytes")
    dims = struct.unpack_from(f">{ndim}I", raw, 4)
    dtype = np.dtype(_TYPES[code])
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have != want:
        raise FormatError(
            f"{name!r}: IDX header says shape {tuple(dims)} ({want:,} data bytes) but the file holds "
            f"{have:,} data bytes ({'truncated' if have < want else 'trailing bytes'})"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as uncompressed IDX bytes (the inverse of :func:`parse_idx`; used in tests)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise ValueError(f"encode_idx needs a uint8 array with >= 1 dimension; got {array.dtype} {array.shape}")
    return struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape) + array.tobytes()


def load_idx_pair(images_raw: bytes, labels_raw: bytes, names: tuple[str, str], shape) -> tuple[np.ndarray, np.ndarray]:
    """Decode gzip-compressed image and label IDX bytes into ``uint8 [N, H, W, 1]`` and ``int32 [N]``.

    ``shape`` is the expected ``(H, W, C)``; counts of images and labels must agree.
    """
    images = parse_idx(decompress(images_raw, names[0]), names[0], IMAGES_MAGIC)
    labels = parse_idx(decompress(labels_raw, names[1]), names[1], LABELS_MAGIC)
    if images.shape[1:] != tuple(shape[:2]):
        raise FormatError(f"{names[0]!r}: images are {images.shape[1:]}, expected {tuple(shape[:2])}")
    if len(images) != len(labels):
        raise FormatError(
            f"{names[0]!r} holds {len(images):,} images but {names[1]!r} holds {len(labels):,} labels"
        )
    return images[..., None], labels.astype(np.int32)
