"""Checksum verification, its error messages and its cache."""

import hashlib
import os

import pytest

import bal.data as bd
from bal.data import checksum as ck


def test_digest_kind_and_spec():
    assert ck.digest_kind("a" * 32) == "md5"
    assert ck.digest_kind("B" * 64) == "sha256"
    with pytest.raises(ValueError):
        ck.digest_kind("abc")
    with pytest.raises(ValueError, match="needs at least one"):
        ck.FileSpec("x")
    spec = ck.FileSpec("f", md5="a" * 32, sha256="b" * 64, size=3)
    assert list(spec.expected) == ["sha256", "md5"]
    assert spec.describe().startswith("sha256 " + "b" * 64)
    swapped = spec.with_digest("c" * 32)
    assert swapped.expected == {"md5": "c" * 32} and swapped.size is None


def test_read_verified_ok_missing_corrupt(tmp_path):
    data = b"hello world" * 100
    (tmp_path / "f.bin").write_bytes(data)
    spec = ck.FileSpec("f.bin", md5=hashlib.md5(data).hexdigest(), sha256=hashlib.sha256(data).hexdigest(),
                       size=len(data))
    assert ck.read_verified(tmp_path / "f.bin", spec, "HINT") == data

    with pytest.raises(bd.DatasetNotFoundError) as e:
        ck.read_verified(tmp_path / "nope.bin", ck.FileSpec("nope.bin", md5="a" * 32), "HINT")
    assert isinstance(e.value, FileNotFoundError)
    assert "'nope.bin'" in str(e.value) and "a" * 32 in str(e.value) and str(tmp_path) in str(e.value)
    assert "HINT" in str(e.value)

    (tmp_path / "f.bin").write_bytes(data[:-5])
    with pytest.raises(bd.ChecksumError) as e:
        ck.read_verified(tmp_path / "f.bin", spec, "HINT")
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert "'f.bin'" in msg and spec.sha256 in msg and "truncated" in msg and str(tmp_path) in msg and "HINT" in msg


def test_cache_skips_rehash_and_notices_changes(tmp_path, monkeypatch):
    data = bytes(range(256)) * 64
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    spec = ck.FileSpec("f.bin", sha256=hashlib.sha256(data).hexdigest())
    calls = []
    real = ck._hash_bytes
    monkeypatch.setattr(ck, "_hash_bytes", lambda d, a: calls.append(1) or real(d, a))
    ck.read_verified(path, spec)
    ck.read_verified(path, spec)
    assert len(calls) == 1  # second read served from the cache

    flipped = bytearray(data)
    flipped[100] ^= 0xFF
    path.write_bytes(bytes(flipped))
    st = path.stat()  # kernel timestamps are coarse: make sure the rewrite is visible in mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(bd.ChecksumError):
        ck.read_verified(path, spec)
    assert len(calls) == 2


def test_file_digests_streams_and_caches(tmp_path):
    data = os.urandom(3 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    got = ck.file_digests(path, ("md5", "sha256"))
    assert got == {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    assert ck.file_digests(path, ("md5",)) == {"md5": got["md5"]}
    bd.clear_cache()
    assert ck.file_digests(path, ("md5",)) == {"md5": got["md5"]}
