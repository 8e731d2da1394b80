"""Checks at the API edge of :mod:`bal.acquisition`.

Shapes are static under ``jax.jit``, so rank / size / ``k`` checks always run
(also while tracing). Checks that need *values* — the log-probabilities
normalise over classes and contain no NaN / +inf — run only on concrete
arrays; on tracers (inside a user's ``jax.jit``) they are skipped, because a
traced function cannot raise on data. Jitted internals assume valid input.
"""

from __future__ import annotations

import math
import operator

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["is_tracer", "check_log_probs", "check_k", "check_embeddings", "static_int", "NORMALISATION_ATOL",
           "normalisation_atol"]

#: Largest accepted ``|Σ_c exp(log_probs[s, n, c]) − 1|`` for float32 / float64 input (a 0.1% error in
#: the total mass); lower-precision input gets :func:`normalisation_atol`'s larger, dtype-scaled bound.
NORMALISATION_ATOL = 1e-3


def normalisation_atol(dtype, num_classes: int) -> float:
    """Largest accepted ``|Σ_c exp(log_probs) − 1|`` for log-probabilities stored in ``dtype``.

    ``max(NORMALISATION_ATOL, eps · (1 + 1.5 · ln C))`` with ``eps`` the
    machine epsilon of ``dtype``: a log-softmax computed and stored in
    ``dtype`` carries a rounding error of up to ``|log p_c| · eps / 2`` per
    entry (and as much again in the shift by the log-sum-exp), which moves the
    total mass by about ``eps · H`` with ``H <= ln C`` the entropy; ``1.5 ln C``
    bounds the worst case, at least twice the largest error measured on
    genuine ``jax.nn.log_softmax`` outputs (CPU, C = 2 .. 10⁴). float32 / float64
    keep ``NORMALISATION_ATOL``; bfloat16 accepts 0.024 at C = 4, 0.035 at
    C = 10 and 0.089 at C = 1000, float16 0.003 / 0.004 / 0.011: still far
    below the error of logits or probabilities passed by mistake, and below
    that of log-probabilities shifted by 0.1 (mass ×1.105) up to C ≈ 2000.
    """
    eps = float(jnp.finfo(dtype).eps)
    return max(NORMALISATION_ATOL, eps * (1.0 + 1.5 * math.log(max(int(num_classes), 1))))


def is_tracer(x) -> bool:
    """True when ``x`` is an abstract value inside a jax transformation."""
    return isinstance(x, jax.core.Tracer)


@jax.jit
def _row_totals(log_probs):
    return jnp.sum(jnp.exp(log_probs), axis=-1)


@jax.jit
def _totals_stats(total):
    finite = jnp.isfinite(total)  # NaN or +inf anywhere in a row makes its total non-finite
    return ~jnp.all(finite), jnp.max(jnp.where(finite, jnp.abs(total - 1.0), 0.0))


def _normalisation_stats(log_probs):
    """(any row non-finite, max_rows |Σ_c p − 1|).

    Two jitted calls on purpose: fused into one, XLA:CPU evaluates the
    exponentials unvectorised inside the reduction (~10x slower).
    """
    return _totals_stats(_row_totals(log_probs))


def _to_float_array(x, name: str):
    """``(x as a jax float array of at least float32, the dtype x came in)``."""
    if x is None:
        raise ValueError(f"{name} is required; got None")
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating-point array; got dtype {x.dtype}")
    x = jnp.asarray(x)
    dtype = x.dtype
    if dtype in (jnp.float16, jnp.bfloat16):
        x = x.astype(jnp.float32)  # every score is computed in at least float32
    return x, dtype


def _as_float_array(x, name: str):
    return _to_float_array(x, name)[0]


