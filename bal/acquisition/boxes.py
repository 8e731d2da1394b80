"""Box-level acquisition for object detection: uncertainty across posterior samples, model disagreement, targeting.

Arrays in, scores out (jax / numpy; no model, no dataset). A detector run
``S`` times (MC dropout, ensemble members, other posterior samples) gives,
for one image, per-sample detections ``boxes [S, D, 4]`` (pixel corners
``x0, y0, x1, y1``), class distributions ``class_probs [S, D, C]`` and a
validity mask ``valid [S, D]`` (padding = False); a pool adds an image axis
after the sample axis: ``[S, N, D, ...]``. A detector with a background
class keeps it as one of the ``C`` columns (rows must sum to 1).

**Box uncertainty** (:func:`box_uncertainty`, :func:`box_uncertainty_batch`).
The detections of different samples do not correspond, so each sample's
boxes are first matched to a *reference* set ``reference_boxes [R, 4]`` —
by default the boxes of sample 0; better, those of a deterministic
prediction (dropout off, or the ensemble's mean model) — greedily in
descending IoU (highest-IoU pair first, pairs need ``IoU >= iou_threshold``,
one box per sample per reference box; :func:`bal.detection.boxes.greedy_match`
without scores). Reference box ``r`` and the boxes matched to it form a
*cluster*, detected by ``m_r`` of the ``S`` samples. Per cluster:

- ``bald``: the mutual information of the matched class distributions,
  ``H[p̄] − mean_s H[p_s]`` over the ``m_r`` samples that detect it (BALD,
  Houlsby et al. 2011; for detection e.g. Haussmann et al. 2020, "Scalable
  Active Learning for Object Detection"); entropies come from
  :func:`bal.acquisition.scores.entropy`. 0 when ``m_r <= 1``.
- ``localisation``: the spread of the matched boxes, ``(1/4) Σ_k Var_s(b_k) / size_k²``
  — the population variance over the ``m_r`` matched samples of each
  coordinate, divided by the squared width (``x0``, ``x1``) or height
  (``y0``, ``y1``) of the mean matched box (clamped at 1e-6), so it is scale
  free (cf. Kao et al. 2018, "Localization-Aware Active Learning for Object
  Detection"; Choi et al. 2021). 0 when ``m_r <= 1``.
- ``miss``: ``1 − m_r / S``, the fraction of samples that do *not* detect
  it (an object missed by many samples is uncertain). With the default
  reference (sample 0, a member of the posterior) ``m_r >= 1``.

Boxes of a sample matched to no reference box are reported
(``BoxUncertainty.match == -1``) but score nothing: choose a reference with
a low score threshold so that it holds every object any sample finds.

**Image scores** (:func:`image_scores`, :func:`reduce_boxes`): one cluster
score (``"bald"``, ``"localisation"``, ``"miss"`` or the weighted sum
``"total"``) reduced over the image's valid reference boxes by ``"max"``
(the most uncertain object; the default), ``"mean"`` (independent of the
number of objects) or ``"sum"`` (favours crowded images — more boxes to
label). **An image without reference boxes scores 0** for every reduction
(nothing detected, nothing to be uncertain about), never NaN.

**Disagreement** (:func:`disagreement`) between two models' detections —
the "confusion" of model 1 and model 2: ``1 − matched / (n_a + n_b −
matched)``, where ``matched`` counts pairs with ``IoU >= iou_threshold``
*and the same class*; unmatched boxes on either side are disagreement. The
Jaccard distance between the two detection sets: 0 when they agree box for
box (two empty images included), 1 when no box agrees.

**Class targeting** (:func:`target_weight`, :func:`class_targeted`): weight
an image score by the probability that the image shows a target class
(pedestrians, cyclists): ``score · ((1 − λ) + λ · w)`` with ``w`` the max
(or mean) over the image's boxes of ``Σ_{c ∈ T} p_c`` — the box-level
counterpart of :func:`bal.acquisition.dense.class_targeted`.

Cost: matching is a loop of ``min(D, R)`` steps over an ``[D, R]`` IoU
matrix per sample and image (``O(S · N · D² · R)``), jitted and vmapped.
"""

