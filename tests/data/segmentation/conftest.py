"""Fixtures writing tiny Cityscapes and BDD100K folder trees (Pillow) under ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

HW = (32, 64)


def pil_image():
    """``PIL.Image``; skips the test when Pillow is absent (only the file-format tests need it)."""
    return pytest.importorskip("PIL.Image")


def save_png(path: Path, array: np.ndarray) -> Path:
    """Write ``uint8 [H, W]`` (mode L) or ``[H, W, 3]`` (RGB) losslessly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pil_image().fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def all_label_ids(hw=HW, offset: int = 0) -> np.ndarray:
    """``uint8 [H, W]`` cycling through every Cityscapes label id 0..33 (each appears)."""
    return ((np.arange(hw[0] * hw[1]) + offset) % 34).reshape(hw).astype(np.uint8)


class Tree:
    """A written data set: its root, and per image id the arrays written."""

    def __init__(self, root: Path):
        self.root = root
        self.images: dict[str, np.ndarray] = {}
        self.labels: dict[str, np.ndarray] = {}
        self.image_paths: dict[str, Path] = {}
        self.mask_paths: dict[str, Path] = {}


def _write_cityscapes(root: Path, split: str = "train", cities=(("aachen", 2), ("bochum", 1)), hw=HW,
                      seed: int = 0, train_ids: bool = False) -> Tree:
    rng = np.random.default_rng(seed)
    tree = Tree(root)
    k = 0
    for city, count in cities:
        for i in range(count):
            stem = f"{city}_{i:06d}_{19 + i:06d}"
            img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
            lab = all_label_ids(hw, offset=k)
            tree.images[stem], tree.labels[stem] = img, lab
            tree.image_paths[stem] = save_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", img)
            tree.mask_paths[stem] = save_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", lab)
            if train_ids:
                tid = np.where(lab % 20 == 19, 255, lab % 20).astype(np.uint8)
                save_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png", tid)
            # the colour and instance files of the real release sit beside the label ids
            save_png(root / "gtFine" / split / city / f"{stem}_gtFine_color.png", img)
            k += 1
    return tree


@pytest.fixture
def write_cityscapes():
    """``write_cityscapes(root, split="train", cities=(("aachen", 2), ("bochum", 1)), hw=(32, 64)) -> Tree``."""
    return _write_cityscapes


def _write_bdd100k(root: Path, split: str = "train", n: int = 3, hw=HW, layout: str = "10k", seed: int = 0) -> Tree:
    rng = np.random.default_rng(seed)
    tree = Tree(root)
    if layout == "10k":
        img_dir, mask_dir, suffix = root / "images/10k" / split, root / "labels/sem_seg/masks" / split, ".png"
    else:
        img_dir, mask_dir, suffix = root / "seg" / "images" / split, root / "seg" / "labels" / split, "_train_id.png"
    img_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"{i:04x}abcd-{7 * i:08x}"
        # smooth images survive JPEG compression nearly unchanged
        img = np.broadcast_to(np.linspace(20, 230, hw[1], dtype=np.uint8)[None, :, None], (*hw, 3)).copy()
        img[..., 1] = 40 * i
        lab = rng.choice(np.r_[np.arange(19), 255], size=hw).astype(np.uint8)
        lab.flat[:20] = np.r_[np.arange(19), 255]  # every value appears
        pil_image().fromarray(img).save(img_dir / f"{stem}.jpg", quality=95)
        tree.images[stem], tree.labels[stem] = img, lab
        tree.image_paths[stem] = img_dir / f"{stem}.jpg"
        tree.mask_paths[stem] = save_png(mask_dir / f"{stem}{suffix}", lab)
    return tree


@pytest.fixture
def write_bdd100k():
    """``write_bdd100k(root, split="train", n=3, hw=(32, 64), layout="10k" | "seg") -> Tree``."""
    return _write_bdd100k
