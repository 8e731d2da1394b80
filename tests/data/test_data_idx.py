"""The IDX format and the MNIST / Fashion-MNIST loaders, on generated files."""

import gzip
import struct

import numpy as np
import pytest

import bal.data as bd
from bal.data.idx import IMAGES_MAGIC, LABELS_MAGIC, encode_idx, parse_idx


def test_parse_roundtrip():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(encode_idx(a), "x", IMAGES_MAGIC)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4) and (out == a).all()
    lab = parse_idx(encode_idx(np.array([1, 2], np.uint8)), "y", LABELS_MAGIC)
    assert lab.tolist() == [1, 2]


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x02\x08\x03" + b"\x00" * 20, "bad IDX magic number 0x01020803"),
        (struct.pack(">HBB", 0, 0x08, 1) + struct.pack(">I", 5) + b"\x00" * 5, "magic number is 0x00000801, expected 0x00000803"),
        (struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">I", 2), "declares 3 dimensions"),
        (struct.pack(">HBB3I", 0, 0x08, 3, 2, 28, 28) + b"\x00" * 100, "truncated"),
        (struct.pack(">HBB3I", 0, 0x08, 3, 1, 2, 2) + b"\x00" * 5, "trailing bytes"),
    ],
)
def test_parse_errors(raw, fragment):
    with pytest.raises(bd.FormatError, match=fragment) as e:
        parse_idx(raw, "train-images-idx3-ubyte.gz", IMAGES_MAGIC)
    assert "'train-images-idx3-ubyte.gz'" in str(e.value)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_generated(tmp_path, make_idx, name):
    gen = make_idx(tmp_path, name)
    for split in ("train", "test"):
        ds = bd.load(name, split, data_dir=tmp_path, checksums=gen.checksums)
        images, labels = gen.arrays[split]
        assert ds.images.shape == (len(labels), 28, 28, 1) and ds.images.dtype == np.uint8
        assert ds.labels.dtype == np.int32 and (ds.labels == labels).all()
        assert (ds.images[..., 0] == images).all()
        assert ds.name == name and ds.split == split and ds.num_classes == 10
        assert ds.class_names == bd.DATASETS[name].class_names


def test_generated_files_fail_the_official_checksum(tmp_path, make_idx):
    make_idx(tmp_path)
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert "'train-images-idx3-ubyte.gz'" in msg
    assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in msg
    assert str(tmp_path / "mnist") in msg and "download=True" in msg and "BAL_DATA_DIR" in msg


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_corrupt_truncated_missing_generated(tmp_path, make_idx):
    gen = make_idx(tmp_path)
    f = gen.dir / "t10k-labels-idx1-ubyte.gz"
    _flip(f, len(f.read_bytes()) // 2)
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("mnist", "test", data_dir=tmp_path, checksums=gen.checksums)
    msg = str(e.value)
    assert "'t10k-labels-idx1-ubyte.gz'" in msg and gen.checksums["t10k-labels-idx1-ubyte.gz"] in msg
    assert str(gen.dir) in msg and "download=True" in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz" in msg

    f = gen.dir / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(bd.ChecksumError, match="train-images-idx3-ubyte.gz"):
        bd.load("mnist", "train", data_dir=tmp_path, checksums=gen.checksums)

    (gen.dir / "train-labels-idx1-ubyte.gz").unlink()
    gen2 = make_idx(tmp_path / "other")  # an intact train-images so the labels file is the first failure
    (gen.dir / "train-images-idx3-ubyte.gz").write_bytes(gen2.files["train-images-idx3-ubyte.gz"])
    sums = dict(gen.checksums, **{"train-images-idx3-ubyte.gz": gen2.checksums["train-images-idx3-ubyte.gz"]})
    with pytest.raises(bd.DatasetNotFoundError) as e:
        bd.load("mnist", "train", data_dir=tmp_path, checksums=sums)
    msg = str(e.value)
    assert "'train-labels-idx1-ubyte.gz' not found in " + str(gen.dir) in msg
    assert gen.checksums["train-labels-idx1-ubyte.gz"] in msg and "download=True" in msg


def test_unverified_bad_files_give_format_errors_not_tracebacks(tmp_path, make_idx):
    gen = make_idx(tmp_path)
    f = gen.dir / "train-images-idx3-ubyte.gz"
    good = f.read_bytes()
    f.write_bytes(good[: len(good) // 2])  # truncated gzip stream
    with pytest.raises(bd.FormatError, match="not a valid gzip file"):
        bd.load("mnist", data_dir=tmp_path, verify=False)
    f.write_bytes(gzip.compress(gzip.decompress(good)[:-28 * 28 * 3]))  # valid gzip, short IDX payload
    with pytest.raises(bd.FormatError, match="truncated"):
        bd.load("mnist", data_dir=tmp_path, verify=False)
    f.write_bytes(gzip.compress(encode_idx(np.zeros((7, 28, 28), np.uint8))))  # count mismatch
    with pytest.raises(bd.FormatError, match="7 images but 'train-labels-idx1-ubyte.gz' holds 50 labels"):
        bd.load("mnist", data_dir=tmp_path, verify=False)
    f.write_bytes(gzip.compress(encode_idx(np.zeros((50, 27, 28), np.uint8))))
    with pytest.raises(bd.FormatError, match="expected \\(28, 28\\)"):
        bd.load("mnist", data_dir=tmp_path, verify=False)
    f.write_bytes(gen.files["train-labels-idx1-ubyte.gz"])  # swapped files: wrong magic
    with pytest.raises(bd.FormatError, match="magic number is 0x00000801, expected 0x00000803"):
        bd.load("mnist", data_dir=tmp_path, verify=False)


def test_missing_without_verification(tmp_path):
    with pytest.raises(bd.DatasetNotFoundError, match="download=True"):
        bd.load("mnist", data_dir=tmp_path, verify=False)