from __future__ import annotations

import numbers
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bal.acquisition._validation import NORMALISATION_ATOL, is_tracer
from bal.acquisition.dense import _class_indicator
from bal.acquisition.scores import entropy
from bal.detection.boxes import box_iou, optimal_match

__all__ = [
    "BOX_SCORES",
    "BOX_REDUCTIONS",
    "DISAGREEMENT_MATCHINGS",
    "BoxUncertainty",
    "match_to_reference",
    "box_uncertainty",
    "box_uncertainty_batch",
    "reduce_boxes",
    "image_scores",
    "disagreement",
    "target_weight",
    "class_targeted",
]

#: Cluster scores of :func:`image_scores`.
BOX_SCORES = ("bald", "localisation", "miss", "total")
#: Reductions of cluster scores to an image score.
BOX_REDUCTIONS = ("max", "mean", "sum")
#: Matchings of :func:`disagreement`.
DISAGREEMENT_MATCHINGS = ("greedy", "optimal")

_MIN_SIZE = 1e-6  # floor of the box width / height that normalises the localisation variance


class BoxUncertainty(NamedTuple):
    """Per-cluster uncertainty of one image (``[R]``) or of a pool (``[N, R]``; sample axis first where present).

    Attributes:
      bald: ``[..., R]`` mutual information (nats) of the matched class distributions.
      localisation: ``[..., R]`` normalised variance of the matched box coordinates.
      miss: ``[..., R]`` fraction of samples without a box matched to the reference box.
      valid: ``[..., R]`` bool, the reference boxes (scores of invalid ones are 0).
      matched: ``[S, ..., R]`` bool, sample ``s`` has a box matched to reference box ``r``.
      match: ``[S, ..., D]`` int32, the reference box each sample box is matched to, ``-1`` if none.
      mean_probs: ``[..., R, C]`` mean class distribution over the matched samples (0 if none).
    """

    bald: jax.Array
    localisation: jax.Array
    miss: jax.Array
    valid: jax.Array
    matched: jax.Array
    match: jax.Array
    mean_probs: jax.Array


# ----------------------------------------------------------------------------- validation
def _check_threshold(iou_threshold):
    if not is_tracer(iou_threshold) and (isinstance(iou_threshold, bool)
                                         or not isinstance(iou_threshold, numbers.Real)
                                         or not 0.0 < float(iou_threshold) <= 1.0):
        raise ValueError(f"iou_threshold must be a number in (0, 1]; got {iou_threshold!r}")
    return jnp.asarray(iou_threshold, jnp.float32)


def _float(x, name: str):
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating-point array; got dtype {x.dtype}")
    x = jnp.asarray(x)
    return x.astype(jnp.float32) if x.dtype in (jnp.float16, jnp.bfloat16) else x


def _bool(x, shape, name: str):
    x = jnp.asarray(x)
    if x.dtype != jnp.bool_ or tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must be a boolean mask of shape {tuple(shape)}; "
                         f"got dtype {x.dtype}, shape {tuple(x.shape)}")
    return x


def _check_boxes(boxes, lead: tuple, name: str):
    boxes = _float(boxes, name)
    if tuple(boxes.shape[:-1]) != lead or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape {list(lead) + [4]} (x0, y0, x1, y1); "
                         f"got {tuple(boxes.shape)}")
    return boxes


def _check_finite(boxes, valid, name: str):
    if not is_tracer(boxes) and not is_tracer(valid) and boxes.size:
        if not bool(jnp.all(jnp.where(valid[..., None], jnp.isfinite(boxes), True))):
            raise ValueError(f"{name} contains NaN or inf in a valid box")


