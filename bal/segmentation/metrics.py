"""Segmentation metrics from a confusion matrix: per-class IoU, mean IoU, pixel accuracy.

Everything is computed from the ``[C, C]`` confusion matrix, so a large
dataset is evaluated chunk by chunk and the matrices summed::

    cm = sum(confusion_matrix(pred, target, C) for pred, target in chunks)

Conventions (those of ``sklearn.metrics.confusion_matrix`` and of the
Cityscapes / PASCAL VOC benchmarks):

- ``cm[t, p]`` counts pixels of true class ``t`` predicted as ``p``; pixels
  whose target is ``ignore_label`` (default 255) are not counted.
- ``IoU_c = TP_c / (TP_c + FP_c + FN_c)`` (Everingham et al. 2010, "The PASCAL
  Visual Object Classes (VOC) Challenge"), with ``TP_c = cm[c, c]``,
  ``FP_c = Σ_t cm[t, c] − TP_c``, ``FN_c = Σ_p cm[c, p] − TP_c``. A class absent
  from both the targets and the predictions has ``0 / 0``: its IoU is **NaN**
  (undefined, not 0), and :func:`mean_iou` averages over the other classes
  (``nanmean``), as the Cityscapes scripts do.
- pixel accuracy ``Σ_c TP_c / Σ cm`` (NaN when no pixel was counted).

Counts are int32 — exact up to 2**31 − 1 pixels per call. When a dataset
has more pixels than that, accumulate the per-chunk matrices in numpy int64
(``np.asarray(cm, np.int64)``); the metric functions accept either.
"""

from __future__ import annotations

import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["IGNORE_LABEL", "confusion_matrix", "predictive_confusion_matrix", "predict_labels", "iou_per_class",
           "mean_iou", "pixel_accuracy", "evaluate"]

#: The usual "no label" value of segmentation datasets (Cityscapes, BDD100k, PASCAL VOC).
from bal.checks import IGNORE_LABEL  # noqa: E402  (one definition)


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (numbers.Integral, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1; got {num_classes!r}")
    return int(num_classes)


def _check_labels(x, name: str, num_classes: int, ignore_label):
    """An integer array; on concrete input, values in ``[0, C)`` (or ``ignore_label`` for targets)."""
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(f"{name} must be an integer label map; got dtype {x.dtype}")
    if not _is_tracer(x) and x.size:
        values = np.asarray(x)
        bad = (values < 0) | (values >= num_classes)
        if ignore_label is not None:
            bad &= values != ignore_label
        if bad.any():
            allowed = f"[0, {num_classes})" + (f" or ignore_label={ignore_label}" if ignore_label is not None else "")
            raise ValueError(f"{name} holds {int(values[bad][0])}, outside {allowed}; "
                             f"check num_classes and the ignore label")
    return jnp.asarray(x)


@partial(jax.jit, static_argnames=("num_classes", "ignore_label"))
def _confusion(pred, target, num_classes: int, ignore_label):
    c = num_classes
    pred, target = pred.astype(jnp.int32).reshape(-1), target.astype(jnp.int32).reshape(-1)
    valid = (target >= 0) & (target < c) & (pred >= 0) & (pred < c)
    if ignore_label is not None:
        valid &= target != ignore_label
    idx = jnp.where(valid, target * c + pred, c * c)  # invalid pixels go to an extra bin, dropped
    return jnp.bincount(idx, length=c * c + 1)[: c * c].reshape(c, c).astype(jnp.int32)


def confusion_matrix(pred, target, num_classes: int, ignore_label: int | None = IGNORE_LABEL):
    """Pixel confusion matrix ``cm[true, predicted]``: ``[N, H, W], [N, H, W] -> int32 [C, C]``.

    Args:
      pred: integer predicted classes, any shape (e.g. ``[N, H, W]``).
      target: integer true classes of the same shape; ``ignore_label`` marks
        unlabeled pixels, which are not counted.
      num_classes: ``C``.
      ignore_label: the "no label" value (default 255); None = every target is a class.

    Jittable (``num_classes`` and ``ignore_label`` static). Value checks
    (labels in ``[0, C)``) run on concrete inputs only; under ``jax.jit``
    out-of-range pixels are silently not counted.

    Raises:
      ValueError: shapes differ, non-integer labels, or labels out of range.
    """
    c = _check_num_classes(num_classes)
    if ignore_label is not None and 0 <= ignore_label < c:
        raise ValueError(f"ignore_label={ignore_label} is a valid class id for num_classes={c}; "
                         "use a value outside [0, C) (e.g. 255) or None")
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"pred and target must have the same shape; got {np.shape(pred)} and {np.shape(target)}")
    pred = _check_labels(pred, "pred", c, None)
    target = _check_labels(target, "target", c, ignore_label)
    return _confusion(pred, target, c, None if ignore_label is None else int(ignore_label))


