"""The procedural road-scene detection set: determinism, splits, any size, boxes, class rarity, day / night."""

import numpy as np
import pytest

from bal.data.detection import (
    MAX_BOXES,
    PAD_CLASS,
    ROAD_SCENE_CLASSES,
    box_frequencies,
    class_presence,
    load_road_scenes,
)
from bal.data.detection.road_scenes import BUS, CAR


@pytest.fixture(scope="module")
def sample():
    return load_road_scenes("train", 400, seed=0)


def test_shapes_dtypes_ranges(sample):
    assert sample.images.shape == (400, 96, 128, 3) and sample.images.dtype == np.float32
    assert sample.boxes.shape == (400, MAX_BOXES, 4) and sample.classes.shape == (400, MAX_BOXES)
    assert 0.0 <= sample.images.min() and sample.images.max() <= 1.0
    assert sample.class_names == ROAD_SCENE_CLASSES == ("car", "pedestrian", "cyclist", "traffic_sign", "bus")
    assert sample.name == "road_scenes" and sample.split == "train" and sample.file_names[:2] == ("train-0", "train-1")
    assert sample.attributes["night"].dtype == bool and sample.attributes["night"].shape == (400,)
    assert (sample.classes[~sample.valid] == PAD_CLASS).all() and not sample.boxes[~sample.valid].any()


def test_boxes_inside_and_not_degenerate(sample):
    b = sample.boxes[sample.valid]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert (b[:, :2] >= 0).all() and (b[:, 2] <= 128).all() and (b[:, 3] <= 96).all()
    assert w.min() >= 3 and h.min() >= 3  # min_size
    assert np.array_equal(b, np.round(b))  # visible pixel extents: whole pixel edges
    assert (sample.num_boxes() > 0).mean() > 0.95 and sample.num_boxes().max() <= MAX_BOXES
    # the classes differ in shape: cars and buses are wide, pedestrians tall and thin, cyclists tall, signs square
    aspect = {c: np.median((h / w)[sample.classes[sample.valid] == k]) for k, c in enumerate(ROAD_SCENE_CLASSES)}
    assert aspect["car"] < 0.8 and aspect["bus"] < 0.8 and aspect["pedestrian"] > 2.2
    assert 1.1 < aspect["cyclist"] < 2 and 0.8 <= aspect["traffic_sign"] <= 1.25
    # far = small: boxes whose bottom is near the horizon are smaller than those near the bottom row
    cars = (sample.classes == CAR) & sample.valid
    low, high = sample.boxes[cars][:, 3] > 60, sample.boxes[cars][:, 3] < 45
    hc = (sample.boxes[cars][:, 3] - sample.boxes[cars][:, 1])
    assert hc[low].mean() > 1.8 * hc[high].mean()


def test_class_frequencies_and_rare_class(sample):
    freq, present = box_frequencies(sample), class_presence(sample)
    assert all(present[c] > 0 for c in ROAD_SCENE_CLASSES)
    assert present["car"] > 0.85 and 0.3 < present["pedestrian"] < 0.7 and 0.2 < present["cyclist"] < 0.5
    assert 0.3 < present["traffic_sign"] < 0.7
    assert 0.015 < present["bus"] < 0.1  # the rare class: about 5 % of the images ...
    assert freq["bus"] < min(freq[c] for c in ROAD_SCENE_CLASSES if c != "bus") / 5  # ... and few boxes
    assert max(freq, key=freq.get) == "car"


def test_day_night_split(sample):
    night = sample.attributes["night"]
    assert 0.22 < night.mean() < 0.38  # night_fraction = 0.3
    mean = sample.images.mean(axis=(1, 2, 3))
    spread = sample.images.std(axis=(1, 2, 3))
    assert mean[night].max() < mean[~night].min() + 0.05 and mean[night].mean() < 0.5 * mean[~night].mean()
    assert spread[night].mean() < 0.7 * spread[~night].mean()  # low contrast
    # night objects are still there and labelled, as often as by day
    assert abs(sample.num_boxes()[night].mean() - sample.num_boxes()[~night].mean()) < 0.5
    # headlight-like blobs: nearly every night image holds a few bright pixels in an otherwise dark scene
    bright = sample.images[night].max(axis=-1) > 0.8
    assert bright.any(axis=(1, 2)).mean() > 0.9 and bright.mean() < 0.01
    assert not load_road_scenes("train", 20, 32, 48, seed=1, night_fraction=0.0).attributes["night"].any()
    assert load_road_scenes("train", 20, 32, 48, seed=1, night_fraction=1.0).attributes["night"].all()