def _check_probs(class_probs, valid, validate: bool, name: str = "class_probs"):
    """``class_probs [..., C]`` rows of valid boxes normalise (checked on concrete input); returns float."""
    stored = getattr(class_probs, "dtype", np.float64)
    p = _float(class_probs, name)
    if p.ndim < 2 or p.shape[-1] < 2:
        raise ValueError(f"{name} must have shape [..., C] with C >= 2 classes; got {tuple(p.shape)}")
    if validate and p.size and not is_tracer(p) and not is_tracer(valid):
        rows = np.asarray(p)[np.asarray(valid)]  # padding rows may hold anything
        if rows.size:
            if not np.all(np.isfinite(rows)) or np.any(rows < 0):
                raise ValueError(f"{name} holds NaN, inf or a negative value in a valid box; pass "
                                 "probabilities (softmax of the class logits), not logits")
            err = float(np.max(np.abs(rows.sum(axis=-1, dtype=np.float64) - 1.0)))
            # storing p_c rounds it by <= eps/2 · p_c, so the sum by <= eps/2: allow 4 eps (bfloat16: 0.031)
            atol = max(NORMALISATION_ATOL, 4 * float(jnp.finfo(stored).eps))
            if not err <= atol:
                raise ValueError(f"{name} do not normalise over the class axis: max |Σ_c p − 1| = {err:.3g} > "
                                 f"{atol:.3g}. Pass class distributions (softmax, with the background column "
                                 "if the detector has one), not per-class sigmoid scores")
    return p


# ----------------------------------------------------------------------------- matching (jax)
def _greedy_pairs(iou, ok):
    """Greedy one-to-one matching in descending IoU: ``iou, ok [A, B] -> match [A]`` (``-1`` = none).

    The same rule as :func:`bal.detection.boxes.greedy_match` without scores:
    the highest-IoU candidate pair first, ties to the lowest ``(a, b)``
    (``argmax`` of the row-major flattening).
    """
    a_n, b_n = iou.shape
    rows, cols = jnp.arange(a_n), jnp.arange(b_n)

    def step(_, carry):
        w, match = carry
        flat = jnp.argmax(w)
        i, j = flat // b_n, flat % b_n
        hit = w[i, j] > -jnp.inf
        match = jnp.where(hit & (rows == i), j.astype(match.dtype), match)
        w = jnp.where(hit & ((rows == i)[:, None] | (cols == j)[None, :]), -jnp.inf, w)
        return w, match

    w0 = jnp.where(ok, iou, -jnp.inf)
    return jax.lax.fori_loop(0, min(a_n, b_n), step, (w0, jnp.full((a_n,), -1, jnp.int32)))[1]


def _match_core(boxes, valid, ref_boxes, ref_valid, thr):
    """``[S, D, 4], [S, D], [R, 4], [R] -> match [S, D]``."""
    iou = box_iou(boxes, ref_boxes[None])  # [S, D, R]
    ok = (iou >= thr) & valid[..., None] & ref_valid[None, None, :]
    return jax.vmap(_greedy_pairs)(iou, ok)


_match_jit = jax.jit(_match_core)


