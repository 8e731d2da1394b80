"""Fixtures for the bal.data tests: generated official-format files and a local HTTP server.

Nothing here touches the internet: downloads are served from 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import struct
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import bal.data as bd
from bal.data.idx import encode_idx


# ---------------------------------------------------------------- Python-2 style pickles
def _py2_pickle(obj) -> bytes:
    """Pickle ``obj`` the way Python 2's cPickle (protocol 2) wrote the CIFAR files.

    ``bytes`` become py2 ``str`` opcodes (so ``encoding="bytes"`` yields bytes),
    and uint8 arrays are written as numpy 1.x did: ``numpy.core.multiarray._reconstruct``
    + ``numpy.dtype`` with byte-string arguments.
    """
    out = io.BytesIO()
    w = out.write

    def glob(module, name):
        w(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def save(x):
        if x is None:
            w(b"N")
        elif x is True or x is False:
            w(b"\x88" if x else b"\x89")
        elif isinstance(x, int):
            w(b"J" + struct.pack("<i", x))
        elif isinstance(x, bytes):
            w((b"U" + bytes([len(x)])) if len(x) < 256 else (b"T" + struct.pack("<I", len(x))))
            w(x)
        elif isinstance(x, tuple):
            w(b"(")
            for v in x:
                save(v)
            w(b"t")
        elif isinstance(x, list):
            w(b"](")
            for v in x:
                save(v)
            w(b"e")
        elif isinstance(x, dict):
            w(b"}(")
            for k, v in x.items():
                save(k)
                save(v)
            w(b"u")
        elif isinstance(x, np.ndarray):
            assert x.dtype == np.uint8
            glob("numpy.core.multiarray", "_reconstruct")
            w(b"(")
            glob("numpy", "ndarray")
            save((0,))
            save(b"b")
            w(b"tR")
            w(b"(")
            save(1)
            save(tuple(int(s) for s in x.shape))
            glob("numpy", "dtype")
            save((b"u1", 0, 1))
            w(b"R")
            save((3, b"|", None, None, None, -1, -1, 0))
            w(b"b")
            save(False)
            save(np.ascontiguousarray(x).tobytes())
            w(b"tb")
        else:
            raise TypeError(type(x))

    w(b"\x80\x02")
    save(obj)
    w(b".")
    return out.getvalue()


@pytest.fixture
def py2_pickle():
    return _py2_pickle


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- generated IDX files
class IdxData:
    """Generated MNIST-like files: arrays per split and their sha256 checksums."""

    def __init__(self, root: Path, name: str, files: dict[str, bytes], arrays: dict):
        self.root, self.name, self.files, self.arrays = root, name, files, arrays
        self.dir = root / name
        self.checksums = {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}


def _make_idx(root: Path, name: str = "mnist", n_train: int = 50, n_test: int = 20, seed: int = 0,
              write: bool = True) -> IdxData:
    rng = np.random.default_rng(seed)
    files, arrays = {}, {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        arrays[split] = (images, labels)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(encode_idx(images), mtime=0)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(encode_idx(labels), mtime=0)
    data = IdxData(root, name, files, arrays)
    if write:
        data.dir.mkdir(parents=True, exist_ok=True)
        for n, b in files.items():
            (data.dir / n).write_bytes(b)
    return data


@pytest.fixture
def make_idx():
    """``make_idx(root, name="mnist", n_train=50, n_test=20, seed=0, write=True) -> IdxData``."""
    return _make_idx


# ---------------------------------------------------------------- generated CIFAR files
class CifarData:
    """Generated CIFAR python-version files: member bytes, tarball bytes, expected arrays, md5s."""

    def __init__(self, info, members: dict[str, bytes], arrays: dict, class_names: dict):
        self.info, self.members, self.arrays, self.class_names = info, members, arrays, class_names
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            dir_info = tarfile.TarInfo(info.archive_folder)
            dir_info.type, dir_info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(dir_info)
            for n, b in members.items():
                ti = tarfile.TarInfo(n)
                ti.size, ti.mode = len(b), 0o644
                tar.addfile(ti, io.BytesIO(b))
        self.tarball = buf.getvalue()
        self.checksums = {n: md5(b) for n, b in members.items()}
        self.checksums[info.archive.name] = md5(self.tarball)

    def write(self, root: Path, tarball: bool = True, extracted: bool = False) -> Path:
        d = root / self.info.subdir
        d.mkdir(parents=True, exist_ok=True)
        if tarball:
            (d / self.info.archive.name).write_bytes(self.tarball)
        if extracted:
            for n, b in self.members.items():
                (d / n).parent.mkdir(parents=True, exist_ok=True)
                (d / n).write_bytes(b)
        return d


def _make_cifar(name: str = "cifar10", n_per_file: int = 12, seed: int = 0) -> CifarData:
    info = bd.DATASETS[name]
    rng = np.random.default_rng(seed)
    folder = info.archive_folder
    members, arrays = {}, {}

    def batch(split_name, n):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        hwc = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
        if name == "cifar10":
            labels = [int(x) for x in rng.integers(0, 10, n)]
            d = {b"batch_label": split_name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
            return d, hwc, {"fine": labels}
        fine = [int(x) for x in rng.integers(0, 100, n)]
        coarse = [f // 5 for f in fine]
        d = {b"filenames": [f"img_{i}.png".encode() for i in range(n)], b"batch_label": split_name.encode(),
             b"fine_labels": fine, b"coarse_labels": coarse, b"data": data}
        return d, hwc, {"fine": fine, "coarse": coarse}

    if name == "cifar10":
        class_names = {"fine": [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                                b"dog", b"frog", b"horse", b"ship", b"truck"]}
        meta = {b"num_cases_per_batch": n_per_file, b"label_names": class_names["fine"], b"num_vis": 3072}
        members[f"{folder}/batches.meta"] = _py2_pickle(meta)
        parts = []
        for i in range(1, 6):
            d, hwc, lab = batch(f"training batch {i} of 5", n_per_file)
            members[f"{folder}/data_batch_{i}"] = _py2_pickle(d)
            parts.append((hwc, lab))
        arrays["train"] = (np.concatenate([p[0] for p in parts]),
                           {"fine": np.concatenate([p[1]["fine"] for p in parts])})
        d, hwc, lab = batch("testing batch 1 of 1", n_per_file)
        members[f"{folder}/test_batch"] = _py2_pickle(d)
        arrays["test"] = (hwc, {"fine": np.asarray(lab["fine"])})
    else:
        class_names = {"fine": [f"fine_{i}".encode() for i in range(100)],
                       "coarse": [f"coarse_{i}".encode() for i in range(20)]}
        members[f"{folder}/meta"] = _py2_pickle(
            {b"fine_label_names": class_names["fine"], b"coarse_label_names": class_names["coarse"]})
        for split in ("train", "test"):
            d, hwc, lab = batch(split, n_per_file * (2 if split == "train" else 1))
            members[f"{folder}/{split}"] = _py2_pickle(d)
            arrays[split] = (hwc, {k: np.asarray(v) for k, v in lab.items()})
    names = {k: tuple(x.decode() for x in v) for k, v in class_names.items()}
    return CifarData(info, members, arrays, names)


@pytest.fixture(scope="session")
def cifar10_data():
    return _make_cifar("cifar10")


@pytest.fixture(scope="session")
def cifar100_data():
    return _make_cifar("cifar100")


# ---------------------------------------------------------------- local HTTP server
class _Server:
    """A 127.0.0.1 HTTP server serving ``routes``: path -> bytes, or -> callable(handler)."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.hits: list[str] = []
        routes, hits = self.routes, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                body = routes.get(self.path)
                if callable(body):
                    return body(self)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def http_server():
    server = _Server()
    try:
        yield server
    finally:
        server.close()


def slow_handler(delay: float, body: bytes = b"x" * 100):
    """A route that sends headers, then stalls ``delay`` seconds before the body."""

    def handle(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        time.sleep(delay)
        try:
            h.wfile.write(body)
        except OSError:
            pass

    return handle


@pytest.fixture
def slow():
    return slow_handler


@pytest.fixture(autouse=True)
def _no_url_overrides(monkeypatch):
    """Tests must never reach the internet: drop any download-URL overrides from the environment."""
    for name in bd.DATASETS:
        monkeypatch.delenv(bd.DATASETS[name].url_env, raising=False)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Refuse any connection that is not to 127.0.0.1, so no test can reach the internet."""
    import socket

    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        host = address[0]
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"test tried to connect to {host!r}; only 127.0.0.1 is allowed in tests")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
