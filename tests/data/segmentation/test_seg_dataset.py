"""SegmentationDataset validation, statistics and subsets; image and mask resizing."""

import numpy as np
import pytest

from bal.data.segmentation import (
    IGNORE_LABEL,
    SegmentationDataset,
    class_frequencies,
    class_presence,
    resize_images,
    resize_masks,
)

NAMES = ("bg", "road", "line")


def make(n=2, h=4, w=6, **kw):
    images = np.zeros((n, h, w, 3), np.float32)
    masks = np.zeros((n, h, w), np.int32)
    return SegmentationDataset(kw.pop("images", images), kw.pop("masks", masks), kw.pop("class_names", NAMES), **kw)


def test_valid_dataset_and_stats():
    masks = np.zeros((2, 4, 6), np.int32)
    masks[0, :2] = 1  # 12 road pixels, image 0 only
    masks[1, 0, 0] = 2
    masks[1, 3] = IGNORE_LABEL  # 6 ignored pixels
    ds = make(masks=masks, ids=["a", "b"])
    assert len(ds) == 2 and ds.num_classes == 3 and ds.shape == (4, 6, 3) and ds.ignore_label == 255
    assert ds.pixel_counts().tolist() == [48 - 6 - 12 - 1, 12, 1]
    freq = class_frequencies(ds)
    assert list(freq) == list(NAMES) and freq["road"] == pytest.approx(12 / 42)
    assert sum(freq.values()) == pytest.approx(1)
    assert class_presence(ds) == {"bg": 1.0, "road": 0.5, "line": 0.5}
    sub = ds.subset([1, 1, 0])
    assert sub.ids == ("b", "b", "a") and np.array_equal(sub.masks[2], masks[0]) and sub.class_names == NAMES
    assert "num_classes=3" in repr(ds)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"images": np.zeros((2, 4, 6, 3), np.uint8)}, "float32 array"),
        ({"images": np.zeros((2, 4, 6), np.float32)}, "float32 array"),
        ({"images": np.full((2, 4, 6, 3), 1.5, np.float32)}, r"\[0, 1\]; found 0?1.5"),
        ({"images": np.full((2, 4, 6, 3), np.nan, np.float32)}, r"\[0, 1\]"),
        ({"masks": np.zeros((2, 4, 6), np.int64)}, "int32 array"),
        ({"masks": np.zeros((2, 4, 5), np.int32)}, "disagree"),
        ({"masks": np.full((2, 4, 6), 3, np.int32)}, r"values \[3\] outside"),
        ({"masks": np.full((2, 4, 6), -1, np.int32)}, r"values \[-1\] outside"),
        ({"class_names": ()}, "empty"),
        ({"ignore_label": 1}, "collides with train id 1"),
        ({"ids": ["a"]}, "1 ids for 2 images"),
    ],
)
def test_invalid_dataset(kw, match):
    with pytest.raises(ValueError, match=match):
        make(**kw)


def test_custom_ignore_label_and_bad_subset():
    ds = make(masks=np.full((2, 4, 6), -1, np.int32), ignore_label=-1)
    assert ds.pixel_counts().sum() == 0 and class_frequencies(ds)["bg"] == 0.0
    with pytest.raises(ValueError, match="outside"):
        make(masks=np.full((2, 4, 6), 255, np.int32), ignore_label=-1)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        ds.subset([2])


def test_resize_area_is_block_mean_and_bilinear_interpolates():
    rng = np.random.default_rng(0)
    img = rng.random((2, 6, 9, 3)).astype(np.float32)
    area = resize_images(img, (3, 3), "area")
    assert area.shape == (2, 3, 3, 3) and area.dtype == np.float32
    np.testing.assert_allclose(area, img.reshape(2, 3, 2, 3, 3, 3).mean(axis=(2, 4)), rtol=1e-5)
    odd = resize_images(img, (4, 5), "area")  # non-integer factors: still a weighted mean
    np.testing.assert_allclose(odd.mean(axis=(1, 2)), img.mean(axis=(1, 2)), rtol=1e-5)
    up = resize_images(img[0], (12, 18), "bilinear")  # no leading axis
    assert up.shape == (12, 18, 3) and up.min() >= img.min() - 1e-6 and up.max() <= img.max() + 1e-6
    ramp = np.broadcast_to(np.arange(4, dtype=np.float32)[None, :, None], (1, 4, 1))
    np.testing.assert_allclose(resize_images(ramp, (1, 8), "bilinear")[0, :, 0],
                               [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    assert resize_images(np.full((5, 7, 1), 200, np.uint8), (3, 2)).max() == pytest.approx(200)
    same = resize_images(img, (6, 9))
    assert np.array_equal(same, img) and same is not img


def test_resize_masks_nearest():
    m = np.arange(6 * 9, dtype=np.int32).reshape(6, 9)
    small = resize_masks(m, (3, 3))
    assert small.dtype == np.int32 and small.tolist() == [[10, 13, 16], [28, 31, 34], [46, 49, 52]]
    odd = resize_masks(np.stack([m, m]), (5, 7))
    assert odd.shape == (2, 5, 7) and np.isin(odd, m).all()
    assert np.array_equal(resize_masks(small, (6, 9))[::2, ::3], small)


@pytest.mark.parametrize("size", [(0, 4), (4,), "ab", (2.5, 3), None])
def test_resize_bad_size(size):
    with pytest.raises(ValueError, match="size must be"):
        resize_masks(np.zeros((4, 4), np.int32), size)


def test_resize_bad_method():
    with pytest.raises(ValueError, match="'area' or 'bilinear'"):
        resize_images(np.zeros((4, 4, 1), np.float32), (2, 2), "cubic")
