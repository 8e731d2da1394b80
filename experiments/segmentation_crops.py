"""Crop-level vs image-level vs random acquisition for semantic segmentation, at equal pixel cost.

The procedural road-marking set (6 classes, 300 pool / 200 test images of
48x64), an MC-dropout U-Net (width 8, class-weighted loss, 200 Adam steps
per cycle from scratch), 10 fully labeled images to start, then 3 cycles of
5 images' worth of pixels each: random images, the images or the crops (a 3 x 4 grid, 12 crops
of 16 x 16) with the highest mean pixel entropy or BALD. Test mIoU against
labeled pixels, 3 seeds (mean ± std). A second study repeats the crop runs
with training steps scaled by label sparsity (a batch of partially labeled
images carries fewer labeled pixels than a batch of whole images).

    python experiments/segmentation_crops.py [--smoke]
"""

import sys

from _segmentation import ROAD_MARKINGS as BASE
from _segmentation import main

from bal.active.segmentation import SegmentationConfig


STUDIES = {
    "crops_vs_images": SegmentationConfig(
        strategies=("random", "entropy", "bald", "entropy_crops", "bald_crops"), **BASE),
    # the same crop runs with the training steps scaled so that scattered crop labels get as many
    # labeled pixels per cycle as whole images (image-level runs are unchanged by the setting)
    "crops_scaled_steps": SegmentationConfig(
        strategies=("entropy_crops", "bald_crops"), scale_steps_by_sparsity=True, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("segmentation_crops", __doc__, STUDIES))
