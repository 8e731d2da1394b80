"""Segmentation labels as pixel class maps: the label store's form, Label Studio brushes and polygons, mask files.

A segmentation label is the **class map** ``uint8 [h, w]`` of one queried
region (a whole image, or a crop ``[y0, x0, y1, x1]`` of it): a class index
``0 .. C-1`` per pixel, or :data:`UNLABELED` (255, :data:`bal.checks.IGNORE_LABEL`)
where people gave no class. Every pixel of the region counts as labeled (it was
paid for, as the dataset's void pixels are); unlabeled ones are not trained on.

The label store keeps a class map compactly (:func:`pack_map`)::

    {"shape": [h, w], "runs": [v0, n0, v1, n1, ...]}

``n0`` pixels of value ``v0``, then ``n1`` of ``v1`` ..., row-major, adjacent
runs of different values (so equal maps are equal JSON).

**Label Studio brush RLE** (``brushlabels`` results, ``value.rle``): the
``original_width x original_height`` RGBA image, flattened (4 bytes a pixel),
run-length packed into a bit stream (the ``rle-pack`` format of thi.ng, which
Label Studio's frontend and ``label_studio_sdk.converter.brush`` implement):
32 bits value count, 5 bits ``word size - 1``, four 4-bit ``size - 1`` of the
run-length fields, then tokens — 1 bit repeat flag, 2 bits size index, the
run length - 1 in that many bits, then one value (repeat) or ``length`` values
(literal) of word-size bits — zero-padded to whole bytes. :func:`rle_encode` writes the
bytes ``label_studio_sdk``'s ``encode_rle`` writes (single values as literals,
runs of 2..8 / 9..16 / 17..256 values with 3 / 4 / 8 length bits, longer ones
as 16-bit runs of at most 65,536); :func:`rle_decode` reads any valid stream.
A brush mask is painted where the alpha channel is at least 128.

**Label Studio polygons** (``polygonlabels``): ``value.points`` ``[[x, y], ...]``
in percent of the image; a pixel is inside when its centre is (even-odd rule).

**Mask files** (``bal labels import RUN_DIR DIR``): a one-channel PNG (8-bit
grey or palette, the pixel values are the class indices) or a 2-D integer
``.npy`` per query, named after it (``pool_000123.png``,
``pool_000123_crop_8_16_24_32.png``: :func:`bal.labeling.state.file_name`).
"""

from __future__ import annotations

import pathlib

import numpy as np

from bal.checks import IGNORE_LABEL

__all__ = ["UNLABELED", "pack_map", "unpack_map", "check_map", "rle_encode", "rle_decode", "mask_to_brush",
           "brush_to_mask", "polygon_to_mask", "read_mask_file", "write_mask_png"]

#: a pixel people gave no class (void: labeled, not trained on)
UNLABELED = IGNORE_LABEL

RLE_SIZES = (3, 4, 8, 16)  # bits of the run-length fields, by size index (label_studio_sdk's choice)
WORD_SIZE = 8  # bits per value
_LONG = 1 << 16  # the longest run one 16-bit length field holds
_POW = 1 << np.arange(31, -1, -1, dtype=np.int64)  # bit weights, most significant first


# ----------------------------------------------------------------------------- the label store's form
def pack_map(class_map) -> dict:
    """The label-store form ``{"shape": [h, w], "runs": [v0, n0, ...]}`` of a class map ``int [h, w]``."""
    a = np.asarray(class_map)
    if a.ndim != 2 or not a.size:
        raise ValueError(f"a class map is a non-empty 2-D array; got shape {list(a.shape)}")
    flat = a.reshape(-1).astype(np.int64)
    starts = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1]]))
    counts = np.diff(np.append(starts, flat.size))
    runs = np.stack([flat[starts], counts], axis=1).reshape(-1)
    return {"shape": [int(a.shape[0]), int(a.shape[1])], "runs": [int(v) for v in runs]}