def match_to_reference(boxes, valid, reference_boxes, reference_valid=None, iou_threshold: float = 0.5):
    """Match each sample's boxes to the reference boxes, greedily in descending IoU.

    Sample by sample: the candidate pair (sample box, reference box) of
    highest IoU first, each box used once, pairs need ``IoU >= iou_threshold``
    (:func:`bal.detection.boxes.greedy_match` without scores, jitted).

    Args:
      boxes: ``[S, D, 4]`` per-sample boxes; valid: ``[S, D]`` bool.
      reference_boxes: ``[R, 4]``; reference_valid: ``[R]`` bool (default all).

    Returns:
      ``[S, D]`` int32: the reference box each sample box is matched to, ``-1`` if none.
    """
    shape = tuple(np.shape(boxes))
    if len(shape) != 3 or shape[-1] != 4:
        raise ValueError(f"boxes must have shape [S, D, 4]; got {shape}")
    boxes = _check_boxes(boxes, shape[:-1], "boxes")
    valid = _bool(valid, shape[:-1], "valid")
    ref_shape = tuple(np.shape(reference_boxes))
    if len(ref_shape) != 2 or ref_shape[-1] != 4:
        raise ValueError(f"reference_boxes must have shape [R, 4]; got {ref_shape}")
    ref = _check_boxes(reference_boxes, ref_shape[:-1], "reference_boxes")
    ref_valid = (jnp.ones(ref_shape[:1], bool) if reference_valid is None
                 else _bool(reference_valid, ref_shape[:1], "reference_valid"))
    _check_finite(boxes, valid, "boxes")
    _check_finite(ref, ref_valid, "reference_boxes")
    if shape[1] == 0 or ref_shape[0] == 0:
        return jnp.full(shape[:-1], -1, jnp.int32)
    dtype = jnp.promote_types(boxes.dtype, ref.dtype)
    return _match_jit(boxes.astype(dtype), valid, ref.astype(dtype), ref_valid, _check_threshold(iou_threshold))


# ----------------------------------------------------------------------------- box uncertainty
def _uncertainty_core(boxes, probs, valid, ref_boxes, ref_valid, thr):
    """One image: ``boxes [S, D, 4]``, ``probs [S, D, C]``, ``valid [S, D]``, reference ``[R, 4]``, ``[R]``."""
    s, _, c = probs.shape
    r = ref_boxes.shape[0]
    match = _match_core(boxes, valid, ref_boxes, ref_valid, thr)  # [S, D]
    onehot = (match[..., None] == jnp.arange(r)).astype(probs.dtype)  # [S, D, R]; at most one d per (s, r)
    matched = jnp.sum(onehot, axis=1) > 0  # [S, R]
    m = jnp.sum(matched, axis=0)  # [R]
    hi = jax.lax.Precision.HIGHEST
    # padding may hold NaN, and 0 * NaN = NaN: zero it before the one-hot products
    p = jnp.einsum("sdr,sdc->src", onehot, jnp.where(valid[..., None], probs, 0), precision=hi)  # [S, R, C]
    b = jnp.einsum("sdr,sdk->srk", onehot, jnp.where(valid[..., None], boxes, 0), precision=hi)  # [S, R, 4]
    w = matched / jnp.maximum(m, 1).astype(probs.dtype)  # [S, R] weights of the mean over matched samples

    # BALD over the matched samples: H[p̄] − Σ_s w_s H[p_s] (unmatched rows are 0: H = 0, weight 0)
    p_bar = jnp.sum(w[..., None] * p, axis=0)  # [R, C]
    h_bar = entropy(jnp.log(p_bar)[None], validate=False)  # [R]
    h_s = entropy(jnp.log(p).reshape(1, s * r, c), validate=False).reshape(s, r)  # [S, R]
    bald = h_bar - jnp.sum(w * h_s, axis=0)

    b_bar = jnp.sum(w[..., None] * b, axis=0)  # [R, 4]
    var = jnp.sum(w[..., None] * jnp.square(b - b_bar), axis=0)  # [R, 4], two-pass: never < 0
    wh = jnp.maximum(b_bar[:, 2:] - b_bar[:, :2], _MIN_SIZE)  # [R, 2] width, height
    size = jnp.concatenate([wh, wh], axis=-1)  # x0, y0, x1, y1 -> w, h, w, h
    loc = jnp.mean(var / jnp.square(size), axis=-1)

    miss = (s - m) / s  # exact 0 when every sample detects it (XLA may divide by s as a product with 1/s)
    zero = jnp.zeros_like(bald)
    return BoxUncertainty(bald=jnp.where(ref_valid, bald, zero), localisation=jnp.where(ref_valid, loc, zero),
                          miss=jnp.where(ref_valid, miss, zero).astype(bald.dtype), valid=ref_valid,
                          matched=matched, match=match, mean_probs=p_bar)


