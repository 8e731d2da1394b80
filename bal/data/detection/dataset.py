"""The :class:`DetectionDataset` container: images with padded, per-image box lists."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence

import numpy as np

from ..dataset import check_class_names, check_unit_images
from ..segmentation.dataset import _describe

__all__ = ["PAD_CLASS", "DetectionDataset", "box_frequencies", "class_presence"]

PAD_CLASS = -1
"""``classes`` value written into padding slots by the constructors here (``valid`` is the truth)."""


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionDataset:
    """One split of an object-detection dataset, as numpy arrays.

    Every image holds up to ``K`` boxes; image ``i``'s boxes are the entries
    ``k`` with ``valid[i, k]``, the rest is padding (boxes 0, classes
    :data:`PAD_CLASS` when built by :meth:`from_lists`, but only ``valid`` counts).

    Attributes:
        images: ``float32 [N, H, W, 3]`` RGB with values in ``[0, 1]``.
        boxes: ``float32 [N, K, 4]`` pixel coordinates ``x0, y0, x1, y1`` of the box
            edges: a box covering pixel columns ``a..b`` has ``x0 = a, x1 = b + 1``;
            valid boxes satisfy ``0 <= x0 <= x1 <= W`` and ``0 <= y0 <= y1 <= H``.
        classes: ``int32 [N, K]`` class ids in ``[0, num_classes)`` where ``valid``.
        valid: ``bool [N, K]``, ``False`` on padding.
        class_names: one name per class id, e.g. ``("car", "pedestrian", ...)``.
        name: dataset name, e.g. ``"road_scenes"`` or ``"coco"``.
        split: e.g. ``"train"``, ``"val"``, ``"test"``.
        file_names: optional per-image file names or ids ``[N]``.
        attributes: per-image arrays of length ``N`` by name, e.g. ``{"night": bool [N]}``
            (road scenes) or ``{"timeofday": str [N]}`` (BDD100K); read-only mapping.

    Construction checks dtypes, shapes, value ranges and every valid box and raises a
    one-line ``ValueError`` naming the offending array, image and box.
    """

    images: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    valid: np.ndarray
    class_names: tuple[str, ...]
    name: str = "detection"
    split: str = "train"
    file_names: tuple[str, ...] | None = None
    attributes: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        im, b, c, v = self.images, self.boxes, self.classes, self.valid
        nm = self.name
        if not isinstance(im, np.ndarray) or im.dtype != np.float32 or im.ndim != 4 or im.shape[-1] != 3:
            raise ValueError(
                f"{nm}: images must be a float32 array [N, H, W, 3] in [0, 1]; got {_describe(im)}. "
                "Convert uint8 images with images.astype(np.float32) / 255."
            )
        if not isinstance(b, np.ndarray) or b.dtype != np.float32 or b.ndim != 3 or b.shape[-1] != 4:
            raise ValueError(f"{nm}: boxes must be a float32 array [N, K, 4] (x0, y0, x1, y1); got {_describe(b)}")
        if not isinstance(c, np.ndarray) or c.dtype != np.int32 or c.ndim != 2:
            raise ValueError(f"{nm}: classes must be an int32 array [N, K]; got {_describe(c)}")
        if not isinstance(v, np.ndarray) or v.dtype != np.bool_ or v.ndim != 2:
            raise ValueError(f"{nm}: valid must be a bool array [N, K]; got {_describe(v)}")
        if not (len(im) == len(b) and b.shape[:2] == c.shape == v.shape):
            raise ValueError(
                f"{nm}: images {list(im.shape)}, boxes {list(b.shape)}, classes {list(c.shape)} and valid "
                f"{list(v.shape)} disagree on [N, K]"
            )
        check_unit_images(nm, im)
        object.__setattr__(self, "class_names", check_class_names(nm, self.class_names))
        self._check_boxes(im.shape[1], im.shape[2])
        if self.file_names is not None:
            files = tuple(str(f) for f in self.file_names)
            if len(files) != len(im):
                raise ValueError(f"{nm}: {len(files)} file_names for {len(im)} images")
            object.__setattr__(self, "file_names", files)
        attrs = {}
        for key, value in dict(self.attributes or {}).items():
            arr = np.asarray(value)
            if arr.ndim != 1 or len(arr) != len(im):
                raise ValueError(f"{nm}: attribute {key!r} must have shape [{len(im)}] (one value per image); "
                                 f"got shape {list(arr.shape)}")
            attrs[str(key)] = arr
        object.__setattr__(self, "attributes", types.MappingProxyType(attrs))

    def _check_boxes(self, H: int, W: int) -> None:
        b, c, v, nm = self.boxes, self.classes, self.valid, self.name

        def first(bad, what):
            i, k = (int(a[0]) for a in np.nonzero(bad))
            raise ValueError(f"{nm}: image {i} box {k} {list(map(float, b[i, k]))} (class {int(c[i, k])}): {what}")

        if not v.any():
            return
        x0, y0, x1, y1 = (b[..., j] for j in range(4))
        checks = (
            (~np.isfinite(b).all(-1), "coordinates must be finite"),
            (x1 < x0, "x1 < x0; boxes are (x0, y0, x1, y1) with x0 <= x1"),
            (y1 < y0, "y1 < y0; boxes are (x0, y0, x1, y1) with y0 <= y1"),
            ((x0 < 0) | (y0 < 0) | (x1 > W) | (y1 > H), f"outside the image; need 0 <= x <= {W}, 0 <= y <= {H}"),
            ((c < 0) | (c >= len(self.class_names)), f"class id outside [0, {len(self.class_names)})"),
        )
        for bad, what in checks:
            bad = bad & v
            if bad.any():
                first(bad, what)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_lists(
        cls,
        images: np.ndarray,
        boxes: Sequence[np.ndarray],
        classes: Sequence[np.ndarray],
        class_names: Sequence[str],
        max_boxes: int | None = None,
        **kwargs,
    ) -> DetectionDataset:
        """Pad per-image box lists into a dataset.

        Args:
            images: ``float32 [N, H, W, 3]``.
            boxes: ``N`` arrays ``[k_i, 4]`` (``x0, y0, x1, y1``).
            classes: ``N`` integer arrays ``[k_i]``.
            class_names: stored as is.
            max_boxes: ``K``; default the largest ``k_i`` (0 when there is no box).
            kwargs: ``name``, ``split``, ``file_names``, ``attributes``.
        """
        if len(boxes) != len(images) or len(classes) != len(images):
            raise ValueError(f"{len(images)} images but {len(boxes)} box lists and {len(classes)} class lists")
        counts = [len(x) for x in boxes]
        k = max(counts, default=0) if max_boxes is None else int(max_boxes)
        if counts and max(counts) > k:
            i = int(np.argmax(counts))
            raise ValueError(f"image {i} has {counts[i]} boxes, more than max_boxes={k}")
        n = len(images)
        out_b = np.zeros((n, k, 4), np.float32)
        out_c = np.full((n, k), PAD_CLASS, np.int32)
        out_v = np.zeros((n, k), bool)
        for i, (bi, ci) in enumerate(zip(boxes, classes)):
            m = len(bi)
            if len(ci) != m:
                raise ValueError(f"image {i}: {m} boxes but {len(ci)} classes")
            if m:
                out_b[i, :m] = np.asarray(bi, np.float32).reshape(m, 4)
                out_c[i, :m] = np.asarray(ci)
                out_v[i, :m] = True
        return cls(images, out_b, out_c, out_v, tuple(class_names), **kwargs)

    # ------------------------------------------------------------------ views
    @property
    def num_classes(self) -> int:
        """Number of classes ``C`` (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def max_boxes(self) -> int:
        """``K``, the padded number of box slots per image."""
        return self.boxes.shape[1]

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's ``(H, W, 3)``."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def num_boxes(self) -> np.ndarray:
        """``int64 [N]``: number of valid boxes in each image."""
        return self.valid.sum(axis=1).astype(np.int64)

    def image_boxes(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``i``'s valid boxes ``float32 [k, 4]`` and classes ``int32 [k]``, in slot order."""
        keep = self.valid[i]
        return self.boxes[i][keep], self.classes[i][keep]

    def box_lists(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(boxes float32 [k_i, 4], classes int32 [k_i]) for each image]`` (padding dropped)."""
        return [self.image_boxes(i) for i in range(len(self))]

    def class_counts(self) -> np.ndarray:
        """``int64 [num_classes]``: number of valid boxes of each class over the split."""
        return np.bincount(self.classes[self.valid], minlength=self.num_classes).astype(np.int64)

    def subset(self, indices) -> DetectionDataset:
        """A new dataset holding the images at integer ``indices [M]``, in that order (``K`` kept)."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise ValueError(f"indices must be a 1-D integer array; got {idx.dtype} with shape {idx.shape}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}); found {idx.min()}..{idx.max()}")
        files = None if self.file_names is None else tuple(self.file_names[i] for i in idx)
        return dataclasses.replace(
            self, images=self.images[idx], boxes=self.boxes[idx], classes=self.classes[idx], valid=self.valid[idx],
            file_names=files, attributes={k: a[idx] for k, a in self.attributes.items()},
        )

    def pad(self, max_boxes: int) -> DetectionDataset:
        """The same boxes in ``max_boxes`` slots per image, valid ones first (e.g. to batch two splits alike).

        Raises ``ValueError`` when an image holds more than ``max_boxes`` valid boxes.
        """
        b, c = zip(*self.box_lists()) if len(self) else ((), ())
        return DetectionDataset.from_lists(
            self.images, b, c, self.class_names, max_boxes, name=self.name, split=self.split,
            file_names=self.file_names, attributes=dict(self.attributes),
        )

    def __repr__(self) -> str:
        return (f"DetectionDataset(name={self.name!r}, split={self.split!r}, images=float32"
                f"{list(self.images.shape)}, boxes={int(self.valid.sum())} in {self.max_boxes} slots, "
                f"num_classes={self.num_classes})")


def box_frequencies(dataset: DetectionDataset) -> dict[str, float]:
    """Fraction of all valid boxes belonging to each class, ``{class name: fraction}`` (sums to 1 when any box)."""
    counts = dataset.class_counts()
    total = max(int(counts.sum()), 1)
    return {n: float(k) / total for n, k in zip(dataset.class_names, counts)}


def class_presence(dataset: DetectionDataset) -> dict[str, float]:
    """Fraction of images holding at least one box of each class, ``{class name: fraction}``."""
    n = len(dataset)
    out = {}
    for k, name in enumerate(dataset.class_names):
        out[name] = float(((dataset.classes == k) & dataset.valid).any(axis=1).sum()) / max(n, 1)
    return out
