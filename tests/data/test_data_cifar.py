"""CIFAR-10/100 from generated official-format files: tarball, extracted, and every failure mode."""

import errno
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

import bal.data as bd
from bal.data import archive, cifar


def _check(ds, gen, split, mode="fine", name="cifar10"):
    images, labels = gen.arrays[split]
    assert ds.images.dtype == np.uint8 and ds.images.shape == (len(images), 32, 32, 3)
    assert ds.images.flags.c_contiguous
    assert (ds.images == images).all()
    assert ds.labels.dtype == np.int32 and (ds.labels == labels[mode]).all()
    assert ds.class_names == gen.class_names[mode]


@pytest.mark.parametrize("tarball, extracted", [(True, False), (False, True), (True, True)])
def test_cifar10(tmp_path, cifar10_data, tarball, extracted):
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=tarball, extracted=extracted)
    for split in ("train", "test"):
        ds = bd.load("cifar10", split, data_dir=tmp_path, checksums=gen.checksums)
        _check(ds, gen, split)
        assert ds.num_classes == 10 and ds.name == "cifar10"
    assert (d / "cifar-10-batches-py" / "data_batch_3").is_file()  # extracted (or already there)
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_cifar10_rgb_layout(tmp_path, cifar10_data, py2_pickle):
    """Row-major R, G, B planes of 1024 values become [32, 32, 3] pixels."""
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=False, extracted=True)
    data = np.zeros((1, 3072), np.uint8)
    data[0, :1024] = 10  # red plane
    data[0, 1024:2048] = 20  # green
    data[0, 2048 + 5 * 32 + 7] = 99  # blue at row 5, col 7
    blob = py2_pickle({b"labels": [3], b"data": data})
    (d / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    sums = dict(gen.checksums, **{"cifar-10-batches-py/test_batch": hashlib.md5(blob).hexdigest()})
    ds = bd.load("cifar10", "test", data_dir=tmp_path, checksums=sums)
    assert ds.images.shape == (1, 32, 32, 3) and ds.labels.tolist() == [3]
    assert (ds.images[0, :, :, 0] == 10).all() and (ds.images[0, :, :, 1] == 20).all()
    assert ds.images[0, 5, 7, 2] == 99 and ds.images[0, :, :, 2].sum() == 99


@pytest.mark.parametrize("mode", ["fine", "coarse"])
def test_cifar100(tmp_path, cifar100_data, mode):
    gen = cifar100_data
    gen.write(tmp_path, tarball=True)
    for split in ("train", "test"):
        ds = bd.load("cifar100", split, data_dir=tmp_path, checksums=gen.checksums, label_mode=mode)
        _check(ds, gen, split, mode)
        assert ds.num_classes == (100 if mode == "fine" else 20)
        assert ds.name == ("cifar100" if mode == "fine" else "cifar100_coarse")


def test_read_only_dir_reads_the_tarball_in_memory(tmp_path, cifar10_data, monkeypatch):
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=True)

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(archive, "extract", refuse)
    ds = bd.load("cifar10", "train", data_dir=tmp_path, checksums=gen.checksums)
    _check(ds, gen, "train")
    assert not (d / "cifar-10-batches-py").exists()


def test_generated_cifar_fails_official_checksum(tmp_path, cifar10_data):
    cifar10_data.write(tmp_path, tarball=True)
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("cifar10", data_dir=tmp_path)
    msg = str(e.value)
    assert "'cifar-10-python.tar.gz'" in msg and "c58f30108f718f92721af3b95e74349a" in msg
    assert str(tmp_path / "cifar10") in msg and "download=True" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg


def test_official_per_file_md5s_are_checked(tmp_path, cifar10_data):
    cifar10_data.write(tmp_path, tarball=False, extracted=True)
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("cifar10", "test", data_dir=tmp_path)
    msg = str(e.value)
    assert "cifar-10-batches-py/" in msg
    assert any(m in msg for m in ("40351d587109b95175f43aff81a1287e", "5ff9c542aee3614f3951f8cda6e48888"))


def test_missing(tmp_path):
    with pytest.raises(bd.DatasetNotFoundError) as e:
        bd.load("cifar100", data_dir=tmp_path)
    msg = str(e.value)
    assert "'cifar-100-python.tar.gz'" in msg and "eb9058c3a382ffc7106e4002c42a8d85" in msg
    assert "16019d7e3df5f24257cddd939b257f8d" in msg or "7973b15100ade9c7d40fb424638fde48" in msg
    assert str(tmp_path / "cifar100") in msg and "download=True" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in msg


def test_corrupt_extracted_batch(tmp_path, cifar10_data):
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=False, extracted=True)
    f = d / "cifar-10-batches-py" / "data_batch_2"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("cifar10", "train", data_dir=tmp_path, checksums=gen.checksums)
    msg = str(e.value)
    assert "'cifar-10-batches-py/data_batch_2'" in msg and gen.checksums["cifar-10-batches-py/data_batch_2"] in msg
    assert str(d / "cifar-10-batches-py") in msg and "download=True" in msg
    # with the tarball at hand, the damaged file is extracted again
    (d / "cifar-10-python.tar.gz").write_bytes(gen.tarball)
    _check(bd.load("cifar10", "train", data_dir=tmp_path, checksums=gen.checksums), gen, "train")


