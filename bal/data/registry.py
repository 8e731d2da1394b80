"""What each dataset is: files, published checksums, official URLs, classes.

Also where datasets live on disk (:func:`resolve_data_dir`) and where they are
downloaded from (:func:`base_urls`), and the "how to get it" sentence that
every missing-file or checksum error ends with.

Layout on disk, under the data directory::

    mnist/          train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
                    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
    fashion_mnist/  (the same four names)
    cifar10/        cifar-10-python.tar.gz  and/or  cifar-10-batches-py/
    cifar100/       cifar-100-python.tar.gz and/or  cifar-100-python/
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from .checksum import FileSpec

__all__ = ["DatasetInfo", "DATASETS", "names", "get_info", "resolve_data_dir", "base_urls", "how_to_get"]

ENV_DATA_DIR = "BAL_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    ``files`` maps a path relative to the dataset directory to its published
    :class:`FileSpec`; ``split_files`` lists which of them a split reads.  For
    CIFAR, ``archive`` is the official tarball and ``archive_folder`` the folder
    it unpacks to.  ``shape`` is one image's ``(H, W, C)``.
    """

    name: str
    title: str
    kind: str  # "idx" | "cifar" | "builtin"
    shape: tuple[int, int, int]
    num_classes: int
    sizes: dict[str, int]
    class_names: tuple[str, ...] = ()
    files: dict[str, FileSpec] = dataclasses.field(default_factory=dict)
    split_files: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    archive: FileSpec | None = None
    archive_folder: str | None = None
    urls: tuple[str, ...] = ()
    homepage: str = ""
    citation: str = ""

    @property
    def subdir(self) -> str:
        return self.name

    @property
    def url_env(self) -> str:
        """Environment variable overriding the download base URL(s), e.g. ``BAL_MNIST_URL``."""
        return f"BAL_{self.name.upper()}_URL"

    @property
    def downloads(self) -> tuple[str, ...]:
        """File names fetched by ``download=True`` (the tarball for CIFAR)."""
        return (self.archive.name,) if self.archive else tuple(self.files)


def _idx_files(table):
    return {n: FileSpec(n, md5=m, sha256=s, size=b) for n, b, m, s in table}


_IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# Checksums from the MNIST / Fashion-MNIST distribution (also in shared/datasets/README.md).
_MNIST = _idx_files([
    ("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432",
     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3",
     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c",
     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
])
_FASHION = _idx_files([
    ("train-images-idx3-ubyte.gz", 26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    ("train-labels-idx1-ubyte.gz", 29515, "25c81989df183df01b3e8a0aad5dffbe",
     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    ("t10k-images-idx3-ubyte.gz", 4422102, "bef4ecab320f06d8554ea6380940ec79",
     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    ("t10k-labels-idx1-ubyte.gz", 5148, "bb300cfdad3c16e7a12a480ee83cd310",
     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
])


def _cifar_files(folder, table):
    return {f"{folder}/{n}": FileSpec(f"{folder}/{n}", md5=m) for n, m in table}


# Per-file MD5s of the extracted python-version batches, as published with
# torchvision's CIFAR10 / CIFAR100 datasets; tarball MD5s from the CIFAR page.
_CIFAR10 = _cifar_files("cifar-10-batches-py", [
    ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    ("data_batch_4", "634d18415352ddfa80567beed471001a"),
    ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ("test_batch", "40351d587109b95175f43aff81a1287e"),
    ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
])
_CIFAR100 = _cifar_files("cifar-100-python", [
    ("train", "16019d7e3df5f24257cddd939b257f8d"),
    ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
    ("meta", "7973b15100ade9c7d40fb424638fde48"),
])

_DIGITS = tuple(str(d) for d in range(10))

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            name="mnist", title="MNIST", kind="idx", shape=(28, 28, 1), num_classes=10,
            sizes={"train": 60000, "test": 10000}, class_names=_DIGITS,
            files=_MNIST, split_files=_IDX_SPLITS,
            urls=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
            homepage="http://yann.lecun.com/exdb/mnist/",
            citation="LeCun, Cortes & Burges, The MNIST database of handwritten digits.",
        ),
        DatasetInfo(
            name="fashion_mnist", title="Fashion-MNIST", kind="idx", shape=(28, 28, 1), num_classes=10,
            sizes={"train": 60000, "test": 10000},
            class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            files=_FASHION, split_files=_IDX_SPLITS,
            urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            citation="Xiao, Rasul & Vollgraf, Fashion-MNIST, arXiv:1708.07747, 2017.",
        ),
        DatasetInfo(
            name="cifar10", title="CIFAR-10", kind="cifar", shape=(32, 32, 3), num_classes=10,
            sizes={"train": 50000, "test": 10000}, files=_CIFAR10,
            split_files={
                "train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                "test": ("cifar-10-batches-py/test_batch",),
                "meta": ("cifar-10-batches-py/batches.meta",),
            },
            archive=FileSpec("cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a", size=170498071),
            archive_folder="cifar-10-batches-py",
            urls=("https://www.cs.toronto.edu/~kriz/",),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009.",
        ),
        DatasetInfo(
            name="cifar100", title="CIFAR-100", kind="cifar", shape=(32, 32, 3), num_classes=100,
            sizes={"train": 50000, "test": 10000}, files=_CIFAR100,
            split_files={
                "train": ("cifar-100-python/train",),
                "test": ("cifar-100-python/test",),
                "meta": ("cifar-100-python/meta",),
            },
            archive=FileSpec("cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85", size=169001437),
            archive_folder="cifar-100-python",
            urls=("https://www.cs.toronto.edu/~kriz/",),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009.",
        ),
        DatasetInfo(
            name="digits", title="scikit-learn digits (8x8)", kind="builtin", shape=(8, 8, 1),
            num_classes=10, sizes={"train": 1438, "test": 359}, class_names=_DIGITS,
            homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
            citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI, 1998.",
        ),
    ]
}


def names() -> list[str]:
    """Names accepted by :func:`bal.data.load`: ``mnist, fashion_mnist, cifar10, cifar100, digits``."""
    return list(DATASETS)


def get_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` for ``name``; a ``ValueError`` listing valid names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/bal/datasets`` if that variable is set, else ``~/.cache/bal/datasets``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "bal" / "datasets"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$BAL_DATA_DIR``, else :func:`default_data_dir`."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR, "")
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def data_dir_origin(data_dir: str | os.PathLike | None = None) -> str:
    """Where :func:`resolve_data_dir` got its answer, for messages."""
    if data_dir is not None:
        return "the data_dir argument"
    if os.environ.get(ENV_DATA_DIR, ""):
        return f"${ENV_DATA_DIR}"
    return f"the default cache directory (${ENV_DATA_DIR} is not set)"


def base_urls(info: DatasetInfo, override: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """Base URLs to download from, tried in order.

    ``override`` (one URL or a sequence) wins; else ``$BAL_<NAME>_URL`` (URLs
    separated by spaces or commas); else the official locations in ``info.urls``.
    """
    if override is None:
        env = os.environ.get(info.url_env, "")
        override = env.replace(",", " ").split() if env.strip() else None
    if override is None:
        urls = info.urls
    else:
        urls = (override,) if isinstance(override, str) else tuple(override)
    if not urls:
        raise ValueError(f"no download URL for {info.name!r}: base_urls is empty")
    return tuple(u if u.endswith("/") else u + "/" for u in urls)


def how_to_get(
    info: DatasetInfo, directory: Path, file: str | None = None, origin: str | None = None, corrupt: bool = False
) -> str:
    """The "how to fix it" sentences ending every missing/corrupt-file message.

    Names where the data directory came from, the ``download=True`` route, the
    official URL of the file (the tarball for CIFAR) and ``BAL_DATA_DIR``.
    """
    target = info.archive.name if info.archive else file
    url = info.urls[0] + target if target else info.urls[0]
    if corrupt:
        fix = (f"Delete it and call bal.data.load({info.name!r}, download=True) to fetch a fresh copy, "
               f"or download {url} into {directory}/ yourself")
    else:
        fix = (f"To get it: call bal.data.load({info.name!r}, download=True), "
               f"or download {url} into {directory}/ yourself")
    fix += f", or set {ENV_DATA_DIR} to a directory that holds {info.subdir}/."
    return fix + (f" (The data directory {directory.parent} came from {origin}.)" if origin else "")
