"""COCO instances loader on tiny generated files: values read back exactly, resizing, filters, errors."""

import json

import numpy as np
import pytest

import bal.data as bd
from bal.data.detection import load_coco

from .conftest import random_image, save_image, write_json


def test_load_reads_back_what_was_written(tmp_path, write_coco):
    w = write_coco(tmp_path)
    ds = load_coco("val2017", tmp_path)
    assert ds.name == "coco" and ds.split == "val2017"
    assert ds.class_names == ("car", "person", "dog")  # by increasing category id 3, 7, 18
    assert ds.file_names == tuple(w.images) and ds.attributes["image_id"].tolist() == [1000, 1001, 1002]
    assert ds.images.shape == (3, 24, 40, 3) and ds.max_boxes == 3
    for i, f in enumerate(ds.file_names):
        assert np.array_equal(ds.images[i], w.images[f].astype(np.float32) / 255)  # PNG is lossless
        boxes, classes = ds.image_boxes(i)
        assert boxes.tolist() == w.boxes[f]  # [x, y, w, h] -> x0, y0, x1, y1, crowd box skipped
        assert [ds.class_names[c] for c in classes] == w.names[f]
    assert ds.num_boxes().tolist() == [3, 1, 0]  # the image without annotations is kept


def test_crowd_empty_filter_limit(tmp_path, write_coco):
    write_coco(tmp_path)
    assert load_coco("val2017", tmp_path, include_crowd=True).num_boxes().tolist() == [4, 1, 0]
    assert load_coco("val2017", tmp_path, skip_empty=True).file_names == ("000000000042.png", "000000000073.png")
    people = load_coco("val2017", tmp_path, class_names=["dog", "person"])
    assert people.class_names == ("dog", "person")
    assert [c.tolist() for _, c in people.box_lists()] == [[1, 0], [1], []]
    assert people.image_boxes(0)[0].tolist() == [[20, 1, 24, 13.25], [0, 0, 40, 24]]
    assert load_coco("val2017", tmp_path, limit=2).file_names == ("000000000042.png", "000000000073.png")
    picked = load_coco("val2017", tmp_path, limit=2, seed=0)
    assert len(picked) == 2 and list(picked.attributes["image_id"]) == sorted(picked.attributes["image_id"])
    with pytest.raises(ValueError, match=r"unknown \['cat'\]; .* has \['car', 'person', 'dog'\]"):
        load_coco("val2017", tmp_path, class_names=["cat"])


@pytest.mark.parametrize("method", ["area", "bilinear"])
def test_resize_scales_boxes(tmp_path, write_coco, method):
    w = write_coco(tmp_path)
    ds = load_coco("val2017", tmp_path, size=(12, 80), image_resize=method)
    assert ds.images.shape == (3, 12, 80, 3)
    for i, f in enumerate(ds.file_names):
        expected = np.asarray(w.boxes[f], np.float32).reshape(-1, 4) * np.float32([2, 0.5, 2, 0.5])
        np.testing.assert_allclose(ds.image_boxes(i)[0], expected, rtol=1e-6)
    assert ds.image_boxes(0)[0][2].tolist() == [0, 0, 80, 12]  # full-image box stays full-image


def test_explicit_paths_and_any_exporter(tmp_path, write_coco):
    w = write_coco(tmp_path / "a", split="train")
    moved = tmp_path / "labels.json"
    moved.write_text(w.label_file.read_text())
    ds = load_coco(annotation_file=moved, image_dir=w.image_dir, name="my_export")
    assert ds.name == "my_export" and len(ds) == 3
    # the default root of an annotation_file is its grandparent: {root}/annotations/instances_{split}.json
    assert len(load_coco("train", annotation_file=w.label_file)) == 3


def edit(w, fn):
    data = json.loads(w.label_file.read_text())
    fn(data)
    write_json(w.label_file, data)


def first_box(value):
    def fn(data):
        data["annotations"][0]["bbox"] = value
    return fn


