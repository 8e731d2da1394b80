"""DetectionDataset validation, padding, box lists, subsets and statistics."""

import numpy as np
import pytest

from bal.data.detection import PAD_CLASS, DetectionDataset, box_frequencies, class_presence

NAMES = ("car", "person", "sign")


def make(n=2, h=8, w=10, k=3, **kw):
    boxes = np.zeros((n, k, 4), np.float32)
    boxes[:, 0] = [1, 2, 5, 6]
    classes = np.zeros((n, k), np.int32)
    valid = np.zeros((n, k), bool)
    valid[:, 0] = True
    args = {"images": np.zeros((n, h, w, 3), np.float32), "boxes": boxes, "classes": classes, "valid": valid,
            "class_names": NAMES}
    args.update(kw)
    return DetectionDataset(**args)


def test_views_and_statistics():
    images = np.random.default_rng(0).random((3, 8, 10, 3)).astype(np.float32)
    ds = DetectionDataset.from_lists(
        images,
        [np.array([[0, 0, 10, 8], [1, 1, 2, 2]]), np.zeros((0, 4)), np.array([[3, 4, 3, 7]])],  # zero-width ok
        [np.array([0, 2]), np.array([], int), np.array([2])],
        NAMES, name="toy", split="val", file_names=["a", "b", "c"], attributes={"night": [True, False, True]},
    )
    assert len(ds) == 3 and ds.num_classes == 3 and ds.max_boxes == 2 and ds.shape == (8, 10, 3)
    assert ds.boxes.dtype == np.float32 and ds.classes.dtype == np.int32 and ds.valid.dtype == bool
    assert ds.num_boxes().tolist() == [2, 0, 1]
    assert ds.valid.tolist() == [[True, True], [False, False], [True, False]]
    assert ds.classes[1].tolist() == [PAD_CLASS, PAD_CLASS] and not ds.boxes[1].any()
    b, c = ds.image_boxes(0)
    assert b.tolist() == [[0, 0, 10, 8], [1, 1, 2, 2]] and c.tolist() == [0, 2]
    lists = ds.box_lists()
    assert len(lists) == 3 and lists[1][0].shape == (0, 4) and lists[2][1].tolist() == [2]
    assert ds.class_counts().tolist() == [1, 0, 2]
    assert box_frequencies(ds) == pytest.approx({"car": 1 / 3, "person": 0.0, "sign": 2 / 3})
    assert class_presence(ds) == pytest.approx({"car": 1 / 3, "person": 0.0, "sign": 2 / 3})
    assert ds.attributes["night"].dtype == bool
    with pytest.raises(TypeError):
        ds.attributes["night"] = None  # read-only mapping
    sub = ds.subset([2, 0, 2])
    assert sub.file_names == ("c", "a", "c") and sub.attributes["night"].tolist() == [True, True, True]
    assert np.array_equal(sub.images[1], images[0]) and sub.num_boxes().tolist() == [1, 2, 1]
    assert len(ds.subset([])) == 0
    wide = ds.pad(5)
    assert wide.max_boxes == 5 and wide.num_boxes().tolist() == [2, 0, 1] and wide.file_names == ds.file_names
    assert np.array_equal(wide.image_boxes(0)[0], b)
    assert "boxes=3 in 2 slots" in repr(ds) and "num_classes=3" in repr(ds)


def test_padding_content_is_not_checked():
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[:, 0] = [1, 2, 5, 6]
    boxes[:, 2] = [9, 9, -5, 100]  # garbage in a padding slot
    classes = np.full((2, 3), 77, np.int32)
    classes[:, 0] = 1
    ds = make(boxes=boxes, classes=classes)
    assert ds.num_boxes().tolist() == [1, 1] and ds.class_counts().tolist() == [0, 2, 0]


def bad_box(box, cls=0):
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[:, 0] = [1, 2, 5, 6]
    boxes[1, 0] = box
    classes = np.zeros((2, 3), np.int32)
    classes[1, 0] = cls
    return {"boxes": boxes, "classes": classes}


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"images": np.zeros((2, 8, 10, 3), np.uint8)}, "images must be a float32 array"),
        ({"images": np.zeros((2, 8, 10, 1), np.float32)}, r"images must be a float32 array \[N, H, W, 3\]"),
        ({"images": np.full((2, 8, 10, 3), 1.5, np.float32)}, r"\[0, 1\]; found 1.5"),
        ({"images": np.full((2, 8, 10, 3), np.nan, np.float32)}, r"\[0, 1\]"),
        ({"boxes": np.zeros((2, 3, 4), np.float64)}, "boxes must be a float32 array"),
        ({"boxes": np.zeros((2, 3, 5), np.float32)}, "boxes must be a float32 array"),
        ({"classes": np.zeros((2, 3), np.int64)}, "classes must be an int32 array"),
        ({"valid": np.ones((2, 3), np.int32)}, "valid must be a bool array"),
        ({"valid": np.ones((2, 4), bool)}, "disagree on"),
        ({"boxes": np.zeros((3, 3, 4), np.float32)}, "disagree on"),
        (bad_box([5, 2, 1, 6]), r"image 1 box 0 .*x1 < x0"),
        (bad_box([1, 6, 5, 2]), r"image 1 box 0 .*y1 < y0"),
        (bad_box([1, 2, 10.5, 6]), r"image 1 box 0 .*outside the image; need 0 <= x <= 10, 0 <= y <= 8"),
        (bad_box([-0.5, 2, 5, 6]), "outside the image"),
        (bad_box([1, 2, 5, 8.01]), "outside the image"),
        (bad_box([1, 2, np.nan, 6]), "finite"),
        (bad_box([1, 2, 5, 6], cls=3), r"image 1 box 0 .*\(class 3\): class id outside \[0, 3\)"),
        (bad_box([1, 2, 5, 6], cls=-1), r"class id outside"),
        ({"class_names": ()}, "class_names is empty"),
        ({"class_names": ("a", "b", "a")}, r"class_names repeat \['a'\]"),
        ({"file_names": ["x"]}, "1 file_names for 2 images"),
        ({"attributes": {"night": [True]}}, r"attribute 'night' must have shape \[2\]"),
    ],
)
def test_invalid_dataset(kw, match):
    with pytest.raises(ValueError, match=match) as e:
        make(**kw)
    assert "\n" not in str(e.value)


def test_box_on_the_image_edge_is_inside():
    ds = make(**bad_box([0, 0, 10, 8]))
    assert ds.image_boxes(1)[0].tolist() == [[0, 0, 10, 8]]


def test_bad_subset_pad_and_lists():
    ds = make()
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        ds.subset([2])
    with pytest.raises(ValueError, match="1-D integer"):
        ds.subset([0.5])
    with pytest.raises(ValueError, match="image 0 has 1 boxes, more than max_boxes=0"):
        ds.pad(0)
    images = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="1 images but 2 box lists"):
        DetectionDataset.from_lists(images, [np.zeros((0, 4))] * 2, [np.zeros(0)], NAMES)
    with pytest.raises(ValueError, match="image 0: 1 boxes but 2 classes"):
        DetectionDataset.from_lists(images, [np.ones((1, 4))], [np.zeros(2, int)], NAMES)
    empty = DetectionDataset.from_lists(images, [np.zeros((0, 4))], [np.zeros(0, int)], NAMES)
    assert empty.max_boxes == 0 and empty.box_lists()[0][0].shape == (0, 4)
    assert box_frequencies(empty) == {"car": 0.0, "person": 0.0, "sign": 0.0}
