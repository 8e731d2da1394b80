"""Fixtures writing tiny COCO, BDD100K and KITTI trees (images via Pillow) under ``tmp_path``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

HW = (24, 40)  # (H, W) of the written images


def pil_image():
    """``PIL.Image``; skips the test when Pillow is absent (only the file-format tests need it)."""
    return pytest.importorskip("PIL.Image")


def save_image(path: Path, array: np.ndarray, **kw) -> Path:
    """Write ``uint8 [H, W, 3]`` as PNG (lossless) or JPEG, by the suffix of ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pil_image().fromarray(np.asarray(array, np.uint8)).save(path, **kw)
    return path


def random_image(seed: int, hw=HW) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


def smooth_image(i: int, hw=HW) -> np.ndarray:
    """A gradient that survives JPEG compression within a few grey levels."""
    img = np.broadcast_to(np.linspace(30, 220, hw[1], dtype=np.uint8)[None, :, None], (*hw, 3)).copy()
    img[..., 1] = 40 + 30 * i
    return img


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


class Written:
    """What a writer put on disk: root, label file, per image the pixels, boxes (x0, y0, x1, y1) and class names."""

    def __init__(self, root: Path):
        self.root = root
        self.label_file: Path | None = None
        self.image_dir: Path | None = None
        self.images: dict[str, np.ndarray] = {}
        self.boxes: dict[str, list[list[float]]] = {}
        self.names: dict[str, list[str]] = {}
        self.data = None  # the JSON written (COCO / BDD100K)


# ---------------------------------------------------------------------------------------- COCO
def _write_coco(root: Path, split: str = "val2017", hw=HW) -> Written:
    """Three PNG images (the last without annotations), categories with gaps in their ids, one crowd box."""
    out = Written(root)
    out.image_dir = root / split
    categories = [{"id": 7, "name": "person", "supercategory": "human"}, {"id": 3, "name": "car"},
                  {"id": 18, "name": "dog"}]
    images, annotations = [], []
    specs = {  # file name -> [(category id, [x, y, w, h])]
        "000000000042.png": [(3, [2, 3, 10.5, 6]), (7, [20, 1, 4, 12.25]), (18, [0, 0, 40, 24])],
        "000000000073.png": [(7, [30.5, 10, 9.5, 14])],
        "000000000099.png": [],
    }
    names = {3: "car", 7: "person", 18: "dog"}
    aid = 100
    for k, (file_name, anns) in enumerate(specs.items()):
        img = random_image(k, hw)
        save_image(out.image_dir / file_name, img)
        images.append({"id": 1000 + k, "file_name": file_name, "width": hw[1], "height": hw[0]})
        out.images[file_name] = img
        out.boxes[file_name] = [[x, y, x + w, y + h] for _, (x, y, w, h) in anns]
        out.names[file_name] = [names[c] for c, _ in anns]
        for cid, bbox in anns:
            annotations.append({"id": aid, "image_id": 1000 + k, "category_id": cid, "bbox": bbox,
                                "area": bbox[2] * bbox[3], "iscrowd": 0})
            aid += 1
    # a crowd region on the first image, skipped by default
    annotations.append({"id": 999, "image_id": 1000, "category_id": 7, "bbox": [5, 5, 10, 10], "iscrowd": 1})
    out.data = {"info": {}, "images": images, "annotations": annotations, "categories": categories}
    out.label_file = write_json(root / "annotations" / f"instances_{split}.json", out.data)
    return out


@pytest.fixture
def write_coco():
    """``write_coco(root, split="val2017", hw=(24, 40)) -> Written``."""
    return _write_coco


# ---------------------------------------------------------------------------------------- BDD100K
def _write_bdd100k(root: Path, split: str = "val", hw=HW) -> Written:
    """Three JPEG frames: 2 labelled (incl. an ignored 'other vehicle'), one with ``labels: null``."""
    out = Written(root)
    out.image_dir = root / "images" / "100k" / split
    frames = [
        ("b1c66a42-6f7d68ca.jpg", {"weather": "clear", "timeofday": "daytime", "scene": "city street"},
         [("car", [1.5, 2.0, 20.0, 14.5]), ("traffic light", [30, 0, 33, 6]), ("other vehicle", [0, 0, 5, 5]),
          ("pedestrian", [22, 4, 26, 23.5])]),
        ("b1c81faa-3df17267.jpg", {"weather": "rainy", "timeofday": "night", "scene": "highway"},
         [("bus", [0, 3, 40, 24]), ("traffic sign", [10, 1, 14, 5])]),
        ("b1ceb32e-51852abe.jpg", {"timeofday": "dawn/dusk"}, None),
    ]
    data = []
    for k, (name, attrs, labels) in enumerate(frames):
        img = smooth_image(k, hw)
        save_image(out.image_dir / name, img, quality=95)
        stem = name[:-4]
        out.images[stem] = img
        kept = [(c, b) for c, b in (labels or []) if c != "other vehicle"]
        out.boxes[stem] = [b for _, b in kept]
        out.names[stem] = [c for c, _ in kept]
        frame = {"name": name, "attributes": attrs, "timestamp": 10000,
                 "labels": None if labels is None else [
                     {"id": str(j), "category": c, "attributes": {"occluded": False, "truncated": False},
                      "box2d": dict(zip(("x1", "y1", "x2", "y2"), b))} for j, (c, b) in enumerate(labels)]}
        data.append(frame)
    out.data = data
    out.label_file = write_json(root / "labels" / "det_20" / f"det_{split}.json", data)
    return out


@pytest.fixture
def write_bdd100k():
    """``write_bdd100k(root, split="val", hw=(24, 40)) -> Written``."""
    return _write_bdd100k


# ---------------------------------------------------------------------------------------- KITTI
def kitti_line(kind: str, box, truncated=0.0, occluded=0) -> str:
    x1, y1, x2, y2 = box
    return (f"{kind} {truncated:.2f} {occluded} -1.58 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} "
            "1.65 1.67 3.64 -0.65 1.71 46.70 -1.59")


def _write_kitti(root: Path, split: str = "training", hw=HW) -> Written:
    """Three PNG images with label files (DontCare lines included, one file holding only DontCare)."""
    out = Written(root)
    out.image_dir = root / split / "image_2"
    objects = {
        "000000": [("Car", [1.0, 2.0, 20.5, 14.0]), ("DontCare", [0, 0, 5, 5]), ("Pedestrian", [25, 3, 29, 22.75])],
        "000001": [("Cyclist", [10, 4, 18, 20]), ("Van", [0, 10, 12, 23]), ("Misc", [30, 0, 39, 5])],
        "000002": [("DontCare", [3, 3, 9, 9])],
    }
    for k, (stem, objs) in enumerate(objects.items()):
        img = random_image(10 + k, hw)
        save_image(out.image_dir / f"{stem}.png", img)
        lines = [kitti_line(c, b) for c, b in objs]
        (root / split / "label_2").mkdir(parents=True, exist_ok=True)
        (root / split / "label_2" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        out.images[stem] = img
        out.boxes[stem] = [b for c, b in objs if c != "DontCare"]
        out.names[stem] = [c for c, _ in objs if c != "DontCare"]
    return out


@pytest.fixture
def write_kitti():
    """``write_kitti(root, split="training", hw=(24, 40)) -> Written``."""
    return _write_kitti