_uncertainty_one = jax.jit(_uncertainty_core)
# images on axis 1 of the per-sample inputs, axis 0 of the reference; sample-first outputs keep S first
_uncertainty_many = jax.jit(jax.vmap(
    _uncertainty_core, in_axes=(1, 1, 1, 0, 0, None),
    out_axes=BoxUncertainty(bald=0, localisation=0, miss=0, valid=0, matched=1, match=1, mean_probs=0)))


def _check_uncertainty_inputs(boxes, class_probs, valid, reference_boxes, reference_valid, iou_threshold,
                              validate, batched: bool):
    lead_rank = 3 if batched else 2
    layout = "[S, N, D, 4]" if batched else "[S, D, 4]"
    shape = tuple(np.shape(boxes))
    if len(shape) != lead_rank + 1 or shape[-1] != 4:
        raise ValueError(f"boxes must have shape {layout} (samples{', images' if batched else ''}, boxes, "
                         f"x0 y0 x1 y1); got {shape}")
    lead = shape[:-1]
    if lead[0] < 1 or lead[-1] < 1:
        raise ValueError(f"boxes needs S >= 1 samples and D >= 1 box slots (pad with valid = False); got {shape}")
    boxes = _check_boxes(boxes, lead, "boxes")
    valid = _bool(valid, lead, "valid")
    p_shape = tuple(np.shape(class_probs))
    if p_shape[:-1] != lead:
        raise ValueError(f"class_probs must have shape {list(lead) + ['C']} (one distribution per box); "
                         f"got {p_shape}")
    probs = _check_probs(class_probs, valid, validate)
    _check_finite(boxes, valid, "boxes")
    if reference_boxes is None:
        if reference_valid is not None:
            raise ValueError("reference_valid given without reference_boxes")
        ref_boxes, ref_valid = boxes[0], valid[0]
    else:
        ref_shape = tuple(np.shape(reference_boxes))
        if len(ref_shape) != lead_rank or ref_shape[:-2] != lead[1:-1] or ref_shape[-1] != 4 or ref_shape[-2] < 1:
            want = f"[N, R, 4] (N = {lead[1]})" if batched else "[R, 4]"
            raise ValueError(f"reference_boxes must have shape {want} with R >= 1; got {ref_shape}")
        ref_boxes = _check_boxes(reference_boxes, ref_shape[:-1], "reference_boxes")
        ref_valid = (jnp.ones(ref_shape[:-1], bool) if reference_valid is None
                     else _bool(reference_valid, ref_shape[:-1], "reference_valid"))
        _check_finite(ref_boxes, ref_valid, "reference_boxes")
    dtype = jnp.promote_types(boxes.dtype, probs.dtype)
    return (boxes.astype(dtype), probs.astype(dtype), valid, ref_boxes.astype(dtype), ref_valid,
            _check_threshold(iou_threshold))


def box_uncertainty(boxes, class_probs, valid, *, reference_boxes=None, reference_valid=None,
                    iou_threshold: float = 0.5, validate: bool = True) -> BoxUncertainty:
    """Per-object uncertainty of one image across ``S`` posterior samples (module docstring).

    Args:
      boxes: ``[S, D, 4]`` each sample's detections ``x0, y0, x1, y1``.
      class_probs: ``[S, D, C]`` each detection's class distribution (rows sum to 1).
      valid: ``[S, D]`` bool, True = a real detection.
      reference_boxes: ``[R, 4]`` the boxes that define the clusters; default ``boxes[0]``.
      reference_valid: ``[R]`` bool; default ``valid[0]`` (or all True for given reference boxes).
      iou_threshold: smallest IoU of a sample box and its reference box, in ``(0, 1]``.
      validate: check on concrete inputs that the valid rows of ``class_probs``
        are distributions (shape checks, and on concrete input the check that
        valid boxes are finite, always run).

    Returns:
      :class:`BoxUncertainty` with ``[R]`` cluster scores, ``matched [S, R]``, ``match [S, D]``.
    """
    return _uncertainty_one(*_check_uncertainty_inputs(boxes, class_probs, valid, reference_boxes,
                                                       reference_valid, iou_threshold, validate, batched=False))


