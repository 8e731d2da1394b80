"""Reading image files and their parsed box annotations into a :class:`DetectionDataset`.

Shared by the COCO, BDD100K and KITTI loaders: each parses its label format
into :class:`Record` s (one per image, boxes in the file's pixel coordinates),
then :func:`load_records` decodes each image (Pillow, via
:func:`bal.data.segmentation.files.read_image`), checks every box against the
image, resizes image and boxes together and pads the box lists.  Errors are
one line and name the label file and the entry (annotation id, frame, line).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from ..segmentation.files import read_image
from ..segmentation.resize import IMAGE_METHODS, check_size, resize_images
from .dataset import DetectionDataset

__all__ = ["BOX_TOLERANCE", "Record", "read_json", "class_filter", "check_order", "load_records"]

BOX_TOLERANCE = 1.0
"""Pixels a box may stick out of its image (rounding in the label tools) before it is refused; it is clipped."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One annotated image on disk.

    Attributes:
        image: the image file.
        boxes: ``float64 [k, 4]`` ``x0, y0, x1, y1`` in the file's pixel coordinates.
        classes: ``int64 [k]`` class ids (already mapped to the output classes).
        source: the label file, named in errors.
        entries: ``k`` descriptions of the boxes for errors, e.g. ``"annotation id 17"``.
        id: the image's identifier stored in ``file_names``.
        size: ``(H, W)`` the label file declares for the image (COCO), else ``None``.
    """

    image: Path
    boxes: np.ndarray
    classes: np.ndarray
    source: Path
    entries: tuple[str, ...]
    id: str
    size: tuple[int, int] | None = None


def read_json(path: str | os.PathLike, what: str):
    """The parsed JSON file ``path``; ``DatasetNotFoundError`` / ``FormatError`` naming it otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise DatasetNotFoundError(f"{what} {path} is a folder, not a JSON file") from None
    except json.JSONDecodeError as e:
        raise FormatError(f"cannot parse {path}: {e.msg} at line {e.lineno} column {e.colno}; "
                          "the file is truncated or not JSON, download it again") from None
    except UnicodeDecodeError as e:
        raise FormatError(f"cannot parse {path}: not UTF-8 text ({e.reason}); download it again") from None


def class_filter(all_names: Sequence[str], class_names: Sequence[str] | None, source: str) -> tuple[
        tuple[str, ...], dict[int, int]]:
    """Output class names and ``{source class id: output class id}`` for an optional ``class_names`` subset.

    Source classes missing from the map are dropped (their boxes are skipped).
    Raises ``ValueError`` naming ``source`` for a requested name it does not have.
    """
    all_names = tuple(all_names)
    if class_names is None:
        return all_names, {i: i for i in range(len(all_names))}
    if isinstance(class_names, str):
        class_names = (class_names,)
    wanted = tuple(str(n) for n in class_names)
    unknown = [n for n in wanted if n not in all_names]
    if unknown or not wanted or len(set(wanted)) != len(wanted):
        raise ValueError(f"class_names {list(wanted)}: {'unknown ' + str(unknown) if unknown else 'empty or repeated'}"
                         f"; {source} has {list(all_names)}")
    return wanted, {all_names.index(n): j for j, n in enumerate(wanted)}


