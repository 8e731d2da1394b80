"""The optional TFDS backend: a clear ImportError without it, and conversion via a fake module."""

import sys
import types

import numpy as np
import pytest

import bal.data as bd


def test_missing_tfds_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes `import` raise ImportError
    with pytest.raises(ImportError, match=r"bal\[tfds\]"):
        bd.load("mnist", source="tfds")


def _fake_tfds(calls, images, labels, names, extra=None):
    mod = types.ModuleType("tensorflow_datasets")

    class Label:
        def __init__(self, n):
            self.names = n

    info = types.SimpleNamespace(features={"label": Label(names), "coarse_label": Label([f"c{i}" for i in range(20)])})

    def load(name, split, batch_size, with_info, data_dir, download):
        calls.append(dict(name=name, split=split, batch_size=batch_size, data_dir=data_dir, download=download))
        batch = {"image": images, "label": labels}
        batch.update(extra or {})
        return ("tf-dataset", batch), info

    mod.load = load
    mod.as_numpy = lambda ds: ds[1]
    return mod


def test_fake_tfds_conversion(monkeypatch, tmp_path):
    calls = []
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 9], np.int64)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets",
                        _fake_tfds(calls, images, labels, [str(i) for i in range(10)]))
    ds = bd.load("mnist", "test", data_dir=tmp_path, source="tfds", download=True)
    assert calls == [dict(name="mnist", split="test", batch_size=-1, data_dir=str(tmp_path), download=True)]
    assert ds.images.dtype == np.uint8 and ds.images.shape == (6, 28, 28, 1)
    assert ds.labels.dtype == np.int32 and ds.labels.tolist() == labels.tolist()
    assert ds.num_classes == 10 and ds.name == "mnist" and ds.split == "test"


def test_fake_tfds_cifar100_coarse_and_grayscale_without_channel(monkeypatch):
    calls = []
    images = np.zeros((3, 32, 32, 3), np.uint8)
    fine = np.array([5, 50, 99])
    coarse = np.array([1, 10, 19])
    monkeypatch.setitem(sys.modules, "tensorflow_datasets",
                        _fake_tfds(calls, images, fine, [f"f{i}" for i in range(100)], {"coarse_label": coarse}))
    ds = bd.load("cifar100", source="tfds", label_mode="coarse")
    assert ds.num_classes == 20 and ds.labels.tolist() == [1, 10, 19] and ds.class_names[0] == "c0"
    assert calls[0]["data_dir"] is None and calls[0]["download"] is False
    ds = bd.load("cifar100", source="tfds")
    assert ds.num_classes == 100 and ds.labels.tolist() == [5, 50, 99]

    monkeypatch.setitem(sys.modules, "tensorflow_datasets",
                        _fake_tfds(calls, np.zeros((2, 28, 28), np.uint8), np.array([1, 2]), list("0123456789")))
    assert bd.load("fashion_mnist", source="tfds").images.shape == (2, 28, 28, 1)


def test_tfds_rejects_digits():
    with pytest.raises(ValueError, match="source='tfds' supports"):
        bd.load("digits", source="tfds")
