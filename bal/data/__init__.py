"""Datasets for active learning: official files, checksummed, as numpy arrays.

::

    import bal.data as bd
    train = bd.load("mnist", "train")            # Dataset: images uint8 [60000, 28, 28, 1], labels int32 [60000]
    pool = bd.initial_pool(train.labels, 2, 0)   # 2 random examples per class labelled (Gal et al. 2017)
    for s in bd.status():                        # what is present / verified / how to get the rest
        print(s)

Datasets (:func:`names`): ``mnist``, ``fashion_mnist`` (gzip IDX files),
``cifar10``, ``cifar100`` (python-version pickles, tarball or extracted) and
``digits`` (scikit-learn's 8x8 digits; offline).  Files live under
``{data_dir}/{name}/``; ``data_dir`` defaults to ``$BAL_DATA_DIR``, else
``$XDG_CACHE_HOME/bal/datasets`` or ``~/.cache/bal/datasets``.

Every file is verified against its published checksum before it is decoded;
CIFAR pickles are unpickled with an allow-list unpickler, archives extracted
without ever writing outside the data directory.  This package needs only numpy
(and scikit-learn for ``digits``, TensorFlow Datasets for ``source="tfds"``).
"""

from . import segmentation  # noqa: F401  (bal.data.segmentation: road markings, Cityscapes, BDD100K)
from .checksum import FileSpec, clear_cache
from .dataset import Dataset
from .errors import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    FormatError,
    UnsafeArchiveError,
    UnsafePickleError,
)
from .loader import download, file_specs, load
from .pool import Pool, initial_pool, random_pool
from .registry import DATASETS, DatasetInfo, default_data_dir, names, resolve_data_dir
from .status import DatasetStatus, status

__all__ = [
    "load",
    "download",
    "Dataset",
    "DATASETS",
    "DatasetInfo",
    "names",
    "status",
    "DatasetStatus",
    "initial_pool",
    "random_pool",
    "Pool",
    "resolve_data_dir",
    "default_data_dir",
    "file_specs",
    "FileSpec",
    "clear_cache",
    "DatasetNotFoundError",
    "DownloadError",
    "ChecksumError",
    "FormatError",
    "UnsafePickleError",
    "UnsafeArchiveError",
]
