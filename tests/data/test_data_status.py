"""bal.data.status: present & verified / missing / corrupt, with messages that say how to fix it."""

import dataclasses

import bal.data as bd


def _by_name(root):
    return {s.name: s for s in bd.status(root)}


def test_status_empty_dir(tmp_path):
    st = _by_name(tmp_path / "nowhere")
    assert [s.name for s in bd.status(tmp_path)] == bd.names()
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        s = st[name]
        assert s.state == "missing" and not s.ok
        assert s.directory == tmp_path / "nowhere" / name
        assert "download=True" in s.message and "BAL_DATA_DIR" in s.message and str(s.directory) in s.message
        assert "does not exist" in s.message
        assert name in str(s) and "missing" in str(s)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in st["cifar10"].message
    assert "c58f30108f718f92721af3b95e74349a" in st["cifar10"].message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in st["mnist"].message
    assert st["digits"].ok and "scikit-learn" in st["digits"].message


def test_status_partial_and_corrupt_idx(tmp_path, make_idx):
    gen = make_idx(tmp_path)  # generated files: present but not the official ones
    (gen.dir / "t10k-images-idx3-ubyte.gz").unlink()
    s = _by_name(tmp_path)["mnist"]
    assert s.state == "corrupt"
    assert "train-images-idx3-ubyte.gz" in s.problems and "t10k-images-idx3-ubyte.gz" not in s.problems
    assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in s.message
    assert "delete" in s.message and "download=True" in s.message


def test_status_missing_one_file(tmp_path, real_data):
    import shutil

    d = tmp_path / "mnist"
    d.mkdir()
    for n in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copyfile(real_data / "mnist" / n, d / n)
    s = _by_name(tmp_path)["mnist"]
    assert s.state == "missing" and s.problems == ("t10k-labels-idx1-ubyte.gz",)
    assert "t10k-labels-idx1-ubyte.gz missing from " + str(d) in s.message


def test_status_cifar(tmp_path, cifar10_data, monkeypatch):
    gen = cifar10_data
    gen.write(tmp_path, tarball=True)
    s = _by_name(tmp_path)["cifar10"]
    assert s.state == "corrupt" and s.problems == ("cifar-10-python.tar.gz",)
    assert "c58f30108f718f92721af3b95e74349a" in s.message
    # pretend the generated files are the official ones: status then reports them verified
    info = bd.DATASETS["cifar10"]
    specs = bd.file_specs(info, gen.checksums)
    monkeypatch.setitem(bd.DATASETS, "cifar10", dataclasses.replace(
        info, archive=specs[info.archive.name], files={n: specs[n] for n in info.files}))
    s = _by_name(tmp_path)["cifar10"]
    assert s.ok and "archive cifar-10-python.tar.gz verified" in s.message
    gen.write(tmp_path, tarball=False, extracted=True)
    s = _by_name(tmp_path)["cifar10"]
    assert s.ok and "extracted cifar-10-batches-py/" in s.message


def test_a_data_dir_that_is_a_file_is_named_as_such(tmp_path):
    from bal.data.status import status

    path = tmp_path / "file"
    path.write_text("x")
    message = next(s.message for s in status(path, ["mnist"]))
    assert f"the data directory {path}" in message and "is a file, not a directory" in message
