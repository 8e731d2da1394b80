"""Cityscapes loader on tiny generated folder trees: train-id mapping, resizing, every error path."""

import sys

import numpy as np
import pytest

import bal.data as bd
from bal.data.segmentation import (
    CITYSCAPES_CLASSES,
    label_ids_to_train_ids,
    load_cityscapes,
)
from bal.data.segmentation.files import pillow

from .conftest import save_png

# cityscapesScripts/helpers/labels.py: label id -> train id for the 19 evaluated classes; all else ignored
OFFICIAL = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
            26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
IGNORED = [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30]


def expected_train_ids(label_ids, ignore=255):
    return np.vectorize(lambda v: OFFICIAL.get(int(v), ignore))(label_ids).astype(np.int32)


def test_official_mapping_every_id():
    assert sorted([*OFFICIAL, *IGNORED]) == list(range(34))
    ids = np.arange(34)
    got = label_ids_to_train_ids(ids)
    assert got.dtype == np.int32
    for lid in range(34):
        assert got[lid] == OFFICIAL.get(lid, 255), lid
    assert label_ids_to_train_ids(ids, ignore_label=-1)[IGNORED].tolist() == [-1] * len(IGNORED)
    assert CITYSCAPES_CLASSES == ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                                  "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                                  "truck", "bus", "train", "motorcycle", "bicycle")


def test_load_full_size(tmp_path, write_cityscapes):
    tree = write_cityscapes(tmp_path / "cs")
    ds = load_cityscapes("train", tmp_path / "cs")
    assert ds.name == "cityscapes" and ds.split == "train" and ds.num_classes == 19 and ds.ignore_label == 255
    assert ds.ids == ("aachen_000000_000019", "aachen_000001_000020", "bochum_000000_000019")
    assert ds.images.shape == (3, 32, 64, 3) and ds.images.dtype == np.float32 and ds.masks.dtype == np.int32
    for i, stem in enumerate(ds.ids):
        np.testing.assert_allclose(ds.images[i], tree.images[stem] / 255.0, atol=1e-6)
        assert np.array_equal(ds.masks[i], expected_train_ids(tree.labels[stem]))
    assert set(np.unique(ds.masks)) == set(range(19)) | {255}


def test_default_root_from_bal_data_dir(tmp_path, write_cityscapes, monkeypatch):
    write_cityscapes(tmp_path / "cityscapes", split="val", cities=(("lindau", 1),))
    monkeypatch.setenv("BAL_DATA_DIR", str(tmp_path))
    ds = load_cityscapes("val")
    assert ds.ids == ("lindau_000000_000019",) and ds.split == "val"


def test_resize_limit_seed(tmp_path, write_cityscapes):
    tree = write_cityscapes(tmp_path, cities=(("aachen", 4), ("bremen", 3)))
    ds = load_cityscapes("train", tmp_path, size=(16, 32))
    assert ds.images.shape == (7, 16, 32, 3) and ds.masks.shape == (7, 16, 32)
    full = expected_train_ids(tree.labels[ds.ids[0]])
    assert np.array_equal(ds.masks[0], full[1::2, 1::2])  # nearest: the pixel under each target centre
    block = tree.images[ds.ids[0]].reshape(16, 2, 32, 2, 3).mean(axis=(1, 3)) / 255.0
    np.testing.assert_allclose(ds.images[0], block, atol=1e-5)
    bil = load_cityscapes("train", tmp_path, size=(20, 30), image_resize="bilinear", limit=2)
    assert bil.images.shape == (2, 20, 30, 3) and bil.ids == ds.ids[:2]
    assert 0.0 <= bil.images.min() and bil.images.max() <= 1.0
    a = load_cityscapes("train", tmp_path, limit=3, seed=1, size=(8, 16))
    b = load_cityscapes("train", tmp_path, limit=3, seed=1, size=(8, 16))
    assert a.ids == b.ids and len(a) == 3 and list(a.ids) == sorted(a.ids)
    assert {load_cityscapes("train", tmp_path, limit=3, seed=s, size=(8, 16)).ids for s in range(6)} != {a.ids}
    assert len(load_cityscapes("train", tmp_path, limit=50, size=(8, 16))) == 7


