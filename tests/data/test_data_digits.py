"""The offline digits dataset and its deterministic stratified split."""

import numpy as np

import bal.data as bd
from bal.data.digits import split_indices


def test_digits():
    train = bd.load("digits", "train")
    test = bd.load("digits", "test")
    assert train.images.shape == (1438, 8, 8, 1) and test.images.shape == (359, 8, 8, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    assert train.images.max() == 255 and train.images.min() == 0
    assert len(train) + len(test) == 1797
    assert bd.DATASETS["digits"].sizes == {"train": len(train), "test": len(test)}
    frac = test.counts() / (train.counts() + test.counts())
    assert np.all(np.abs(frac - 0.2) < 0.02)  # stratified
    again = bd.load("digits", "test")
    assert np.array_equal(again.images, test.images) and np.array_equal(again.labels, test.labels)


def test_split_indices_partition():
    labels = np.repeat(np.arange(4), [10, 20, 5, 7])
    tr, te = split_indices(labels)
    assert tr.dtype == np.int64 and np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)
    assert np.array_equal(np.union1d(tr, te), np.arange(len(labels))) and not np.intersect1d(tr, te).size
    assert np.bincount(labels[te]).tolist() == [2, 4, 1, 1]
    assert np.array_equal(split_indices(labels)[1], te)