def _int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def unpack_map(label, where: str) -> np.ndarray:
    """The class map ``uint8 [h, w]`` of a label-store label (:func:`pack_map`); a one-line
    ``ValueError`` starting with ``where`` when it is not one."""
    shape = label.get("shape") if isinstance(label, dict) else None
    runs = label.get("runs") if isinstance(label, dict) else None
    if not (isinstance(shape, list) and len(shape) == 2 and all(_int(v) and v > 0 for v in shape)
            and isinstance(runs, list) and runs and len(runs) % 2 == 0 and all(_int(v) for v in runs)):
        raise ValueError(f"{where}: not a class map {{'shape': [h, w], 'runs': [value, count, ...]}}")
    pairs = np.asarray(runs, np.int64).reshape(-1, 2)
    if (pairs[:, 0] < 0).any() or (pairs[:, 0] > 255).any() or (pairs[:, 1] < 1).any():
        raise ValueError(f"{where}: corrupt class map (values must be 0..255, counts >= 1)")
    if int(pairs[:, 1].sum()) != shape[0] * shape[1]:
        raise ValueError(f"{where}: corrupt class map ({int(pairs[:, 1].sum())} pixels in its runs, "
                         f"{shape[0]}x{shape[1]} = {shape[0] * shape[1]} in its shape)")
    return np.repeat(pairs[:, 0], pairs[:, 1]).astype(np.uint8).reshape(shape)


def check_map(class_map, shape, num_classes: int, where: str) -> None:
    """Raise a one-line ``ValueError`` starting with ``where`` unless ``class_map`` is ``[h, w]``
    ``= shape`` (``(height, width)``) of class indices ``0 .. num_classes - 1`` or 255."""
    a = np.asarray(class_map)
    h, w = (int(v) for v in shape)
    if a.shape != (h, w):
        got = "x".join(str(v) for v in reversed(a.shape)) if a.ndim == 2 else f"of shape {list(a.shape)}"
        raise ValueError(f"{where}: the class map is {got}, but the queried region is {w}x{h} (width x height)")
    bad = (a != UNLABELED) & ((a < 0) | (a >= num_classes))
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{where}: pixel (row {r}, column {c}) has value {int(a[r, c])}, not a class index "
                         f"0..{num_classes - 1} or {UNLABELED} (unlabeled)")