def check_order(source, entry: str, box) -> None:
    """``FormatError`` naming ``source`` and ``entry`` unless ``x0 <= x1`` and ``y0 <= y1`` (and all finite)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(np.isfinite([x0, y0, x1, y1])):
        raise FormatError(f"{source}: {entry}: box {[x0, y0, x1, y1]} has a non-finite coordinate")
    if x1 < x0:
        raise FormatError(f"{source}: {entry}: box x1={x1:g} < x0={x0:g} (negative width)")
    if y1 < y0:
        raise FormatError(f"{source}: {entry}: box y1={y1:g} < y0={y0:g} (negative height)")


def _inside(r: Record, H: int, W: int, tolerance: float) -> np.ndarray:
    """``r.boxes`` clipped to the ``H x W`` image; ``FormatError`` for one more than ``tolerance`` outside."""
    b = r.boxes
    if not len(b):
        return np.zeros((0, 4))
    out = (b[:, 0] < -tolerance) | (b[:, 1] < -tolerance) | (b[:, 2] > W + tolerance) | (b[:, 3] > H + tolerance)
    if out.any():
        k = int(np.argmax(out))
        raise FormatError(
            f"{r.source}: {r.entries[k]}: box (x0, y0, x1, y1) = {[round(float(v), 2) for v in b[k]]} lies outside "
            f"the {W}x{H} (WxH) image {r.image.name} by more than {tolerance:g} px"
        )
    return np.clip(b, 0.0, [W, H, W, H])


def load_records(
    records: Sequence[Record],
    class_names: Sequence[str],
    name: str,
    split: str,
    size: tuple[int, int] | None = None,
    image_resize: str = "area",
    tolerance: float = BOX_TOLERANCE,
    attributes: dict[str, np.ndarray] | None = None,
) -> DetectionDataset:
    """Decode, check, resize and stack ``records`` into a :class:`DetectionDataset`.

    Args:
        records: the images, in output order; box order and class ids are checked here.
        class_names, name, split, attributes: stored in the result (attributes are ``[N]`` arrays).
        size: target ``(H, W)``; boxes are scaled by ``(W / w, H / h)`` of each image. ``None``
            keeps the files' size (all must then agree).
        image_resize: ``"area"`` or ``"bilinear"``.
        tolerance: pixels a box may exceed its image by; such boxes are clipped.

    Raises:
        DatasetNotFoundError: an image file is missing (names it and the label file).
        FormatError: a box with ``x1 < x0`` / ``y1 < y0`` or outside its image, an image whose
            size differs from the one its label file declares, an undecodable image, or
            (``size=None``) images of different sizes.
    """
    if image_resize not in IMAGE_METHODS:
        raise ValueError(f"unknown image_resize {image_resize!r}; choose 'area' or 'bilinear'")
    if size is not None:
        size = check_size(size)
    images, boxes, classes = [], [], []
    for r in records:
        for entry, box in zip(r.entries, r.boxes):
            check_order(r.source, entry, box)
        if not r.image.is_file():
            raise DatasetNotFoundError(
                f"image {r.image} (listed in {r.source}) not found; unpack the images next to the labels "
                "or pass image_dir="
            )
        img = read_image(r.image)
        h, w = img.shape[:2]
        if r.size is not None and tuple(r.size) != (h, w):
            raise FormatError(f"{r.source}: image {r.image.name} is {w}x{h} (WxH) but the labels declare "
                              f"{r.size[1]}x{r.size[0]}; the image or the label file is wrong")
        b = _inside(r, h, w, tolerance)
        if size is not None and (h, w) != size:
            img = resize_images(img, size, image_resize) / np.float32(255.0)
            b = b * np.array([size[1] / w, size[0] / h] * 2)
            b = np.clip(b, 0.0, [size[1], size[0]] * 2)  # float rounding of the scale
        else:
            img = img.astype(np.float32) / np.float32(255.0)
        if images and img.shape != images[0].shape:
            raise FormatError(
                f"{name} {split}: {r.image} is {img.shape[1]}x{img.shape[0]} (WxH) but {records[0].image} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; pass size=(height, width) to resize all images"
            )
        images.append(np.clip(img, 0.0, 1.0, dtype=np.float32))
        boxes.append(b.astype(np.float32))
        classes.append(np.asarray(r.classes, np.int32))
    if not images:
        raise DatasetNotFoundError(f"{name} {split}: no images to load")
    return DetectionDataset.from_lists(
        np.stack(images), boxes, classes, tuple(class_names), name=name, split=split,
        file_names=tuple(r.id for r in records), attributes=attributes or {},
    )