@pytest.mark.parametrize("change, match", [
    (first_box([12, 3, -1, 6]), r"annotation id 100: box x1=11 < x0=12"),
    (first_box([2, 3, 10, -0.5]), r"annotation id 100: box y1=2.5 < y0=3"),
    (first_box([35, 3, 7.5, 6]), r"annotation id 100: box .* lies outside the 40x24 \(WxH\) image 000000000042.png"),
    (first_box([-2, 3, 5, 6]), r"annotation id 100: .*outside"),
    (first_box([2, 3, 5]), r"annotation id 100: 'bbox' must be 4 numbers"),
    (lambda d: d["annotations"][1].update(category_id=5), r"annotation id 101: category_id 5 is not in 'categories'"),
    (lambda d: d["annotations"][2].update(image_id=7), r"annotation id 102: image_id 7 is not in 'images'"),
    (lambda d: d["annotations"][2].pop("image_id"), r"annotation id 102: missing or invalid 'image_id'"),
    (lambda d: d["images"][1].update(width=41),
     r"image 000000000073.png is 40x24 \(WxH\) but the labels declare 41x24"),
    (lambda d: d["images"][1].pop("file_name"), r"image id 1001: missing or invalid 'file_name'"),
    (lambda d: d["images"].append(dict(d["images"][0])), r"image id 1000 appears twice"),
    (lambda d: d["categories"].append({"id": 4, "name": "car"}), r"categories repeat the name\(s\) \['car'\]"),
    (lambda d: d.pop("annotations"), r"a list of 'annotations' objects"),
])
def test_format_errors_name_file_and_entry(tmp_path, write_coco, change, match):
    w = write_coco(tmp_path)
    edit(w, change)
    with pytest.raises(bd.FormatError, match=match) as e:
        load_coco("val2017", tmp_path)
    assert str(w.label_file) in str(e.value) and "\n" not in str(e.value)


def test_box_within_a_pixel_of_the_border_is_clipped(tmp_path, write_coco):
    w = write_coco(tmp_path)
    edit(w, first_box([-0.75, 3, 41.5, 21.9]))  # 0.75 px left, 0.75 px right, 0.9 px below
    assert load_coco("val2017", tmp_path).image_boxes(0)[0][0].tolist() == [0, 3, 40, 24]


def test_missing_and_corrupt_files(tmp_path, write_coco):
    with pytest.raises(FileNotFoundError, match=r"instances_val2017.json not found") as e:
        load_coco("val2017", tmp_path)
    assert str(tmp_path / "annotations" / "instances_val2017.json") in str(e.value)
    w = write_coco(tmp_path)
    w.label_file.write_text('{"images": [')
    with pytest.raises(bd.FormatError, match=r"cannot parse .*instances_val2017.json: .* line 1 column 13"):
        load_coco("val2017", tmp_path)
    w = write_coco(tmp_path)
    (w.image_dir / "000000000073.png").write_bytes(b"not a png at all")
    with pytest.raises(bd.FormatError, match=r"cannot decode .*000000000073.png"):
        load_coco("val2017", tmp_path)
    (w.image_dir / "000000000073.png").unlink()
    with pytest.raises(bd.DatasetNotFoundError, match=r"image .*000000000073.png \(listed in .*instances_val2017"):
        load_coco("val2017", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"COCO image folder .*train2017 not found"):
        load_coco("val2017", tmp_path, image_dir=tmp_path / "train2017")


def test_images_of_different_sizes_need_size(tmp_path, write_coco):
    w = write_coco(tmp_path)
    save_image(w.image_dir / "000000000099.png", random_image(5, (30, 40)))
    edit(w, lambda d: d["images"][2].update(height=30))
    with pytest.raises(bd.FormatError, match=r"000000000099.png is 40x30 .* pass size=\(height, width\)"):
        load_coco("val2017", tmp_path)
    assert load_coco("val2017", tmp_path, size=(24, 40)).images.shape == (3, 24, 40, 3)
