"""The :class:`Dataset` container returned by :func:`bal.data.load`."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Dataset", "check_unit_images", "check_class_names"]


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a labelled image dataset, as numpy arrays.

    Attributes:
        images: ``uint8 [N, H, W, C]`` (``C=1`` for grayscale, ``3`` for RGB),
            values 0..255.  May be a read-only view of the decoded file; copy
            (e.g. ``images.astype(np.float32) / 255``) before modifying.
        labels: ``int32 [N]`` class indices in ``[0, num_classes)``.
        num_classes: number of classes ``C``.
        class_names: ``num_classes`` human-readable names, index-aligned with labels.
        name: dataset name, e.g. ``"mnist"``.
        split: ``"train"`` or ``"test"``.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    name: str
    split: str

    def __post_init__(self):
        im, lab = self.images, self.labels
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 4:
            raise ValueError(
                f"Dataset images must be a uint8 array [N, H, W, C]; got "
                f"{getattr(im, 'dtype', type(im).__name__)} with shape {getattr(im, 'shape', None)}"
            )
        if not isinstance(lab, np.ndarray) or lab.dtype != np.int32 or lab.ndim != 1:
            raise ValueError(
                f"Dataset labels must be an int32 array [N]; got "
                f"{getattr(lab, 'dtype', type(lab).__name__)} with shape {getattr(lab, 'shape', None)}"
            )
        if len(im) != len(lab):
            raise ValueError(f"Dataset has {len(im)} images but {len(lab)} labels")
        if int(self.num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class_names for num_classes={self.num_classes}")
        if len(lab) and (lab.min() < 0 or lab.max() >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); found {int(lab.min())}..{int(lab.max())}"
            )
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's ``(H, W, C)``."""
        return tuple(self.images.shape[1:])

    def counts(self) -> np.ndarray:
        """``int64 [num_classes]`` number of examples per class."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices) -> "Dataset":
        """A new :class:`Dataset` holding the examples at integer ``indices`` ``[K]``, in that order."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise ValueError(f"indices must be a 1-D integer array; got {idx.dtype} with shape {idx.shape}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}); found {idx.min()}..{idx.max()}")
        return dataclasses.replace(self, images=self.images[idx], labels=self.labels[idx])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, split={self.split!r}, images={self.images.dtype}"
                f"{list(self.images.shape)}, num_classes={self.num_classes})")


def check_unit_images(name: str, images: np.ndarray) -> None:
    """Float images of a dense-task data set must lie in [0, 1] (NaN fails too)."""
    if images.size:
        lo, hi = float(images.min()), float(images.max())
        if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
            raise ValueError(f"{name}: image values must lie in [0, 1]; found {lo}..{hi}")


def check_class_names(name: str, class_names, *, unique: bool = True) -> tuple[str, ...]:
    """``class_names`` as a non-empty tuple of strings (distinct when ``unique``)."""
    names = tuple(str(c) for c in class_names)
    if not names:
        raise ValueError(f"{name}: class_names is empty; a dataset needs at least one class")
    if unique and len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{name}: class_names repeat {dup}; each class needs its own name")
    return names
