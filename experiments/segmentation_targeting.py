"""Class-targeted crop acquisition: find more crosswalks (the rare class 5 of the road-marking set).

Crop-level entropy acquisition with and without targeting: the targeted
variant weights every pixel's entropy by the predicted probability that the
pixel is a crosswalk (``class_targeted``, strength 1) before the crops are
ranked. Random crops as the baseline. Same set-up as segmentation_crops.py;
reports the crosswalk IoU (and mIoU) against labeled pixels, 3 seeds.

    python experiments/segmentation_targeting.py [--smoke]
"""

import sys

from _segmentation import main

from bal.active.segmentation import SegmentationConfig

#: inverse square-root pixel frequencies of the six classes (the generator's documented statistics:
#: background 64.2 %, road 32.2 %, lane_solid 0.9 %, lane_dashed 0.5 %, road_edge 1.5 %, crosswalk 0.8 %),
#: normalised to mean 1: without them a small U-Net never predicts the thin / rare classes
FREQUENCIES = (0.642, 0.322, 0.009, 0.005, 0.015, 0.008)
CLASS_WEIGHTS = tuple(round(w / (sum(f ** -0.5 for f in FREQUENCIES) / 6), 3) for w in (f ** -0.5 for f in FREQUENCIES))

BASE = dict(dataset="road_markings", num_train=300, num_test=200, image_size=(48, 64), model="unet",
            model_kwargs={"width": 8}, posterior="mc_dropout", num_samples=8, class_weights=CLASS_WEIGHTS,
            reduction="mean", grid_rows=3, grid_cols=4, initial_images=10, acquisition_images=5.0, cycles=3,
            steps=200, batch_size=8, learning_rate=5e-3, seeds=(0, 1, 2))

STUDIES = {
    "crosswalk": SegmentationConfig(
        strategies=("random_crops", "entropy_crops", "entropy_crops_targeted"), target_classes=(5,),
        target_strength=1.0, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("segmentation_targeting", __doc__, STUDIES, extra_metrics=("iou_crosswalk",)))
