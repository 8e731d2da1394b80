"""Cross-entropy over the labeled pixels of partially labeled segmentation maps.

In region-based active learning an image is labeled crop by crop, so a
training batch mixes labeled pixels, unlabeled ones (``mask`` False) and
pixels the dataset marks ``ignore_label`` (255). Only labeled pixels enter
the loss:

    L = Σ_{labeled i} w_{y_i} · (logsumexp_c z_{i,c} − z_{i,y_i})  /  Σ_{labeled i} w_{y_i}

(``w = 1`` unless ``class_weights`` are given; the weighted mean is the
convention of PyTorch's ``CrossEntropyLoss(weight=..., ignore_index=...)``).
A batch with no labeled pixel has loss 0 (not NaN) and zero gradient.

Unlabeled pixels contribute nothing — in value and in gradient: their logits
are replaced by zeros *before* the softmax (``where``), so the gradient with
respect to them is exactly zero even if they hold inf or NaN.
:func:`masked_cross_entropy_sum` returns the numerator and denominator so
that a caller can normalise over several batches (gradient accumulation,
devices) by the total number of labeled pixels.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bal.segmentation.metrics import IGNORE_LABEL

__all__ = ["masked_cross_entropy", "masked_cross_entropy_sum"]


def _check(logits, labels, mask, class_weights):
    shape = tuple(np.shape(logits))
    if len(shape) < 2:
        raise ValueError(f"logits must have shape [..., H, W, C]; got shape {shape}")
    num_classes = shape[-1]
    if tuple(np.shape(labels)) != shape[:-1]:
        raise ValueError(f"labels must have shape logits.shape[:-1] = {shape[:-1]}; got {tuple(np.shape(labels))}")
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"labels must be integers (class ids, ignore label); got dtype {jnp.result_type(labels)}")
    if mask is not None:
        if jnp.result_type(mask) != jnp.bool_:
            raise ValueError(f"mask must be boolean (True = labeled); got dtype {jnp.result_type(mask)}")
        try:
            fits = np.broadcast_shapes(np.shape(mask), shape[:-1]) == shape[:-1]
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"mask of shape {np.shape(mask)} does not broadcast to labels of shape "
                             f"{shape[:-1]}")
    if class_weights is not None and tuple(np.shape(class_weights)) != (num_classes,):
        raise ValueError(f"class_weights must have shape [C] = ({num_classes},); got {np.shape(class_weights)}")
    return num_classes


def _check_label_values(labels, num_classes, ignore_label):
    if isinstance(labels, jax.core.Tracer) or np.size(labels) == 0:
        return
    values = np.asarray(labels)
    bad = (values < 0) | (values >= num_classes)
    if ignore_label is not None:
        bad &= values != ignore_label
    if bad.any():
        raise ValueError(f"labels hold {int(values[bad][0])}, outside [0, {num_classes})"
                         + (f" and not the ignore label {ignore_label}" if ignore_label is not None else "")
                         + "; mark unlabeled pixels with ignore_label or mask=False")


def masked_cross_entropy_sum(logits, labels, mask=None, ignore_label: int | None = IGNORE_LABEL,
                             class_weights=None):
    """Summed cross-entropy over labeled pixels, and their number (or total weight).

    Args:
      logits: ``[..., H, W, C]`` unnormalised scores (e.g. ``[N, H, W, C]``).
      labels: ``[..., H, W]`` integer classes; ``ignore_label`` = no label.
      mask: optional boolean, broadcastable to ``labels``: False = unlabeled.
      ignore_label: the "no label" value (default 255), or None.
      class_weights: optional ``[C]`` non-negative per-class weights ``w``.

    Returns:
      ``(loss_sum, count)`` float32 scalars: ``Σ w_y · CE`` and ``Σ w_y`` over
      labeled pixels (``count`` = the number of labeled pixels without weights).

    Labels outside ``[0, C)`` that are not ``ignore_label`` raise on concrete
    input; under ``jax.jit`` they are treated as unlabeled.
    """
    num_classes = _check(logits, labels, mask, class_weights)
    _check_label_values(labels, num_classes, ignore_label)
    return _ce_sum(logits, labels, mask, class_weights, None if ignore_label is None else int(ignore_label))


@partial(jax.jit, static_argnames="ignore_label")
def _ce_sum(logits, labels, mask, class_weights, ignore_label):
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    valid = (labels >= 0) & (labels < logits.shape[-1])
    if ignore_label is not None:
        valid &= labels != ignore_label
    if mask is not None:
        valid &= mask
    y = jnp.where(valid, labels, 0).astype(jnp.int32)
    z = jnp.where(valid[..., None], logits, 0.0)  # unlabeled pixels: no value, exactly zero gradient
    ce = jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[..., None], axis=-1)[..., 0]
    w = valid.astype(z.dtype)
    if class_weights is not None:
        w = w * jnp.asarray(class_weights, z.dtype)[y]
    return jnp.sum(jnp.where(valid, w * ce, 0.0)), jnp.sum(w)


def masked_cross_entropy(logits, labels, mask=None, ignore_label: int | None = IGNORE_LABEL, class_weights=None):
    """Mean cross-entropy over labeled pixels (module docstring); 0 when none is labeled.

    ``[..., H, W, C], [..., H, W] -> []`` float32; arguments as
    :func:`masked_cross_entropy_sum`.
    """
    return _safe_mean(*masked_cross_entropy_sum(logits, labels, mask, ignore_label, class_weights))


@jax.jit
def _safe_mean(total, count):
    return jnp.where(count > 0, total / jnp.where(count > 0, count, 1.0), 0.0)
