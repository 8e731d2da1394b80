"""Digits pasted on canvases: labels follow the pasted digits; the real MNIST version (skipped when absent)."""

import numpy as np
import pytest

import bal.data as bd
from bal.data.segmentation import digit_canvas, load_mnist_canvas


def tiny_digits(n=10):
    """Digit ``k`` is a 4x4 square of intensity ``255 - 10 k`` with a dim (below threshold) border."""
    images = np.zeros((n, 6, 6, 1), np.uint8)
    images[:, 1:5, 1:5, 0] = (255 - 10 * np.arange(n))[:, None, None]
    images[:, 0, :, 0] = 60
    return bd.Dataset(images, (np.arange(n) % 10).astype(np.int32), 10, tuple("0123456789"), "tiny", "train")


def test_labels_follow_pasted_digits():
    src = tiny_digits()
    ds = digit_canvas(src, 30, 16, 20, seed=0, min_digits=1, max_digits=3)
    assert ds.images.shape == (30, 16, 20, 1) and ds.masks.shape == (30, 16, 20) and ds.num_classes == 11
    assert ds.class_names[:2] == ("background", "0") and ds.name == "tiny_canvas"
    for i in range(30):
        picked = [int(j) for j in ds.ids[i].split("+")]
        assert 1 <= len(picked) <= 3
        labels = set(np.unique(ds.masks[i])) - {0}
        assert labels and labels <= {int(src.labels[j]) + 1 for j in picked}
        fg = ds.images[i, ..., 0] >= 0.5
        assert np.array_equal(fg, ds.masks[i] > 0)  # labelled exactly where a digit is bright
        assert ((ds.images[i, ..., 0] > 0) & ~fg).any()  # the dim borders stay background
    single = digit_canvas(src, 5, 16, 20, seed=1, min_digits=1, max_digits=1)
    for i in range(5):
        j = int(single.ids[i])
        assert (single.masks[i] == j + 1).sum() == 16 and single.images[i].sum() == pytest.approx(
            src.images[j].sum() / 255.0, rel=1e-5)


def test_deterministic_and_prefix_stable():
    src = tiny_digits()
    a, b = digit_canvas(src, 8, 12, 12, seed=4), digit_canvas(src, 3, 12, 12, seed=4)
    assert np.array_equal(a.masks[:3], b.masks) and a.ids[:3] == b.ids
    assert not np.array_equal(digit_canvas(src, 8, 12, 12, seed=5).images, a.images)
    assert digit_canvas(src, 8, 12, 12, seed=4, stream=1).ids != a.ids


@pytest.mark.parametrize("kw, match", [
    ({"height": 5}, "height must be an int >= 6"), ({"max_digits": 0}, "max_digits"),
    ({"threshold": 0.0}, "threshold"), ({"num_images": -2}, "num_images"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        digit_canvas(tiny_digits(), **{"num_images": 2, **kw})
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist_canvas("val")


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist_canvas("train", 2, data_dir=tmp_path)


@pytest.mark.realdata
def test_real_mnist_canvas(real_data):
    train = load_mnist_canvas("train", 200, size=(48, 56), seed=0, data_dir=real_data)
    test = load_mnist_canvas("test", 50, size=(48, 56), seed=0, data_dir=real_data)
    mnist = bd.load("mnist", "train", data_dir=real_data)
    assert train.images.shape == (200, 48, 56, 1) and train.num_classes == 11 and train.name == "mnist_canvas"
    assert set(np.unique(train.masks)) == set(range(11))  # every digit class appears
    for i in range(20):
        picked = [int(j) for j in train.ids[i].split("+")]
        assert set(np.unique(train.masks[i])) - {0} <= {int(mnist.labels[j]) + 1 for j in picked}
    frac = (train.masks > 0).mean()
    assert 0.02 < frac < 0.15  # digits are strokes on a mostly empty canvas
    assert test.split == "test" and not np.array_equal(test.images, train.images[:50])
