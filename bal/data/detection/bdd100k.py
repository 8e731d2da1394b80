"""BDD100K object detection (Yu et al., CVPR 2020) from its official ``det_20`` labels.

Layout under ``root`` (default ``{data_dir}/bdd100k``; ``bdd100k_images_100k.zip`` +
``bdd100k_det_20_labels_trainval.zip``)::

    {root}/images/100k/{split}/{name}.jpg
    {root}/labels/det_20/det_{split}.json

The label file is a list of frames (the Scalabel format)::

    [{"name": "b1c66a42-6f7d68ca.jpg",
      "attributes": {"weather": "overcast", "timeofday": "daytime", "scene": "city street"},
      "labels": [{"id": "1", "category": "car",
                  "box2d": {"x1": 45.2, "y1": 254.5, "x2": 357.8, "y2": 487.9}}, ...]}, ...]

(a ``{"frames": [...]}`` object is accepted too).  Boxes are pixel corners
``x1, y1, x2, y2`` of the 1280x720 images.  The 10 detection classes are
:data:`BDD100K_DET_CLASSES`; ``other person``, ``other vehicle`` and
``trailer`` boxes, which the official evaluation ignores, are skipped, as are
labels without ``box2d`` that carry ``poly2d`` (lanes / drivable area in the
2018 ``bdd100k_labels_images_*.json`` files, whose ``person`` / ``bike`` /
``motor`` categories are read as ``pedestrian`` / ``bicycle`` / ``motorcycle``).
Any other category is an error.  Frame attributes (``weather``,
``timeofday``, ``scene``) become ``attributes`` arrays of strings
(``"undefined"`` where a frame lacks one), plus ``attributes["night"]`` =
``timeofday == "night"``.  Frames without labels are kept (no box).
BDD100K cannot be downloaded automatically: register at
https://bdd-data.berkeley.edu/.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from ..segmentation.files import dataset_root, select
from .dataset import DetectionDataset
from .files import Record, class_filter, load_records, read_json

__all__ = ["BDD100K_DET_CLASSES", "BDD100K_DET_SPLITS", "bdd100k_records", "load_bdd100k_detection"]

HOMEPAGE = "https://bdd-data.berkeley.edu/"
BDD100K_DET_SPLITS = ("train", "val")
BDD100K_DET_CLASSES = (
    "pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "traffic light", "traffic sign",
)
"""The 10 evaluated BDD100K detection classes, index = class id."""

_IGNORED = frozenset({"other person", "other vehicle", "trailer"})  # labelled, but not evaluated
_ALIASES = {"person": "pedestrian", "bike": "bicycle", "motor": "motorcycle"}  # 2018 label files
_UNDEFINED = "undefined"


def _box(label: dict, path: Path, entry: str) -> list[float]:
    b = label.get("box2d")
    keys = ("x1", "y1", "x2", "y2")
    if not isinstance(b, dict) or not all(
            isinstance(b.get(k), (int, float)) and not isinstance(b.get(k), bool) for k in keys):
        raise FormatError(f"{path}: {entry}: 'box2d' must be an object with numbers x1, y1, x2, y2; got {b!r}")
    return [float(b[k]) for k in keys]


def bdd100k_records(
    label_file: str | os.PathLike, image_dir: str | os.PathLike, class_names=None,
) -> tuple[list[Record], tuple[str, ...], list[dict]]:
    """Parse a BDD100K detection label file: one :class:`Record` per frame, the class names, frame attributes."""
    path, image_dir = Path(label_file), Path(image_dir)
    data = read_json(path, "BDD100K label file")
    if isinstance(data, dict) and isinstance(data.get("frames"), list):
        data = data["frames"]
    if not isinstance(data, list) or not all(isinstance(f, dict) for f in data):
        raise FormatError(f"{path}: expected a BDD100K detection label file, a JSON list of frame objects; "
                          f"got {type(data).__name__}")
    names, keep = class_filter(BDD100K_DET_CLASSES, class_names, "BDD100K")
    index = {n: i for i, n in enumerate(BDD100K_DET_CLASSES)}
    records, attributes = [], []
    for fi, frame in enumerate(data):
        fname = frame.get("name")
        if not isinstance(fname, str) or not fname:
            raise FormatError(f"{path}: frame {fi}: missing or invalid 'name' (got {fname!r})")
        labels = frame.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(lab, dict) for lab in labels):
            raise FormatError(f"{path}: frame {fi} ({fname}): 'labels' must be a list of objects")
        boxes, classes, entries = [], [], []
        for li, lab in enumerate(labels):
            entry = f"frame {fi} ({fname}) label {lab.get('id', li)}"
            category = lab.get("category")
            if "box2d" not in lab and "poly2d" in lab:
                continue  # lane / drivable-area polygons of the 2018 files
            if not isinstance(category, str):
                raise FormatError(f"{path}: {entry}: missing or invalid 'category' (got {category!r})")
            category = _ALIASES.get(category, category)
            box = _box(lab, path, entry)
            if category in _IGNORED:
                continue
            if category not in index:
                raise FormatError(f"{path}: {entry}: unknown category {category!r}; BDD100K detection has "
                                  f"{list(BDD100K_DET_CLASSES)} (and the ignored {sorted(_IGNORED)})")
            if index[category] not in keep:
                continue
            boxes.append(box)
            classes.append(keep[index[category]])
            entries.append(entry)
        attrs = frame.get("attributes")
        attributes.append(attrs if isinstance(attrs, dict) else {})
        records.append(Record(image_dir / fname, np.asarray(boxes, np.float64).reshape(-1, 4),
                              np.asarray(classes, np.int64), path, tuple(entries), Path(fname).stem))
    return records, names, attributes


def _attribute_arrays(frames: list[dict]) -> dict[str, np.ndarray]:
    keys = sorted({k for f in frames for k, v in f.items() if isinstance(v, str)})
    out = {k: np.asarray([str(f.get(k, _UNDEFINED)) for f in frames]) for k in keys}
    if "timeofday" in out:
        out["night"] = out["timeofday"] == "night"
    return out


def load_bdd100k_detection(
    split: str = "val",
    root: str | os.PathLike | None = None,
    *,
    label_file: str | os.PathLike | None = None,
    image_dir: str | os.PathLike | None = None,
    class_names=None,
    size: tuple[int, int] | None = None,
    image_resize: str = "area",
    limit: int | None = None,
    seed: int | None = None,
) -> DetectionDataset:
    """Load one split of BDD100K detection as a :class:`DetectionDataset`.

    Args:
        split: ``"train"`` or ``"val"`` (test labels are not public).
        root: the folder holding ``images/`` and ``labels/``; default
            ``{$BAL_DATA_DIR or ~/.cache/bal/datasets}/bdd100k``.
        label_file: default ``{root}/labels/det_20/det_{split}.json``.
        image_dir: default ``{root}/images/100k/{split}``.
        class_names: keep only these of :data:`BDD100K_DET_CLASSES`, in this order.
        size: target ``(H, W)``, e.g. ``(72, 128)``; boxes are scaled with the images. ``None``
            keeps 720x1280.
        image_resize: ``"area"`` (default) or ``"bilinear"``.
        limit, seed: at most ``limit`` frames, the first in file order or (with ``seed``) a random
            subset drawn with ``np.random.default_rng(seed)``, kept in file order.

    Returns:
        ``images float32 [N, H, W, 3]``, ``boxes float32 [N, K, 4]``, ``classes int32 [N, K]``,
        ``valid bool [N, K]``; ``file_names`` are the frame names without extension, and
        ``attributes`` hold the frame attributes (``timeofday``, ``weather``, ``scene``: str [N])
        and ``night`` (bool [N]) when ``timeofday`` is present.

    Raises:
        DatasetNotFoundError: the label file, the image folder or an image is missing.
        FormatError (a ``ValueError``), naming the file and the frame / label: corrupt JSON, a
            missing field, an unknown category, ``x2 < x1`` / ``y2 < y1``, a box more than one
            pixel outside its image, an undecodable image.
        ValueError: unknown ``split``, an unknown name in ``class_names``, bad ``size`` / ``limit``.
    """
    if split not in BDD100K_DET_SPLITS and label_file is None:
        raise ValueError(f"unknown BDD100K split {split!r}; choose 'train' or 'val' (test labels are not public)")
    root = dataset_root(root, "bdd100k")
    label_file = Path(label_file) if label_file is not None else root / "labels" / "det_20" / f"det_{split}.json"
    image_dir = Path(image_dir) if image_dir is not None else root / "images" / "100k" / split
    if not label_file.is_file():
        raise DatasetNotFoundError(
            f"BDD100K detection labels {label_file} not found. BDD100K cannot be downloaded automatically: "
            f"register at {HOMEPAGE}, download '100K Images' and 'Detection 2020 Labels' and unpack them so that "
            f"{root}/ holds images/100k/{split}/ and labels/det_20/det_{split}.json (or pass label_file=)."
        )
    records, names, frames = bdd100k_records(label_file, image_dir, class_names)
    if not image_dir.is_dir():
        raise DatasetNotFoundError(
            f"BDD100K image folder {image_dir} not found (the labels are {label_file}). Unpack "
            f"bdd100k_images_100k.zip from {HOMEPAGE} into {root}/ (or pass image_dir=)."
        )
    keep = select(range(len(records)), limit, seed)
    return load_records([records[i] for i in keep], names, "bdd100k", split, size, image_resize,
                        attributes=_attribute_arrays([frames[i] for i in keep]))
