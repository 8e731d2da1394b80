"""``bal.data.status``: which datasets are present and verified (``bal datasets`` prints it)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

from . import checksum as _ck
from .errors import ChecksumError
from .registry import DATASETS, ENV_DATA_DIR, DatasetInfo, data_dir_origin, resolve_data_dir

__all__ = ["DatasetStatus", "status"]

OK, MISSING, CORRUPT = "ok", "missing", "corrupt"


@dataclasses.dataclass(frozen=True)
class DatasetStatus:
    """The state of one dataset in the data directory.

    Attributes:
        name: dataset name, e.g. ``"mnist"``.
        directory: the folder searched (``None`` for ``digits``, which ships with scikit-learn).
        state: ``"ok"`` (present and verified), ``"missing"`` or ``"corrupt"``.
        message: one human sentence: what was found, or what is wrong and how to fix it.
        problems: the files that are missing or fail their checksum.
    """

    name: str
    directory: Path | None
    state: str
    message: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == OK

    def __str__(self) -> str:
        return f"{self.name:<14} {self.state:<8} {self.message}"


def _check(path: Path, spec) -> str:
    if not path.is_file():
        return MISSING
    try:
        _ck.verify_file(path, spec)
    except ChecksumError:
        return CORRUPT
    except OSError:
        return CORRUPT
    return OK


def _get_it(info: DatasetInfo, directory: Path, files=None) -> str:
    files = list(files or info.downloads)
    if info.archive or len(files) == 1:
        source = info.urls[0] + (info.archive.name if info.archive else files[0])
    else:
        source = f"{', '.join(files)} from {info.urls[0]}"
    return (
        f"fetch with bal.data.load({info.name!r}, download=True), or download {source} "
        f"into {directory}/, or set {ENV_DATA_DIR} to a directory holding {info.subdir}/"
    )


def _sizes(info: DatasetInfo) -> str:
    return f"{info.sizes['train']:,} train / {info.sizes['test']:,} test images"


def _status_files(info: DatasetInfo, directory: Path) -> DatasetStatus:
    states = {n: _check(directory / n, s) for n, s in info.files.items()}
    missing = [n for n, s in states.items() if s == MISSING]
    corrupt = [n for n, s in states.items() if s == CORRUPT]
    if info.archive and (missing or corrupt):
        tar_state = _check(directory / info.archive.name, info.archive)
        if tar_state == OK:
            return DatasetStatus(info.name, directory, OK,
                                 f"archive {info.archive.name} verified; {_sizes(info)} "
                                 f"(extracted on first load)")
        extracted = f"{info.archive_folder}/"
        if tar_state == CORRUPT:
            return DatasetStatus(info.name, directory, CORRUPT,
                                 f"{info.archive.name} fails its checksum (expected {info.archive.describe()}); "
                                 f"delete it, then {_get_it(info, directory)}", (info.archive.name,))
        if corrupt:
            return DatasetStatus(info.name, directory, CORRUPT,
                                 f"{', '.join(corrupt)} fail their checksums; delete {extracted}, then "
                                 f"{_get_it(info, directory)}", tuple(corrupt))
        return DatasetStatus(info.name, directory, MISSING,
                             f"no {info.archive.name} (md5 {info.archive.md5}) nor extracted {extracted} in "
                             f"{directory}; {_get_it(info, directory)}", (info.archive.name,))
    if corrupt:
        expected = "; ".join(f"{n}: expected {info.files[n].describe()}" for n in corrupt)
        return DatasetStatus(info.name, directory, CORRUPT,
                             f"checksum mismatch ({expected}); delete the bad file(s), then "
                             f"{_get_it(info, directory, corrupt)}", tuple(corrupt))
    if missing:
        what = "all files" if len(missing) == len(info.files) else ", ".join(missing)
        return DatasetStatus(info.name, directory, MISSING,
                             f"{what} missing from {directory}; {_get_it(info, directory, missing)}", tuple(missing))
    where = f"extracted {info.archive_folder}/" if info.archive else f"{len(info.files)} files"
    return DatasetStatus(info.name, directory, OK, f"verified ({where}); {_sizes(info)}")


def status(data_dir: str | os.PathLike | None = None, names=None) -> list[DatasetStatus]:
    """Check every dataset (or those in ``names``) in the data directory; nothing is downloaded.

    ``data_dir`` resolves as in :func:`bal.data.load`.  Files are verified
    against their published checksums (cached per process, so a second call is fast).
    Returns one :class:`DatasetStatus` per dataset, in :data:`DATASETS` order.
    """
    root = resolve_data_dir(data_dir)
    out = []
    for name in names or DATASETS:
        info = DATASETS[name] if name in DATASETS else None
        if info is None:
            raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
        if info.kind == "builtin":
            if importlib.util.find_spec("sklearn") is None:
                out.append(DatasetStatus(name, None, MISSING,
                                         "needs scikit-learn (pip install scikit-learn)"))
            else:
                out.append(DatasetStatus(name, None, OK,
                                         f"bundled with scikit-learn, no download needed; {_sizes(info)} "
                                         "(deterministic stratified 80/20 split)"))
            continue
        out.append(_status_files(info, root / info.subdir))
    if not root.is_dir():
        out = [
            s if s.ok else dataclasses.replace(
                s, message=f"{s.message} (the data directory {root}, from {data_dir_origin(data_dir)}, "
                           f"{'is a file, not a directory' if root.exists() else 'does not exist'})")
            for s in out
        ]
    return out
