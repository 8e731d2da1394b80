"""Safe reading and extraction of the CIFAR tarballs.

Every member name is checked before anything is written: absolute paths,
``..`` components, links and device files raise :class:`UnsafeArchiveError`.
Only the wanted members are extracted, with ``tarfile``'s ``filter="data"``
as a second line of defence, into a temporary folder inside the destination;
each extracted file is verified and then moved into place with ``os.replace``.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import FormatError, UnsafeArchiveError

__all__ = ["check_members", "extract", "read_members"]


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FormatError(
            f"{path.name!r} in {path.parent} is not a readable tar archive ({e}); it is probably "
            "truncated or corrupt — delete it and download it again (download=True)"
        ) from None


def _unsafe(member: tarfile.TarInfo) -> str | None:
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in parts:
        return "'..' component leaves the destination"
    if member.issym() or member.islnk():
        return f"link to {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or directory"
    return None


def check_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """All members of ``tar``; :class:`UnsafeArchiveError` naming the first unsafe one."""
    try:
        members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FormatError(f"{archive.name!r} in {archive.parent} is truncated or corrupt ({e})") from None
    for m in members:
        why = _unsafe(m)
        if why:
            raise UnsafeArchiveError(
                f"refusing to read {archive.name!r} in {archive.parent}: member {m.name!r} is unsafe ({why}). "
                "This is not the official archive; delete it and download it again (download=True)."
            )
    return members


def _select(members, wanted: Iterable[str], archive: Path) -> dict[str, tarfile.TarInfo]:
    by_name = {posixpath.normpath(m.name): m for m in members if m.isfile()}
    out = {}
    for name in wanted:
        if name not in by_name:
            raise FormatError(f"{archive.name!r} in {archive.parent} has no member {name!r}; it is not the official archive")
        out[name] = by_name[name]
    return out


def read_members(archive: Path, wanted: Iterable[str]) -> dict[str, bytes]:
    """The bytes of members ``wanted`` (paths inside the archive), read without extracting."""
    archive = Path(archive)
    with _open(archive) as tar:
        chosen = _select(check_members(tar, archive), wanted, archive)
        try:
            return {name: tar.extractfile(m).read() for name, m in chosen.items()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise FormatError(f"{archive.name!r} in {archive.parent} is truncated or corrupt ({e})") from None


def extract(archive: Path, dest: Path, wanted: Iterable[str], check: Callable[[Path, str], None]) -> None:
    """Extract members ``wanted`` of ``archive`` under ``dest``, each verified by ``check(path, name)``.

    Files are extracted into a temporary folder in ``dest``, all checked, then
    moved to ``dest/<name>`` with ``os.replace``; on any error the temporary
    folder is removed and nothing is moved.  ``OSError`` from the filesystem
    (e.g. a read-only ``dest``) propagates unchanged.
    """
    archive, dest = Path(archive), Path(dest)
    wanted = list(wanted)
    with _open(archive) as tar:
        chosen = _select(check_members(tar, archive), wanted, archive)
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
        try:
            try:
                tar.extractall(tmp, members=list(chosen.values()), filter="data")
            except tarfile.FilterError as e:
                raise UnsafeArchiveError(f"refusing to extract {archive.name!r}: {e}") from None
            except (tarfile.TarError, EOFError, zlib.error) as e:  # other OSErrors (disk full, read-only) propagate
                raise FormatError(f"{archive.name!r} in {archive.parent} is truncated or corrupt ({e})") from None
            for name in wanted:
                check(tmp / name, name)
            for name in wanted:
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
