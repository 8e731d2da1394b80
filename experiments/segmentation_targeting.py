"""Class-targeted crop acquisition: find more crosswalks (the rare class 5 of the road-marking set).

Crop-level entropy acquisition with and without targeting: the targeted
variant weights every pixel's entropy by the predicted probability that the
pixel is a crosswalk (``class_targeted``, strength 1) before the crops are
ranked. Random crops as the baseline. Same set-up as segmentation_crops.py;
reports the crosswalk IoU (and mIoU) against labeled pixels, 3 seeds.

    python experiments/segmentation_targeting.py [--smoke]
"""

import sys

from _segmentation import ROAD_MARKINGS as BASE
from _segmentation import main

from bal.active.segmentation import SegmentationConfig


STUDIES = {
    "crosswalk": SegmentationConfig(
        strategies=("random_crops", "entropy_crops", "entropy_crops_targeted"), target_classes=(5,),
        target_strength=1.0, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("segmentation_targeting", __doc__, STUDIES, extra_metrics=("iou_crosswalk",)))
