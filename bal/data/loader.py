"""``bal.data.load``: one entry point over every dataset and source."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import checksum as _ck
from .cifar import LABEL_MODES, load_cifar
from .dataset import Dataset
from .digits import load_digits
from .remote import DEFAULT_TIMEOUT, fetch
from .errors import ChecksumError, FormatError
from .idx import load_idx_pair
from .registry import DatasetInfo, base_urls as _base_urls, data_dir_origin, get_info, how_to_get, resolve_data_dir

__all__ = ["load", "download", "ensure_files", "file_specs"]

SPLITS = ("train", "test")
SOURCES = ("files", "tfds")


def file_specs(
    info: DatasetInfo, checksums: Mapping[str, str] | None = None, verify: bool = True
) -> dict[str, _ck.FileSpec | None]:
    """Expected digest of every file of ``info`` (incl. the CIFAR tarball), with overrides.

    ``checksums`` maps a file name (as in ``info.files``, e.g.
    ``"cifar-10-batches-py/data_batch_1"``, or the tarball name) to an MD5 or
    SHA-256 hex digest that replaces the published one — for files you made
    yourself.  ``verify=False`` gives ``None`` for every file (no check).
    """
    specs = dict(info.files)
    if info.archive:
        specs[info.archive.name] = info.archive
    specs = _ck.override(specs, checksums)
    return specs if verify else {n: None for n in specs}


def _hinter(info: DatasetInfo, directory: Path, origin: str):
    return lambda file=None, corrupt=False: how_to_get(info, directory, file, origin, corrupt)


def _present_and_valid(path: Path, spec) -> bool:
    if not path.is_file():
        return False
    if spec is None:
        return True
    try:
        _ck.verify_file(path, spec)
        return True
    except ChecksumError:
        return False


def ensure_files(
    info: DatasetInfo,
    directory: Path,
    split: str,
    specs: Mapping[str, _ck.FileSpec | None],
    urls: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
    hint_for=None,
) -> list[str]:
    """Download whatever ``split`` of ``info`` still lacks (or has corrupt); return the files fetched.

    For MNIST-like data the split's two files; for CIFAR the tarball, unless
    the extracted files are all present and verified.
    """
    hint_for = hint_for or (lambda file=None, corrupt=False: "")
    fetched = []
    if info.kind == "idx":
        todo = [n for n in info.split_files[split] if not _present_and_valid(directory / n, specs[n])]
    else:
        needed = list(info.split_files[split]) + list(info.split_files["meta"])
        tarball = info.archive.name
        if all(_present_and_valid(directory / n, specs[n]) for n in needed):
            todo = []
        else:
            todo = [] if _present_and_valid(directory / tarball, specs[tarball]) else [tarball]
    for n in todo:
        fetch(n, directory / n, urls, specs[n], timeout, hint_for(n))
        fetched.append(n)
    return fetched


def download(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    checksums: Mapping[str, str] | None = None,
    base_urls: str | Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Fetch every missing or corrupt file of dataset ``name`` (both splits) into the data directory.

    Files already present and verified are left alone; each download is
    verified and written atomically (see :func:`bal.data.load` for the
    arguments).  Returns the names of the files fetched (empty if none were
    needed; always empty for ``digits``, which ships with scikit-learn).
    """
    info = get_info(name)
    if info.kind == "builtin":
        return []
    root = resolve_data_dir(data_dir)
    directory = root / info.subdir
    hint_for = _hinter(info, directory, data_dir_origin(data_dir))
    specs = file_specs(info, checksums)
    urls = _base_urls(info, base_urls)
    fetched = []
    for split in SPLITS:
        fetched += ensure_files(info, directory, split, specs, urls, timeout, hint_for)
    return fetched


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    source: str = "files",
    *,
    label_mode: str = "fine",
    verify: bool = True,
    checksums: Mapping[str, str] | None = None,
    base_urls: str | Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Dataset:
    """Load one split of a dataset as numpy arrays.

    Args:
        name: one of :func:`bal.data.names`: ``mnist``, ``fashion_mnist``,
            ``cifar10``, ``cifar100``, ``digits``.
        split: ``"train"`` or ``"test"``.
        data_dir: folder holding ``mnist/``, ``fashion_mnist/``, ``cifar10/``,
            ``cifar100/``; default ``$BAL_DATA_DIR``, else ``$XDG_CACHE_HOME/bal/datasets``
            or ``~/.cache/bal/datasets``.
        download: fetch missing or corrupt files from the official locations
            (verified, written atomically) before loading.
        source: ``"files"`` (official files, default) or ``"tfds"`` (TensorFlow
            Datasets, needs the ``bal[tfds]`` extra; ``data_dir`` is then TFDS's).
        label_mode: CIFAR-100 only: ``"fine"`` (100 classes, default) or
            ``"coarse"`` (20 superclasses; the dataset is then named ``cifar100_coarse``).
        verify: check every file against its published checksum (default).
            ``False`` skips the check — for trusted, modified copies only.
        checksums: ``{file name: md5 or sha256}`` replacing published digests
            for the named files (e.g. files you generated); see :func:`file_specs`.
        base_urls: download mirror(s), overriding ``$BAL_<NAME>_URL`` and the official URLs.
        timeout: seconds allowed for connecting and for each read while downloading.

    Returns:
        :class:`~bal.data.Dataset` with ``images uint8 [N, H, W, C]`` and ``labels int32 [N]``.

    Raises:
        ValueError: unknown ``name`` / ``split`` / ``source`` / ``label_mode``.
        DatasetNotFoundError: a file is missing (a ``FileNotFoundError``; ``DownloadError`` if
            downloading failed); the message names the file, its expected checksum, the
            directory and how to get it.
        ChecksumError: a file is corrupt or truncated (a ``ValueError``); same message content.
        FormatError: a file is malformed (bad IDX header, unsafe pickle or archive).
        ImportError: ``source="tfds"`` without TensorFlow Datasets installed.
    """
    info = get_info(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {name!r}; choose 'train' or 'test'")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose 'files' (official files) or 'tfds'")
    if label_mode not in LABEL_MODES or (label_mode != "fine" and name != "cifar100"):
        raise ValueError(f"label_mode={label_mode!r} is invalid for {name!r}; only cifar100 accepts 'coarse'")
    ds_name = f"{name}_coarse" if label_mode == "coarse" else name

    if source == "tfds":
        from .tfds import load_tfds

        images, labels, class_names = load_tfds(name, split, data_dir, download, label_mode)
        return Dataset(images, labels, len(class_names), class_names, ds_name, split)

    if info.kind == "builtin":
        images, labels = load_digits(split)
        return Dataset(images, labels, info.num_classes, info.class_names, ds_name, split)

    root = resolve_data_dir(data_dir)
    directory = root / info.subdir
    hint_for = _hinter(info, directory, data_dir_origin(data_dir))
    specs = file_specs(info, checksums, verify)
    if download:
        ensure_files(info, directory, split, specs, _base_urls(info, base_urls), timeout, hint_for)

    if info.kind == "idx":
        img_name, lab_name = info.split_files[split]
        img_raw, lab_raw = (
            _ck.read_verified(directory / n, specs[n], hint_for(n), hint_for(n, corrupt=True))
            for n in (img_name, lab_name)
        )
        images, labels = load_idx_pair(img_raw, lab_raw, (img_name, lab_name), info.shape)
        class_names = info.class_names
    else:
        images, labels, class_names = load_cifar(info, directory, split, specs, hint_for, label_mode)
    num_classes = 20 if label_mode == "coarse" else info.num_classes
    if len(class_names) != num_classes:
        raise FormatError(f"{name}: the meta file lists {len(class_names)} class names, expected {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise FormatError(
            f"{name} {split}: labels {labels.min()}..{labels.max()} fall outside [0, {num_classes}); "
            f"the files in {directory} are not the official ones"
        )
    return Dataset(images, labels, num_classes, class_names, ds_name, split)
