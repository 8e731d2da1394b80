"""The small public API of bal.data: names, data-dir resolution, Dataset, argument errors."""

from pathlib import Path

import numpy as np
import pytest

import bal.data as bd


def test_names_and_registry():
    assert bd.names() == ["mnist", "fashion_mnist", "cifar10", "cifar100", "digits"]
    assert set(bd.DATASETS) == set(bd.names())
    assert bd.DATASETS["cifar100"].num_classes == 100
    assert bd.DATASETS["mnist"].shape == (28, 28, 1)
    assert bd.DATASETS["cifar10"].archive.md5 == "c58f30108f718f92721af3b95e74349a"
    assert bd.DATASETS["cifar100"].archive.md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("BAL_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bd.resolve_data_dir() == tmp_path / "xdg" / "bal" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert bd.resolve_data_dir() == tmp_path / "home" / ".cache" / "bal" / "datasets"
    monkeypatch.setenv("BAL_DATA_DIR", str(tmp_path / "env"))
    assert bd.resolve_data_dir() == tmp_path / "env"
    assert bd.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert bd.resolve_data_dir("~/x") == Path.home() / "x"


def test_env_data_dir_is_used_and_named_in_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("BAL_DATA_DIR", str(tmp_path))
    with pytest.raises(bd.DatasetNotFoundError) as e:
        bd.load("mnist")
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "$BAL_DATA_DIR" in msg


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name="imagenet"), "unknown dataset 'imagenet'"),
        (dict(name="mnist", split="valid"), "unknown split 'valid'"),
        (dict(name="mnist", source="hub"), "unknown source 'hub'"),
        (dict(name="mnist", label_mode="coarse"), "only cifar100"),
        (dict(name="cifar100", label_mode="medium"), "label_mode='medium'"),
    ],
)
def test_bad_arguments(kwargs, fragment, tmp_path):
    with pytest.raises(ValueError, match=fragment):
        bd.load(data_dir=tmp_path, **kwargs)


def test_unknown_checksum_override_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown file 'nope.gz'"):
        bd.load("mnist", data_dir=tmp_path, checksums={"nope.gz": "0" * 32})
    with pytest.raises(ValueError, match="neither an MD5"):
        bd.load("mnist", data_dir=tmp_path, checksums={"train-images-idx3-ubyte.gz": "xyz"})


def _ds(**over):
    kw = dict(images=np.zeros((3, 2, 2, 1), np.uint8), labels=np.array([0, 1, 2], np.int32),
              num_classes=3, class_names=("a", "b", "c"), name="t", split="train")
    kw.update(over)
    return bd.Dataset(**kw)


def test_dataset_container():
    ds = _ds()
    assert len(ds) == 3 and ds.shape == (2, 2, 1)
    assert ds.counts().tolist() == [1, 1, 1]
    sub = ds.subset([2, 0])
    assert sub.labels.tolist() == [2, 0] and len(sub) == 2
    with pytest.raises(AttributeError):
        ds.name = "x"
    with pytest.raises(ValueError, match="indices must lie in"):
        ds.subset([5])


@pytest.mark.parametrize(
    "over, fragment",
    [
        (dict(images=np.zeros((3, 2, 2), np.uint8)), "uint8 array \\[N, H, W, C\\]"),
        (dict(images=np.zeros((3, 2, 2, 1), np.float32)), "uint8"),
        (dict(labels=np.array([0, 1, 2], np.int64)), "int32"),
        (dict(labels=np.array([0, 1], np.int32)), "3 images but 2 labels"),
        (dict(labels=np.array([0, 1, 3], np.int32)), "labels must lie in \\[0, 3\\)"),
        (dict(class_names=("a",)), "1 class_names"),
    ],
)
def test_dataset_validation(over, fragment):
    with pytest.raises(ValueError, match=fragment):
        _ds(**over)
