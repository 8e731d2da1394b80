"""Dense (per-pixel) acquisition: pixel scores, their reduction to image scores, class targeting.

Semantic segmentation predicts a class distribution for every pixel, so a
posterior gives ``log_probs [S, N, H, W, C]`` (samples, images, rows,
columns, classes). Each pixel is a classification problem of its own, so the
pointwise scores of :mod:`bal.acquisition.scores` apply pixel by pixel
(:func:`pixel_scores`); an image — or a crop of it, see
:mod:`bal.acquisition.regions` — is then ranked by a reduction of its pixel
scores (:func:`reduce_pixels`). Pixel-wise uncertainty maps reduced to one
number per image follow Kendall, Badrinarayanan & Cipolla 2017 (Bayesian
SegNet) and, for ensembles, Chitta, Alvarez & Lesnikowski 2018 ("Large-Scale
Visual Active Learning with Deep Probabilistic Ensembles", BDD100k
segmentation).

Reductions (over the last two axes, ``[..., H, W] -> [...]``, counting only
pixels where ``mask`` is True; ``m`` = number of such pixels):

- ``mean``      (1/m) Σ u
- ``sum``       Σ u (favours images with many unlabeled pixels)
- ``max``       max u
- ``quantile``  the q-quantile of the m scores with linear interpolation
  between order statistics (numpy's default ``method="linear"``, type 7 of
  Hyndman & Fan 1996): with the scores sorted ascending ``u₍₀₎ <= ... <=
  u₍ₘ₋₁₎``, ``h = (m − 1) q``, value ``u₍⌊h⌋₎ + (h − ⌊h⌋)(u₍⌈h⌉₎ − u₍⌊h⌋₎)``.
  ``q = 1`` is the max, ``q = 0.5`` the median.
- ``top_mean``  the mean of the ``k = max(1, ⌈(1 − q) m⌉)`` largest scores —
  the upper-tail mean (the discrete superquantile / conditional value at risk
  of Rockafellar & Uryasev 2000). Unlike the quantile it uses every score in
  the tail, so it is less sensitive to a single pixel; ``q = 0`` is the mean
  and ``q = 1`` the max. (``(1 − q) m`` is rounded up after shrinking it by a
  relative 1e-6, so float error in ``1 − q`` never adds a pixel.)

An image with no unmasked pixel (fully labeled, or all ignore pixels) gets
NaN for every reduction: the selection rules of :mod:`bal.acquisition`
never prefer NaN (``ranking_keys`` maps it to ``-inf``), so such an image is
never acquired ahead of one with something left to label.

Memory: :func:`pixel_scores` reshapes ``[S, N, H, W, C]`` to
``[S, N·H·W, C]`` (free) and runs the classification score on it, so it
holds one float32 copy of the input at most; callers stream chunks of
images (``bal.predict`` reduces every pool chunk on the device).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bal.acquisition._ops import _HI, sum_over_samples
from bal.acquisition._validation import check_log_probs, is_tracer
from bal.acquisition.grammar import SCORE_ALIASES as _SCORE_ALIASES
from bal.acquisition.scores import SCORES

__all__ = ["REDUCTIONS", "pixel_scores", "reduce_pixels", "target_mass", "class_targeted"]

#: Names accepted by :func:`reduce_pixels` (and :func:`bal.acquisition.regions.region_scores`).
REDUCTIONS = ("mean", "sum", "max", "quantile", "top_mean")


# ----------------------------------------------------------------------------- pixel scores
def _resolve_score(score) -> str:
    key = score.strip().lower().replace("-", "_") if isinstance(score, str) else None
    if key not in _SCORE_ALIASES:
        raise ValueError(f"unknown pixel score {score!r}; valid scores: {sorted(SCORES)} "
                         f"(aliases: {sorted(set(_SCORE_ALIASES) - set(SCORES))}). For random acquisition "
                         "rank images or crops with bal.acquisition.random_k instead")
    return _SCORE_ALIASES[key]


def _check_dense_log_probs(log_probs, check_values: bool):
    """Validate ``[S, N, *spatial, C]`` log-probabilities; returns (flat ``[S, P, C]``, the original shape)."""
    shape = tuple(np.shape(log_probs))
    if len(shape) < 3:
        raise ValueError(f"log_probs must have shape [S, N, H, W, C] (samples, images, rows, columns, "
                         f"classes); got shape {shape}")
    if math.prod(shape[1:-1]) == 0:
        raise ValueError(f"log_probs has no pixels (shape {shape}); there is nothing to score")
    flat = jnp.reshape(jnp.asarray(log_probs), (shape[0], -1, shape[-1]))
    return check_log_probs(flat, check_values=check_values), shape


def pixel_scores(log_probs, score: str = "bald", *, validate: bool = True):
    """A pointwise acquisition score for every pixel.

    Reshapes ``[S, N, H, W, C] -> [S, N·H·W, C]``, applies the classification
    score of :data:`bal.acquisition.scores.SCORES` and reshapes back, so pixel
    ``(n, i, j)`` gets exactly the score its own ``[S, 1, C]`` slice would.

    Args:
      log_probs: ``[S, N, H, W, C]`` per-sample log-probabilities (any
        ``[S, N, *spatial, C]`` works: volumes, or ``[S, N, C]`` itself).
      score: ``"bald"``, ``"entropy"``, ``"margin"``, ``"variation_ratios"``,
        ``"mean_std"``, ``"least_confidence"`` (or an alias such as
        ``"mutual_information"``); higher = more informative.
      validate: check on concrete inputs that every pixel's row normalises
        (one extra pass; rank checks always run).

    Returns:
      ``[N, H, W]`` (``log_probs.shape[1:-1]``) scores.

    Raises:
      ValueError: unknown score, wrong rank, no pixels, or rows that do not normalise.
    """
    name = _resolve_score(score)
    flat, shape = _check_dense_log_probs(log_probs, validate)
    return jnp.reshape(SCORES[name](flat, validate=False), shape[1:-1])


# ----------------------------------------------------------------------------- reductions
def check_reduction(how) -> str:
    """``how`` if it names a reduction, else a ``ValueError`` listing them."""
    if how not in REDUCTIONS:
        raise ValueError(f"unknown pixel reduction {how!r}; valid reductions: {list(REDUCTIONS)}")
    return how


def check_q(q, how: str):
    """A quantile level ``0 <= q <= 1`` (checked when concrete)."""
    if how in ("quantile", "top_mean") and not is_tracer(q):
        if isinstance(q, bool) or (not isinstance(q, numbers.Real) and np.ndim(q) != 0):
            raise ValueError(f"q must be a number in [0, 1]; got {q!r}")
        if not 0.0 <= float(q) <= 1.0:
            raise ValueError(f"q must lie in [0, 1] (0.9 = the top 10% of pixels); got {q!r}")
    return q


def _broadcast_mask(mask, shape, what: str = "pixel_scores"):
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be a boolean array (True = pixel counts); got dtype {mask.dtype}")
    try:
        return jnp.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to {what} of shape "
                         f"{tuple(shape)}; pass a [..., H, W] (or [H, W]) boolean mask") from None


@partial(jax.jit, static_argnames="how")
def _reduce(u, valid, q, how: str):
    """Reduce the trailing axis of ``u [..., P]`` over ``valid [..., P]``."""
    u = u.astype(jnp.promote_types(u.dtype, jnp.float32))
    m = jnp.sum(valid, axis=-1)
    empty = m == 0
    nan = jnp.asarray(jnp.nan, u.dtype)
    if how == "sum":
        out = jnp.sum(jnp.where(valid, u, 0), axis=-1)
    elif how == "mean":
        out = jnp.sum(jnp.where(valid, u, 0), axis=-1) / jnp.maximum(m, 1)
    elif how == "max":
        out = jnp.max(jnp.where(valid, u, -jnp.inf), axis=-1)
    else:
        # invalid pixels sorted past the valid ones (ascending: +inf at the end)
        asc = jnp.sort(jnp.where(valid, u, jnp.inf), axis=-1)
        mf = m.astype(u.dtype)
        if how == "quantile":
            h = (jnp.maximum(mf, 1) - 1) * q
            lo = jnp.floor(h)
            lo_i = lo.astype(jnp.int32)[..., None]
            hi_i = jnp.ceil(h).astype(jnp.int32)[..., None]
            v_lo = jnp.take_along_axis(asc, lo_i, axis=-1)[..., 0]
            v_hi = jnp.take_along_axis(asc, hi_i, axis=-1)[..., 0]
            out = v_lo + (h - lo) * (v_hi - v_lo)
        else:  # top_mean: the k largest valid scores are asc[m - k : m]
            # (1 - q) m rounded up; the relative 1e-6 keeps float error in 1 - q from adding a pixel
            k = jnp.maximum(jnp.ceil((1 - q) * mf * (1 - 1e-6)), 1).astype(jnp.int32)
            pos = jnp.arange(u.shape[-1])
            in_top = (pos >= (m - k)[..., None]) & (pos < m[..., None])
            out = jnp.sum(jnp.where(in_top, asc, 0), axis=-1) / k
    return jnp.where(empty, nan, out)


def reduce_pixels(pixel_scores, how: str = "mean", *, q=0.9, mask=None):
    """Reduce pixel scores to one score per image: ``[..., H, W] -> [...]``.

    Args:
      pixel_scores: ``[N, H, W]`` (any ``[..., H, W]``) scores, e.g. from :func:`pixel_scores`.
      how: ``"mean"``, ``"sum"``, ``"max"``, ``"quantile"`` or ``"top_mean"``
        (formulas in the module docstring).
      q: level in ``[0, 1]`` of ``"quantile"`` (the q-quantile, linear
        interpolation) and ``"top_mean"`` (mean of the top ``1 − q``
        fraction); ignored by the others.
      mask: optional boolean ``[..., H, W]`` (or anything broadcastable, e.g.
        ``[H, W]``): True = the pixel counts. Use it to leave out pixels
        already labeled or carrying the ignore label.

    Returns:
      ``[...]`` float scores; NaN where no pixel is unmasked (never selected).

    Raises:
      ValueError: unknown reduction (listing the valid ones), ``q`` outside
        ``[0, 1]``, rank below 2, or a mask of the wrong shape / dtype.
    """
    check_reduction(how)
    check_q(q, how)
    u = jnp.asarray(pixel_scores)
    if u.ndim < 2:
        raise ValueError(f"pixel_scores must have shape [..., H, W] (e.g. [N, H, W]); got shape {tuple(u.shape)}")
    if not jnp.issubdtype(u.dtype, jnp.floating):
        u = u.astype(jnp.float32)
    mask = _broadcast_mask(mask, u.shape)
    lead = u.shape[:-2]
    flat = jnp.reshape(u, lead + (-1,))
    valid = jnp.ones(flat.shape, bool) if mask is None else jnp.reshape(mask, flat.shape)
    return _reduce(flat, valid, jnp.asarray(q, jnp.float32), how)


# ----------------------------------------------------------------------------- class targeting
def _class_indicator(classes, num_classes: int) -> np.ndarray:
    if isinstance(classes, (numbers.Integral, np.integer)) and not isinstance(classes, bool):
        classes = [classes]
    try:
        ids = [c for c in classes]
    except TypeError:
        raise ValueError(f"classes must be a sequence of class ids; got {classes!r}") from None
    if not ids:
        raise ValueError("classes is empty; name at least one target class id")
    out = np.zeros(num_classes, np.float32)
    for c in ids:
        if isinstance(c, bool) or not isinstance(c, (numbers.Integral, np.integer)):
            raise ValueError(f"class ids must be integers; got {c!r} in {list(ids)}")
        if not 0 <= int(c) < num_classes:
            raise ValueError(f"class id {int(c)} is out of range: log_probs has C = {num_classes} classes, "
                             f"so ids must lie in [0, {num_classes - 1}]")
        if out[int(c)]:
            raise ValueError(f"class id {int(c)} is listed twice in classes {list(ids)}")
        out[int(c)] = 1.0
    return out


@jax.jit
def _target_mass(flat, indicator):
    p_bar = sum_over_samples(jnp.exp, flat) / flat.shape[0]
    return jnp.clip(jnp.dot(p_bar, indicator, precision=_HI), 0.0, 1.0)


def target_mass(log_probs, classes: Sequence[int], *, validate: bool = True):
    """Predictive probability that a pixel belongs to one of ``classes``.

    ``w = Σ_{c ∈ T} p̄_c`` with ``p̄ = mean_s exp(log_probs[s])``.

    Args:
      log_probs: ``[S, N, H, W, C]`` per-sample log-probabilities.
      classes: the target class ids ``T`` (distinct integers in ``[0, C)``).

    Returns:
      ``[N, H, W]`` values in ``[0, 1]``.
    """
    flat, shape = _check_dense_log_probs(log_probs, validate)
    indicator = jnp.asarray(_class_indicator(classes, shape[-1]), flat.dtype)
    return jnp.reshape(_target_mass(flat, indicator), shape[1:-1])


def class_targeted(pixel_scores, log_probs, classes: Sequence[int], *, strength=1.0, validate: bool = True):
    """Pixel uncertainty focused on pixels predicted to belong to chosen classes.

    ``score = u · ((1 − λ) + λ · w)``, with ``u`` the pixel score,
    ``w = Σ_{c ∈ T} p̄(c | x, pixel)`` the predictive (sample-mean)
    probability of the target classes ``T`` (:func:`target_mass`) and
    ``λ = strength``. ``λ = 1`` (default) gives ``u · w``: uncertainty counts
    only in proportion to the belief that the pixel shows a target class;
    ``λ = 0`` gives ``u`` back; values between keep some weight on the rest
    of the image. Reduce the result with :func:`reduce_pixels` or per crop
    with :func:`bal.acquisition.regions.region_scores` as usual.

    This is a heuristic for class-targeted acquisition — spending the labeling
    budget on rare, safety-relevant classes (lane markings, pedestrians,
    lesions) — as explored for driving-scene segmentation with ensembles
    (Chitta et al. 2018, BDD100k). It is *not* an information-theoretic
    target: for the expected information gain about predictions on a target
    input distribution see EPIG (Bickford Smith, Kirsch, Farquhar, Gal,
    Foster & Rainforth 2023, "Prediction-Oriented Bayesian Active Learning").

    Args:
      pixel_scores: ``[N, H, W]`` pixel scores ``u >= 0`` (:func:`pixel_scores`).
      log_probs: ``[S, N, H, W, C]`` the log-probabilities they came from.
      classes: target class ids (distinct integers in ``[0, C)``).
      strength: ``λ`` in ``[0, 1]``.
      validate: check that ``log_probs`` normalise (concrete inputs).

    Returns:
      ``[N, H, W]`` targeted scores.

    Raises:
      ValueError: class ids out of range, repeated or empty; ``strength``
        outside ``[0, 1]``; shapes that disagree.
    """
    if not is_tracer(strength) and (isinstance(strength, bool) or not isinstance(strength, numbers.Real)
                                    or not 0.0 <= strength <= 1.0):
        raise ValueError(f"strength (λ) must be a number in [0, 1] (1 = pure u·w, 0 = no targeting); "
                         f"got {strength!r}")
    u = jnp.asarray(pixel_scores)
    lp_shape = tuple(np.shape(log_probs))
    if len(lp_shape) >= 3 and tuple(u.shape) != lp_shape[1:-1]:
        raise ValueError(f"pixel_scores has shape {tuple(u.shape)} but log_probs {lp_shape} gives pixels "
                         f"{lp_shape[1:-1]}; pass the scores computed from these log_probs")
    w = target_mass(log_probs, classes, validate=validate)
    return u * ((1.0 - strength) + strength * w)