def box_uncertainty_batch(boxes, class_probs, valid, *, reference_boxes=None, reference_valid=None,
                          iou_threshold: float = 0.5, validate: bool = True) -> BoxUncertainty:
    """:func:`box_uncertainty` for ``N`` images at once (vmapped).

    Args:
      boxes: ``[S, N, D, 4]``; class_probs: ``[S, N, D, C]``; valid: ``[S, N, D]``.
      reference_boxes: ``[N, R, 4]``, reference_valid: ``[N, R]``; default sample 0's.

    Returns:
      :class:`BoxUncertainty` with ``[N, R]`` cluster scores, ``matched [S, N, R]``, ``match [S, N, D]``.
    """
    return _uncertainty_many(*_check_uncertainty_inputs(boxes, class_probs, valid, reference_boxes,
                                                        reference_valid, iou_threshold, validate, batched=True))


# ----------------------------------------------------------------------------- image scores
@partial(jax.jit, static_argnames="how")
def _reduce_boxes(values, valid, how: str):
    values = values.astype(jnp.promote_types(values.dtype, jnp.float32))
    n = jnp.sum(valid, axis=-1)
    total = jnp.sum(jnp.where(valid, values, 0), axis=-1)
    if how == "sum":
        return total
    if how == "mean":
        return total / jnp.maximum(n, 1)
    return jnp.where(n > 0, jnp.max(jnp.where(valid, values, -jnp.inf), axis=-1), 0)


def reduce_boxes(values, valid, how: str = "max"):
    """Reduce per-box scores to one per image, ``[..., R] -> [...]``, over the valid boxes only.

    ``how``: ``"max"``, ``"mean"`` or ``"sum"``. An image without a valid box gets 0.
    """
    if how not in BOX_REDUCTIONS:
        raise ValueError(f"unknown box reduction {how!r}; valid reductions: {list(BOX_REDUCTIONS)}")
    values = jnp.asarray(values)
    if values.ndim < 1:
        raise ValueError(f"values must have shape [..., R]; got shape {tuple(values.shape)}")
    return _reduce_boxes(values, _bool(valid, values.shape, "valid"), how)


def image_scores(uncertainty: BoxUncertainty, score: str = "bald", how: str = "max", *,
                 weights=(1.0, 1.0, 1.0)):
    """One acquisition score per image from :func:`box_uncertainty` / :func:`box_uncertainty_batch`.

    Args:
      uncertainty: a :class:`BoxUncertainty` (one image or ``N``).
      score: ``"bald"``, ``"localisation"``, ``"miss"``, or ``"total"`` =
        ``w_b · bald + w_l · localisation + w_m · miss`` with ``weights = (w_b, w_l, w_m)``
        (a heuristic sum: the three terms have different scales — BALD in
        ``[0, log C]`` nats, miss in ``[0, 1)`` — so set the weights per task).
      how: reduction over the image's valid reference boxes, ``"max"``, ``"mean"`` or ``"sum"``.

    Returns:
      ``[]`` (one image) or ``[N]`` scores, higher = more informative; 0 for an image without boxes.
    """
    if score not in BOX_SCORES:
        raise ValueError(f"unknown box score {score!r}; valid scores: {list(BOX_SCORES)}")
    if score == "total":
        if len(weights) != 3:
            raise ValueError(f"weights must be (w_bald, w_localisation, w_miss); got {weights!r}")
        wb, wl, wm = weights
        values = wb * uncertainty.bald + wl * uncertainty.localisation + wm * uncertainty.miss
    else:
        values = getattr(uncertainty, score)
    return reduce_boxes(values, uncertainty.valid, how)


