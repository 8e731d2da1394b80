"""Downloads from a local 127.0.0.1 server: success, mirrors, 404, wrong bytes, timeout, atomicity."""

import hashlib

import numpy as np
import pytest

import bal.data as bd
from bal.data.checksum import FileSpec
from bal.data.remote import fetch


def _listing(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def _serve_idx(server, gen, prefix="/mnist/"):
    for name, data in gen.files.items():
        server.routes[prefix + name] = data


def test_download_success_and_no_second_download(tmp_path, make_idx, http_server):
    gen = make_idx(tmp_path / "src", write=False)
    _serve_idx(http_server, gen)
    root = tmp_path / "data"
    ds = bd.load("mnist", "train", data_dir=root, download=True, checksums=gen.checksums,
                 base_urls=http_server.url + "/mnist/")
    assert (ds.labels == gen.arrays["train"][1]).all()
    assert _listing(root / "mnist") == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert len(http_server.hits) == 2
    bd.load("mnist", "train", data_dir=root, download=True, checksums=gen.checksums,
            base_urls=http_server.url + "/mnist/")
    assert len(http_server.hits) == 2  # present and verified: nothing fetched again
    ds = bd.load("mnist", "test", data_dir=root, download=True, checksums=gen.checksums,
                 base_urls=[http_server.url + "/mnist"])  # no trailing slash is fine
    assert len(ds) == 20 and len(http_server.hits) == 4


def test_env_var_sets_the_mirror(tmp_path, make_idx, http_server, monkeypatch):
    gen = make_idx(tmp_path / "src", name="fashion_mnist", write=False)
    _serve_idx(http_server, gen, "/f/")
    monkeypatch.setenv("BAL_FASHION_MNIST_URL", f"{http_server.url}/nothing/ {http_server.url}/f/")
    ds = bd.load("fashion_mnist", "test", data_dir=tmp_path / "d", download=True, checksums=gen.checksums)
    assert len(ds) == 20
    assert http_server.hits[0].startswith("/nothing/")  # first mirror 404s, the second serves


def test_download_replaces_a_corrupt_file(tmp_path, make_idx, http_server):
    gen = make_idx(tmp_path / "data")
    _serve_idx(http_server, gen)
    f = gen.dir / "train-labels-idx1-ubyte.gz"
    f.write_bytes(b"garbage")
    ds = bd.load("mnist", data_dir=tmp_path / "data", download=True, checksums=gen.checksums,
                 base_urls=http_server.url + "/mnist/")
    assert (ds.labels == gen.arrays["train"][1]).all()
    assert http_server.hits == ["/mnist/train-labels-idx1-ubyte.gz"]


def test_404(tmp_path, http_server):
    root = tmp_path / "data"
    with pytest.raises(bd.DownloadError) as e:
        bd.load("mnist", data_dir=root, download=True, base_urls=http_server.url + "/mnist/")
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert "HTTP 404" in msg and f"{http_server.url}/mnist/train-images-idx3-ubyte.gz" in msg
    assert str(root / "mnist") in msg and "BAL_DATA_DIR" in msg
    assert _listing(root / "mnist") == []


def test_wrong_bytes_leave_no_file(tmp_path, make_idx, http_server):
    gen = make_idx(tmp_path / "src", write=False)
    _serve_idx(http_server, gen)
    http_server.routes["/mnist/train-images-idx3-ubyte.gz"] = b"not the file" * 1000
    root = tmp_path / "data"
    with pytest.raises(bd.ChecksumError) as e:
        bd.load("mnist", data_dir=root, download=True, checksums=gen.checksums,
                base_urls=http_server.url + "/mnist/")
    msg = str(e.value)
    assert "'train-images-idx3-ubyte.gz'" in msg and gen.checksums["train-images-idx3-ubyte.gz"] in msg
    assert "nothing was written" in msg
    assert _listing(root / "mnist") == []  # no half-written file, no temp file


def test_wrong_bytes_against_the_official_checksum(tmp_path, http_server):
    http_server.routes["/m/t10k-labels-idx1-ubyte.gz"] = b"\x00" * 4542
    with pytest.raises(bd.ChecksumError, match="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"):
        fetch("t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz", [http_server.url + "/m/"],
              bd.DATASETS["mnist"].files["t10k-labels-idx1-ubyte.gz"])
    assert _listing(tmp_path) == []


def test_oversized_response_is_cut_off(tmp_path, http_server):
    http_server.routes["/big"] = b"y" * 5000
    spec = FileSpec("big", md5=hashlib.md5(b"y" * 10).hexdigest(), size=10)
    with pytest.raises(bd.ChecksumError, match="more than the published 10 bytes"):
        fetch("big", tmp_path / "big", [http_server.url + "/"], spec)
    assert _listing(tmp_path) == []


def test_timeout(tmp_path, http_server, slow):
    http_server.routes["/mnist/train-images-idx3-ubyte.gz"] = slow(2.0)
    root = tmp_path / "data"
    with pytest.raises(bd.DownloadError, match="timed out after 0.3 s"):
        bd.load("mnist", data_dir=root, download=True, base_urls=http_server.url + "/mnist/", timeout=0.3)
    assert _listing(root / "mnist") == []


def test_connection_refused(tmp_path, http_server):
    url = http_server.url
    http_server.close()
    with pytest.raises(bd.DownloadError, match="could not download"):
        bd.load("mnist", data_dir=tmp_path, download=True, base_urls=url + "/", timeout=2)


def test_cifar_download_and_extract(tmp_path, cifar100_data, http_server):
    gen = cifar100_data
    http_server.routes["/kriz/cifar-100-python.tar.gz"] = gen.tarball
    root = tmp_path / "data"
    ds = bd.load("cifar100", "test", data_dir=root, download=True, checksums=gen.checksums,
                 base_urls=http_server.url + "/kriz/")
    assert (ds.labels == gen.arrays["test"][1]["fine"]).all()
    assert _listing(root / "cifar100") == ["cifar-100-python", "cifar-100-python.tar.gz"]
    assert _listing(root / "cifar100" / "cifar-100-python") == ["meta", "test", "train"]
    bd.load("cifar100", "train", data_dir=root, download=True, checksums=gen.checksums,
            base_urls=http_server.url + "/kriz/")
    assert len(http_server.hits) == 1
    assert np.array_equal(bd.load("cifar100", "train", data_dir=root, checksums=gen.checksums).images,
                          gen.arrays["train"][0])


def test_no_download_without_asking(tmp_path, http_server):
    with pytest.raises(bd.DatasetNotFoundError):
        bd.load("mnist", data_dir=tmp_path, base_urls=http_server.url + "/")
    assert http_server.hits == []


def test_download_function_fetches_both_splits(tmp_path, make_idx, http_server):
    gen = make_idx(tmp_path / "src", write=False)
    _serve_idx(http_server, gen)
    root = tmp_path / "data"
    got = bd.download("mnist", root, checksums=gen.checksums, base_urls=http_server.url + "/mnist/")
    assert sorted(got) == sorted(gen.files)
    assert _listing(root / "mnist") == sorted(gen.files)
    assert bd.download("mnist", root, checksums=gen.checksums, base_urls=http_server.url + "/mnist/") == []
    assert bd.download("digits", root) == []
