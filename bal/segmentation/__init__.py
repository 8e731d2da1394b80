"""Semantic segmentation: evaluation metrics and the masked pixel loss.

Arrays only (jax, numpy); models live in :mod:`bal.models` (``"unet"``) and
dense acquisition in :mod:`bal.acquisition.dense` / :mod:`bal.acquisition.regions`.

- :mod:`~bal.segmentation.metrics` — confusion matrix, per-class IoU, mean IoU,
  pixel accuracy, from labels or from per-sample log-probabilities ``[S, N, H, W, C]``;
- :mod:`~bal.segmentation.loss` — cross-entropy over the labeled pixels only
  (partially labeled images, ignore label).

Labels are integer maps ``[N, H, W]``; ``ignore_label`` (default 255, the
Cityscapes / BDD100k / PASCAL VOC convention) marks pixels without a label.
"""

from bal.segmentation.loss import masked_cross_entropy, masked_cross_entropy_sum
from bal.segmentation.metrics import (
    IGNORE_LABEL,
    confusion_matrix,
    evaluate,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    predict_labels,
    predictive_confusion_matrix,
)

__all__ = [
    "IGNORE_LABEL",
    "confusion_matrix",
    "predictive_confusion_matrix",
    "predict_labels",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "evaluate",
    "masked_cross_entropy",
    "masked_cross_entropy_sum",
]