def test_truncated_tarball(tmp_path, cifar10_data):
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=False)
    (d / "cifar-10-python.tar.gz").write_bytes(gen.tarball[: len(gen.tarball) // 2])
    with pytest.raises(bd.ChecksumError, match="cifar-10-python.tar.gz"):
        bd.load("cifar10", data_dir=tmp_path, checksums=gen.checksums)
    with pytest.raises(bd.FormatError, match="truncated or corrupt"):
        bd.load("cifar10", data_dir=tmp_path, verify=False)
    assert not (d / "cifar-10-batches-py").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_malicious_pickle_runs_nothing(tmp_path, cifar10_data):
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=False, extracted=True)
    marker = tmp_path / "pwned"
    _Evil.marker = marker
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(bd.UnsafePickleError) as e:
            cifar.safe_unpickle(pickle.dumps(_Evil(), protocol=protocol), "test_batch")
        assert "system" in str(e.value) and "'test_batch'" in str(e.value)
    blob = pickle.dumps({"data": _Evil(), "labels": []}, protocol=2)
    assert not marker.exists()
    # through the loader, with the file's checksum supplied so that unpickling is reached
    (d / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    sums = dict(gen.checksums, **{"cifar-10-batches-py/test_batch": hashlib.md5(blob).hexdigest()})
    with pytest.raises(bd.UnsafePickleError, match="forbidden global"):
        bd.load("cifar10", "test", data_dir=tmp_path, checksums=sums)
    with pytest.raises(bd.UnsafePickleError):
        bd.load("cifar10", "test", data_dir=tmp_path, verify=False)
    assert not marker.exists()
    # and with default verification the checksum stops it before any unpickling
    with pytest.raises(bd.ChecksumError):
        bd.load("cifar10", "test", data_dir=tmp_path, checksums={k: v for k, v in gen.checksums.items()
                                                                  if "test_batch" not in k})
    assert not marker.exists()


def test_restricted_unpickler_allows_only_numpy_reconstruction(py2_pickle):
    for module, name in [("builtins", "eval"), ("os", "system"), ("subprocess", "Popen"),
                         ("numpy", "load"), ("numpy.core.multiarray", "scalar")]:
        blob = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
        with pytest.raises(bd.UnsafePickleError, match=f"{module}.{name}"):
            cifar.safe_unpickle(blob, "x")
    out = cifar.safe_unpickle(py2_pickle({b"data": np.zeros((2, 3072), np.uint8)}), "x")
    assert out[b"data"].shape == (2, 3072)
    with pytest.raises(bd.FormatError, match="not a valid CIFAR pickle"):
        cifar.safe_unpickle(b"\x80\x02}(U\x04data", "x")


def test_not_a_batch(tmp_path, cifar10_data, py2_pickle):
    gen = cifar10_data
    d = gen.write(tmp_path, tarball=False, extracted=True)
    (d / "cifar-10-batches-py" / "test_batch").write_bytes(py2_pickle({b"labels": [1]}))
    with pytest.raises(bd.FormatError, match="no 'data' entry"):
        bd.load("cifar10", "test", data_dir=tmp_path, verify=False)
    (d / "cifar-10-batches-py" / "test_batch").write_bytes(
        py2_pickle({b"labels": [1], b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(bd.FormatError, match="'labels' must be 2 integers"):
        bd.load("cifar10", "test", data_dir=tmp_path, verify=False)


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name, data=b"x"):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti, data


def _link(name, target, kind=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = kind, target
    return ti, None


@pytest.mark.parametrize(
    "bad, why",
    [
        (_file("../evil"), "'..'"),
        (_file("cifar-10-batches-py/../../evil"), "'..'"),
        (_file("/tmp/evil_bal_test"), "absolute path"),
        (_link("cifar-10-batches-py/data_batch_9", "/etc/passwd"), "link"),
        (_link("cifar-10-batches-py/hard", "/etc/passwd", tarfile.LNKTYPE), "link"),
    ],
)
def test_unsafe_archive_members_are_refused(tmp_path, cifar10_data, bad, why):
    gen = cifar10_data
    members = [_file(n, b) for n, b in gen.members.items()] + [bad]
    blob = _tar(members)
    root = tmp_path / "data"
    d = root / "cifar10"
    d.mkdir(parents=True)
    (d / "cifar-10-python.tar.gz").write_bytes(blob)
    sums = dict(gen.checksums, **{"cifar-10-python.tar.gz": hashlib.md5(blob).hexdigest()})
    with pytest.raises(bd.UnsafeArchiveError, match=why) as e:
        bd.load("cifar10", "test", data_dir=root, checksums=sums)
    assert "cifar-10-python.tar.gz" in str(e.value)
    assert not (tmp_path / "evil").exists() and not (root / "evil").exists()
    assert not os.path.exists("/tmp/evil_bal_test")
    assert not (d / "cifar-10-batches-py").exists()


def test_data_filter_is_a_second_defence(tmp_path):
    """Even if the name check were bypassed, extraction uses filter='data'."""
    blob = _tar([_file("a/../../evil")])
    t = tmp_path / "x.tar.gz"
    t.write_bytes(blob)
    with tarfile.open(t) as tar, pytest.raises(tarfile.FilterError):
        tar.extractall(tmp_path / "dest", filter="data")
    assert not (tmp_path / "evil").exists()


def test_tarball_member_with_wrong_checksum_extracts_nothing(tmp_path, cifar10_data):
    gen = cifar10_data
    gen.write(tmp_path, tarball=True)
    sums = dict(gen.checksums, **{"cifar-10-batches-py/data_batch_4": "0" * 32})
    with pytest.raises(bd.ChecksumError, match="data_batch_4"):
        bd.load("cifar10", data_dir=tmp_path, checksums=sums)
    assert _listing_all(tmp_path / "cifar10") == ["cifar-10-python.tar.gz"]


def _listing_all(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))
