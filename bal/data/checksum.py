"""Published checksums and their verification, with a small in-memory cache.

A :class:`FileSpec` names one official file and its published digests (MD5,
and SHA-256 where one is published).  Verification hashes the very bytes that
are then parsed (:func:`read_verified`), so nothing is unpickled or decoded
before it is known to be the published file.

Cache: digests are remembered per ``(path, size, mtime_ns, ctime_ns, inode)``,
so loading the same file twice in a process hashes it once, while a file that
is rewritten (any of those change) is hashed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from .errors import ChecksumError, DatasetNotFoundError

__all__ = [
    "FileSpec", "override", "read_verified", "verify_bytes", "verify_file", "file_digests", "clear_cache", "digest_kind",
]

_CHUNK = 1 << 20
_CACHE_MAX = 512
_cache: dict[tuple, dict[str, str]] = {}
_lock = threading.Lock()


def digest_kind(digest: str) -> str:
    """``"md5"`` or ``"sha256"`` for a hex digest of 32 or 64 characters."""
    digest = digest.strip().lower()
    if len(digest) == 32 and all(c in "0123456789abcdef" for c in digest):
        return "md5"
    if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
        return "sha256"
    raise ValueError(
        f"checksum {digest!r} is neither an MD5 (32 hex digits) nor a SHA-256 (64 hex digits)"
    )


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One official file: its name relative to the dataset directory and published digests.

    ``size`` (bytes) is optional; when known it lets errors say "truncated" and
    caps how much a download may write.
    """

    name: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self):
        if self.md5 is None and self.sha256 is None:
            raise ValueError(f"FileSpec {self.name!r} needs at least one of md5 / sha256")

    @property
    def expected(self) -> dict[str, str]:
        """The digests to check, e.g. ``{"sha256": "...", "md5": "..."}`` (strongest first)."""
        out = {}
        if self.sha256:
            out["sha256"] = self.sha256.lower()
        if self.md5:
            out["md5"] = self.md5.lower()
        return out

    def describe(self) -> str:
        """Human form of the expected checksum, e.g. ``sha256 440f... (md5 f68b...)``."""
        parts = [f"{alg} {hexd}" for alg, hexd in self.expected.items()]
        return parts[0] + (f" (and {', '.join(parts[1:])})" if len(parts) > 1 else "")

    def with_digest(self, digest: str) -> "FileSpec":
        """The same file expected to have ``digest`` (MD5 or SHA-256) instead; size unknown."""
        kind = digest_kind(digest)
        return FileSpec(self.name, **{kind: digest.strip().lower()}, size=None)


def override(specs: Mapping[str, FileSpec], checksums: Mapping[str, str] | None) -> dict[str, FileSpec]:
    """Return ``specs`` with the digests in ``checksums`` (file name -> hex digest) replaced.

    Names not in ``specs`` are an error (they would silently do nothing).
    """
    out = dict(specs)
    for name, digest in (checksums or {}).items():
        if name not in out:
            raise ValueError(f"checksums names unknown file {name!r}; known files: {sorted(out)}")
        out[name] = out[name].with_digest(digest)
    return out


def clear_cache() -> None:
    """Forget every cached digest (the next verification hashes the files again)."""
    with _lock:
        _cache.clear()


def _key(path: Path, st: os.stat_result) -> tuple:
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _cached(key: tuple, algs) -> dict[str, str] | None:
    with _lock:
        hit = _cache.get(key)
    if hit is not None and all(a in hit for a in algs):
        return hit
    return None


def _remember(key: tuple, digests: dict[str, str]) -> None:
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache.setdefault(key, {}).update(digests)


def _hash_bytes(data: bytes, algs) -> dict[str, str]:
    return {alg: hashlib.new(alg, data).hexdigest() for alg in algs}


def file_digests(path: str | os.PathLike, algs=("md5",)) -> dict[str, str]:
    """Hex digests of a file (streamed in 1 MiB chunks), served from the cache when unchanged."""
    path = Path(path)
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = _key(path, st)
        hit = _cached(key, algs)
        if hit is not None:
            return {a: hit[a] for a in algs}
        hashers = {alg: hashlib.new(alg) for alg in algs}
        while chunk := f.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    digests = {alg: h.hexdigest() for alg, h in hashers.items()}
    _remember(key, digests)
    return digests


def mismatch_message(spec: FileSpec, where: str, got: dict[str, str], size: int, hint: str) -> str:
    """The text of a :class:`ChecksumError`: file, expected and actual digest, size, fix."""
    alg, want = next((a, d) for a, d in spec.expected.items() if got.get(a) != d)
    msg = f"checksum mismatch for {spec.name!r} in {where}: expected {alg} {want}, got {got[alg]}"
    if spec.size is not None and size != spec.size:
        what = "truncated" if size < spec.size else "too long"
        msg += f"; the file has {size:,} bytes but the published file has {spec.size:,} ({what})"
    else:
        msg += f" ({size:,} bytes)"
    msg += ". The file is corrupt or not the official one."
    return msg + (f" {hint}" if hint else "")


def _check(spec: FileSpec, where: str, got: dict[str, str], size: int, hint: str) -> None:
    if any(got.get(a) != d for a, d in spec.expected.items()):
        raise ChecksumError(mismatch_message(spec, where, got, size, hint))


def missing_message(spec: FileSpec, directory: Path, hint: str) -> str:
    """The text of a :class:`DatasetNotFoundError` for ``spec`` absent from ``directory``."""
    return (
        f"dataset file {spec.name!r} not found in {directory} "
        f"(expected checksum {spec.describe()}). {hint}"
    ).strip()


def read_verified(path: Path, spec: FileSpec | None, hint: str = "", corrupt_hint: str | None = None) -> bytes:
    """Read a whole file and check its bytes against ``spec``; return the verified bytes.

    ``spec=None`` skips verification (``verify=False``).  Raises
    :class:`DatasetNotFoundError` when absent and :class:`ChecksumError` when
    the digest differs — both messages name the file, the expected checksum,
    the directory and ``hint`` (how to get the file; ``corrupt_hint``, if
    given, replaces it in checksum errors).
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if spec is None:
            spec_text = f"dataset file {path.name!r} not found in {path.parent}. {hint}"
            raise DatasetNotFoundError(spec_text.strip()) from None
        raise DatasetNotFoundError(missing_message(spec, path.parent, hint)) from None
    with f:
        st = os.fstat(f.fileno())
        data = f.read()
    if spec is None:
        return data
    algs = tuple(spec.expected)
    key = _key(path, st)
    got = _cached(key, algs)
    if got is None or len(data) != st.st_size:
        got = _hash_bytes(data, algs)
        _remember(key, got)
    _check(spec, str(path.parent), got, len(data), hint if corrupt_hint is None else corrupt_hint)
    return data


def verify_bytes(data: bytes, spec: FileSpec | None, where: str, hint: str = "") -> bytes:
    """Check in-memory bytes (e.g. an archive member) against ``spec``; return them."""
    if spec is not None:
        _check(spec, where, _hash_bytes(data, tuple(spec.expected)), len(data), hint)
    return data


def verify_file(path: Path, spec: FileSpec, hint: str = "") -> None:
    """Check a file on disk (streamed, cached) against ``spec``; raise like :func:`read_verified`."""
    path = Path(path)
    try:
        got = file_digests(path, tuple(spec.expected))
        size = path.stat().st_size
    except FileNotFoundError:
        raise DatasetNotFoundError(missing_message(spec, path.parent, hint)) from None
    _check(spec, str(path.parent), got, size, hint)
