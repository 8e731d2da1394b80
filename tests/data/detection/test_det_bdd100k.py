"""BDD100K det_20 loader on tiny generated files: boxes, classes, frame attributes, resizing, errors."""

import json

import numpy as np
import pytest

import bal.data as bd
from bal.data.detection import BDD100K_DET_CLASSES, load_bdd100k_detection

from .conftest import write_json


def test_load_reads_back_what_was_written(tmp_path, write_bdd100k):
    w = write_bdd100k(tmp_path)
    ds = load_bdd100k_detection("val", tmp_path)
    assert ds.name == "bdd100k" and ds.split == "val" and ds.class_names == BDD100K_DET_CLASSES
    assert len(BDD100K_DET_CLASSES) == 10 and ds.file_names == tuple(w.images)
    for i, stem in enumerate(ds.file_names):
        # JPEG: smooth images come back within a few grey levels
        assert np.abs(ds.images[i] * 255 - w.images[stem]).max() < 8
        boxes, classes = ds.image_boxes(i)
        assert boxes.tolist() == w.boxes[stem]  # 'other vehicle' skipped
        assert [BDD100K_DET_CLASSES[c] for c in classes] == w.names[stem]
    assert ds.num_boxes().tolist() == [3, 2, 0]  # labels: null -> no box
    assert ds.attributes["timeofday"].tolist() == ["daytime", "night", "dawn/dusk"]
    assert ds.attributes["weather"].tolist() == ["clear", "rainy", "undefined"]
    assert ds.attributes["night"].tolist() == [False, True, False]


def test_filter_resize_limit(tmp_path, write_bdd100k):
    w = write_bdd100k(tmp_path)
    cars = load_bdd100k_detection("val", tmp_path, class_names=("car", "bus"))
    assert cars.class_names == ("car", "bus") and [c.tolist() for _, c in cars.box_lists()] == [[0], [1], []]
    ds = load_bdd100k_detection("val", tmp_path, size=(48, 20))
    assert ds.images.shape == (3, 48, 20, 3)
    stem = ds.file_names[0]
    expected = np.asarray(w.boxes[stem], np.float32) * np.float32([0.5, 2, 0.5, 2])
    np.testing.assert_allclose(ds.image_boxes(0)[0], expected, rtol=1e-6)
    one = load_bdd100k_detection("val", tmp_path, limit=1)
    assert len(one) == 1 and one.attributes["night"].tolist() == [False]
    with pytest.raises(ValueError, match=r"unknown \['truck2'\]"):
        load_bdd100k_detection("val", tmp_path, class_names=["truck2"])


def test_legacy_2018_labels(tmp_path, write_bdd100k):
    w = write_bdd100k(tmp_path)
    data = json.loads(w.label_file.read_text())
    data[0]["labels"][3]["category"] = "person"  # 2018 name of 'pedestrian'
    data[0]["labels"].append({"category": "lane", "poly2d": [{"vertices": [[0, 0], [5, 5]]}]})
    legacy = write_json(tmp_path / "labels" / "bdd100k_labels_images_val.json", {"frames": data})
    ds = load_bdd100k_detection("val", tmp_path, label_file=legacy)
    assert [BDD100K_DET_CLASSES[c] for c in ds.image_boxes(0)[1]] == ["car", "traffic light", "pedestrian"]


def edit(w, fn):
    data = json.loads(w.label_file.read_text())
    fn(data)
    write_json(w.label_file, data)


def box_of(frame, label, **coords):
    def fn(data):
        data[frame]["labels"][label]["box2d"].update(coords)
    return fn


@pytest.mark.parametrize("change, match", [
    (box_of(0, 0, x2=1.0), r"frame 0 \(b1c66a42-6f7d68ca.jpg\) label 0: box x1=1 < x0=1.5"),
    (box_of(1, 1, y1=6), r"frame 1 \(b1c81faa-3df17267.jpg\) label 1: box y1=5 < y0=6"),
    (box_of(1, 0, x2=45), r"frame 1 \(b1c81faa-3df17267.jpg\) label 0: box .* outside the 40x24 \(WxH\) image"),
    (box_of(0, 1, x2="33"), r"frame 0 .* label 1: 'box2d' must be an object with numbers"),
    (lambda d: d[0]["labels"][1].update(category="tram"), r"frame 0 .* label 1: unknown category 'tram'"),
    (lambda d: d[1].pop("name"), r"frame 1: missing or invalid 'name'"),
    (lambda d: d[1].update(labels={"a": 1}), r"frame 1 \(b1c81faa-3df17267.jpg\): 'labels' must be a list"),
])
def test_format_errors_name_file_and_entry(tmp_path, write_bdd100k, change, match):
    w = write_bdd100k(tmp_path)
    edit(w, change)
    with pytest.raises(bd.FormatError, match=match) as e:
        load_bdd100k_detection("val", tmp_path)
    assert str(w.label_file) in str(e.value) and "\n" not in str(e.value)


def test_missing_and_corrupt_files(tmp_path, write_bdd100k):
    with pytest.raises(FileNotFoundError, match=r"det_20/det_val.json not found.*register at"):
        load_bdd100k_detection("val", tmp_path)
    w = write_bdd100k(tmp_path)
    w.label_file.write_text("[{]")
    with pytest.raises(bd.FormatError, match=r"cannot parse .*det_val.json"):
        load_bdd100k_detection("val", tmp_path)
    write_json(w.label_file, {"name": "x.jpg"})
    with pytest.raises(bd.FormatError, match=r"det_val.json: expected a BDD100K detection label file"):
        load_bdd100k_detection("val", tmp_path)
    w = write_bdd100k(tmp_path)
    (w.image_dir / "b1c81faa-3df17267.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(bd.FormatError, match=r"cannot decode .*b1c81faa-3df17267.jpg"):
        load_bdd100k_detection("val", tmp_path)
    (w.image_dir / "b1c81faa-3df17267.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image .*b1c81faa-3df17267.jpg \(listed in .*det_val.json\)"):
        load_bdd100k_detection("val", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"image folder .*images/100k/train not found"):
        load_bdd100k_detection("train", tmp_path, label_file=w.label_file)
    with pytest.raises(ValueError, match=r"unknown BDD100K split 'test'"):
        load_bdd100k_detection("test", tmp_path)
