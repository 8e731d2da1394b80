"""COCO-style object-detection evaluation in NumPy: AP@[.50:.95], AP50, AP75, per-class AP.

A re-implementation of the bounding-box path of ``pycocotools.cocoeval.COCOeval``
(``evaluate`` + ``accumulate`` + the AP lines of ``summarize``) on padded
arrays, agreeing with it to float rounding:

- IoU thresholds ``0.50:0.05:0.95`` (10), recall thresholds ``0:0.01:1`` (101),
  built with the same ``np.linspace`` calls so threshold comparisons agree bit
  for bit; a threshold of 1 is applied as ``1 − 1e-10``, as pycocotools does.
- For every (image, class): detections sorted by descending score (stable),
  the first ``max_dets`` kept — **per image and class**, as pycocotools'
  ``maxDets`` does; cap per image beforehand with :func:`keep_top_detections`
  for the COCO challenge's 100-per-image limit on submissions. Each
  detection, in that order, is matched to the still-unmatched ground-truth box
  of the same class with the highest IoU ``>= t`` (equal IoUs: the later
  ground-truth box), independently for every threshold ``t``.
- Per class, the matched / unmatched flags of all images are concatenated in
  image order and stably sorted by descending score; precision is made
  monotone (suffix maximum) and read at the 101 recall thresholds (0 beyond
  the largest recall reached). ``AP_c`` averages it over recall and IoU
  thresholds; AP50 / AP75 use the 0.5 / 0.75 thresholds only.
- A class without ground truth has no AP (``-1`` in ``per_class``, as in
  pycocotools' precision array) and is left out of the means; its detections
  are false positives of nothing. If no class has ground truth the means are
  ``-1`` too.

Not implemented (documented differences from pycocotools): crowd regions
(``iscrowd``) and ignore flags — every ground-truth box counts — and the
area ranges ``small`` / ``medium`` / ``large``: only area ``"all"``.
Detections are scored against ground truth of their own class only
(``useCats = 1``). IoU has no ``+1`` (see :mod:`bal.detection.boxes`).

Cost: a Python loop over the (image, class) pairs that hold a box, and, in
each, over its detections (all IoU thresholds at once): about 1.5 s per
1000 images of 30 detections and 10 ground-truth boxes on one CPU core.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from bal.detection.boxes import box_iou

__all__ = ["IOU_THRESHOLDS", "RECALL_THRESHOLDS", "DetectionMetrics", "evaluate", "keep_top_detections"]

#: COCO's IoU thresholds 0.50:0.05:0.95, exactly as ``pycocotools.cocoeval.Params``.
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
#: COCO's 101 recall thresholds 0:0.01:1, exactly as ``pycocotools.cocoeval.Params``.
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)

_T50 = int(np.flatnonzero(IOU_THRESHOLDS == 0.5)[0])  # the same equality test as COCOeval.summarize
_T75 = int(np.flatnonzero(IOU_THRESHOLDS == 0.75)[0])


@dataclasses.dataclass(frozen=True)
class DetectionMetrics:
    """COCO box AP (area "all", ``max_dets`` detections per image and class).

    Attributes:
      map: AP@[.50:.95], the mean of ``per_class`` over classes with ground truth (``-1`` if none).
      ap50: AP at IoU 0.5, same mean.
      ap75: AP at IoU 0.75, same mean.
      per_class: ``[C]`` AP@[.50:.95] of each class; ``-1`` for a class without ground truth.
      precision: ``[T, R, C]`` interpolated precision at IoU threshold ``t`` and recall
        threshold ``r`` (pycocotools' ``eval["precision"][:, :, :, 0, -1]``); ``-1`` for absent classes.
      recall: ``[T, C]`` largest recall reached (``eval["recall"][:, :, 0, -1]``); ``-1`` likewise.
      num_gt: ``[C]`` ground-truth boxes per class.
    """

    map: float
    ap50: float
    ap75: float
    per_class: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    num_gt: np.ndarray

    def to_dict(self) -> dict:
        """``{"map", "ap50", "ap75", "per_class"}`` as Python floats / a list (JSON-ready)."""
        return {"map": self.map, "ap50": self.ap50, "ap75": self.ap75,
                "per_class": [float(v) for v in self.per_class]}


# ----------------------------------------------------------------------------- validation
def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _check_set(boxes, classes, valid, scores, num_classes: int, name: str):
    """Validate one padded box set; returns float64 boxes, int64 classes, bool valid (and float64 scores)."""
    boxes = np.asarray(boxes)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"{name}_boxes must have shape [N, K, 4] (images, boxes, x0 y0 x1 y1); "
                         f"got {boxes.shape}")
    shape = boxes.shape[:2]
    classes = np.asarray(classes)
    if classes.shape != shape or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"{name}_classes must be integer class ids of shape {shape}; "
                         f"got dtype {classes.dtype}, shape {classes.shape}")
    if valid is None:
        valid = np.ones(shape, bool)
    valid = np.asarray(valid)
    if valid.shape != shape or valid.dtype != np.bool_:
        raise ValueError(f"{name}_valid must be a boolean mask of shape {shape}; "
                         f"got dtype {valid.dtype}, shape {valid.shape}")
    b = boxes[valid].astype(np.float64)
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}_boxes contains NaN or inf in a valid box")
    if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
        raise ValueError(f"{name}_boxes holds a valid box with x1 < x0 or y1 < y0; boxes are x0, y0, x1, y1 "
                         "corners (convert [x, y, w, h] with x1 = x + w, y1 = y + h)")
    c = classes[valid]
    if c.size and (c.min() < 0 or c.max() >= num_classes):
        bad = c[(c < 0) | (c >= num_classes)][0]
        raise ValueError(f"{name}_classes holds {int(bad)} in a valid box, outside [0, {num_classes}); "
                         "check num_classes")
    out = [boxes.astype(np.float64), classes.astype(np.int64), valid]
    if scores is not None:
        scores = np.asarray(scores)
        if scores.shape != shape or not np.issubdtype(scores.dtype, np.floating):
            raise ValueError(f"{name}_scores must be floating-point scores of shape {shape}; "
                             f"got dtype {scores.dtype}, shape {scores.shape}")
        if not np.all(np.isfinite(scores[valid])):
            raise ValueError(f"{name}_scores contains NaN or inf in a valid detection")
        out.append(scores.astype(np.float64))
    return out


def keep_top_detections(scores, valid, max_dets: int = 100) -> np.ndarray:
    """The validity mask keeping at most ``max_dets`` detections per image, those of highest score.

    ``scores [N, D]``, ``valid [N, D]`` -> ``[N, D]`` bool. Equal scores keep
    the lower index (stable sort). Use it before :func:`evaluate` for a cap
    per image over all classes (the COCO challenge's 100 per image); the
    ``max_dets`` of :func:`evaluate` caps per image *and class*, as pycocotools.
    """
    max_dets = _positive_int(max_dets, "max_dets")
    scores, valid = np.asarray(scores, np.float64), np.asarray(valid, bool)
    if scores.ndim != 2 or valid.shape != scores.shape:
        raise ValueError(f"scores and valid must both have shape [N, D]; got {scores.shape} and {valid.shape}")
    order = np.argsort(np.where(valid, -scores, np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :].repeat(scores.shape[0], 0), axis=1)
    return valid & (rank < max_dets)


# ----------------------------------------------------------------------------- per image
def _match_image_class(det_boxes, gt_boxes, thresholds):
    """Match score-sorted detections ``[D, 4]`` to ground truth ``[G, 4]`` at every threshold.

    Returns ``[T, D]`` bool: detection ``d`` is a true positive at threshold ``t``.
    Mirrors ``COCOeval.evaluateImg`` (no crowd / ignore): detection by
    detection, the free ground-truth box of highest IoU ``>= t`` (ties: the
    later one), for all ``T`` thresholds at once.
    """
    t_n, d_n, g_n = len(thresholds), len(det_boxes), len(gt_boxes)
    tp = np.zeros((t_n, d_n), bool)
    if d_n == 0 or g_n == 0:
        return tp
    iou = box_iou(det_boxes, gt_boxes)  # [D, G] float64, pycocotools' formula
    thr = np.minimum(thresholds, 1 - 1e-10)[:, None]  # [T, 1]
    taken = np.zeros((t_n, g_n), bool)
    rows = np.arange(t_n)
    for d in range(d_n):
        cand = (iou[d][None, :] >= thr) & ~taken  # [T, G]
        has = cand.any(axis=1)
        if not has.any():
            continue
        v = np.where(cand, iou[d][None, :], -np.inf)[:, ::-1]
        j = g_n - 1 - np.argmax(v, axis=1)  # the last of equal maxima
        tp[has, d] = True
        taken[rows[has], j[has]] = True
    return tp


# ----------------------------------------------------------------------------- accumulate
def _precision_at_recalls(tp, num_gt: int):
    """Interpolated precision ``[T, R]`` and final recall ``[T]`` of one class.

    ``tp [T, D]`` flags of the class's detections in descending score order.
    """
    t_n, d_n = tp.shape
    r_n = len(RECALL_THRESHOLDS)
    q = np.zeros((t_n, r_n))
    if d_n == 0:
        return q, np.zeros(t_n)
    tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_sum = np.cumsum(~tp, axis=1, dtype=np.float64)
    rc = tp_sum / num_gt
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # pr[i] = max_{j >= i} pr[j]
    for t in range(t_n):
        idx = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        ok = idx < d_n  # recall thresholds never reached keep precision 0
        q[t, ok] = pr[t, idx[ok]]
    return q, rc[:, -1]


def evaluate(det_boxes, det_scores, det_classes, det_valid, gt_boxes, gt_classes, gt_valid, *, num_classes: int,
             max_dets: int = 100) -> DetectionMetrics:
    """COCO box AP of padded detections against padded ground truth (NumPy).

    Agrees with ``pycocotools`` (bbox, area "all", ``maxDets[-1] = max_dets``)
    to float rounding; see the module docstring for the rules and what is
    not implemented (crowd, area ranges).

    Args:
      det_boxes: ``[N, D, 4]`` detected boxes ``x0, y0, x1, y1`` (pixels).
      det_scores: ``[N, D]`` float confidences (higher = ranked first).
      det_classes: ``[N, D]`` integer class ids in ``[0, num_classes)``.
      det_valid: ``[N, D]`` bool, True = a real detection (False = padding); None = all.
      gt_boxes: ``[N, K, 4]`` ground-truth boxes.
      gt_classes: ``[N, K]`` integer class ids.
      gt_valid: ``[N, K]`` bool mask of real boxes; None = all.
      num_classes: ``C``; per-class outputs have this length.
      max_dets: detections kept per image and class (highest scores), 100 as COCO.

    Returns:
      :class:`DetectionMetrics` (``.to_dict()`` gives ``{"map", "ap50", "ap75", "per_class"}``).

    Raises:
      ValueError: shapes that disagree, class ids out of range, non-finite
        valid boxes or scores, or inverted boxes.
    """
    c_n = _positive_int(num_classes, "num_classes")
    max_dets = _positive_int(max_dets, "max_dets")
    db, dc, dv, ds = _check_set(det_boxes, det_classes, det_valid, det_scores, c_n, "det")
    gb, gc, gv = _check_set(gt_boxes, gt_classes, gt_valid, None, c_n, "gt")
    if db.shape[0] != gb.shape[0]:
        raise ValueError(f"detections cover N = {db.shape[0]} images but ground truth N = {gb.shape[0]}")

    t_n = len(IOU_THRESHOLDS)
    scores_c = [[] for _ in range(c_n)]  # per class, per (image, class) pair in image order
    tp_c = [[] for _ in range(c_n)]
    num_gt = np.zeros(c_n, np.int64)
    for n in range(db.shape[0]):
        d_idx, g_idx = np.flatnonzero(dv[n]), np.flatnonzero(gv[n])
        d_cls, g_cls = dc[n, d_idx], gc[n, g_idx]
        for c in np.union1d(d_cls, g_cls):
            d = d_idx[d_cls == c]
            g = g_idx[g_cls == c]  # ground truth keeps its order: ties in IoU depend on it
            d = d[np.argsort(-ds[n, d], kind="stable")][:max_dets]
            scores_c[c].append(ds[n, d])
            tp_c[c].append(_match_image_class(db[n, d], gb[n, g], IOU_THRESHOLDS))
            num_gt[c] += len(g)

    r_n = len(RECALL_THRESHOLDS)
    precision = -np.ones((t_n, r_n, c_n))
    recall = -np.ones((t_n, c_n))
    for c in range(c_n):
        if num_gt[c] == 0:
            continue  # no ground truth: AP undefined (-1), as pycocotools
        scores = np.concatenate(scores_c[c])
        tp = np.concatenate(tp_c[c], axis=1)[:, np.argsort(-scores, kind="stable")]
        precision[:, :, c], recall[:, c] = _precision_at_recalls(tp, int(num_gt[c]))

    has_gt = num_gt > 0
    per_class = np.where(has_gt, precision.mean(axis=(0, 1)), -1.0)

    def mean_over_classes(p):  # p [..., C]: the mean over classes with ground truth, -1 if none
        return float(p[..., has_gt].mean()) if has_gt.any() else -1.0

    return DetectionMetrics(
        map=mean_over_classes(precision),
        ap50=mean_over_classes(precision[_T50]),
        ap75=mean_over_classes(precision[_T75]),
        per_class=per_class,
        precision=precision,
        recall=recall,
        num_gt=num_gt,
    )
