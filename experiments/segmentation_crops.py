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
    "crops_vs_images": SegmentationConfig(
        strategies=("random", "entropy", "bald", "entropy_crops", "bald_crops"), **BASE),
    # the same crop runs with the training steps scaled so that scattered crop labels get as many
    # labeled pixels per cycle as whole images (image-level runs are unchanged by the setting)
    "crops_scaled_steps": SegmentationConfig(
        strategies=("entropy_crops", "bald_crops"), scale_steps_by_sparsity=True, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("segmentation_crops", __doc__, STUDIES))
