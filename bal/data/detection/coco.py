"""COCO-format object detection (``instances_*.json``, Lin et al., ECCV 2014).

The annotation file holds three lists::

    images:       [{"id": 397133, "file_name": "000000397133.jpg", "width": 640, "height": 427}, ...]
    annotations:  [{"id": 82445, "image_id": 397133, "category_id": 44,
                    "bbox": [x, y, w, h], "iscrowd": 0, ...}, ...]
    categories:   [{"id": 1, "name": "person", ...}, ...]

``bbox`` is ``[x, y, width, height]`` in pixels from the image's top-left
corner; it becomes ``x0, y0, x1, y1 = x, y, x + w, y + h``.  Category ids
(1..90 with gaps in COCO) become contiguous class ids ``0..C-1`` in the order
of increasing category id (``class_names`` are the category names), or in the
order of ``class_names=`` when a subset is asked for (boxes of the other
categories are then dropped).  ``iscrowd=1`` annotations (one box around a
crowd) are skipped unless ``include_crowd=True``.  Images without annotations
are kept (they hold no box) unless ``skip_empty=True``.

Default layout (the unpacked ``annotations_trainval2017.zip`` and ``val2017.zip``)::

    {root}/annotations/instances_{split}.json
    {root}/{split}/{file_name}

Any exporter's COCO-format file works too: pass ``annotation_file=`` and
``image_dir=``.  COCO is downloadable from https://cocodataset.org/ (no
automatic download here).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from ..segmentation.files import dataset_root, select
from .dataset import DetectionDataset
from .files import Record, class_filter, load_records, read_json

__all__ = ["load_coco", "coco_records"]

HOMEPAGE = "https://cocodataset.org/#download"


def _entries(data, key: str, path: Path, required: bool = True) -> list[dict]:
    items = data.get(key) if isinstance(data, dict) else None
    if items is None and not required:
        return []
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        got = type(data).__name__ if not isinstance(data, dict) else f"{key!r}: {type(items).__name__}"
        raise FormatError(f"{path}: expected a COCO instances file, an object with a list of {key!r} objects; "
                          f"got {got}")
    return items


def _field(item: dict, key: str, path: Path, entry: str, kind=(int, str)):
    value = item.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        raise FormatError(f"{path}: {entry}: missing or invalid {key!r} (got {value!r})")
    return value


def _bbox(ann: dict, path: Path, entry: str) -> list[float]:
    b = ann.get("bbox")
    if (not isinstance(b, list) or len(b) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)):
        raise FormatError(f"{path}: {entry}: 'bbox' must be 4 numbers [x, y, width, height]; got {b!r}")
    x, y, w, h = (float(v) for v in b)
    return [x, y, x + w, y + h]


def coco_records(
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    class_names=None,
    include_crowd: bool = False,
    skip_empty: bool = False,
) -> tuple[list[Record], tuple[str, ...], list]:
    """Parse a COCO instances file: one :class:`Record` per image, the class names, and the image ids."""
    path, image_dir = Path(annotation_file), Path(image_dir)
    data = read_json(path, "COCO annotation file")
    images = _entries(data, "images", path)
    anns = _entries(data, "annotations", path)
    cats = _entries(data, "categories", path)

    cat_ids, cat_names = [], []
    for j, c in enumerate(cats):
        entry = f"category {j}"
        cat_ids.append(_field(c, "id", path, entry))
        cat_names.append(str(_field(c, "name", path, f"category id {cat_ids[-1]}", str)))
    for values, what in ((cat_ids, "id"), (cat_names, "name")):
        dup = sorted({str(v) for v in values if values.count(v) > 1})
        if dup:
            raise FormatError(f"{path}: categories repeat the {what}(s) {dup}")
    order = sorted(range(len(cats)), key=lambda j: (str(type(cat_ids[j])), cat_ids[j]))
    all_names = tuple(cat_names[j] for j in order)
    names, keep = class_filter(all_names, class_names, str(path))
    cat_to_class = {cat_ids[j]: keep.get(rank) for rank, j in enumerate(order)}  # None: dropped category

    by_image: dict = {}
    info: dict = {}
    for j, im in enumerate(images):
        iid = _field(im, "id", path, f"image {j}")
        entry = f"image id {iid}"
        if iid in info:
            raise FormatError(f"{path}: {entry} appears twice in 'images'")
        file_name = _field(im, "file_name", path, entry, str)
        w, h = (_field(im, k, path, entry, (int, float)) for k in ("width", "height"))
        info[iid] = (file_name, (int(h), int(w)))
        by_image[iid] = ([], [], [])

    for j, ann in enumerate(anns):
        aid = ann.get("id", f"#{j}")
        entry = f"annotation id {aid}"
        iid = _field(ann, "image_id", path, entry)
        cid = _field(ann, "category_id", path, entry)
        if iid not in info:
            raise FormatError(f"{path}: {entry}: image_id {iid!r} is not in 'images'")
        if cid not in cat_to_class:
            known = sorted(cat_to_class, key=str)
            raise FormatError(f"{path}: {entry}: category_id {cid!r} is not in 'categories' (ids {known[:20]})")
        box = _bbox(ann, path, entry)
        if (ann.get("iscrowd") and not include_crowd) or cat_to_class[cid] is None:
            continue
        boxes, classes, entries = by_image[iid]
        boxes.append(box)
        classes.append(cat_to_class[cid])
        entries.append(entry)

    records, ids = [], []
    for iid, (file_name, hw) in info.items():
        boxes, classes, entries = by_image[iid]
        if skip_empty and not boxes:
            continue
        records.append(Record(image_dir / file_name, np.asarray(boxes, np.float64).reshape(-1, 4),
                              np.asarray(classes, np.int64), path, tuple(entries), file_name, hw))
        ids.append(iid)
    return records, names, ids


def load_coco(
    split: str = "val2017",
    root: str | os.PathLike | None = None,
    *,
    annotation_file: str | os.PathLike | None = None,
    image_dir: str | os.PathLike | None = None,
    class_names=None,
    size: tuple[int, int] | None = None,
    image_resize: str = "area",
    limit: int | None = None,
    seed: int | None = None,
    include_crowd: bool = False,
    skip_empty: bool = False,
    name: str = "coco",
) -> DetectionDataset:
    """Load a COCO-format detection split as a :class:`DetectionDataset`.

    Args:
        split: the file / folder stem, e.g. ``"val2017"`` or ``"train2017"``.
        root: folder holding ``annotations/`` and ``{split}/``; default the grandparent of
            ``annotation_file`` when given, else ``{$BAL_DATA_DIR or ~/.cache/bal/datasets}/coco``.
        annotation_file: default ``{root}/annotations/instances_{split}.json``.
        image_dir: folder the ``file_name`` s are relative to; default ``{root}/{split}``.
        class_names: keep only these category names, in this order (class ids follow it).
        size: target ``(H, W)``; images are resized and boxes scaled with them. ``None`` keeps
            the files' size (all images must then have the same size).
        image_resize: ``"area"`` (default) or ``"bilinear"``.
        limit, seed: at most ``limit`` images, the first in file order or (with ``seed``) a
            random subset drawn with ``np.random.default_rng(seed)``, kept in file order.
        include_crowd: keep ``iscrowd=1`` boxes.
        skip_empty: drop images without any (kept) box.
        name: stored as the dataset name.

    Returns:
        ``images float32 [N, H, W, 3]``, ``boxes float32 [N, K, 4]`` (``x0, y0, x1, y1`` pixels of
        the returned images), ``classes int32 [N, K]``, ``valid bool [N, K]``; ``file_names`` are the
        ``file_name`` s and ``attributes["image_id"] [N]`` the COCO image ids.

    Raises:
        DatasetNotFoundError: the annotation file, the image folder or an image is missing.
        FormatError (a ``ValueError``), naming the file and the annotation: corrupt JSON, a missing
            field, an unknown ``image_id`` or ``category_id``, a negative box width / height, a box
            more than one pixel outside its image, an image whose size differs from the declared
            ``width`` / ``height``, an undecodable image.
        ValueError: an unknown name in ``class_names``, bad ``size`` / ``limit`` / ``image_resize``.
    """
    if root is None and annotation_file is not None:
        root = Path(annotation_file).expanduser().parent.parent
    root = dataset_root(root, "coco")
    annotation_file = Path(annotation_file) if annotation_file is not None else (
        root / "annotations" / f"instances_{split}.json")
    image_dir = Path(image_dir) if image_dir is not None else root / split
    if not annotation_file.is_file():
        raise DatasetNotFoundError(
            f"COCO annotation file {annotation_file} not found. Download annotations_trainval2017.zip from "
            f"{HOMEPAGE} and unpack it into {root}/ (or pass annotation_file=)."
        )
    records, names, ids = coco_records(annotation_file, image_dir, class_names, include_crowd, skip_empty)
    if not image_dir.is_dir():
        raise DatasetNotFoundError(
            f"COCO image folder {image_dir} not found (the labels are {annotation_file}). Download {split}.zip "
            f"from {HOMEPAGE} and unpack it into {root}/ (or pass image_dir=)."
        )
    keep = select(range(len(records)), limit, seed)
    records = [records[i] for i in keep]
    attrs = {"image_id": np.asarray([ids[i] for i in keep])} if keep else {}
    return load_records(records, names, name, split, size, image_resize, attributes=attrs)
