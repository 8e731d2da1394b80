"""Axis-aligned boxes: pairwise IoU and matching of two box sets.

Boxes are pixel corners ``x0, y0, x1, y1`` (``x1 >= x0``, ``y1 >= y0``) in
the last axis of ``[..., K, 4]``. Areas are ``(x1 − x0)(y1 − y0)`` with no
``+1`` (a box covering one pixel column has width 1 only if ``x1 = x0 + 1``),
which is the convention of pycocotools (``[x, y, w, h]`` with ``w = x1 − x0``)
and of torchvision, not the ``+1`` of the old PASCAL VOC devkit.

Matching pairs boxes ``a`` with boxes ``b`` one to one, each pair with
``IoU >= iou_threshold``; the result is ``match_a [A]``, the index of the
``b`` box paired with each ``a`` box or ``-1``. Optional ``valid_*`` masks
(padded sets) and ``classes_*`` ids (pairs must share the class) restrict the
candidate pairs.

- :func:`greedy_match` with ``scores_a`` — COCO's rule: ``a`` boxes in
  descending score order (stable: equal scores keep index order), each taking
  the free ``b`` box of highest IoU ``>= iou_threshold``; equal IoUs go to
  the *later* ``b`` box, exactly as ``pycocotools.cocoeval.COCOeval.evaluateImg``.
- :func:`greedy_match` without scores — pairs in descending IoU (highest-IoU
  pair first; ties to the lowest ``(a, b)`` in row-major order): symmetric in
  ``a`` and ``b`` up to ties, the clustering rule of
  :mod:`bal.acquisition.boxes`.
- :func:`optimal_match` — an optimal one-to-one matching (Hungarian algorithm,
  ``scipy.optimize.linear_sum_assignment``): the largest total IoU, or the
  most pairs (``objective="count"``, ties broken by total IoU).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["box_iou", "greedy_match", "optimal_match", "MATCH_OBJECTIVES"]

#: Objectives of :func:`optimal_match`.
MATCH_OBJECTIVES = ("iou", "count")


def _is_jax(x) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer))


def box_iou(boxes_a, boxes_b):
    """Pairwise intersection over union, ``[..., A, 4] × [..., B, 4] -> [..., A, B]``.

    ``IoU = I / (area_a + area_b − I)``, computed as pycocotools does
    (``(area_a + area_b) − I`` in that order); boxes that do not overlap, or
    touch along an edge, have IoU 0, and so do degenerate (zero-area) boxes.
    Inverted boxes (``x1 < x0``) count as zero width. Leading axes broadcast.

    NumPy in, NumPy out (integers promoted to float64, float32 kept); a jax
    array in (or a tracer) gives a jax array, so the function jits and vmaps.
    """
    xp = jnp if (_is_jax(boxes_a) or _is_jax(boxes_b)) else np
    a, b = xp.asarray(boxes_a), xp.asarray(boxes_b)
    dtype = xp.result_type(a.dtype, b.dtype, xp.float32)
    a, b = a.astype(dtype), b.astype(dtype)
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,) or a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"boxes must have shape [..., K, 4] (x0, y0, x1, y1); got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    ax0, ay0, ax1, ay1 = (a[..., :, None, i] for i in range(4))
    bx0, by0, bx1, by1 = (b[..., None, :, i] for i in range(4))
    iw = xp.maximum(xp.minimum(ax1, bx1) - xp.maximum(ax0, bx0), 0)
    ih = xp.maximum(xp.minimum(ay1, by1) - xp.maximum(ay0, by0), 0)
    inter = iw * ih
    area_a = xp.maximum(ax1 - ax0, 0) * xp.maximum(ay1 - ay0, 0)
    area_b = xp.maximum(bx1 - bx0, 0) * xp.maximum(by1 - by0, 0)
    union = (area_a + area_b) - inter
    # inter > 0 implies union >= inter > 0; the inner where keeps 0/0 out of the gradient
    return xp.where(inter > 0, inter / xp.where(inter > 0, union, 1), 0).astype(dtype)


# ----------------------------------------------------------------------------- validation
def _check_threshold(iou_threshold) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real) \
            or not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be a number in (0, 1]; got {iou_threshold!r}")
    return float(iou_threshold)


def _check_set(boxes, valid, classes, name: str):
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes_{name} must have shape [{name.upper()}, 4] (x0, y0, x1, y1); "
                         f"got {boxes.shape}")
    k = boxes.shape[0]
    if valid is None:
        valid = np.ones(k, bool)
    else:
        valid = np.asarray(valid)
        if valid.dtype != np.bool_ or valid.shape != (k,):
            raise ValueError(f"valid_{name} must be a boolean array of shape ({k},); "
                             f"got dtype {valid.dtype}, shape {valid.shape}")
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape != (k,) or not np.issubdtype(classes.dtype, np.integer):
            raise ValueError(f"classes_{name} must be integer class ids of shape ({k},); "
                             f"got dtype {classes.dtype}, shape {classes.shape}")
    if not np.all(np.isfinite(boxes[valid])):
        raise ValueError(f"boxes_{name} contains NaN or inf in a valid box")
    return boxes, valid, classes


def _candidate_iou(boxes_a, boxes_b, iou_threshold, valid_a, valid_b, classes_a, classes_b):
    """(IoU ``[A, B]``, candidate mask ``[A, B]``): pairs that may be matched."""
    thr = _check_threshold(iou_threshold)
    a, valid_a, classes_a = _check_set(boxes_a, valid_a, classes_a, "a")
    b, valid_b, classes_b = _check_set(boxes_b, valid_b, classes_b, "b")
    if (classes_a is None) != (classes_b is None):
        raise ValueError("pass both classes_a and classes_b, or neither")
    iou = box_iou(a.astype(np.float64), b.astype(np.float64))
    ok = (iou >= thr) & valid_a[:, None] & valid_b[None, :]
    if classes_a is not None:
        ok &= classes_a[:, None] == classes_b[None, :]
    return iou, ok


# ----------------------------------------------------------------------------- greedy
def _greedy_score_order(iou, ok, order):
    """COCO's greedy rule on ``iou [A, B]``: rows in ``order``, each takes the free column of highest IoU.

    Ties in IoU go to the later column, as in ``COCOeval.evaluateImg``
    (``if ious[d, g] < iou: continue`` keeps replacing the best on equality).
    """
    a_n, b_n = iou.shape
    match = np.full(a_n, -1, np.int64)
    free = np.ones(b_n, bool)
    rev = np.arange(b_n - 1, -1, -1)
    for i in order:
        cand = ok[i] & free
        if not cand.any():
            continue
        v = np.where(cand, iou[i], -np.inf)[rev]
        j = int(rev[np.argmax(v)])  # argmax of the reversed row: the last of equal maxima
        match[i] = j
        free[j] = False
    return match


def _greedy_iou_order(iou, ok):
    """Pairs in descending IoU; ties to the lowest ``(a, b)`` in row-major order."""
    a_n, b_n = iou.shape
    match = np.full(a_n, -1, np.int64)
    w = np.where(ok, iou, -np.inf)
    for _ in range(min(a_n, b_n)):
        flat = int(np.argmax(w))
        i, j = divmod(flat, b_n)
        if not np.isfinite(w[i, j]):
            break
        match[i] = j
        w[i, :] = -np.inf
        w[:, j] = -np.inf
    return match


def greedy_match(boxes_a, boxes_b, iou_threshold: float = 0.5, *, scores_a=None, valid_a=None, valid_b=None,
                 classes_a=None, classes_b=None) -> np.ndarray:
    """Greedy one-to-one matching of ``boxes_a [A, 4]`` to ``boxes_b [B, 4]`` (NumPy).

    With ``scores_a [A]`` (detections ``a`` against ground truth ``b``) the
    rule is COCO's: ``a`` boxes in descending score order (equal scores keep
    index order), each paired with the still-free ``b`` box of highest IoU
    ``>= iou_threshold`` — equal IoUs go to the later ``b`` box, as in
    pycocotools. Without scores, pairs are taken in descending IoU (highest
    first; ties to the lowest ``(a, b)``), which does not depend on which set
    is called ``a``.

    Args:
      boxes_a, boxes_b: ``[A, 4]``, ``[B, 4]`` boxes ``x0, y0, x1, y1``.
      iou_threshold: smallest IoU of a pair, in ``(0, 1]``.
      scores_a: optional ``[A]`` scores fixing the order (COCO rule).
      valid_a, valid_b: optional boolean masks of padded sets (invalid boxes never match).
      classes_a, classes_b: optional integer ids; only same-class pairs match.

    Returns:
      ``match_a [A]`` int64: the ``b`` index paired with each ``a`` box, ``-1`` if none.
    """
    iou, ok = _candidate_iou(boxes_a, boxes_b, iou_threshold, valid_a, valid_b, classes_a, classes_b)
    if scores_a is None:
        return _greedy_iou_order(iou, ok)
    scores_a = np.asarray(scores_a)
    if scores_a.shape != (iou.shape[0],):
        raise ValueError(f"scores_a must have shape ({iou.shape[0]},); got {scores_a.shape}")
    return _greedy_score_order(iou, ok, np.argsort(-scores_a, kind="stable"))


# ----------------------------------------------------------------------------- optimal
def optimal_match(boxes_a, boxes_b, iou_threshold: float = 0.5, *, objective: str = "iou", valid_a=None,
                  valid_b=None, classes_a=None, classes_b=None) -> np.ndarray:
    """An optimal one-to-one matching of ``boxes_a [A, 4]`` to ``boxes_b [B, 4]`` (Hungarian algorithm).

    Among all matchings whose pairs have IoU ``>= iou_threshold`` (and are
    valid / same-class when masks / ids are given), returns one that
    maximises

    - ``objective="iou"``: the total IoU of the pairs;
    - ``objective="count"``: the number of pairs, ties broken by total IoU
      (weights ``1 + IoU / (min(A, B) + 1)``: the IoU terms of a matching sum
      to less than 1, so one more pair always wins).

    Solved by ``scipy.optimize.linear_sum_assignment`` on the weights of the
    candidate pairs (0 elsewhere; pairs of weight 0 are then dropped, which
    changes no total). Which of several optimal matchings is returned is
    unspecified.

    Returns:
      ``match_a [A]`` int64: the ``b`` index paired with each ``a`` box, ``-1`` if none.
    """
    from scipy.optimize import linear_sum_assignment  # scipy comes with scikit-learn; imported on use

    if objective not in MATCH_OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid objectives: {list(MATCH_OBJECTIVES)}")
    iou, ok = _candidate_iou(boxes_a, boxes_b, iou_threshold, valid_a, valid_b, classes_a, classes_b)
    match = np.full(iou.shape[0], -1, np.int64)
    if not ok.any():
        return match
    if objective == "iou":
        w = np.where(ok, iou, 0.0)
    else:
        w = np.where(ok, 1.0 + iou / (min(iou.shape) + 1), 0.0)
    rows, cols = linear_sum_assignment(w, maximize=True)
    keep = ok[rows, cols]
    match[rows[keep]] = cols[keep]
    return match
