"""Optional TensorFlow Datasets backend: ``bal.data.load(name, source="tfds")``.

``tensorflow_datasets`` is imported lazily, only here; install it with the
``bal[tfds]`` extra.  The whole split is read as one batch
(``batch_size=-1``) and converted to the same :class:`~bal.data.Dataset`
arrays as the file loaders: ``uint8 [N, H, W, C]`` and ``int32 [N]``.
"""

from __future__ import annotations

import numpy as np

from .errors import FormatError

__all__ = ["load_tfds", "TFDS_NAMES"]

# bal name -> (tfds builder name, label feature by label_mode)
TFDS_NAMES = {
    "mnist": ("mnist", {"fine": "label"}),
    "fashion_mnist": ("fashion_mnist", {"fine": "label"}),
    "cifar10": ("cifar10", {"fine": "label"}),
    "cifar100": ("cifar100", {"fine": "label", "coarse": "coarse_label"}),
}


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            "source='tfds' needs TensorFlow Datasets, which is not installed. Install the optional extra: "
            "pip install 'bal[tfds]' (or use the default source='files')."
        ) from e
    return tfds


def load_tfds(name: str, split: str, data_dir=None, download: bool = False, label_mode: str = "fine"):
    """Load ``split`` of ``name`` through TFDS; return ``(images, labels, class_names)``.

    ``data_dir`` is passed to ``tfds.load`` (``None`` = TFDS's own default);
    ``download`` lets TFDS fetch and prepare the data.
    """
    if name not in TFDS_NAMES:
        raise ValueError(f"source='tfds' supports {', '.join(TFDS_NAMES)}; not {name!r} (use source='files')")
    tfds = _import_tfds()
    builder, label_keys = TFDS_NAMES[name]
    label_key = label_keys[label_mode]
    ds, info = tfds.load(
        builder, split=split, batch_size=-1, with_info=True,
        data_dir=None if data_dir is None else str(data_dir), download=download,
    )
    batch = tfds.as_numpy(ds)
    try:
        images, labels = np.asarray(batch["image"]), np.asarray(batch[label_key])
    except (KeyError, TypeError) as e:
        raise FormatError(f"TFDS {builder!r} gave no 'image'/{label_key!r} features ({e})") from None
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8:
        raise FormatError(f"TFDS {builder!r} images are {images.dtype}, expected uint8")
    try:
        class_names = tuple(info.features[label_key].names)
    except (AttributeError, KeyError, TypeError):
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1 if labels.size else 0))
    return images, labels.astype(np.int32), class_names