def test_deterministic_and_prefix_stable(sample):
    again = load_road_scenes("train", 70, seed=0)  # crosses a chunk boundary
    for a, b in ((again.images, sample.images), (again.boxes, sample.boxes), (again.classes, sample.classes),
                 (again.valid, sample.valid), (again.attributes["night"], sample.attributes["night"])):
        assert np.array_equal(a, b[:70])
    other = load_road_scenes("train", 5, seed=1)
    assert all(not np.array_equal(other.images[i], sample.images[i]) for i in range(5))
    assert not np.array_equal(other.boxes, sample.boxes[:5])


def test_splits_differ_and_are_reproducible():
    train = load_road_scenes("train", 30, 32, 48, seed=3)
    test = load_road_scenes("test", 30, 32, 48, seed=3)
    assert test.split == "test" and test.file_names[0] == "test-0"
    seen = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in seen for im in test.images)
    again = load_road_scenes("test", 30, 32, 48, seed=3)
    assert np.array_equal(again.images, test.images) and np.array_equal(again.boxes, test.boxes)
    assert not np.array_equal(load_road_scenes("val", 3, 32, 48, seed=3).images, test.images[:3])


@pytest.mark.parametrize("hw", [(16, 16), (37, 53), (97, 31), (120, 200)])
def test_any_size(hw):
    ds = load_road_scenes("train", 24, *hw, seed=5)
    assert ds.images.shape == (24, *hw, 3) and ds.boxes.shape == (24, MAX_BOXES, 4)
    b = ds.boxes[ds.valid]
    assert (b[:, 2] <= hw[1]).all() and (b[:, 3] <= hw[0]).all() and (b[:, 2] - b[:, 0] >= 3).all()
    if min(hw) >= 30:  # a narrow view loses most objects to the image border, but not all
        assert ds.valid.sum() >= 10


def test_options():
    base = load_road_scenes("train", 40, 48, 64, seed=2)
    quiet = load_road_scenes("train", 40, 48, 64, seed=2, noise=0.0)
    assert np.array_equal(quiet.boxes, base.boxes) and not np.array_equal(quiet.images, base.images)
    plain = load_road_scenes("train", 40, 48, 64, seed=2, distractors=False)
    assert not np.array_equal(plain.images, base.images)
    assert not ((load_road_scenes("train", 40, 48, 64, seed=2, rare_fraction=0.0).classes == BUS)
                & base.valid).any()
    many = load_road_scenes("train", 20, 48, 64, seed=2, rare_fraction=1.0)
    assert ((many.classes == BUS) & many.valid).any(axis=1).mean() > 0.5
    lenient = load_road_scenes("train", 40, 48, 64, seed=2, min_visible=0.05, min_size=1)
    strict = load_road_scenes("train", 40, 48, 64, seed=2, min_visible=1.0)
    assert strict.valid.sum() < base.valid.sum() < lenient.valid.sum()
    assert (lenient.valid | ~base.valid).all()  # a box kept by the defaults is kept when lenient
    assert len(load_road_scenes("train", 0)) == 0


@pytest.mark.parametrize("kw, match", [
    ({"num_images": -1}, "num_images"), ({"num_images": 2.0}, "num_images"), ({"height": 15}, "height"),
    ({"seed": -1}, "seed"), ({"split": "dev"}, "unknown split 'dev'"), ({"night_fraction": 1.5}, "night_fraction"),
    ({"rare_fraction": -0.1}, "rare_fraction"), ({"noise": 0.6}, "noise"), ({"min_visible": 2}, "min_visible"),
    ({"min_size": 0}, "min_size"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        load_road_scenes(**{"num_images": 2, **kw})