# ----------------------------------------------------------------------------- disagreement
@jax.jit
def _matched_greedy(boxes_a, classes_a, valid_a, boxes_b, classes_b, valid_b, thr):
    iou = box_iou(boxes_a, boxes_b)  # [N, A, B]
    ok = (iou >= thr) & valid_a[..., :, None] & valid_b[..., None, :] & (classes_a[..., :, None] ==
                                                                        classes_b[..., None, :])
    return jnp.sum(jax.vmap(_greedy_pairs)(iou, ok) >= 0, axis=-1)


def disagreement(boxes_a, classes_a, valid_a, boxes_b, classes_b, valid_b, iou_threshold: float = 0.5, *,
                 matching: str = "greedy"):
    """Disagreement of two models' detections per image: ``1 − matched / (n_a + n_b − matched)``.

    ``matched`` counts one-to-one pairs of an ``a`` and a ``b`` box with
    ``IoU >= iou_threshold`` and the same class; ``n_a``, ``n_b`` count the
    valid boxes. So an object found by one model only, or given different
    classes by the two, adds disagreement; two images without boxes agree (0).

    Args:
      boxes_a: ``[N, A, 4]``, classes_a: ``[N, A]`` int, valid_a: ``[N, A]`` bool — model 1.
      boxes_b: ``[N, B, 4]``, classes_b: ``[N, B]`` int, valid_b: ``[N, B]`` bool — model 2.
      iou_threshold: in ``(0, 1]``.
      matching: ``"greedy"`` (jitted: same-class pairs in descending IoU, as
        :func:`bal.detection.boxes.greedy_match` without scores; symmetric in
        a and b up to exact ties) or ``"optimal"`` (NumPy + SciPy, a loop over
        images: the most pairs, :func:`bal.detection.boxes.optimal_match`
        with ``objective="count"``; never more disagreement than greedy).

    Returns:
      ``[N]`` float32 scores in ``[0, 1]``, higher = more disagreement.
    """
    if matching not in DISAGREEMENT_MATCHINGS:
        raise ValueError(f"unknown matching {matching!r}; valid matchings: {list(DISAGREEMENT_MATCHINGS)}")
    thr = _check_threshold(iou_threshold)
    sets = []
    for boxes, classes, valid, side in ((boxes_a, classes_a, valid_a, "a"), (boxes_b, classes_b, valid_b, "b")):
        shape = tuple(np.shape(boxes))
        if len(shape) != 3 or shape[-1] != 4:
            raise ValueError(f"boxes_{side} must have shape [N, K, 4]; got {shape}")
        boxes = _check_boxes(boxes, shape[:-1], f"boxes_{side}")
        classes = jnp.asarray(classes)
        if tuple(classes.shape) != shape[:-1] or not jnp.issubdtype(classes.dtype, jnp.integer):
            raise ValueError(f"classes_{side} must be integer class ids of shape {shape[:-1]}; "
                             f"got dtype {classes.dtype}, shape {tuple(classes.shape)}")
        valid = _bool(valid, shape[:-1], f"valid_{side}")
        _check_finite(boxes, valid, f"boxes_{side}")
        sets.append((boxes, classes, valid))
    (ba, ca, va), (bb, cb, vb) = sets
    if ba.shape[0] != bb.shape[0]:
        raise ValueError(f"boxes_a covers N = {ba.shape[0]} images but boxes_b N = {bb.shape[0]}")
    if matching == "greedy":
        if ba.shape[1] == 0 or bb.shape[1] == 0:
            matched = jnp.zeros(ba.shape[0], jnp.int32)
        else:
            dtype = jnp.promote_types(ba.dtype, bb.dtype)
            matched = _matched_greedy(ba.astype(dtype), ca, va, bb.astype(dtype), cb, vb, thr)
    else:
        if is_tracer(ba) or is_tracer(bb):
            raise ValueError('matching="optimal" runs in NumPy and cannot be traced; use matching="greedy" '
                             "under jax.jit")
        ba, ca, va, bb, cb, vb = (np.asarray(x) for x in (ba, ca, va, bb, cb, vb))
        matched = jnp.asarray([np.sum(optimal_match(ba[i], bb[i], float(iou_threshold), objective="count",
                                                    valid_a=va[i], valid_b=vb[i], classes_a=ca[i],
                                                    classes_b=cb[i]) >= 0) for i in range(ba.shape[0])],
                              jnp.int32).reshape(ba.shape[0])
    union = jnp.sum(va, axis=-1) + jnp.sum(vb, axis=-1) - matched
    return jnp.where(union > 0, 1.0 - matched / jnp.maximum(union, 1), 0.0).astype(jnp.float32)


