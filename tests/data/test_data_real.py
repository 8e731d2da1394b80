"""The real MNIST / Fashion-MNIST files (skipped when absent): shapes, checksums, failure modes."""

import hashlib
import shutil

import numpy as np
import pytest

import bal.data as bd

pytestmark = pytest.mark.realdata

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_checksums_match_registry(real_data):
    for name in ("mnist", "fashion_mnist"):
        for fname, spec in bd.DATASETS[name].files.items():
            data = (real_data / name / fname).read_bytes()
            assert len(data) == spec.size
            assert hashlib.md5(data).hexdigest() == spec.md5
            assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_real_mnist(real_data):
    train = bd.load("mnist", "train", data_dir=real_data)
    test = bd.load("mnist", "test", data_dir=real_data)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    assert train.counts().tolist() == MNIST_TRAIN_COUNTS
    assert train.counts().sum() == 60000 and test.counts().sum() == 10000
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first MNIST labels


def test_real_fashion_mnist(real_data):
    train = bd.load("fashion_mnist", "train", data_dir=real_data)
    test = bd.load("fashion_mnist", "test", data_dir=real_data)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.counts().tolist() == [6000] * 10 and test.counts().tolist() == [1000] * 10
    assert train.class_names[9] == "Ankle boot"


def test_real_status(real_data):
    by_name = {s.name: s for s in bd.status(real_data)}
    assert by_name["mnist"].ok and by_name["fashion_mnist"].ok and by_name["digits"].ok
    assert "verified" in by_name["mnist"].message


def _copy_mnist(real_data, tmp_path):
    dest = tmp_path / "mnist"
    shutil.copytree(real_data / "mnist", dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    dest.chmod(0o755)
    return dest


def test_real_corrupt_copy(real_data, tmp_path):
    dest = _copy_mnist(real_data, tmp_path)
    f = dest / "train-labels-idx1-ubyte.gz"
    data = bytearray(f.read_bytes())
    data[1000] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("mnist", "train", data_dir=tmp_path)
    msg = str(e.value)
    assert "'train-labels-idx1-ubyte.gz'" in msg
    assert "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c" in msg
    assert str(dest) in msg and "download=True" in msg and "BAL_DATA_DIR" in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz" in msg
    status = {s.name: s for s in bd.status(tmp_path)}["mnist"]
    assert status.state == "corrupt" and status.problems == ("train-labels-idx1-ubyte.gz",)
    # the test split is untouched and still loads
    assert len(bd.load("mnist", "test", data_dir=tmp_path)) == 10000


def test_real_truncated_and_missing_copy(real_data, tmp_path):
    dest = _copy_mnist(real_data, tmp_path)
    f = dest / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:500_000])
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("mnist", "test", data_dir=tmp_path)
    msg = str(e.value)
    assert "'t10k-images-idx3-ubyte.gz'" in msg and "truncated" in msg and "1,648,877" in msg
    f.unlink()
    with pytest.raises(bd.DatasetNotFoundError) as e:
        bd.load("mnist", "test", data_dir=tmp_path)
    msg = str(e.value)
    assert "'t10k-images-idx3-ubyte.gz' not found in " + str(dest) in msg
    assert "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6" in msg
    assert "download=True" in msg and "the data_dir argument" in msg


def test_real_mnist_loads_fast(real_data):
    """Loading the train split, checksums included, takes well under 2 s (about 0.25 s here)."""
    import time

    bd.clear_cache()
    start = time.perf_counter()
    ds = bd.load("mnist", "train", data_dir=real_data)
    elapsed = time.perf_counter() - start
    assert len(ds) == 60000
    assert elapsed < 2.0, f"loading MNIST train took {elapsed:.2f} s"
