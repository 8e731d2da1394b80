"""Real-image segmentation from a digit classification set: digits pasted on a larger canvas.

Each canvas image holds ``min_digits..max_digits`` digits drawn at random
from a source split (MNIST by default), each pasted at a random position
(digits may overlap; the canvas keeps the brighter pixel).  A pixel is
labelled with its digit's class plus one where that digit's intensity is at
least ``threshold`` (and it is the brightest digit there), else 0::

    0 background, 1 "0", 2 "1", ..., 10 "9"

Digits of the ``train`` canvases come from the MNIST train split and those
of ``test`` from the MNIST test split, so the two never share a digit.
Canvas ``i`` is drawn from ``np.random.default_rng([seed, stream(split), i])``,
so the first ``n`` canvases of a larger set are those of a smaller one.
"""

from __future__ import annotations

import os

import numpy as np

from ..dataset import Dataset
from .dataset import IGNORE_LABEL, SegmentationDataset
from .resize import check_size

__all__ = ["digit_canvas", "load_mnist_canvas"]

_STREAMS = {"train": 0, "test": 1}


def digit_canvas(
    source: Dataset,
    num_images: int,
    height: int = 64,
    width: int = 64,
    seed: int = 0,
    *,
    min_digits: int = 1,
    max_digits: int = 3,
    threshold: float = 0.5,
    stream: int = 0,
) -> SegmentationDataset:
    """Paste digits of ``source`` onto ``num_images`` canvases of ``height x width``.

    Args:
        source: a classification :class:`~bal.data.Dataset` (``uint8 [M, h, w, C]``), e.g.
            ``bal.data.load("mnist", "train")``; each digit must fit on the canvas.
        num_images: number of canvases ``N``.
        height, width: canvas size (at least the digit size).
        seed: non-negative int fixing every canvas (with ``stream`` and the index).
        min_digits, max_digits: digits per canvas, drawn uniformly in this range.
        threshold: intensity (0..1) from which a digit pixel is labelled with its class.
        stream: independent streams for the same seed (``load_mnist_canvas`` uses one per split).

    Returns:
        :class:`SegmentationDataset` ``"{source.name}_canvas"``: ``images float32 [N, H, W, C]``,
        ``masks int32 [N, H, W]`` with 0 = background and ``1 + class`` for a digit pixel;
        ``ids`` list the source indices pasted, e.g. ``"17+4051"``.
    """
    h, w, ch = source.shape
    for name, v, lo in (("num_images", num_images, 0), ("height", height, h), ("width", width, w),
                        ("seed", seed, 0), ("min_digits", min_digits, 1), ("stream", stream, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo} (the digits are {h}x{w}); got {v!r}")
    if isinstance(max_digits, bool) or not isinstance(max_digits, (int, np.integer)) or max_digits < min_digits:
        raise ValueError(f"max_digits must be an int >= min_digits={min_digits}; got {max_digits!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1]; got {threshold!r}")
    if len(source) == 0:
        raise ValueError(f"source {source.name!r} {source.split!r} holds no images")
    n, H, W = int(num_images), int(height), int(width)
    images = np.zeros((n, H, W, ch), np.float32)
    masks = np.zeros((n, H, W), np.int32)
    ids = []
    digits = source.images
    for i in range(n):
        rng = np.random.default_rng([int(seed), int(stream), i])
        k = int(rng.integers(min_digits, max_digits + 1))
        picks = rng.integers(0, len(source), size=k)
        tops = rng.integers(0, H - h + 1, size=k)
        lefts = rng.integers(0, W - w + 1, size=k)
        best = np.zeros((H, W), np.float32)  # brightest digit intensity so far (channel max)
        for j, r, c in zip(picks, tops, lefts):
            digit = digits[j].astype(np.float32) / np.float32(255.0)
            window = images[i, r:r + h, c:c + w]
            np.maximum(window, digit, out=window)
            level = digit.max(axis=-1)
            wins = (level >= threshold) & (level > best[r:r + h, c:c + w])
            masks[i, r:r + h, c:c + w][wins] = int(source.labels[j]) + 1
            np.maximum(best[r:r + h, c:c + w], level, out=best[r:r + h, c:c + w])
        ids.append("+".join(str(int(j)) for j in picks))
    return SegmentationDataset(images, masks, ("background", *source.class_names), f"{source.name}_canvas",
                               source.split, IGNORE_LABEL, tuple(ids))


def load_mnist_canvas(
    split: str = "train",
    num_images: int = 1000,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    *,
    dataset: str = "mnist",
    **options,
) -> SegmentationDataset:
    """Canvases built from ``split`` of ``dataset`` (``"mnist"``; also ``"fashion_mnist"``, ``"digits"``).

    Loads the source with :func:`bal.data.load` (same ``data_dir`` rules and errors:
    a missing file raises :class:`~bal.data.DatasetNotFoundError` saying how to get it)
    and calls :func:`digit_canvas`; ``options`` go to it (``min_digits``, ``max_digits``,
    ``threshold``).  ``size = (H, W)``.
    """
    if split not in _STREAMS:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    from ..loader import load  # deferred: bal.data imports this package

    h, w = check_size(size)
    return digit_canvas(load(dataset, split, data_dir), num_images, h, w, seed, stream=_STREAMS[split], **options)
