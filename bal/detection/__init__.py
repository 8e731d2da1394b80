"""Object detection: box IoU, box matching and COCO-style evaluation.

Arrays only (NumPy; :func:`~bal.detection.boxes.box_iou` also takes jax
arrays). Box-level acquisition lives in :mod:`bal.acquisition.boxes`.

- :mod:`~bal.detection.boxes` — pairwise IoU, greedy (COCO order or IoU
  order) and optimal (Hungarian) one-to-one matching of two box sets;
- :mod:`~bal.detection.metrics` — AP@[.50:.95], AP50, AP75 and per-class AP
  as pycocotools computes them (area "all", no crowd regions).
- :mod:`~bal.detection.figures` — the talk's "Model 1 / Model 2" figure: the pool
  images two detectors disagree on most and least, both models' boxes drawn
  (matplotlib; imported on its own, ``python -m bal.detection.figures RUN_DIR``).

Conventions: boxes are pixel corners ``x0, y0, x1, y1`` in padded arrays
``boxes [N, K, 4]`` with class ids ``[N, K]`` and a validity mask ``[N, K]``;
detections likewise, with ``scores [N, D]``. pycocotools is needed only by
the tests (the ``dev`` extra), never at run time.
"""

from bal.detection.boxes import MATCH_OBJECTIVES, box_iou, greedy_match, optimal_match
from bal.detection.metrics import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    DetectionMetrics,
    evaluate,
    keep_top_detections,
)

__all__ = [
    "box_iou", "greedy_match", "optimal_match", "MATCH_OBJECTIVES",
    "IOU_THRESHOLDS", "RECALL_THRESHOLDS", "DetectionMetrics", "evaluate", "keep_top_detections",
]
