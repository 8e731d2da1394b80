"""KITTI 2D object detection (Geiger et al., CVPR 2012) from its official folders.

Layout under ``root`` (default ``{data_dir}/kitti``; ``data_object_image_2.zip`` +
``data_object_label_2.zip``)::

    {root}/{split}/image_2/{stem}.png
    {root}/{split}/label_2/{stem}.txt

(``root`` may also point straight at a folder holding ``image_2/`` and
``label_2/``).  Each label line describes one object with 15 space-separated
fields (16 in result files, the last a score)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry
    Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59

Only ``type`` and the 2D box ``x1 y1 x2 y2`` (pixels of the left colour
camera image) are used; they are taken as they are (KITTI's right / bottom
edges are at most ``W - 1`` / ``H - 1``).  ``DontCare`` regions are skipped;
the other types are :data:`KITTI_CLASSES`.  The images are about 1242x375 but
vary by a few pixels, so pass ``size=`` to stack them.  Only ``training`` has
labels; KITTI requires registration at https://www.cvlibs.net/datasets/kitti/.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError, FormatError
from ..segmentation.files import dataset_root, select
from .dataset import DetectionDataset
from .files import Record, class_filter, load_records

__all__ = ["KITTI_CLASSES", "kitti_records", "read_kitti_labels", "load_kitti"]

HOMEPAGE = "https://www.cvlibs.net/datasets/kitti/eval_object.php?obj_benchmark=2d"
KITTI_CLASSES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc")
"""The 8 KITTI object types (``DontCare`` excluded), index = class id."""

_DONT_CARE = "DontCare"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_kitti_labels(path: str | os.PathLike) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """Boxes ``float64 [k, 4]`` (``x1 y1 x2 y2``), types and ``"line i"`` entries of one ``label_2`` file.

    ``DontCare`` lines and blank lines are skipped.  Raises ``DatasetNotFoundError`` for a missing
    file and ``FormatError`` naming the file and line for a malformed one.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"KITTI label file {path} not found") from None
    except UnicodeDecodeError as e:
        raise FormatError(f"cannot read {path}: not text ({e.reason}); the label file is corrupt") from None
    boxes, types, entries = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == _DONT_CARE:
            continue
        if len(fields) not in (15, 16):
            raise FormatError(f"{path}: line {n}: {len(fields)} fields; a KITTI label line has 15 "
                              "(type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry)")
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError as e:
            raise FormatError(f"{path}: line {n}: {e}") from None
        boxes.append(values[3:7])
        types.append(fields[0])
        entries.append(f"line {n} ({fields[0]})")
    return np.asarray(boxes, np.float64).reshape(-1, 4), types, tuple(entries)


def _folder(root: Path, split: str) -> Path:
    return root if (root / "label_2").is_dir() else root / split


def kitti_records(root: str | os.PathLike, split: str = "training", class_names=None) -> tuple[
        list[Record], tuple[str, ...]]:
    """One :class:`Record` per image of ``{root}/{split}/image_2`` with its ``label_2`` boxes, and the class names."""
    folder = _folder(Path(root), split)
    img_dir, lab_dir = folder / "image_2", folder / "label_2"
    for d, what in ((lab_dir, "label"), (img_dir, "image")):
        if not d.is_dir():
            raise DatasetNotFoundError(
                f"KITTI {split} {what} folder {d} not found. KITTI cannot be downloaded automatically: register "
                f"at {HOMEPAGE}, download the left colour images and the training labels and unpack them so that "
                f"{root}/ holds {split}/image_2/ and {split}/label_2/ (or pass root=)."
            )
    files = sorted(f for f in img_dir.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise DatasetNotFoundError(f"no KITTI images (*.png) in {img_dir}")
    names, keep = class_filter(KITTI_CLASSES, class_names, "KITTI")
    index = {n: i for i, n in enumerate(KITTI_CLASSES)}
    records = []
    for f in files:
        label = lab_dir / f"{f.stem}.txt"
        if not label.is_file():
            raise DatasetNotFoundError(f"no KITTI label file for image {f}: expected {label}")
        boxes, types, entries = read_kitti_labels(label)
        for t, entry in zip(types, entries):
            if t not in index:
                raise FormatError(f"{label}: {entry}: unknown object type {t!r}; KITTI has "
                                  f"{list(KITTI_CLASSES)} and {_DONT_CARE}")
        sel = [j for j, t in enumerate(types) if index[t] in keep]
        records.append(Record(f, boxes[sel], np.asarray([keep[index[types[j]]] for j in sel], np.int64), label,
                              tuple(entries[j] for j in sel), f.stem))
    return records, names


def load_kitti(
    split: str = "training",
    root: str | os.PathLike | None = None,
    *,
    class_names=None,
    size: tuple[int, int] | None = None,
    image_resize: str = "area",
    limit: int | None = None,
    seed: int | None = None,
) -> DetectionDataset:
    """Load KITTI 2D object detection as a :class:`DetectionDataset`.

    Args:
        split: the folder under ``root``, ``"training"`` (the only one with labels).
        root: default ``{$BAL_DATA_DIR or ~/.cache/bal/datasets}/kitti``.
        class_names: keep only these of :data:`KITTI_CLASSES`, in this order (e.g.
            ``("Car", "Pedestrian", "Cyclist")``, the evaluated classes).
        size: target ``(H, W)``, e.g. ``(96, 320)``; boxes are scaled with the images.
            ``None`` keeps the files' size (all images must then agree).
        image_resize: ``"area"`` (default) or ``"bilinear"``.
        limit, seed: at most ``limit`` images, the first in sorted order or (with ``seed``) a
            random subset drawn with ``np.random.default_rng(seed)``, kept sorted.

    Returns:
        ``images float32 [N, H, W, 3]``, ``boxes float32 [N, K, 4]``, ``classes int32 [N, K]``,
        ``valid bool [N, K]``; ``file_names`` are the image stems (``"000123"``).

    Raises:
        DatasetNotFoundError: the image or label folder, a label file or an image is missing.
        FormatError (a ``ValueError``), naming the file and line: a malformed line, an unknown type,
            ``x2 < x1`` / ``y2 < y1``, a box more than one pixel outside its image, an undecodable image.
        ValueError: an unknown name in ``class_names``, bad ``size`` / ``limit`` / ``image_resize``.
    """
    root = dataset_root(root, "kitti")
    records, names = kitti_records(root, split, class_names)
    records = select(records, limit, seed)
    return load_records(records, names, "kitti", split, size, image_resize)