# ----------------------------------------------------------------------------- Label Studio brush RLE
def _bits(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """The bits ``uint8 [sum(widths)]`` of ``codes`` written most significant bit first in ``widths`` bits each."""
    codes, widths = np.asarray(codes, np.int64), np.asarray(widths, np.int64)
    shifts = widths[:, None] - 1 - np.arange(int(widths.max(initial=1)))[None, :]
    bits = (codes[:, None] >> np.maximum(shifts, 0)) & 1
    return bits[shifts >= 0].astype(np.uint8)


def rle_encode(values) -> list[int]:
    """Label Studio's brush RLE bytes of ``values`` ``int [n]`` in ``0..255`` (the module docstring;
    byte for byte ``label_studio_sdk.converter.brush.encode_rle``)."""
    v = np.asarray(values).reshape(-1)
    if not v.size or v.size >= 1 << 32:
        raise ValueError(f"a brush RLE holds 1 .. 2**32 - 1 values; got {v.size}")
    if not np.issubdtype(v.dtype, np.integer) and not np.issubdtype(v.dtype, np.bool_):
        raise ValueError(f"brush RLE values must be integers 0..255; got dtype {v.dtype}")
    v = v.astype(np.int64)
    if v.min() < 0 or v.max() > 255:
        raise ValueError(f"brush RLE values must be 0..255; got {int(v.min())}..{int(v.max())}")
    starts = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    lengths = np.diff(np.append(starts, v.size))
    long = lengths > 256
    chunks = np.where(long, -(-lengths // _LONG), 1)
    run = np.repeat(np.arange(lengths.size), chunks)  # the run of each token
    first = np.repeat(np.cumsum(chunks) - chunks, chunks)
    last = np.arange(run.size) - first == chunks[run] - 1
    tok = np.where(last, lengths[run] - _LONG * (chunks[run] - 1), _LONG)
    size = np.where(long[run], 3, np.where(tok <= 8, 0, np.where(tok <= 16, 1, 2)))
    repeat = (tok > 1) | long[run]
    length_bits = np.asarray(RLE_SIZES)[size]
    codes = ((repeat.astype(np.int64) << (2 + length_bits + WORD_SIZE)) | (size << (length_bits + WORD_SIZE))
             | ((tok - 1) << WORD_SIZE) | v[starts][run])
    header = _bits([v.size, WORD_SIZE - 1, *(s - 1 for s in RLE_SIZES)], [32, 5, 4, 4, 4, 4])
    bits = np.concatenate([header, _bits(codes, 3 + length_bits + WORD_SIZE)])
    bits = np.concatenate([bits, np.zeros(8 - bits.size % 8, np.uint8)])  # 1..8 zero bits, as the SDK pads
    return [int(b) for b in np.packbits(bits)]


def rle_decode(rle) -> np.ndarray:
    """The values ``int64 [n]`` of Label Studio brush RLE bytes; a one-line ``ValueError`` when the
    stream is not one (not bytes, truncated, a run past its end)."""
    if not isinstance(rle, (list, tuple)) or not rle or not all(_int(b) and 0 <= b <= 255 for b in rle):
        raise ValueError("a brush RLE is a non-empty list of bytes 0..255")
    bits = np.unpackbits(np.asarray(rle, np.uint8)).astype(np.int64)
    pos = 0

    def read(k: int) -> int:
        nonlocal pos
        if pos + k > bits.size:
            raise ValueError(f"corrupt brush RLE: the stream ends early ({len(rle)} bytes)")
        out = int(bits[pos:pos + k] @ _POW[32 - k:])
        pos += k
        return out

    num = read(32)
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    if num == 0 or num > 8 * len(rle) * (1 << 16):  # a run of 2**16 values takes at least 3 bits
        raise ValueError(f"corrupt brush RLE: it claims {num} values in {len(rle)} bytes")
    out = np.zeros(num, np.int64)
    i = 0
    while i < num:
        repeat = read(1)
        j = i + 1 + read(sizes[read(2)])
        if j > num:
            raise ValueError(f"corrupt brush RLE: a run ends at value {j} of {num}")
        if repeat:
            out[i:j] = read(word)
        else:
            if pos + (j - i) * word > bits.size:
                raise ValueError(f"corrupt brush RLE: the stream ends early ({len(rle)} bytes)")
            out[i:j] = bits[pos:pos + (j - i) * word].reshape(j - i, word) @ _POW[32 - word:]
            pos += (j - i) * word
        i = j
    return out


def mask_to_brush(mask) -> list[int]:
    """The brush RLE of a mask ``bool [h, w]``: every channel of the RGBA image 255 where it is set."""
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"a brush mask is 2-D; got shape {list(m.shape)}")
    return rle_encode(np.repeat(m.reshape(-1).astype(np.uint8) * 255, 4))


def brush_to_mask(rle, height: int, width: int) -> np.ndarray:
    """The mask ``bool [height, width]`` of a brush RLE (alpha >= 128); a one-line ``ValueError``
    when it does not hold a ``width x height`` RGBA image."""
    values = rle_decode(rle)
    if values.size != height * width * 4:
        raise ValueError(f"the brush RLE holds {values.size} values, not the {height * width * 4} of a "
                         f"{width}x{height} RGBA image")
    return values.reshape(height, width, 4)[..., 3] >= 128


# ----------------------------------------------------------------------------- polygons
def polygon_to_mask(points, height: int, width: int) -> np.ndarray:
    """``bool [height, width]``: the pixels whose centre lies inside the polygon ``points``
    ``[[x, y], ...]`` (percent of the width / height; even-odd rule)."""
    p = np.asarray(points, np.float64) if isinstance(points, list) else None
    if p is None or p.ndim != 2 or p.shape[0] < 3 or p.shape[1] != 2 or not np.isfinite(p).all():
        raise ValueError("a polygon needs at least 3 points [x, y] in percent")
    xs, ys = p[:, 0] * width / 100.0, p[:, 1] * height / 100.0
    px = np.arange(width, dtype=np.float64)[None, :] + 0.5
    py = np.arange(height, dtype=np.float64)[:, None] + 0.5
    inside = np.zeros((height, width), bool)
    for k in range(len(xs)):
        x1, y1, x2, y2 = xs[k], ys[k], xs[k - 1], ys[k - 1]
        if y1 == y2:
            continue
        crosses = (y1 > py) != (y2 > py)  # [H, 1]
        x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)  # [H, 1]
        inside ^= crosses & (px < x_at)
    return inside


# ----------------------------------------------------------------------------- mask files
def read_mask_file(path) -> np.ndarray:
    """The class map ``int64 [h, w]`` of a one-channel PNG or a 2-D integer ``.npy``."""
    path = pathlib.Path(path)
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read it as .npy ({err})") from None
        if a.ndim != 2 or not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{path}: a mask is a 2-D integer array of class indices; got {a.dtype} of shape "
                             f"{list(a.shape)}")
        return a.astype(np.int64)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            a = np.asarray(image) if mode in ("L", "P", "I", "I;16", "1") else None
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: cannot read it as a PNG ({err})") from None
    if a is None:
        raise ValueError(f"{path}: a mask is a one-channel image of class indices (8-bit grey or palette); "
                         f"got mode {mode}")
    return a.astype(np.int64)


def write_mask_png(path, class_map) -> None:
    """Write a class map ``[h, w]`` (values 0..255) as an 8-bit grey PNG."""
    from PIL import Image

    Image.fromarray(np.asarray(class_map, np.uint8)).save(path, format="PNG")
