"""Downloading official files: timeout, checksum, atomic write.

A file is streamed into a temporary file in the destination directory while
being hashed; only when the digest matches the published one is it moved into
place with ``os.replace`` (atomic on one filesystem).  On any failure — HTTP
error, timeout, refused connection, checksum mismatch, interruption — the
temporary file is deleted, so the destination is either the verified file or
untouched.  Mirrors are tried in order.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .checksum import FileSpec, mismatch_message
from .errors import ChecksumError, DownloadError

__all__ = ["fetch", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "bal-data/0.1 (Python urllib; dataset downloader)"


class _Mismatch(Exception):
    pass


def _fetch_one(url: str, dest: Path, spec: FileSpec | None, timeout: float) -> None:
    """Download ``url`` to ``dest`` atomically; raise on any failure, leaving nothing behind."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        hashers = {alg: hashlib.new(alg) for alg in (spec.expected if spec else ())}
        size = 0
        limit = spec.size if spec is not None and spec.size is not None else None
        req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise _Mismatch(f"the server sent more than the published {limit:,} bytes")
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
            out.flush()
            os.fsync(out.fileno())
        if spec is not None:
            got = {alg: h.hexdigest() for alg, h in hashers.items()}
            if any(got[a] != d for a, d in spec.expected.items()):
                raise _Mismatch(mismatch_message(spec, url, got, size, ""))
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, (TimeoutError, socket.timeout)) or "timed out" in str(e):
        return f"timed out after {timeout:g} s"
    if isinstance(e, urllib.error.URLError):
        return f"{e.reason}"
    return f"{type(e).__name__}: {e}"


def fetch(
    file: str,
    dest: str | os.PathLike,
    base_urls: Sequence[str],
    spec: FileSpec | None,
    timeout: float = DEFAULT_TIMEOUT,
    hint: str = "",
) -> Path:
    """Download ``file`` from the first working base URL into ``dest``; return ``dest``.

    Args:
        file: file name appended to each base URL (e.g. ``"train-images-idx3-ubyte.gz"``).
        dest: final path; its directory is created if needed.
        base_urls: mirrors, tried in order (each ends with ``/``).
        spec: expected digests (``None`` skips verification — only for ``verify=False``).
        timeout: seconds for connecting and for each read.
        hint: sentence appended to errors (where else to get the file).

    Raises:
        ChecksumError: every mirror answered but with bytes that differ from ``spec``.
        DownloadError: a mirror failed otherwise (HTTP error, timeout, no connection);
            the message lists each URL tried and why it failed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, BaseException]] = []
    for base in base_urls:
        url = base + file
        try:
            _fetch_one(url, dest, spec, timeout)
            return dest
        except _Mismatch as e:
            failures.append((url, e))
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            if isinstance(e, urllib.error.HTTPError):
                e.close()  # an HTTPError holds the open response
            failures.append((url, e))
    lines = "; ".join(
        f"{url}: {e if isinstance(e, _Mismatch) else _reason(e, timeout)}" for url, e in failures
    )
    if failures and all(isinstance(e, _Mismatch) for _, e in failures):
        raise ChecksumError(
            f"downloaded {file!r} but it does not match the published checksum"
            + (f" {spec.describe()}" if spec else "")
            + f" ({lines}); nothing was written to {dest.parent}. {hint}".rstrip()
        )
    raise DownloadError(
        f"could not download {file!r} into {dest.parent} ({lines}). {hint}".rstrip()
    )