def check_log_probs(log_probs, *, ndim: int | tuple[int, ...] = 3, check_values: bool = True,
                    min_classes: int = 2, name: str = "log_probs"):
    """Validate log-probabilities and return them as a float jax array.

    Args:
      log_probs: ``[S, N, C]`` (or ``[N, C]`` where ``ndim`` allows it)
        log-probabilities, ``log p(y = c | x_n, θ_s)``; ``-inf`` is allowed.
      ndim: accepted rank(s).
      check_values: also verify, on concrete arrays, that there is no NaN /
        +inf and that every row normalises: ``|Σ_c p − 1| <= 1e-3`` for
        float32 / float64 input, a bound scaled with the input dtype's
        precision for float16 / bfloat16 (:func:`normalisation_atol`).
        Skipped (documented) for tracers.
      min_classes: smallest accepted ``C``.

    Raises:
      ValueError: naming the problem and the expected layout.
    """
    log_probs, in_dtype = _to_float_array(log_probs, name)
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    layout = " or ".join({3: "[S, N, C] (samples, pool items, classes)", 2: "[N, C]"}[r] for r in ranks)
    if log_probs.ndim not in ranks:
        raise ValueError(f"{name} must have rank {' or '.join(map(str, ranks))}, i.e. {layout}; "
                         f"got shape {tuple(log_probs.shape)}")
    shape = tuple(log_probs.shape)
    if log_probs.ndim == 3 and shape[0] < 1:
        raise ValueError(f"{name} needs at least one posterior sample (S >= 1); got shape {shape}")
    if shape[-2] < 1:
        raise ValueError(f"the pool is empty: {name} has N = 0 items (shape {shape}); "
                         "there is nothing to acquire")
    if shape[-1] < min_classes:
        raise ValueError(f"{name} needs at least {min_classes} classes (C >= {min_classes}); "
                         f"got shape {shape}")
    if check_values and not is_tracer(log_probs):
        has_bad, err = _normalisation_stats(log_probs)
        has_bad, err = bool(has_bad), float(err)
        if has_bad:
            raise ValueError(f"{name} contains NaN or +inf; log-probabilities must be finite or -inf "
                             "(p = 0). Pass log_softmax(logits), not raw logits or probabilities")
        atol = normalisation_atol(in_dtype, shape[-1])
        if not err <= atol:
            raise ValueError(f"{name} do not normalise over the class axis: "
                             f"max |Σ_c exp(log_probs) − 1| = {err:.3g} > {atol:.3g} "
                             f"(the tolerance for {jnp.dtype(in_dtype).name} input, C = {shape[-1]}). "
                             "Pass log-probabilities (e.g. jax.nn.log_softmax(logits, axis=-1)), "
                             "not logits or probabilities")
    return log_probs


def check_scores(scores):
    """Scores ``[N]`` of a non-empty pool, as a floating-point array."""
    scores = jnp.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must have shape [N]; got shape {tuple(scores.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("the pool is empty: scores has N = 0 items; there is nothing to select")
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.float32)
    return scores


def check_k(k, n: int, *, name: str = "k") -> int:
    """Validate an acquisition size ``1 <= k <= n`` (a static Python integer)."""
    if isinstance(k, bool) or is_tracer(k):
        raise ValueError(f"{name} must be a static Python int (it fixes output shapes); got {k!r}")
    try:
        k_int = operator.index(k)
    except TypeError:
        raise ValueError(f"{name} must be an integer; got {k!r}") from None
    if k_int < 1:
        raise ValueError(f"{name} must be >= 1; got {k_int}")
    if k_int > n:
        raise ValueError(f"acquisition size {name} = {k_int} is larger than the pool (N = {n}); "
                         f"use {name} <= {n}")
    return k_int


def check_embeddings(embeddings, n: int | None, *, name: str = "embeddings", allow_empty: bool = False):
    """Validate ``[N, D]`` embeddings (``N`` must match the pool when given)."""
    emb = _as_float_array(embeddings, name)
    if emb.ndim != 2:
        raise ValueError(f"{name} must have shape [N, D]; got shape {tuple(emb.shape)}")
    if n is not None and emb.shape[0] != n:
        raise ValueError(f"{name} has {emb.shape[0]} rows but the pool has N = {n} items")
    if emb.shape[0] == 0 and not allow_empty:
        raise ValueError(f"the pool is empty: {name} has shape {tuple(emb.shape)}")
    if emb.shape[1] < 1:
        raise ValueError(f"{name} needs at least one feature (D >= 1); got shape {tuple(emb.shape)}")
    if not is_tracer(emb) and emb.size and not bool(jnp.all(jnp.isfinite(emb))):
        raise ValueError(f"{name} contains NaN or inf")
    return emb


def static_int(value, name: str, *, minimum: int = 1) -> int:
    """A static Python integer parameter ``>= minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer; got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {v}")
    return v

