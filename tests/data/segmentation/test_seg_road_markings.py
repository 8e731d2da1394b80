"""The procedural road-marking set: determinism, splits, any size, class presence and rarity."""

import numpy as np
import pytest

from bal.data.segmentation import (
    IGNORE_LABEL,
    ROAD_MARKING_CLASSES,
    class_frequencies,
    class_presence,
    load_road_markings,
    road_markings,
)
from bal.data.segmentation.road_markings import (
    CROSSWALK,
    LANE_DASHED,
    LANE_SOLID,
    ROAD,
    ROAD_EDGE,
)


@pytest.fixture(scope="module")
def sample():
    return road_markings(300, seed=0)


def test_shapes_dtypes_ranges(sample):
    assert sample.images.shape == (300, 64, 96, 3) and sample.masks.shape == (300, 64, 96)
    assert sample.images.dtype == np.float32 and sample.masks.dtype == np.int32
    assert 0.0 <= sample.images.min() and sample.images.max() <= 1.0
    assert set(np.unique(sample.masks)) <= set(range(6)) | {IGNORE_LABEL}
    assert sample.class_names == ROAD_MARKING_CLASSES and sample.num_classes == 6
    assert sample.name == "road_markings" and sample.ids[:2] == ("train-0", "train-1")


def test_class_presence_and_rarity(sample):
    freq, present = class_frequencies(sample), class_presence(sample)
    assert all(present[c] > 0 for c in ROAD_MARKING_CLASSES)
    assert present["background"] == present["road"] == 1.0
    assert 0.4 < present["lane_solid"] < 0.85 and 0.4 < present["lane_dashed"] < 0.85
    assert 0.12 < present["crosswalk"] < 0.4  # a minority of images ...
    assert 0.002 < freq["crosswalk"] < 0.03  # ... and few pixels
    assert present["crosswalk"] < min(present["lane_solid"], present["lane_dashed"]) / 1.5  # rarest class
    assert freq["crosswalk"] < freq["road_edge"]
    assert freq["background"] > freq["road"] > 0.2
    ignored = (sample.masks == IGNORE_LABEL).any(axis=(1, 2)).mean()
    assert 0.08 < ignored < 0.35  # the bonnet, in about 20 % of images


def test_markings_lie_on_or_beside_the_road(sample):
    m = sample.masks
    for cls in (LANE_SOLID, LANE_DASHED, CROSSWALK):
        rows = np.nonzero((m == cls).any(axis=(0, 2)))[0]
        assert rows.min() > 64 * 0.3  # below the highest horizon: never in the sky
    # a lane line pixel has road to its left or right within a few pixels (it is painted on the road)
    i, y, x = np.nonzero(m == LANE_SOLID)
    left, right = m[i, y, np.maximum(x - 4, 0)], m[i, y, np.minimum(x + 4, 95)]
    assert ((left == ROAD) | (right == ROAD)).mean() > 0.9
    assert (m[:, :5] == 0).all()  # the top rows are sky


def test_deterministic_and_prefix_stable(sample):
    again = road_markings(300, seed=0)
    assert np.array_equal(again.images, sample.images) and np.array_equal(again.masks, sample.masks)
    short = road_markings(70, seed=0)  # crosses a chunk boundary
    assert np.array_equal(short.images, sample.images[:70]) and np.array_equal(short.masks, sample.masks[:70])
    other = road_markings(5, seed=1)
    assert not np.array_equal(other.masks, sample.masks[:5])
    assert all(not np.array_equal(other.images[i], sample.images[i]) for i in range(5))


def test_splits_are_disjoint_and_independent():
    train = load_road_markings("train", num_train=40, num_test=10, seed=3, size=(24, 32))
    test = load_road_markings("test", num_train=40, num_test=10, seed=3, size=(24, 32))
    assert len(train) == 40 and len(test) == 10 and test.split == "test" and test.ids[0] == "test-0"
    flat_train = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in flat_train for im in test.images)
    assert np.array_equal(load_road_markings("test", num_train=5, num_test=10, seed=3, size=(24, 32)).images,
                          test.images)
    val = road_markings(3, 24, 32, seed=3, split="val")
    assert not np.array_equal(val.images, test.images[:3])


@pytest.mark.parametrize("hw", [(8, 8), (37, 53), (33, 100), (97, 31)])
def test_any_size(hw):
    ds = road_markings(12, *hw, seed=5)
    assert ds.images.shape == (12, *hw, 3) and ds.masks.shape == (12, *hw)
    assert set(np.unique(ds.masks)) <= set(range(6)) | {IGNORE_LABEL}
    assert (ds.masks == ROAD).any() and (ds.masks == 0).any()
    if min(hw) >= 30:
        assert (ds.masks == ROAD_EDGE).any() and ((ds.masks == LANE_SOLID) | (ds.masks == LANE_DASHED)).any()


def test_options():
    base = road_markings(40, 32, 48, seed=2)
    plain = road_markings(40, 32, 48, seed=2, distractors=False, noise=0.0)
    assert np.array_equal(plain.masks, base.masks)  # distractors and noise never change a label
    assert not np.array_equal(plain.images, base.images)
    assert not (road_markings(40, 32, 48, seed=2, crosswalk_fraction=0.0).masks == CROSSWALK).any()
    assert (road_markings(10, 32, 48, seed=2, crosswalk_fraction=1.0).masks == CROSSWALK).any(axis=(1, 2)).all()
    assert not (road_markings(40, 32, 48, seed=2, hood_fraction=0.0).masks == IGNORE_LABEL).any()
    assert (road_markings(10, 32, 48, seed=2, hood_fraction=1.0).masks == IGNORE_LABEL).any(axis=(1, 2)).all()
    assert len(road_markings(0)) == 0


@pytest.mark.parametrize("kw, match", [
    ({"num_images": -1}, "num_images"), ({"num_images": 2.0}, "num_images"), ({"height": 7}, "height"),
    ({"seed": -1}, "seed"), ({"split": "dev"}, "unknown split 'dev'"),
    ({"crosswalk_fraction": 1.5}, "crosswalk_fraction"), ({"noise": -0.1}, "noise"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        road_markings(**{"num_images": 2, **kw})
    if "split" in kw:
        with pytest.raises(ValueError, match="'train' or 'test'"):
            load_road_markings("val")
