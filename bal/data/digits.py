"""The offline ``digits`` dataset: scikit-learn's 8x8 handwritten digits.

``sklearn.datasets.load_digits`` ships 1,797 images of 8x8 pixels with
integer intensities 0..16 (UCI "Optical Recognition of Handwritten Digits",
Alpaydin & Kaynak 1998).  They are rescaled to ``uint8`` 0..255 as
``round(v * 255 / 16)`` and shaped ``[N, 8, 8, 1]``.

There is no official split, so a deterministic stratified one is made: for
each class, its indices are permuted by ``np.random.default_rng(0)`` (one
generator, classes in order 0..9) and the first ``round(0.2 * n_c)`` go to
``test``, the rest to ``train``; both index sets are sorted.  That gives
1,438 train and 359 test images, the same on every machine and numpy version
(``default_rng``'s PCG64 stream is stable).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["load_digits", "split_indices", "SEED", "TEST_FRACTION"]

SEED = 0
TEST_FRACTION = 0.2


def split_indices(labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SEED):
    """Deterministic stratified split of ``labels [N]``: sorted ``int64`` (train, test) indices."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * len(idx)))])
    test = np.sort(np.concatenate(test)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels), dtype=np.int64), test)
    return train, test


@functools.lru_cache(maxsize=1)
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits as _sk_load
    except ImportError as e:  # pragma: no cover - scikit-learn is a core dependency
        raise ImportError("the 'digits' dataset needs scikit-learn: pip install scikit-learn") from e
    bunch = _sk_load()
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, np.asarray(bunch.target, dtype=np.int32)


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``images uint8 [N, 8, 8, 1]`` and ``labels int32 [N]`` of the ``split`` ("train" | "test")."""
    images, labels = _all_digits()
    train, test = split_indices(labels)
    idx = train if split == "train" else test
    return images[idx], labels[idx]  # fancy indexing: fresh copies, the cache stays intact
