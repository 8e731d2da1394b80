"""KITTI label_2 loader on tiny generated folders: boxes, classes, DontCare, resizing, errors."""

import numpy as np
import pytest

import bal.data as bd
from bal.data.detection import KITTI_CLASSES, load_kitti, read_kitti_labels

from .conftest import kitti_line


def test_load_reads_back_what_was_written(tmp_path, write_kitti):
    w = write_kitti(tmp_path)
    ds = load_kitti("training", tmp_path)
    assert ds.name == "kitti" and ds.class_names == KITTI_CLASSES and ds.file_names == ("000000", "000001", "000002")
    for i, stem in enumerate(ds.file_names):
        assert np.array_equal(ds.images[i], w.images[stem].astype(np.float32) / 255)
        boxes, classes = ds.image_boxes(i)
        assert boxes.tolist() == w.boxes[stem]  # DontCare skipped
        assert [KITTI_CLASSES[c] for c in classes] == w.names[stem]
    assert ds.num_boxes().tolist() == [2, 3, 0]
    # root may also be the split folder itself
    assert load_kitti("training", tmp_path / "training").file_names == ds.file_names


def test_filter_resize_limit(tmp_path, write_kitti):
    w = write_kitti(tmp_path)
    ds = load_kitti("training", tmp_path, class_names=("Car", "Pedestrian", "Cyclist"), size=(48, 80))
    assert ds.class_names == ("Car", "Pedestrian", "Cyclist") and ds.images.shape == (3, 48, 80, 3)
    assert [c.tolist() for _, c in ds.box_lists()] == [[0, 1], [2], []]  # Van and Misc dropped
    np.testing.assert_allclose(ds.image_boxes(0)[0], np.asarray(w.boxes["000000"]) * 2)
    assert load_kitti("training", tmp_path, limit=2).file_names == ("000000", "000001")
    with pytest.raises(ValueError, match=r"unknown \['car'\]"):
        load_kitti("training", tmp_path, class_names=["car"])


def test_read_kitti_labels(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text(kitti_line("Tram", [1, 2, 3, 4]) + "\n\n" + kitti_line("DontCare", [0, 0, 1, 1]) + " \n"
                    + kitti_line("Car", [5, 6, 7, 8]) + " 0.93\n")  # a result file's score column
    boxes, types, entries = read_kitti_labels(path)
    assert boxes.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]] and types == ["Tram", "Car"]
    assert entries == ("line 1 (Tram)", "line 4 (Car)")


@pytest.mark.parametrize("line, match", [
    (kitti_line("Car", [12, 2, 10, 14]), r"000001.txt: line 2 \(Car\): box x1=10 < x0=12"),
    (kitti_line("Car", [2, 14, 10, 12]), r"000001.txt: line 2 \(Car\): box y1=12 < y0=14"),
    (kitti_line("Car", [2, 3, 42, 14]), r"000001.txt: line 2 \(Car\): box .* outside the 40x24 \(WxH\) image 000001"),
    (kitti_line("Truck", [2, 3, 10, 14]).replace("Truck", "Lorry"), r"000001.txt: line 2 \(Lorry\): unknown object "
                                                                     r"type 'Lorry'"),
    ("Car 0.00 0 -1.58 1 2 3 4", r"000001.txt: line 2: 8 fields; a KITTI label line has 15"),
    (kitti_line("Car", [2, 3, 10, 14]).replace("1.65", "1,65"), r"000001.txt: line 2: could not convert"),
])
def test_format_errors_name_file_and_line(tmp_path, write_kitti, line, match):
    write_kitti(tmp_path)
    label = tmp_path / "training" / "label_2" / "000001.txt"
    lines = label.read_text().splitlines()
    lines[1] = line
    label.write_text("\n".join(lines))
    with pytest.raises(bd.FormatError, match=match) as e:
        load_kitti("training", tmp_path)
    assert str(label) in str(e.value) and "\n" not in str(e.value)


def test_tolerance_and_missing_files(tmp_path, write_kitti):
    w = write_kitti(tmp_path)
    label = tmp_path / "training" / "label_2" / "000002.txt"
    label.write_text(kitti_line("Car", [-0.5, 3, 40.8, 24.6]))  # within a pixel of the border: clipped
    assert load_kitti("training", tmp_path).image_boxes(2)[0].tolist() == [[0, 3, 40, 24]]
    label.unlink()
    with pytest.raises(FileNotFoundError, match=r"no KITTI label file for image .*000002.png: expected .*000002.txt"):
        load_kitti("training", tmp_path)
    (w.image_dir / "000002.png").unlink()
    (w.image_dir / "000001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(bd.FormatError, match=r"cannot decode .*000001.png"):
        load_kitti("training", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"KITTI testing label folder .*testing/label_2 not found"):
        load_kitti("testing", tmp_path)
    (tmp_path / "empty" / "label_2").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"image folder .*empty/image_2 not found"):
        load_kitti("training", tmp_path / "empty")
