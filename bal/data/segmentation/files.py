"""Reading image / label-mask file pairs into a :class:`SegmentationDataset`.

Shared by the Cityscapes and BDD100K loaders.  PNG and JPEG decoding uses
Pillow, imported only when a file is read (``pip install Pillow``; it is also
a dependency of matplotlib, so it is usually present).  Each pair is decoded,
checked (same size, label values known), converted to train ids, resized and
only then stacked, so the full-resolution split is never held in memory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from ..registry import resolve_data_dir
from .dataset import SegmentationDataset
from .resize import IMAGE_METHODS, check_size, resize_images, resize_masks

__all__ = ["Pair", "pillow", "read_image", "read_label_image", "load_pairs", "select", "dataset_root"]


@dataclasses.dataclass(frozen=True)
class Pair:
    """One example on disk: its RGB image file, its label-mask file and an id."""

    image: Path
    mask: Path
    id: str


def pillow():
    """The ``PIL.Image`` module; an ``ImportError`` saying how to install Pillow when it is absent."""
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow ships with matplotlib, a core dependency
        raise ImportError(
            "reading segmentation datasets (PNG / JPEG files) needs Pillow: pip install Pillow"
        ) from e
    return Image


def _open(path: Path):
    Image = pillow()
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"file {path} not found") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL.UnidentifiedImageError is an OSError
        raise FormatError(f"cannot decode {path}: {e}. The file is corrupt or not an image; replace it.") from None
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB pixels of an image file (grayscale / palette / RGBA converted to RGB)."""
    img = _open(Path(path))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_label_image(path: str | os.PathLike) -> np.ndarray:
    """``int64 [H, W]`` values of a single-channel label PNG (mode ``L``, ``P``, ``I`` or ``I;16``).

    A colour file (e.g. a ``*_color.png`` visualisation) is refused with a
    :class:`FormatError` naming it: its RGB values are not label ids.
    """
    path = Path(path)
    img = _open(path)
    if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        raise FormatError(
            f"{path} is a {img.mode} image, not a single-channel label image; "
            "expected 8-bit label ids (e.g. *_gtFine_labelIds.png, not the *_color.png visualisation)"
        )
    return np.asarray(img).astype(np.int64)


def select(pairs: Sequence[Pair], limit: int | None, seed: int | None) -> list[Pair]:
    """The first ``limit`` pairs (sorted order), or ``limit`` random ones when ``seed`` is given (kept sorted)."""
    pairs = list(pairs)
    if limit is None:
        return pairs
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive int or None; got {limit!r}")
    if seed is None or limit >= len(pairs):
        return pairs[:limit]
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=int(limit), replace=False))
    return [pairs[i] for i in keep]


def dataset_root(root: str | os.PathLike | None, name: str) -> Path:
    """``root`` if given, else ``{resolve_data_dir()}/{name}`` (``$BAL_DATA_DIR`` or ``~/.cache/bal/datasets``)."""
    return Path(root).expanduser() if root is not None else resolve_data_dir() / name


def load_pairs(
    pairs: Sequence[Pair],
    to_train_ids: Callable[[np.ndarray, Path], np.ndarray],
    class_names: Sequence[str],
    name: str,
    split: str,
    size: tuple[int, int] | None = None,
    image_resize: str = "area",
    ignore_label: int = 255,
) -> SegmentationDataset:
    """Decode, check, convert, resize and stack ``pairs`` into a :class:`SegmentationDataset`.

    Args:
        pairs: the examples, in output order.
        to_train_ids: ``(raw label values int64 [H, W], mask path) -> int32 [H, W]`` train ids,
            with ``ignore_label`` for unlabelled pixels; raises :class:`FormatError` naming the
            file on an unknown value.
        class_names, name, split: stored in the result.
        size: target ``(H, W)``, or ``None`` to keep the files' size (all must then agree).
        image_resize: ``"area"`` or ``"bilinear"`` for images; masks always use nearest.
        ignore_label: the ignore value ``to_train_ids`` writes.

    Raises:
        DatasetNotFoundError: a mask file is missing (names the image and the expected mask).
        FormatError: an image and its mask differ in size, a file is undecodable, or
            (``size=None``) images differ in size.
    """
    if image_resize not in IMAGE_METHODS:
        raise ValueError(f"unknown image_resize {image_resize!r}; choose 'area' or 'bilinear'")
    if size is not None:
        size = check_size(size)
    images, masks = [], []
    for p in pairs:
        if not p.mask.is_file():
            raise DatasetNotFoundError(
                f"no label mask for image {p.image}: expected {p.mask}. "
                "Unpack the annotation archive next to the images (same split and file stem)."
            )
        img = read_image(p.image)
        raw = read_label_image(p.mask)
        if img.shape[:2] != raw.shape:
            raise FormatError(
                f"image {p.image} is {img.shape[0]}x{img.shape[1]} (HxW) but its mask {p.mask} is "
                f"{raw.shape[0]}x{raw.shape[1]}; they must match pixel for pixel"
            )
        mask = to_train_ids(raw, p.mask)
        if size is not None and img.shape[:2] != size:
            img = resize_images(img, size, image_resize) / np.float32(255.0)
            mask = resize_masks(mask, size)
        else:
            img = img.astype(np.float32) / np.float32(255.0)
        if images and img.shape != images[0].shape:
            raise FormatError(
                f"{name} {split}: {p.image} is {img.shape[0]}x{img.shape[1]} but {pairs[0].image} is "
                f"{images[0].shape[0]}x{images[0].shape[1]}; pass size=(height, width) to resize all images"
            )
        images.append(np.clip(img, 0.0, 1.0, dtype=np.float32))
        masks.append(mask.astype(np.int32, copy=False))
    if not images:
        raise DatasetNotFoundError(f"{name} {split}: no images to load")
    return SegmentationDataset(
        np.stack(images), np.stack(masks), tuple(class_names), name, split, ignore_label,
        tuple(p.id for p in pairs),
    )
