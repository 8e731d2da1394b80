"""BDD100K semantic segmentation (Yu et al., CVPR 2020) from its official folders.

Two layouts are recognised under ``root`` (default ``{data_dir}/bdd100k``):

* current (``bdd100k_images_10k.zip`` + ``bdd100k_sem_seg_labels_trainval.zip``)::

      {root}/images/10k/{split}/{name}.jpg
      {root}/labels/sem_seg/masks/{split}/{name}.png

* legacy (``bdd100k_seg.zip``)::

      {root}/seg/images/{split}/{name}.jpg
      {root}/seg/labels/{split}/{name}_train_id.png

The masks already hold the 19 Cityscapes train ids (0 road ... 18 bicycle) and
255 for "unknown", so they are only checked, not remapped: any other value is
a corrupt file.  Splits: ``train`` (7,000 images) and ``val`` (1,000); the
test masks are not public.  BDD100K cannot be downloaded automatically: it
requires registration at https://bdd-data.berkeley.edu/.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from .cityscapes import CITYSCAPES_CLASSES
from .dataset import IGNORE_LABEL, SegmentationDataset
from .files import Pair, dataset_root, load_pairs, select

__all__ = ["BDD100K_CLASSES", "BDD100K_SPLITS", "bdd100k_layout", "load_bdd100k"]

HOMEPAGE = "https://bdd-data.berkeley.edu/"
BDD100K_SPLITS = ("train", "val")
BDD100K_CLASSES = CITYSCAPES_CLASSES
"""The 19 evaluated classes, index = mask value (the Cityscapes train ids)."""

# layout name -> (image folder, mask folder, mask file suffix replacing the image's extension)
_LAYOUTS = {
    "10k": ("images/10k/{split}", "labels/sem_seg/masks/{split}", ".png"),
    "seg": ("seg/images/{split}", "seg/labels/{split}", "_train_id.png"),
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _layout_text(root: Path) -> str:
    return (
        f"Expected {root}/images/10k/{{split}}/*.jpg with {root}/labels/sem_seg/masks/{{split}}/*.png "
        f"(bdd100k_images_10k.zip + bdd100k_sem_seg_labels_trainval.zip), or the legacy "
        f"{root}/seg/images/{{split}}/*.jpg with {root}/seg/labels/{{split}}/*_train_id.png."
    )


def bdd100k_layout(root: str | os.PathLike, split: str) -> str:
    """``"10k"`` or ``"seg"``: which layout ``root`` holds for ``split`` (its mask folder exists).

    Raises:
        DatasetNotFoundError: neither layout's mask folder exists; names both and where to register.
    """
    root = Path(root)
    for name, (_, masks, _) in _LAYOUTS.items():
        if (root / masks.format(split=split)).is_dir():
            return name
    raise DatasetNotFoundError(
        f"BDD100K {split} segmentation masks not found under {root}. BDD100K cannot be downloaded "
        f"automatically: register at {HOMEPAGE}, download the '10K Images' and 'Segmentation' archives "
        f"and unpack them so that {root}/ holds images/ and labels/ (or pass root=). " + _layout_text(root)
    )


def _checked(ignore_label: int):
    def convert(raw: np.ndarray, path: Path) -> np.ndarray:
        ok = ((raw >= 0) & (raw < len(BDD100K_CLASSES))) | (raw == 255)
        if not ok.all():
            raise FormatError(
                f"BDD100K sem_seg masks hold train ids 0..18 or 255; found {np.unique(raw[~ok])[:10].tolist()} "
                f"in {path}. The file is corrupt or not a sem_seg mask (colormaps/ are RGB pictures); "
                "restore it from bdd100k_sem_seg_labels_trainval.zip."
            )
        return np.where(raw == 255, ignore_label, raw).astype(np.int32)

    return convert


def bdd100k_pairs(root: Path, split: str) -> list[Pair]:
    """Every (image, mask) pair of ``split`` under ``root``, sorted by file name."""
    images, masks, mask_suffix = (p.format(split=split) for p in _LAYOUTS[bdd100k_layout(root, split)])
    img_dir, mask_dir = root / images, root / masks
    if not img_dir.is_dir():
        raise DatasetNotFoundError(
            f"BDD100K {split} image folder not found: {img_dir} (the masks are in {mask_dir}). "
            f"Unpack the '10K Images' archive from {HOMEPAGE} into {root}/. " + _layout_text(root)
        )
    files = sorted(f for f in img_dir.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise DatasetNotFoundError(f"no BDD100K images (*.jpg) in {img_dir}. " + _layout_text(root))
    return [Pair(f, mask_dir / f"{f.stem}{mask_suffix}", f.stem) for f in files]


def load_bdd100k(
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    size: tuple[int, int] | None = None,
    limit: int | None = None,
    seed: int | None = None,
    image_resize: str = "area",
    ignore_label: int = IGNORE_LABEL,
) -> SegmentationDataset:
    """Load one split of BDD100K semantic segmentation as a :class:`SegmentationDataset`.

    Args:
        split: ``"train"`` or ``"val"``.
        root: the folder holding ``images/`` and ``labels/`` (or the legacy ``seg/``);
            default ``{$BAL_DATA_DIR or ~/.cache/bal/datasets}/bdd100k``.
        size: target ``(H, W)``, e.g. ``(72, 128)``; ``None`` keeps 720x1280.
        limit, seed: at most ``limit`` images, the first in sorted order or (with ``seed``)
            a random subset drawn with ``np.random.default_rng(seed)``.
        image_resize: ``"area"`` (default) or ``"bilinear"``; masks use nearest neighbour.
        ignore_label: mask value for the "unknown" pixels (stored as 255 in the files).

    Returns:
        ``images float32 [N, H, W, 3]`` in [0, 1], ``masks int32 [N, H, W]`` with the 19
        Cityscapes train ids (:data:`BDD100K_CLASSES`) or ``ignore_label``; ``ids`` are
        the image file stems.

    Raises:
        ValueError: unknown ``split`` / ``image_resize``, bad ``size`` / ``limit``.
        DatasetNotFoundError: a folder or a mask is missing (names it, the layouts and
            where to register).
        FormatError: a mask value other than 0..18 / 255, image and mask sizes differ, or a
            file cannot be decoded.
        ImportError: Pillow is not installed.
    """
    if split not in BDD100K_SPLITS:
        raise ValueError(
            f"unknown BDD100K split {split!r}; choose 'train' or 'val' (test masks are not public)"
        )
    root = dataset_root(root, "bdd100k")
    pairs = select(bdd100k_pairs(root, split), limit, seed)
    return load_pairs(pairs, _checked(ignore_label), BDD100K_CLASSES, "bdd100k", split, size, image_resize,
                      ignore_label)
