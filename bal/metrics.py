"""Evaluation metrics of a posterior predictive.

All functions take the *predictive* log-probabilities ``log_probs: [N, C]``
(already averaged over posterior samples, see :func:`predictive_log_probs`)
and integer ``labels: [N]``, and return scalars. They are pure jax functions,
jittable, and NaN-free when a probability is exactly 0 or 1.

- accuracy: mean of ``argmax_c p(c|x) == y``;
- negative log-likelihood: ``-mean log p(y|x)``;
- Brier score: ``mean_n sum_c (p(c|x_n) - 1[c = y_n])^2`` (Brier 1950; in [0, 2]);
- expected calibration error: ``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|`` over
  equal-width confidence bins (Naeini et al. 2015; Guo et al. 2017).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "predictive_log_probs",
    "accuracy",
    "nll",
    "brier",
    "ece",
    "evaluate",
]


def predictive_log_probs(log_probs: jax.Array) -> jax.Array:
    """Log of the posterior predictive, ``log mean_s p(y | x, θ_s)``.

    Args:
      log_probs: ``[S, N, C]`` per-sample log-probabilities.

    Returns:
      ``[N, C]`` log-probabilities of the Monte Carlo predictive.
    """
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must have shape [S, N, C]; got shape {log_probs.shape}")
    return jax.nn.logsumexp(log_probs, axis=0) - jnp.log(log_probs.shape[0])


def _check(log_probs, labels):
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must have shape [N, C]; got shape {log_probs.shape}")
    if labels.shape != log_probs.shape[:1]:
        raise ValueError(
            f"labels must have shape [N] = [{log_probs.shape[0]}]; got shape {labels.shape}"
        )


def accuracy(log_probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of items whose most probable class is the label. ``[N, C], [N] -> []``."""
    _check(log_probs, labels)
    return jnp.mean(jnp.argmax(log_probs, axis=-1) == labels)


def nll(log_probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean negative log-likelihood ``-mean_n log p(y_n|x_n)``. ``[N, C], [N] -> []``."""
    _check(log_probs, labels)
    picked = jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return -jnp.mean(picked)


def brier(log_probs: jax.Array, labels: jax.Array) -> jax.Array:
    """Brier score ``mean_n sum_c (p_nc - onehot_nc)^2``. ``[N, C], [N] -> []``."""
    _check(log_probs, labels)
    probs = jnp.exp(log_probs)
    onehot = jax.nn.one_hot(labels, log_probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum((probs - onehot) ** 2, axis=-1))


def ece(log_probs: jax.Array, labels: jax.Array, num_bins: int = 15) -> jax.Array:
    """Expected calibration error over ``num_bins`` equal-width confidence bins.

    Confidence is the top predictive probability; bin ``b`` holds items with
    confidence in ``(b/B, (b+1)/B]`` (the first bin also holds 0).
    ``[N, C], [N] -> []``.
    """
    _check(log_probs, labels)
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1; got {num_bins}")
    confidence = jnp.exp(jnp.max(log_probs, axis=-1))
    correct = (jnp.argmax(log_probs, axis=-1) == labels).astype(confidence.dtype)
    bins = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
    conf_sum = jnp.zeros(num_bins).at[bins].add(confidence)
    correct_sum = jnp.zeros(num_bins).at[bins].add(correct)
    return jnp.sum(jnp.abs(correct_sum - conf_sum)) / labels.shape[0]


def evaluate(log_probs, labels, num_bins: int = 15) -> dict[str, float]:
    """All metrics as Python floats: ``{"accuracy", "nll", "brier", "ece"}``.

    Args:
      log_probs: ``[N, C]`` predictive log-probabilities, or ``[S, N, C]``
        per-sample ones (averaged with :func:`predictive_log_probs` first).
      labels: ``[N]`` integer labels in ``[0, C)``.
    """
    log_probs = jnp.asarray(log_probs)
    labels_np = np.asarray(labels)
    if log_probs.ndim == 3:
        log_probs = predictive_log_probs(log_probs)
    _check(log_probs, labels_np)
    num_classes = log_probs.shape[-1]
    if labels_np.size and (labels_np.min() < 0 or labels_np.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}); got values in "
            f"[{labels_np.min()}, {labels_np.max()}]"
        )
    labels = jnp.asarray(labels_np)
    return {
        "accuracy": float(accuracy(log_probs, labels)),
        "nll": float(nll(log_probs, labels)),
        "brier": float(brier(log_probs, labels)),
        "ece": float(ece(log_probs, labels, num_bins)),
    }
