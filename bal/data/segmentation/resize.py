"""Resizing images and label masks to a target ``(H, W)``, in numpy.

Images are resampled separably with a weight matrix per axis (one matrix
product each): ``"area"`` averages every source pixel a target pixel covers,
weighted by the overlap (the right choice for downscaling, like OpenCV's
``INTER_AREA`` / Pillow's ``BOX``); ``"bilinear"`` interpolates between the
two nearest source pixels with half-pixel centres (``align_corners=False``,
no antialiasing).  Masks use nearest neighbour — the source pixel under each
target pixel's centre — so every output value is a label present in the
input (labels are never averaged).  Sizes need not divide each other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IMAGE_METHODS", "resize_images", "resize_masks", "check_size"]

IMAGE_METHODS = ("area", "bilinear")


def check_size(size) -> tuple[int, int]:
    """``size`` as ``(H, W)`` positive ints; a ``ValueError`` naming the bad value otherwise."""
    try:
        h, w = (int(s) for s in size)
        ok = (h, w) == tuple(size) and h >= 1 and w >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size must be (height, width), two positive ints; got {size!r}")
    return h, w


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``float32 [n_out, n_in]``: row ``i`` averages source cells overlapping ``[i, i+1) * n_in / n_out``."""
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    hi = lo + scale
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return (overlap / scale).astype(np.float32)


def _bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``float32 [n_out, n_in]`` linear-interpolation weights with half-pixel centres, edges clamped."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    left = np.floor(pos).astype(np.int64)
    right = np.minimum(left + 1, n_in - 1)
    frac = (pos - left).astype(np.float32)
    w = np.zeros((n_out, n_in), np.float32)
    rows = np.arange(n_out)
    np.add.at(w, (rows, left), 1.0 - frac)
    np.add.at(w, (rows, right), frac)
    return w


def _weights(method: str, n_in: int, n_out: int) -> np.ndarray:
    return _area_weights(n_in, n_out) if method == "area" else _bilinear_weights(n_in, n_out)


def resize_images(images: np.ndarray, size, method: str = "area") -> np.ndarray:
    """Resize ``images [..., H, W, C]`` (any leading axes, e.g. ``[N]`` or none) to ``size = (h, w)``.

    Args:
        images: float or integer array; integers are resampled as float32.
        size: target ``(h, w)``.
        method: ``"area"`` (overlap-weighted mean; default, best for downscaling) or
            ``"bilinear"``.

    Returns:
        ``float32 [..., h, w, C]``; values stay within the input's range.
    """
    if method not in IMAGE_METHODS:
        raise ValueError(f"unknown image resize method {method!r}; choose 'area' or 'bilinear'")
    h, w = check_size(size)
    x = np.asarray(images)
    if x.ndim < 3:
        raise ValueError(f"images must have shape [..., H, W, C]; got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    H, W = x.shape[-3], x.shape[-2]
    if (H, W) == (h, w):
        return x.copy()
    C = x.shape[-1]
    lead = x.shape[:-3]
    # rows: [h, H] @ [..., H, W*C]; then columns: [w, W] @ [..., h, W, C] (matmul broadcasts, BLAS does the work)
    x = np.matmul(_weights(method, H, h), x.reshape(*lead, H, W * C)).reshape(*lead, h, W, C)
    x = np.matmul(_weights(method, W, w), x)
    return np.ascontiguousarray(x, dtype=np.float32)


def resize_masks(masks: np.ndarray, size) -> np.ndarray:
    """Nearest-neighbour resize of label ``masks [..., H, W]`` to ``size = (h, w)``; dtype kept.

    Target pixel ``(i, j)`` takes the source pixel under its centre,
    ``(floor((i + 0.5) * H / h), floor((j + 0.5) * W / w))``.
    """
    h, w = check_size(size)
    m = np.asarray(masks)
    if m.ndim < 2:
        raise ValueError(f"masks must have shape [..., H, W]; got shape {m.shape}")
    H, W = m.shape[-2], m.shape[-1]
    rows = np.minimum(((np.arange(h) + 0.5) * (H / h)).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * (W / w)).astype(np.int64), W - 1)
    return np.ascontiguousarray(m[..., rows[:, None], cols[None, :]])
