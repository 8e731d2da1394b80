"""A folder of PNG / JPEG images as a pool source, decoded by worker threads in order."""

from __future__ import annotations

import pathlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bal.pools.sources import IMAGE_SUFFIXES, PoolSource, _check_range

__all__ = ["ImageFolder"]


def _pillow():
    from bal.data.segmentation.files import pillow

    return pillow()


def _decode(path: pathlib.Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    Image = _pillow()
    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert(mode) if img.mode != mode else img
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(img, np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} not found") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot decode {path}: {e}") from None
    return arr[..., None] if arr.ndim == 2 else arr


class ImageFolder(PoolSource):
    """PNG / JPEG files under ``folder`` (recursively), in sorted relative-path order.

    Args:
      folder: the folder.
      size: ``(H, W)`` every image is resized to (bilinear); default: the
        first image's size, and an image of another size is an error naming it.
      mode: ``"L"`` (grayscale, ``C = 1``) or ``"RGB"``; default: ``"L"`` when
        the first image is grayscale, else ``"RGB"``.
      workers: decoding threads (order is preserved).
    """

    def __init__(self, folder, *, size: tuple[int, int] | None = None, mode: str | None = None,
                 workers: int = 4):
        folder = pathlib.Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} does not exist")
        files = sorted((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                       key=lambda p: p.relative_to(folder).as_posix())
        if not files:
            raise FileNotFoundError(f"no PNG or JPEG files in {folder}")
        if mode is not None and mode not in ("L", "RGB"):
            raise ValueError(f"mode must be 'L' or 'RGB'; got {mode!r}")
        if size is not None and (len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size)):
            raise ValueError(f"size must be (height, width) of integers >= 1; got {size!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
        Image = _pillow()
        if mode is None:
            with Image.open(files[0]) as img:
                mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
        first = _decode(files[0], mode, size)
        self.folder, self.files, self.mode, self.workers = folder, files, mode, workers
        self.size = tuple(size) if size is not None else tuple(first.shape[:2])
        self.fixed_size = size is not None
        self.item_shape, self.dtype = tuple(first.shape), np.dtype(np.uint8)
        self._executor = None

    def __len__(self):
        return len(self.files)

    def _one(self, path):
        arr = _decode(path, self.mode, self.size if self.fixed_size else None)
        if arr.shape != self.item_shape:
            raise ValueError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, not {self.size[1]}x{self.size[0]} like "
                             f"{self.files[0].name}; pass size=(H, W) (--size H W) to resize every image")
        return arr

    def read_raw(self, start, stop):
        start, stop = _check_range(start, stop, len(self))
        files = self.files[start:stop]
        if self.workers == 1 or len(files) < 2:
            rows = [self._one(p) for p in files]
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="bal-pool-decode")
            rows = list(self._executor.map(self._one, files))  # map keeps the order
        return np.stack(rows) if rows else np.zeros((0,) + self.item_shape, np.uint8)

    def _name(self, position):
        return self.files[position].relative_to(self.folder).as_posix()

    def close(self) -> None:
        """Stop the decoding threads."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
