"""Cityscapes semantic segmentation (Cordts et al., CVPR 2016) from its official folders.

Layout (the unpacked ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``)::

    {root}/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    {root}/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png

``root`` defaults to ``{data_dir}/cityscapes`` (``$BAL_DATA_DIR`` or
``~/.cache/bal/datasets``).  The data cannot be downloaded automatically:
Cityscapes requires registration at https://www.cityscapes-dataset.com/.

Label ids 0..33 are mapped to the 19 evaluated train ids of cityscapesScripts'
``helpers/labels.py`` (road=7->0, sidewalk=8->1, building=11->2, wall=12->3,
fence=13->4, pole=17->5, traffic light=19->6, traffic sign=20->7,
vegetation=21->8, terrain=22->9, sky=23->10, person=24->11, rider=25->12,
car=26->13, truck=27->14, bus=28->15, train=31->16, motorcycle=32->17,
bicycle=33->18); every other id (void classes 0-6, parking 9, rail track 10,
guard rail 14, bridge 15, tunnel 16, polegroup 18, caravan 29, trailer 30)
becomes the ignore label.  A value outside 0..33 is a corrupt file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from .dataset import IGNORE_LABEL, SegmentationDataset
from .files import Pair, dataset_root, load_pairs, select

__all__ = [
    "CITYSCAPES_LABELS", "CITYSCAPES_CLASSES", "CITYSCAPES_SPLITS", "label_ids_to_train_ids", "load_cityscapes",
]

HOMEPAGE = "https://www.cityscapes-dataset.com/"
CITYSCAPES_SPLITS = ("train", "val", "test")
MASK_KINDS = ("labelIds", "labelTrainIds")

# (label id, name, train id or None = ignored), from cityscapesScripts/helpers/labels.py.
# ('license plate' has id -1 and is never written to the label images.)
CITYSCAPES_LABELS: tuple[tuple[int, str, int | None], ...] = (
    (0, "unlabeled", None), (1, "ego vehicle", None), (2, "rectification border", None),
    (3, "out of roi", None), (4, "static", None), (5, "dynamic", None), (6, "ground", None),
    (7, "road", 0), (8, "sidewalk", 1), (9, "parking", None), (10, "rail track", None),
    (11, "building", 2), (12, "wall", 3), (13, "fence", 4), (14, "guard rail", None),
    (15, "bridge", None), (16, "tunnel", None), (17, "pole", 5), (18, "polegroup", None),
    (19, "traffic light", 6), (20, "traffic sign", 7), (21, "vegetation", 8), (22, "terrain", 9),
    (23, "sky", 10), (24, "person", 11), (25, "rider", 12), (26, "car", 13), (27, "truck", 14),
    (28, "bus", 15), (29, "caravan", None), (30, "trailer", None), (31, "train", 16),
    (32, "motorcycle", 17), (33, "bicycle", 18),
)

CITYSCAPES_CLASSES: tuple[str, ...] = tuple(
    name for _, name, _ in sorted((r for r in CITYSCAPES_LABELS if r[2] is not None), key=lambda r: r[2])
)
"""The 19 train-id class names, index = train id: ``road, sidewalk, building, ..., bicycle``."""

_NUM_IDS = 34
_UNKNOWN = -1


def _lut(ignore_label: int) -> np.ndarray:
    lut = np.full(256, _UNKNOWN, np.int64)
    for lid, _, tid in CITYSCAPES_LABELS:
        lut[lid] = ignore_label if tid is None else tid
    return lut


def _bad_values(raw: np.ndarray, ok: np.ndarray) -> list[int]:
    return np.unique(raw[~ok])[:10].tolist()


def label_ids_to_train_ids(label_ids: np.ndarray, ignore_label: int = IGNORE_LABEL, path=None) -> np.ndarray:
    """Map Cityscapes label ids ``[...]`` (0..33) to train ids ``int32 [...]`` (0..18 or ``ignore_label``).

    Raises:
        FormatError: a value outside 0..33 (names ``path`` and the values when given).
    """
    raw = np.asarray(label_ids).astype(np.int64, copy=False)
    ok = (raw >= 0) & (raw < _NUM_IDS)
    if not ok.all():
        where = f" in {path}" if path is not None else ""
        raise FormatError(
            f"Cityscapes label ids must lie in 0..33; found {_bad_values(raw, ok)}{where}. "
            "The file is corrupt or not a *_gtFine_labelIds.png; restore it from gtFine_trainvaltest.zip."
        )
    return _lut(ignore_label)[raw].astype(np.int32)


def _train_ids_checked(ignore_label: int):
    def convert(raw: np.ndarray, path: Path) -> np.ndarray:
        ok = (raw >= 0) & (raw < len(CITYSCAPES_CLASSES)) | (raw == 255)
        if not ok.all():
            raise FormatError(
                f"Cityscapes train ids must lie in 0..18 or be 255; found {_bad_values(raw, ok)} in {path}. "
                "Regenerate it with cityscapesScripts' createTrainIdLabelImgs.py, or use mask='labelIds'."
            )
        return np.where(raw == 255, ignore_label, raw).astype(np.int32)

    return convert


def _missing(directory: Path, root: Path, split: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"Cityscapes {split} folder not found: {directory}. Cityscapes cannot be downloaded automatically: "
        f"register at {HOMEPAGE}, download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip and "
        f"unpack both into {root}/ (or pass root=). Expected layout: "
        "{root}/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png and "
        "{root}/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png."
    )


def cityscapes_pairs(root: Path, split: str, mask: str = "labelIds") -> list[Pair]:
    """Every (image, mask) pair of ``split`` under ``root``, sorted by city then file name."""
    img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for d in (img_dir, gt_dir):
        if not d.is_dir():
            raise _missing(d, root, split)
    suffix = "_leftImg8bit.png"
    pairs = []
    for f in sorted(img_dir.glob(f"*/*{suffix}")):
        stem = f.name[: -len(suffix)]
        pairs.append(Pair(f, gt_dir / f.parent.name / f"{stem}_gtFine_{mask}.png", stem))
    if not pairs:
        raise DatasetNotFoundError(
            f"no Cityscapes images (*/*{suffix}) in {img_dir}; expected "
            f"{img_dir}/{{city}}/{{city}}_{{seq}}_{{frame}}{suffix}. "
            f"Unpack leftImg8bit_trainvaltest.zip (from {HOMEPAGE}) into {root}/."
        )
    return pairs


def load_cityscapes(
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    size: tuple[int, int] | None = None,
    limit: int | None = None,
    seed: int | None = None,
    image_resize: str = "area",
    mask: str = "labelIds",
    ignore_label: int = IGNORE_LABEL,
) -> SegmentationDataset:
    """Load one split of Cityscapes (fine annotations) as a :class:`SegmentationDataset`.

    Args:
        split: ``"train"`` (2,975 images), ``"val"`` (500) or ``"test"`` (1,525; its public
            masks are placeholders without evaluated classes, so every pixel is ignored).
        root: the Cityscapes folder holding ``leftImg8bit/`` and ``gtFine/``; default
            ``{$BAL_DATA_DIR or ~/.cache/bal/datasets}/cityscapes``.
        size: target ``(H, W)``, e.g. ``(64, 128)``; images are resized with
            ``image_resize``, masks with nearest neighbour.  ``None`` keeps 1024x2048 —
            the whole train split is then 75 GB of float32, so pass a size (and/or a limit).
        limit: load at most this many images: the first ones in sorted (city, file)
            order, or a random subset when ``seed`` is given.
        seed: with ``limit``, draw the subset with ``np.random.default_rng(seed)``.
        image_resize: ``"area"`` (default) or ``"bilinear"``.
        mask: ``"labelIds"`` (the official ``*_gtFine_labelIds.png``, mapped to train ids)
            or ``"labelTrainIds"`` (files made by cityscapesScripts' createTrainIdLabelImgs.py).
        ignore_label: mask value for ignored pixels (default 255).

    Returns:
        ``images float32 [N, H, W, 3]`` in [0, 1], ``masks int32 [N, H, W]`` with train ids
        0..18 (:data:`CITYSCAPES_CLASSES`) or ``ignore_label``; ``ids`` are the file stems
        ``{city}_{seq}_{frame}``.

    Raises:
        ValueError: unknown ``split`` / ``mask`` / ``image_resize``, bad ``size`` / ``limit``.
        DatasetNotFoundError: a folder, an image or a mask is missing (a ``FileNotFoundError``;
            the message names it, the expected layout and where to register).
        FormatError: a label value outside 0..33, an image and mask of different sizes, or an
            undecodable file (a ``ValueError`` naming the file).
        ImportError: Pillow is not installed.
    """
    if split not in CITYSCAPES_SPLITS:
        raise ValueError(f"unknown Cityscapes split {split!r}; choose one of {', '.join(CITYSCAPES_SPLITS)}")
    if mask not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {mask!r}; choose 'labelIds' or 'labelTrainIds'")
    root = dataset_root(root, "cityscapes")
    pairs = select(cityscapes_pairs(root, split, mask), limit, seed)
    if mask == "labelIds":
        def convert(raw, path):
            return label_ids_to_train_ids(raw, ignore_label, path)
    else:
        convert = _train_ids_checked(ignore_label)
    return load_pairs(pairs, convert, CITYSCAPES_CLASSES, "cityscapes", split, size, image_resize, ignore_label)
