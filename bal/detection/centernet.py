"""CenterNet targets, loss and decoding (Zhou, Wang & Krähenbühl 2019, "Objects as Points").

Boxes are ``(x0, y0, x1, y1)`` in input pixels (continuous coordinates: a box
covering pixel columns ``a .. b - 1`` has ``x0 = a, x1 = b``). Maps are at the
output stride ``s`` (4): cell ``(i, j)`` covers input pixels
``[s·j, s·(j + 1)) x [s·i, s·(i + 1))``. An object with centre ``(cx, cy)`` is
assigned to the cell ``(floor(cy / s), floor(cx / s))``; the offset target is
the remainder ``(cx / s - j, cy / s - i)`` in cells and the size target
``((x1 - x0) / s, (y1 - y0) / s)`` in cells, as in the paper.

* :func:`encode_targets` (numpy, vectorised over the batch): class heatmaps
  with a Gaussian at each centre (peak exactly 1; radius from
  :func:`gaussian_radius` with ``min_overlap=0.7``, ``sigma = (2r + 1) / 6``,
  overlapping objects of one class combined by maximum) and *dense* size /
  offset / mask maps, so targets are per-pixel arrays aligned with the model
  outputs (:class:`Targets`; :meth:`Targets.packed` gives one
  ``[N, H', W', C + 5]`` array that can be batched like pixel labels).
* :func:`loss` (pure ``jnp``, jittable): the penalty-reduced pixel-wise focal
  loss (``alpha = 2, beta = 4``) on the heatmap, normalised by the number of
  objects, plus ``0.1 ·`` L1 on size and ``1 ·`` L1 on offset at the object
  centres (each L1 averaged over the object centres and the two coordinates,
  as the authors' ``RegL1Loss``).
* :func:`decode` (jittable): peaks of the class heatmaps (3x3 max-pool
  suppression, the paper's ``_nms``), top ``k`` over cells and classes, boxes
  in input pixels, and each detection's per-class heatmap probabilities.

Model outputs are laid out as in :mod:`bal.models.centernet`: ``[..., C + 4]``
= heatmap logits, size ``(w, h)``, offset ``(dx, dy)``.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bal.models.centernet import OUTPUT_STRIDE, output_hw, split_outputs

#: heatmap focal loss exponents (the paper's alpha and beta)
FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0
#: loss weights of the size and offset L1 terms (the paper's lambda_size, lambda_off)
SIZE_WEIGHT = 0.1
OFFSET_WEIGHT = 1.0


class Targets(NamedTuple):
    """Dense CenterNet targets for a batch (float32).

    Attributes:
      heatmap: ``[N, H', W', C]`` Gaussian centre heatmaps (1 exactly at each centre cell).
      size: ``[N, H', W', 2]`` box ``(w, h)`` in cells at centre cells, 0 elsewhere.
      offset: ``[N, H', W', 2]`` centre ``(dx, dy)`` in ``[0, 1)`` cells at centre cells, 0 elsewhere.
      mask: ``[N, H', W']`` 1 at centre cells, 0 elsewhere.
    """

    heatmap: np.ndarray
    size: np.ndarray
    offset: np.ndarray
    mask: np.ndarray

    def packed(self):
        """One array ``[N, H', W', C + 5]``: heatmap ``C``, size 2, offset 2, mask 1 (see :func:`unpack_targets`)."""
        xp = jnp if isinstance(self.heatmap, jax.Array) else np
        return xp.concatenate([self.heatmap, self.size, self.offset, self.mask[..., None]], axis=-1)


def unpack_targets(packed) -> Targets:
    """The inverse of :meth:`Targets.packed`: ``[..., C + 5] -> Targets``."""
    c = packed.shape[-1] - 5
    if c < 1:
        raise ValueError(f"packed CenterNet targets need C + 5 >= 6 channels; got shape {tuple(packed.shape)}")
    return Targets(packed[..., :c], packed[..., c:c + 2], packed[..., c + 2:c + 4], packed[..., c + 4])


def as_targets(targets) -> Targets:
    """``targets`` as :class:`Targets`: passed through, or unpacked from a ``[N, H', W', C + 5]`` array."""
    if isinstance(targets, Targets):
        return targets
    if isinstance(targets, (tuple, list)) and len(targets) == 4:
        return Targets(*targets)
    return unpack_targets(targets)


# --- targets ------------------------------------------------------------------------------


def gaussian_radius(height, width, min_overlap: float = 0.7):
    """CenterNet's Gaussian radius for boxes of ``height x width`` (arrays broadcast; in map cells).

    The smallest of the three radii of CornerNet's corner-shift cases such
    that a box whose corners move by the radius still has IoU ``>= min_overlap``
    with the true box; a faithful vectorised copy of the authors'
    ``gaussian_radius`` (including its ``(b + sqrt(b² - 4ac)) / 2`` forms,
    which the paper's radii, and so its trained models, rely on).
    """
    height = np.asarray(height, np.float64)
    width = np.asarray(width, np.float64)
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2**2 - 4 * 4 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")


def encode_targets(boxes, classes, valid, *, num_classes: int, input_hw, stride: int = OUTPUT_STRIDE,
                   min_overlap: float = 0.7) -> Targets:
    """CenterNet training targets for a batch of images with up to ``K`` boxes each.

    Args:
      boxes: ``[N, K, 4]`` ``(x0, y0, x1, y1)`` in input pixels.
      classes: ``[N, K]`` integer classes in ``[0, num_classes)`` (ignored where not valid).
      valid: ``[N, K]`` which of the ``K`` slots hold a box (padding otherwise).
        Boxes with zero width or height are skipped, as in the paper.
      num_classes: ``C``.
      input_hw: the input image size ``(H, W)``; maps are ``ceil(H / stride) x ceil(W / stride)``.
      stride: the output stride (4 for :class:`bal.models.CenterNet`).
      min_overlap: the IoU of :func:`gaussian_radius`.

    Returns:
      :class:`Targets` (numpy float32). Two objects whose centres fall in one
      cell both peak there in the heatmap; the size / offset of one of them is kept.
    """
    _check_positive_int("num_classes", num_classes)
    _check_positive_int("stride", stride)
    boxes = np.asarray(boxes, np.float64)
    classes = np.asarray(classes)
    valid = np.asarray(valid, bool)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [N, K, 4] (x0, y0, x1, y1); got shape {boxes.shape}")
    if classes.shape != boxes.shape[:2] or valid.shape != boxes.shape[:2]:
        raise ValueError(f"classes and valid must be [N, K] = {list(boxes.shape[:2])}; got {list(classes.shape)} "
                         f"and {list(valid.shape)}")
    if not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"classes must be integers; got dtype {classes.dtype}")
    if ((classes < 0) | (classes >= num_classes))[valid].any():
        raise ValueError(f"classes of valid boxes must lie in [0, {num_classes})")
    out_h, out_w = output_hw(input_hw, stride)
    n, num_boxes = classes.shape

    b = boxes / stride
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    valid = valid & (w > 0) & (h > 0)  # also drops NaN padding
    w, h = np.where(valid, w, 1.0), np.where(valid, h, 1.0)
    cx = np.where(valid, (b[..., 0] + b[..., 2]) / 2, 0.0)
    cy = np.where(valid, (b[..., 1] + b[..., 3]) / 2, 0.0)
    ix = np.clip(np.floor(cx), 0, out_w - 1).astype(np.int64)
    iy = np.clip(np.floor(cy), 0, out_h - 1).astype(np.int64)
    radius = np.maximum(0, np.floor(gaussian_radius(np.ceil(h), np.ceil(w), min_overlap)))
    sigma = (2 * radius + 1) / 6
    cls = np.where(valid, classes, 0).astype(np.int64)

    heatmap = np.zeros((n, out_h, out_w, num_classes), np.float32)
    rows, cols, batch = np.arange(out_h), np.arange(out_w), np.arange(n)
    for k in range(num_boxes):  # vectorised over the batch; K is small
        dy = rows[None, :] - iy[:, k, None]  # [N, H']
        dx = cols[None, :] - ix[:, k, None]  # [N, W']
        r, s2 = radius[:, k, None], 2 * sigma[:, k, None] ** 2
        gy = np.where(np.abs(dy) <= r, np.exp(-dy**2 / s2), 0.0)
        gx = np.where(np.abs(dx) <= r, np.exp(-dx**2 / s2), 0.0)
        g = (gy[:, :, None] * gx[:, None, :] * valid[:, k, None, None]).astype(np.float32)  # [N, H', W']
        heatmap[batch, :, :, cls[:, k]] = np.maximum(heatmap[batch, :, :, cls[:, k]], g)

    size = np.zeros((n, out_h, out_w, 2), np.float32)
    offset = np.zeros((n, out_h, out_w, 2), np.float32)
    mask = np.zeros((n, out_h, out_w), np.float32)
    bi, ki = np.nonzero(valid)
    at = (bi, iy[bi, ki], ix[bi, ki])
    size[at] = np.stack([w[bi, ki], h[bi, ki]], axis=-1)
    offset[at] = np.stack([cx[bi, ki] - ix[bi, ki], cy[bi, ki] - iy[bi, ki]], axis=-1)
    mask[at] = 1.0
    return Targets(heatmap, size, offset, mask)


# --- loss -----------------------------------------------------------------------------------


def focal_loss(heatmap_logits, heatmap_target, *, alpha: float = FOCAL_ALPHA, beta: float = FOCAL_BETA):
    """The penalty-reduced pixel-wise focal loss of CenterNet, summed and divided by the object count.

    With ``p = sigmoid(logits)`` and target ``Y``::

        -1/N_obj Σ { (1 - p)^α log p                 where Y = 1
                   { (1 - Y)^β p^α log(1 - p)         otherwise

    ``N_obj`` is the number of cells where ``Y = 1`` in the batch (at least 1:
    a batch without objects gives the plain sum, as the authors' code).
    ``log p`` and ``log(1 - p)`` are log-sigmoids of the logits (stable; the
    authors clamp ``p`` to ``[1e-4, 1 - 1e-4]`` instead).
    """
    logits = jnp.asarray(heatmap_logits, jnp.float32)
    target = jnp.asarray(heatmap_target, jnp.float32)
    p = jax.nn.sigmoid(logits)
    pos = (target == 1.0).astype(jnp.float32)
    pos_term = jax.nn.log_sigmoid(logits) * (1 - p) ** alpha * pos
    neg_term = jax.nn.log_sigmoid(-logits) * p**alpha * (1 - target) ** beta * (1 - pos)
    return -(jnp.sum(pos_term) + jnp.sum(neg_term)) / jnp.maximum(jnp.sum(pos), 1.0)


def masked_l1(pred, target, mask):
    """``Σ mask · |pred - target| / (2 Σ mask + 1e-4)`` for ``[..., 2]`` maps and a ``[...]`` mask."""
    mask = jnp.asarray(mask, jnp.float32)[..., None]
    return jnp.sum(jnp.abs(pred - target) * mask) / (jnp.sum(mask) * pred.shape[-1] + 1e-4)


def loss_terms(outputs, targets, *, size_weight: float = SIZE_WEIGHT, offset_weight: float = OFFSET_WEIGHT,
               alpha: float = FOCAL_ALPHA, beta: float = FOCAL_BETA) -> dict:
    """The CenterNet loss and its parts: ``{"loss", "heatmap", "size", "offset"}`` (scalars).

    Args:
      outputs: model outputs ``[N, H', W', C + 4]`` (heatmap logits, size, offset).
      targets: :class:`Targets` or the packed ``[N, H', W', C + 5]`` array.
    """
    targets = as_targets(targets)
    heatmap_logits, size, offset = split_outputs(outputs)
    if heatmap_logits.shape != targets.heatmap.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} do not match heatmap targets "
                         f"{tuple(targets.heatmap.shape)} (expected [N, H', W', C + 4] for [N, H', W', C])")
    terms = {
        "heatmap": focal_loss(heatmap_logits, targets.heatmap, alpha=alpha, beta=beta),
        "size": masked_l1(size, targets.size, targets.mask),
        "offset": masked_l1(offset, targets.offset, targets.mask),
    }
    terms["loss"] = terms["heatmap"] + size_weight * terms["size"] + offset_weight * terms["offset"]
    return terms


def loss(outputs, targets, **kwargs):
    """The CenterNet training loss (a scalar): focal + 0.1 size L1 + 1 offset L1 (see :func:`loss_terms`)."""
    return loss_terms(outputs, targets, **kwargs)["loss"]


# --- decoding -----------------------------------------------------------------------------


class Detections(NamedTuple):
    """Top-``k`` detections per image, by score.

    Attributes:
      boxes: ``[N, k, 4]`` ``(x0, y0, x1, y1)`` in input pixels.
      scores: ``[N, k]`` the peak's heatmap probability (0 for cells that are no peak).
      classes: ``[N, k]`` int32.
      class_probs: ``[N, k, C]`` the heatmap probabilities of every class at the peak cell.
      cells: ``[N, k]`` int32 flat cell index ``y · W' + x`` of each detection
        (:func:`gather_cells` reads other maps, e.g. posterior samples, there).
    """

    boxes: jax.Array
    scores: jax.Array
    classes: jax.Array
    class_probs: jax.Array
    cells: jax.Array


def peaks(heatmap_probs, kernel: int = 3):
    """``heatmap_probs`` where it is the maximum of its ``kernel x kernel`` neighbourhood (per class), else 0."""
    hmax = lax.reduce_window(heatmap_probs, -jnp.inf, lax.max, (1, kernel, kernel, 1), (1, 1, 1, 1), "SAME")
    return jnp.where(heatmap_probs == hmax, heatmap_probs, 0.0)


def gather_cells(maps, cells):
    """Values of ``maps [..., N, H', W', D]`` at flat cells ``[N, k]``: ``[..., N, k, D]``.

    Leading axes (posterior samples ``S``, members ``M``) are kept, so the
    per-sample class probabilities of the detections of a mean heatmap are
    ``gather_cells(sigmoid(heatmap_logits [S, N, H', W', C]), dets.cells)``.
    """
    *lead, n, h, w, d = maps.shape
    flat = maps.reshape(*lead, n, h * w, d)
    index = jnp.broadcast_to(cells[..., None], (*lead, *cells.shape, 1))
    return jnp.take_along_axis(flat, index, axis=-2)


def decode(heatmap_probs, size, offset, *, k: int = 100, stride: int = OUTPUT_STRIDE) -> Detections:
    """Boxes from CenterNet maps: 3x3 max-pool peaks, top ``k`` over cells and classes.

    Args:
      heatmap_probs: ``[N, H', W', C]`` centre probabilities (sigmoid of the logits,
        or a posterior mean of them).
      size: ``[N, H', W', 2]`` box ``(w, h)`` in cells; offset: ``[N, H', W', 2]`` ``(dx, dy)`` in cells.
      k: detections per image (static; at most ``H' W' C``).
      stride: the output stride.

    Returns:
      :class:`Detections`; the box of a peak at cell ``(y, x)`` is centred at
      ``((x + dx) s, (y + dy) s)`` with size ``(w s, h s)``.
    """
    n, h, w, c = heatmap_probs.shape
    k = min(int(k), h * w * c)
    scores, index = lax.top_k(peaks(heatmap_probs).reshape(n, h * w * c), k)
    cells, classes = index // c, index % c
    ys, xs = (cells // w).astype(jnp.float32), (cells % w).astype(jnp.float32)
    box_size = gather_cells(size, cells) * stride       # [N, k, 2]
    box_offset = gather_cells(offset, cells)            # [N, k, 2]
    cx, cy = (xs + box_offset[..., 0]) * stride, (ys + box_offset[..., 1]) * stride
    half_w, half_h = box_size[..., 0] / 2, box_size[..., 1] / 2
    boxes = jnp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)
    return Detections(boxes, scores, classes.astype(jnp.int32), gather_cells(heatmap_probs, cells),
                      cells.astype(jnp.int32))


def class_distribution(class_probs, eps: float = 1e-12):
    """Per-class heatmap probabilities ``[..., C]`` as a distribution ``[..., C + 1]`` with background last.

    CenterNet's heatmap gives independent per-class probabilities (sigmoids),
    not a distribution; :mod:`bal.acquisition.boxes` wants rows that sum to
    1. Here the detection's objectness is its score ``q = max_c p_c``: the
    background column is ``1 - q`` and the classes share ``q`` in proportion
    to ``p_c`` (``q · p_c / Σ_c p_c``), so the argmax over classes and the
    ranking of detections are unchanged.
    """
    p = jnp.asarray(class_probs)
    q = jnp.max(p, axis=-1, keepdims=True)
    fg = q * p / jnp.maximum(jnp.sum(p, axis=-1, keepdims=True), eps)
    return jnp.concatenate([fg, 1.0 - q], axis=-1)


def decode_outputs(outputs, *, k: int = 100, stride: int = OUTPUT_STRIDE) -> Detections:
    """:func:`decode` of model outputs ``[N, H', W', C + 4]`` (sigmoid of the heatmap logits)."""
    heatmap_logits, size, offset = split_outputs(outputs)
    return decode(jax.nn.sigmoid(heatmap_logits), size, offset, k=k, stride=stride)


__all__ = ["FOCAL_ALPHA", "FOCAL_BETA", "OFFSET_WEIGHT", "SIZE_WEIGHT", "Detections", "Targets", "as_targets",
           "class_distribution", "decode", "decode_outputs", "encode_targets", "focal_loss", "gather_cells",
           "gaussian_radius", "loss", "loss_terms", "masked_l1", "peaks", "unpack_targets"]
