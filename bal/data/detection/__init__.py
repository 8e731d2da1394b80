"""Object-detection data: a container, a built-in procedural set, and real-data loaders.

::

    import bal.data.detection as det
    train = det.load_road_scenes("train", num_images=1000)   # procedural road scenes, no download
    train.images, train.boxes, train.classes, train.valid     # float32 [N, 96, 128, 3], float32 [N, 12, 4],
                                                              # int32 [N, 12], bool [N, 12]
    train.attributes["night"]                                 # bool [N]
    det.box_frequencies(train)        # {"car": 0.47, ..., "bus": 0.016}
    boxes, classes = train.image_boxes(0)                     # image 0's valid boxes [k, 4] and classes [k]
    coco = det.load_coco("val2017", size=(96, 128), class_names=("person", "car"))
    bdd = det.load_bdd100k_detection("val", size=(72, 128), limit=500)
    kitti = det.load_kitti("training", size=(96, 320), class_names=("Car", "Pedestrian", "Cyclist"))

Boxes are ``x0, y0, x1, y1`` pixel coordinates of the (possibly resized)
images, padded to ``K`` slots per image; ``valid`` marks the real ones.  The
loaders read the official COCO / BDD100K / KITTI formats (images via Pillow,
imported lazily) and raise one-line errors naming the file and entry.
"""

from .bdd100k import BDD100K_DET_CLASSES, load_bdd100k_detection
from .coco import load_coco
from .dataset import PAD_CLASS, DetectionDataset, box_frequencies, class_presence
from .files import BOX_TOLERANCE
from .kitti import KITTI_CLASSES, load_kitti, read_kitti_labels
from .road_scenes import MAX_BOXES, ROAD_SCENE_CLASSES, load_road_scenes

__all__ = [
    "DetectionDataset",
    "PAD_CLASS",
    "box_frequencies",
    "class_presence",
    "load_road_scenes",
    "ROAD_SCENE_CLASSES",
    "MAX_BOXES",
    "load_coco",
    "load_bdd100k_detection",
    "BDD100K_DET_CLASSES",
    "load_kitti",
    "read_kitti_labels",
    "KITTI_CLASSES",
    "BOX_TOLERANCE",
]