def _check_dense(log_probs):
    shape = np.shape(log_probs)
    if len(shape) not in (4, 5):
        raise ValueError(f"log_probs must be [S, N, H, W, C] per-sample log-probabilities (or [N, H, W, C] "
                         f"predictive ones); got shape {shape}")
    return jnp.asarray(log_probs)


@jax.jit
def _predict_labels(log_probs):
    if log_probs.ndim == 5:  # argmax of the mean probability = argmax of the sum
        log_probs = jnp.sum(jnp.exp(log_probs), axis=0)
    return jnp.argmax(log_probs, axis=-1).astype(jnp.int32)


def predict_labels(log_probs):
    """The class of highest predictive probability per pixel.

    Args:
      log_probs: ``[S, N, H, W, C]`` per-sample log-probabilities (argmax of
        ``p̄ = mean_s exp(log_probs[s])``), or ``[N, H, W, C]`` predictive
        log-probabilities / logits.

    Returns:
      ``int32 [N, H, W]``; ties go to the lowest class index.
    """
    return _predict_labels(_check_dense(log_probs))


def predictive_confusion_matrix(log_probs, target, ignore_label: int | None = IGNORE_LABEL):
    """:func:`confusion_matrix` of :func:`predict_labels`: ``[S, N, H, W, C], [N, H, W] -> int32 [C, C]``."""
    log_probs = _check_dense(log_probs)
    if np.shape(target) != log_probs.shape[-4:-1]:
        raise ValueError(f"target must have shape [N, H, W] = {tuple(log_probs.shape[-4:-1])}; "
                         f"got {np.shape(target)}")
    return confusion_matrix(predict_labels(log_probs), target, log_probs.shape[-1], ignore_label)


def _check_confusion(confusion):
    cm = jnp.asarray(confusion) if not isinstance(confusion, np.ndarray) else confusion
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 1:
        raise ValueError(f"confusion must be a square [C, C] matrix; got shape {tuple(cm.shape)}")
    return cm


def iou_per_class(confusion):
    """``IoU_c = TP_c / (TP_c + FP_c + FN_c)``, ``[C, C] -> float32 [C]``; NaN for a class absent from both
    targets and predictions (see the module docstring)."""
    cm = _check_confusion(confusion)
    xp = np if isinstance(cm, np.ndarray) else jnp
    tp = xp.diagonal(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    iou = tp / xp.where(union > 0, union, 1)
    return jnp.asarray(xp.where(union > 0, iou, np.nan), jnp.float32)


def mean_iou(confusion):
    """Mean IoU over the classes whose IoU is defined (``nanmean``); NaN if none is. ``[C, C] -> []``."""
    iou = iou_per_class(confusion)
    defined = ~jnp.isnan(iou)
    n = jnp.sum(defined)
    return jnp.where(n > 0, jnp.sum(jnp.where(defined, iou, 0.0)) / jnp.maximum(n, 1), jnp.nan)


def pixel_accuracy(confusion):
    """Fraction of counted pixels classified correctly, ``trace / sum``; NaN if none was counted.

    ``[C, C] -> []``.
    """
    cm = _check_confusion(confusion)
    xp = np if isinstance(cm, np.ndarray) else jnp
    total = cm.sum()
    acc = xp.trace(cm) / xp.where(total > 0, total, 1)
    return jnp.asarray(xp.where(total > 0, acc, np.nan), jnp.float32)


def evaluate(log_probs, target, ignore_label: int | None = IGNORE_LABEL) -> dict:
    """``{"mean_iou", "pixel_accuracy", "iou": [C] list}`` as Python floats, from ``[S, N, H, W, C]``
    (or ``[N, H, W, C]``) log-probabilities and ``[N, H, W]`` targets."""
    cm = predictive_confusion_matrix(log_probs, target, ignore_label)
    return {"mean_iou": float(mean_iou(cm)), "pixel_accuracy": float(pixel_accuracy(cm)),
            "iou": [float(v) for v in np.asarray(iou_per_class(cm))]}
