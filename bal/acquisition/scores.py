"""Pointwise acquisition scores: ``log_probs [S, N, C] -> scores [N]``.

Every score is *higher = more informative* (more uncertain), non-negative, a
pure jittable function of the per-sample log-probabilities
``log_probs[s, n, c] = log p(y = c | x_n, θ_s)``, and NaN-free when a
probability is exactly 0 or 1 (``log_probs`` may hold ``-inf``): the terms
``p log p`` are evaluated as ``p * where(p > 0, log p, 0)``.

Because each item's score depends on that item alone, scores can be computed
chunk by chunk over a large pool (see :mod:`bal.acquisition.streaming`).

Notation: ``p_s = p(y | x, θ_s)``, ``p̄ = mean_s p_s`` (the Monte Carlo
posterior predictive), ``H[p] = -Σ_c p_c log p_c`` (nats).

- ``entropy``          H[p̄]                                  (max entropy; Shannon 1948)
- ``bald``             H[p̄] − mean_s H[p_s]                  (Houlsby et al. 2011; Gal et al. 2017)
- ``variation_ratios`` 1 − (#samples voting the modal class) / S   (Freeman 1965; Gal et al. 2017)
- ``mean_std``         mean_c sqrt(E_s[p_c²] − E_s[p_c]²)    (Kampffmeyer et al. 2016; Kendall et al. 2017)
- ``margin``           1 − (p̄₍₁₎ − p̄₍₂₎)                      (Scheffer et al. 2001; smallest gap = top score)
- ``least_confidence`` 1 − max_c p̄_c                          (Settles 2009)
- ``random_scores``    u_n ~ U[0, 1), i.i.d. per (key, global index)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bal.acquisition._ops import max_over_classes, plogp, safe_log, sum_over_classes, sum_over_samples
from bal.acquisition._validation import check_log_probs

__all__ = [
    "entropy",
    "bald",
    "mutual_information",
    "variation_ratios",
    "mean_std",
    "margin",
    "least_confidence",
    "random_scores",
    "conditional_entropy",
    "SCORES",
]


# ----------------------------------------------------------------------------- jitted cores
# Sample-axis sums and class-axis reductions go through bal.acquisition._ops (fast on XLA:CPU).
def _mean_probs(log_probs):
    """``p̄ = mean_s exp(log_probs[s])``, ``[S, N, C] -> [N, C]``."""
    return sum_over_samples(jnp.exp, log_probs) / log_probs.shape[0]


def _entropy_of_probs(p):
    """``H[p] = -Σ_c p_c log p_c`` over the last axis; safe at p = 0."""
    return -sum_over_classes(plogp(p, safe_log(p)))


def _expected_entropy(log_probs):
    """``mean_s H[p_s]`` — the expected (aleatoric) entropy, ``[S, N, C] -> [N]``."""
    mean_plogp = sum_over_samples(lambda lp: plogp(jnp.exp(lp), lp), log_probs) / log_probs.shape[0]
    return -sum_over_classes(mean_plogp)


@jax.jit
def _entropy(log_probs):
    return _entropy_of_probs(_mean_probs(log_probs))


@jax.jit
def _conditional_entropy(log_probs):
    return _expected_entropy(log_probs)


def _bald_parts(log_probs):
    """(BALD ``[N]``, expected entropy ``[N]``) in one pass."""
    s = log_probs.shape[0]
    p_bar = sum_over_samples(jnp.exp, log_probs) / s
    mean_plogp = sum_over_samples(lambda lp: plogp(jnp.exp(lp), lp), log_probs) / s
    expected_h = -sum_over_classes(mean_plogp)
    # H[p̄] − mean_s H[p_s] = Σ_c (mean_s p log p − p̄ log p̄), one class-sum
    return sum_over_classes(mean_plogp - plogp(p_bar, safe_log(p_bar))), expected_h


@jax.jit
def _bald(log_probs):
    return _bald_parts(log_probs)[0]


@jax.jit
def _variation_ratios(log_probs):
    s, _, c = log_probs.shape
    votes = sum_over_samples(lambda lp: jax.nn.one_hot(jnp.argmax(lp, axis=-1), c, dtype=log_probs.dtype),
                             log_probs)  # [N, C] vote counts (exact small integers in float)
    return 1.0 - max_over_classes(votes) / s


@jax.jit
def _mean_std(log_probs):
    s = log_probs.shape[0]
    mean = _mean_probs(log_probs)
    var = sum_over_samples(lambda lp: jnp.square(jnp.exp(lp) - mean), log_probs) / s  # two-pass, never < 0
    return sum_over_classes(jnp.sqrt(var)) / log_probs.shape[-1]


@jax.jit
def _margin(log_probs):
    top2, _ = jax.lax.top_k(_mean_probs(log_probs), 2)
    return 1.0 - (top2[..., 0] - top2[..., 1])


@jax.jit
def _least_confidence(log_probs):
    return 1.0 - max_over_classes(_mean_probs(log_probs))


def _random_scores(key, n: int, offset=0):
    idx = jnp.arange(n, dtype=jnp.uint32) + jnp.asarray(offset, jnp.uint32)
    return jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(idx)


_random_scores_jit = jax.jit(_random_scores, static_argnums=1)


# ----------------------------------------------------------------------------- public API
def entropy(log_probs, *, validate: bool = True):
    """Predictive (max-)entropy, ``H[p̄] = -Σ_c p̄_c log p̄_c`` with ``p̄ = mean_s p_s``.

    Args:
      log_probs: ``[S, N, C]`` per-sample log-probabilities.
      validate: check on concrete inputs that rows normalise (see
        :func:`bal.acquisition._validation.check_log_probs`); rank checks always run.

    Returns:
      ``[N]`` entropies in nats, in ``[0, log C]``.
    """
    return _entropy(check_log_probs(log_probs, check_values=validate))


def conditional_entropy(log_probs, *, validate: bool = True):
    """Expected entropy ``mean_s H[p_s]`` (the aleatoric part of BALD), ``[S, N, C] -> [N]``."""
    return _conditional_entropy(check_log_probs(log_probs, check_values=validate))


def bald(log_probs, *, validate: bool = True):
    """BALD, the mutual information ``I[y; θ | x] = H[p̄] − mean_s H[p_s]``.

    Houlsby et al. 2011, "Bayesian Active Learning for Classification and
    Preference Learning"; Gal, Islam & Ghahramani 2017, "Deep Bayesian Active
    Learning with Image Data".

    Args:
      log_probs: ``[S, N, C]`` per-sample log-probabilities.

    Returns:
      ``[N]`` mutual information in nats, in ``[0, log C]`` up to float rounding
      (values of order ``-1e-7`` can occur when all samples agree).
    """
    return _bald(check_log_probs(log_probs, check_values=validate))


mutual_information = bald


def variation_ratios(log_probs, *, validate: bool = True):
    """Variation ratio ``1 − f_mode / S`` where ``f_mode`` counts the samples whose argmax is the modal class.

    Freeman 1965, "Elementary Applied Statistics"; used for MC dropout by Gal
    2016 (thesis, §3.3.1) and Gal et al. 2017. (Gal et al. 2017 write it as
    ``1 − max_y p(y|x)``; the mode-frequency form here is Freeman's and is
    distinct from :func:`least_confidence`.) Ties in a sample's argmax go to
    the lowest class index.

    Returns:
      ``[N]`` values in ``{0, 1/S, ..., 1 − 1/S}``.
    """
    return _variation_ratios(check_log_probs(log_probs, check_values=validate))


def mean_std(log_probs, *, validate: bool = True):
    """Mean standard deviation ``mean_c sqrt(E_s[p_c²] − E_s[p_c]²)`` across posterior samples.

    Kampffmeyer, Salberg & Jenssen 2016; Kendall, Badrinarayanan & Cipolla 2017
    (Bayesian SegNet). ``[S, N, C] -> [N]``, values in ``[0, 0.5]``.
    """
    return _mean_std(check_log_probs(log_probs, check_values=validate))


def margin(log_probs, *, validate: bool = True):
    """Margin score ``1 − (p̄₍₁₎ − p̄₍₂₎)``: one minus the gap between the two largest mean probabilities.

    Scheffer, Decomain & Wrobel 2001. The smallest margin gets the largest
    score, so top-k picks the items closest to the decision boundary.
    ``[S, N, C] -> [N]``, values in ``[0, 1]``.
    """
    return _margin(check_log_probs(log_probs, check_values=validate))


def least_confidence(log_probs, *, validate: bool = True):
    """Least confidence ``1 − max_c p̄_c`` (Settles 2009). ``[S, N, C] -> [N]``, values in ``[0, 1 − 1/C]``."""
    return _least_confidence(check_log_probs(log_probs, check_values=validate))


def random_scores(key, log_probs, *, offset=0, validate: bool = True):
    """Uniform random scores ``u_n ~ U[0, 1)``, one per pool item.

    Item ``n`` of a chunk gets ``uniform(fold_in(key, offset + n))``, so the
    score depends only on the key and the item's *global* index: scoring a
    pool chunk by chunk (with each chunk's ``offset``) gives exactly the
    scores of the whole pool, and the top-k of random scores is a uniformly
    random k-subset.

    Args:
      key: a PRNG key.
      log_probs: ``[S, N, C]``; only ``N`` is used.
      offset: global index of the chunk's first item.

    Returns:
      ``[N]`` float32 scores.
    """
    log_probs = check_log_probs(log_probs, check_values=validate)
    return _random_scores_jit(key, log_probs.shape[1], offset)


#: Deterministic pointwise scores by name (``[S, N, C] -> [N]``, higher = more informative).
SCORES = {
    "entropy": entropy,
    "bald": bald,
    "variation_ratios": variation_ratios,
    "mean_std": mean_std,
    "margin": margin,
    "least_confidence": least_confidence,
}

#: The jitted cores behind :data:`SCORES` (no validation), for internal composition.
_CORES = {
    "entropy": _entropy,
    "bald": _bald,
    "variation_ratios": _variation_ratios,
    "mean_std": _mean_std,
    "margin": _margin,
    "least_confidence": _least_confidence,
}
