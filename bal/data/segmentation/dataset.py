"""The :class:`SegmentationDataset` container and its per-class pixel statistics."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["IGNORE_LABEL", "SegmentationDataset", "class_frequencies", "class_presence"]

from bal.checks import IGNORE_LABEL  # noqa: E402  (one definition)
from bal.data.dataset import check_class_names, check_unit_images  # noqa: E402
"""Mask value of pixels that carry no label (Cityscapes / BDD100K convention); losses and metrics skip them."""


def _describe(x) -> str:
    return f"{getattr(x, 'dtype', type(x).__name__)} with shape {getattr(x, 'shape', None)}"


@dataclasses.dataclass(frozen=True, eq=False)
class SegmentationDataset:
    """One split of a semantic-segmentation dataset, as numpy arrays.

    Attributes:
        images: ``float32 [N, H, W, C]`` with values in ``[0, 1]`` (``C=3`` RGB, ``1`` grayscale).
        masks: ``int32 [N, H, W]`` train ids in ``[0, num_classes)``, or ``ignore_label``
            for pixels without a label.
        class_names: one name per train id, e.g. ``("road", "sidewalk", ...)``;
            ``num_classes == len(class_names)``.
        name: dataset name, e.g. ``"cityscapes"`` or ``"road_markings"``.
        split: e.g. ``"train"``, ``"val"``, ``"test"``.
        ignore_label: the mask value meaning "no label" (default :data:`IGNORE_LABEL` = 255);
            must not be a train id.
        ids: optional per-image identifiers ``[N]`` (e.g. ``"aachen_000000_000019"``).

    Construction checks dtypes, shapes and value ranges and raises a ``ValueError``
    naming the offending array and value.
    """

    images: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...]
    name: str = "segmentation"
    split: str = "train"
    ignore_label: int = IGNORE_LABEL
    ids: tuple[str, ...] | None = None

    def __post_init__(self):
        im, m = self.images, self.masks
        if not isinstance(im, np.ndarray) or im.dtype != np.float32 or im.ndim != 4:
            raise ValueError(
                f"{self.name}: images must be a float32 array [N, H, W, C] in [0, 1]; got {_describe(im)}. "
                "Convert uint8 images with images.astype(np.float32) / 255."
            )
        if not isinstance(m, np.ndarray) or m.dtype != np.int32 or m.ndim != 3:
            raise ValueError(f"{self.name}: masks must be an int32 array [N, H, W]; got {_describe(m)}")
        if im.shape[:3] != m.shape:
            raise ValueError(
                f"{self.name}: images {list(im.shape)} and masks {list(m.shape)} disagree on [N, H, W]"
            )
        check_unit_images(self.name, im)
        names = check_class_names(self.name, self.class_names, unique=False)
        object.__setattr__(self, "class_names", names)
        k, ign = len(names), int(self.ignore_label)
        if 0 <= ign < k:
            raise ValueError(
                f"{self.name}: ignore_label={ign} collides with train id {ign} ({names[ign]!r}); "
                f"use a value outside [0, {k}), e.g. {IGNORE_LABEL}"
            )
        object.__setattr__(self, "ignore_label", ign)
        if m.size:
            bad = (m < 0) | (m >= k)
            bad &= m != ign
            if bad.any():
                values = np.unique(m[bad])
                raise ValueError(
                    f"{self.name}: masks hold values {values[:10].tolist()} outside the train ids "
                    f"[0, {k}) and the ignore label {ign}"
                )
        if self.ids is not None:
            ids = tuple(str(i) for i in self.ids)
            if len(ids) != len(im):
                raise ValueError(f"{self.name}: {len(ids)} ids for {len(im)} images")
            object.__setattr__(self, "ids", ids)

    @property
    def num_classes(self) -> int:
        """Number of train ids ``K`` (the ignore label is not a class)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's ``(H, W, C)``."""
        return tuple(self.images.shape[1:])

    def pixel_counts(self) -> np.ndarray:
        """``int64 [num_classes]`` number of pixels of each class over the whole split (ignored pixels excluded)."""
        return _counts(self.masks, self.num_classes)

    def subset(self, indices) -> SegmentationDataset:
        """A new dataset holding the images at integer ``indices [K]``, in that order."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise ValueError(f"indices must be a 1-D integer array; got {idx.dtype} with shape {idx.shape}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}); found {idx.min()}..{idx.max()}")
        ids = None if self.ids is None else tuple(self.ids[i] for i in idx)
        return dataclasses.replace(self, images=self.images[idx], masks=self.masks[idx], ids=ids)

    def __repr__(self) -> str:
        return (f"SegmentationDataset(name={self.name!r}, split={self.split!r}, images=float32"
                f"{list(self.images.shape)}, num_classes={self.num_classes}, ignore_label={self.ignore_label})")


def _counts(masks: np.ndarray, num_classes: int) -> np.ndarray:
    flat = masks.reshape(-1)
    flat = flat[(flat >= 0) & (flat < num_classes)]
    return np.bincount(flat, minlength=num_classes).astype(np.int64)


def class_frequencies(dataset: SegmentationDataset) -> dict[str, float]:
    """Fraction of labelled pixels belonging to each class, ``{class name: fraction}``.

    Ignored pixels are excluded from numerator and denominator, so the values
    sum to 1 (when any pixel is labelled).  Use it to find rare classes and to
    set class weights, e.g. ``w_c = 1 / sqrt(f_c)``.
    """
    counts = dataset.pixel_counts()
    total = max(int(counts.sum()), 1)
    return {n: float(c) / total for n, c in zip(dataset.class_names, counts)}


def class_presence(dataset: SegmentationDataset) -> dict[str, float]:
    """Fraction of images holding at least one pixel of each class, ``{class name: fraction}``."""
    n, k = len(dataset), dataset.num_classes
    present = np.zeros(k, np.int64)
    for c in range(k):
        present[c] = int((dataset.masks == c).any(axis=(1, 2)).sum()) if n else 0
    return {name: float(p) / max(n, 1) for name, p in zip(dataset.class_names, present)}
