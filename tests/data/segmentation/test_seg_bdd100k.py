"""BDD100K loader on tiny generated trees: both layouts, value checks, errors."""

import numpy as np
import pytest

import bal.data as bd
from bal.data.segmentation import BDD100K_CLASSES, CITYSCAPES_CLASSES, load_bdd100k
from bal.data.segmentation.bdd100k import bdd100k_layout

from .conftest import save_png


@pytest.mark.parametrize("layout", ["10k", "seg"])
def test_load_layouts(tmp_path, write_bdd100k, layout):
    tree = write_bdd100k(tmp_path, "val", n=3, layout=layout)
    assert bdd100k_layout(tmp_path, "val") == layout
    ds = load_bdd100k("val", tmp_path)
    assert ds.name == "bdd100k" and ds.split == "val" and ds.class_names == CITYSCAPES_CLASSES == BDD100K_CLASSES
    assert ds.ids == tuple(sorted(tree.images)) and ds.images.shape == (3, 32, 64, 3)
    for i, stem in enumerate(ds.ids):
        assert np.array_equal(ds.masks[i], tree.labels[stem].astype(np.int32))  # stored train ids, unchanged
        assert np.abs(ds.images[i] - tree.images[stem] / 255.0).mean() < 0.02  # JPEG: close, not exact
    assert set(np.unique(ds.masks)) == set(range(19)) | {255}


def test_resize_limit_ignore(tmp_path, write_bdd100k):
    tree = write_bdd100k(tmp_path, "train", n=4)
    ds = load_bdd100k("train", tmp_path, size=(8, 16), limit=2, ignore_label=-1)
    assert ds.images.shape == (2, 8, 16, 3) and ds.ignore_label == -1
    lab = tree.labels[ds.ids[0]].astype(np.int32)
    assert np.array_equal(ds.masks[0], np.where(lab == 255, -1, lab)[2::4, 2::4])
    picked = load_bdd100k("train", tmp_path, size=(8, 16), limit=2, seed=3)
    assert picked.ids == load_bdd100k("train", tmp_path, size=(8, 16), limit=2, seed=3).ids


def test_missing_root_names_both_layouts(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_bdd100k("train", tmp_path / "bdd")
    msg = str(e.value)
    assert isinstance(e.value, bd.DatasetNotFoundError) and str(tmp_path / "bdd") in msg
    assert "https://bdd-data.berkeley.edu/" in msg and "cannot be downloaded automatically" in msg
    assert "labels/sem_seg/masks/{split}/*.png" in msg and "seg/labels/{split}/*_train_id.png" in msg


def test_missing_image_folder_and_mask(tmp_path, write_bdd100k):
    tree = write_bdd100k(tmp_path, "train", n=2)
    stem = sorted(tree.images)[1]
    tree.mask_paths[stem].unlink()
    with pytest.raises(FileNotFoundError, match=f"no label mask for image .*{stem}.jpg"):
        load_bdd100k("train", tmp_path)
    (tmp_path / "labels" / "sem_seg" / "masks" / "val").mkdir()
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        load_bdd100k("val", tmp_path)


def test_bad_values_and_split(tmp_path, write_bdd100k):
    tree = write_bdd100k(tmp_path, "train", n=2)
    stem = min(tree.images)
    lab = tree.labels[stem].copy()
    lab[0, 0], lab[5, 5] = 19, 200
    save_png(tree.mask_paths[stem], lab)
    with pytest.raises(bd.FormatError) as e:
        load_bdd100k("train", tmp_path)
    assert "[19, 200]" in str(e.value) and f"{stem}.png" in str(e.value)
    save_png(tree.mask_paths[stem], np.zeros((20, 64), np.uint8))
    with pytest.raises(bd.FormatError, match="but its mask"):
        load_bdd100k("train", tmp_path)
    with pytest.raises(ValueError, match="unknown BDD100K split 'test'"):
        load_bdd100k("test", tmp_path)
