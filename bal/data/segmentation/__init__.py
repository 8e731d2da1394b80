"""Semantic-segmentation data: a container, a built-in procedural set, and real-data loaders.

::

    import bal.data.segmentation as seg
    train = seg.load_road_markings("train", num_train=1000)   # procedural road scenes, no download
    train.images, train.masks               # float32 [N, 64, 96, 3] in [0, 1], int32 [N, 64, 96]
    seg.class_frequencies(train)            # {"background": 0.64, ..., "crosswalk": 0.008}
    city = seg.load_cityscapes("val", size=(64, 128), limit=200)  # official folders, 19 train ids
    bdd = seg.load_bdd100k("val", size=(72, 128))
    digits = seg.load_mnist_canvas("train", num_images=1000)  # MNIST digits on 64x64 canvases, 11 classes

Masks hold train ids ``0..K-1`` and :data:`IGNORE_LABEL` (255) for unlabelled
pixels.  Cityscapes and BDD100K need registration to download and are read
from their official folder layouts (PNG / JPEG via Pillow, imported lazily);
see :mod:`.cityscapes` and :mod:`.bdd100k`.
"""

from .bdd100k import BDD100K_CLASSES, load_bdd100k
from .cityscapes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABELS,
    label_ids_to_train_ids,
    load_cityscapes,
)
from .dataset import (
    IGNORE_LABEL,
    SegmentationDataset,
    class_frequencies,
    class_presence,
)
from .digit_canvas import digit_canvas, load_mnist_canvas
from .resize import resize_images, resize_masks
from .road_markings import ROAD_MARKING_CLASSES, load_road_markings, road_markings

__all__ = [
    "IGNORE_LABEL",
    "SegmentationDataset",
    "class_frequencies",
    "class_presence",
    "road_markings",
    "load_road_markings",
    "ROAD_MARKING_CLASSES",
    "load_cityscapes",
    "label_ids_to_train_ids",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_LABELS",
    "load_bdd100k",
    "BDD100K_CLASSES",
    "digit_canvas",
    "load_mnist_canvas",
    "resize_images",
    "resize_masks",
]