# ----------------------------------------------------------------------------- class targeting
def _check_target_how(how):
    if how not in ("max", "mean"):
        raise ValueError(f"how must be 'max' or 'mean' (over the image's boxes); got {how!r}")


@partial(jax.jit, static_argnames="how")
def _target_weight(probs, valid, indicator, how: str):
    mass = jnp.clip(jnp.dot(probs, indicator, precision=jax.lax.Precision.HIGHEST), 0.0, 1.0)  # [N, D]
    return _reduce_boxes(mass, valid, how)


def target_weight(class_probs, valid, classes, *, how: str = "max", validate: bool = True):
    """Probability that an image shows one of ``classes``, from its boxes.

    ``w_n = max_d Σ_{c ∈ T} p[n, d, c]`` (``how="max"``: the most likely
    target box) or the mean over the valid boxes (``how="mean"``: the share of
    boxes that are targets); 0 for an image without boxes.

    Args:
      class_probs: ``[N, D, C]`` per-box class distributions — of a
        deterministic prediction, or the cluster means
        ``BoxUncertainty.mean_probs`` (with ``BoxUncertainty.valid``).
      valid: ``[N, D]`` bool.
      classes: target class ids ``T`` (distinct integers in ``[0, C)``).

    Returns:
      ``[N]`` weights in ``[0, 1]``.
    """
    _check_target_how(how)
    shape = tuple(np.shape(class_probs))
    if len(shape) != 3:
        raise ValueError(f"class_probs must have shape [N, D, C]; got {shape}")
    valid = _bool(valid, shape[:-1], "valid")
    probs = _check_probs(class_probs, valid, validate)
    indicator = jnp.asarray(_class_indicator(classes, shape[-1]), probs.dtype)
    return _target_weight(probs, valid, indicator, how)


def class_targeted(scores, class_probs, valid, classes, *, how: str = "max", strength=1.0,
                   validate: bool = True):
    """Image scores focused on images predicted to show chosen classes.

    ``score · ((1 − λ) + λ · w)`` with ``w`` = :func:`target_weight` and
    ``λ = strength`` in ``[0, 1]`` (1: only targets count; 0: ``score`` unchanged).
    A heuristic, like :func:`bal.acquisition.dense.class_targeted` (not an
    information-theoretic target such as EPIG).

    Args:
      scores: ``[N]`` image scores (e.g. :func:`image_scores`, :func:`disagreement`).
      class_probs: ``[N, D, C]``, valid: ``[N, D]``, classes: as :func:`target_weight`.

    Returns:
      ``[N]`` targeted scores.
    """
    if not is_tracer(strength) and (isinstance(strength, bool) or not isinstance(strength, numbers.Real)
                                    or not 0.0 <= strength <= 1.0):
        raise ValueError(f"strength (λ) must be a number in [0, 1]; got {strength!r}")
    scores = jnp.asarray(scores)
    n = np.shape(class_probs)[0] if np.ndim(class_probs) else None
    if scores.ndim != 1 or scores.shape[0] != n:
        raise ValueError(f"scores must have shape [N] with N = {n} (the images of class_probs); "
                         f"got {tuple(scores.shape)}")
    w = target_weight(class_probs, valid, classes, how=how, validate=validate)
    return scores * ((1.0 - strength) + strength * w)