def test_label_train_ids_files(tmp_path, write_cityscapes):
    tree = write_cityscapes(tmp_path, cities=(("ulm", 1),), train_ids=True)
    ds = load_cityscapes("train", tmp_path, mask="labelTrainIds", ignore_label=250)
    lab = tree.labels["ulm_000000_000019"]
    assert np.array_equal(ds.masks[0], np.where(lab % 20 == 19, 250, lab % 20))


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_cityscapes("train", tmp_path / "nowhere")
    msg = str(e.value)
    assert isinstance(e.value, bd.DatasetNotFoundError)
    assert str(tmp_path / "nowhere" / "leftImg8bit" / "train") in msg
    assert "https://www.cityscapes-dataset.com/" in msg and "cannot be downloaded automatically" in msg
    assert "{city}_{seq}_{frame}_gtFine_labelIds.png" in msg


def test_missing_gtfine_and_empty(tmp_path, write_cityscapes):
    write_cityscapes(tmp_path)
    (tmp_path / "leftImg8bit" / "val" / "x").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="gtFine"):
        load_cityscapes("val", tmp_path)
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no Cityscapes images"):
        load_cityscapes("val", tmp_path)


@pytest.mark.parametrize("kw, match", [
    ({"split": "train_extra"}, "unknown Cityscapes split 'train_extra'"),
    ({"mask": "color"}, "unknown mask kind"),
    ({"image_resize": "nearest"}, "unknown image_resize"),
    ({"limit": 0}, "limit must be"),
    ({"size": (0, 8)}, "size must be"),
])
def test_bad_arguments(tmp_path, write_cityscapes, kw, match):
    write_cityscapes(tmp_path)
    with pytest.raises(ValueError, match=match):
        load_cityscapes(**{"split": "train", "root": tmp_path, **kw})


def test_bad_label_value_names_file(tmp_path, write_cityscapes):
    tree = write_cityscapes(tmp_path)
    lab = tree.labels["bochum_000000_000019"].copy()
    lab[3, 5] = 200
    save_png(tree.mask_paths["bochum_000000_000019"], lab)
    with pytest.raises(bd.FormatError) as e:
        load_cityscapes("train", tmp_path)
    assert "[200]" in str(e.value) and "bochum_000000_000019_gtFine_labelIds.png" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_size_mismatch_missing_mask_rgb_mask_corrupt(tmp_path, write_cityscapes):
    tree = write_cityscapes(tmp_path)
    stem = "aachen_000001_000020"
    save_png(tree.mask_paths[stem], np.zeros((30, 64), np.uint8))
    with pytest.raises(bd.FormatError, match=r"is 32x64 \(HxW\) but its mask .*gtFine_labelIds.png is 30x64"):
        load_cityscapes("train", tmp_path)
    save_png(tree.mask_paths[stem], np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(bd.FormatError, match="RGB image, not a single-channel label image"):
        load_cityscapes("train", tmp_path)
    tree.mask_paths[stem].write_bytes(b"not a png")
    with pytest.raises(bd.FormatError, match="cannot decode .*aachen_000001_000020_gtFine_labelIds.png"):
        load_cityscapes("train", tmp_path)
    tree.mask_paths[stem].unlink()
    with pytest.raises(FileNotFoundError) as e:
        load_cityscapes("train", tmp_path)
    assert "no label mask for image" in str(e.value) and str(tree.mask_paths[stem]) in str(e.value)
    assert len(load_cityscapes("train", tmp_path, limit=1)) == 1  # the pairs before it still load


def test_mixed_sizes_need_size(tmp_path, write_cityscapes):
    write_cityscapes(tmp_path, cities=(("aachen", 1),))
    write_cityscapes(tmp_path, cities=(("zurich", 1),), hw=(16, 40))
    with pytest.raises(bd.FormatError, match=r"pass size=\(height, width\)"):
        load_cityscapes("train", tmp_path)
    assert load_cityscapes("train", tmp_path, size=(16, 32)).images.shape == (2, 16, 32, 3)


def test_missing_pillow_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install Pillow"):
        pillow()
