"""Stochastic batch acquisition: sample a batch from a distribution over pointwise scores.

Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal 2023,
"Stochastic Batch Acquisition: A Simple Baseline for Deep Active Learning" (TMLR).

Top-k treats scores as if they stayed fixed while the batch is acquired; the
stochastic variants instead draw the batch *without replacement* from

    softmax:   p(i) ∝ exp(β s_i)
    power:     p(i) ∝ s_i^β          (scores must be >= 0; PowerBALD = power on BALD)
    softrank:  p(i) ∝ r_i^(-β)       (r_i = rank of s_i, 1 = highest)

with coldness ``β >= 0``, via the Gumbel-top-k trick: perturb
``β·log-weight_i + ε_i`` with i.i.d. ``ε_i ~ Gumbel(0, 1)`` and take the top-k
(equivalently ``s_i + ε_i/β`` in the paper's notation). ``β -> ∞`` recovers
top-k; ``β = 0`` is uniform random acquisition.

The noise of item ``i`` is drawn from ``fold_in(key, global index i)``, so the
perturbed scores of the *softmax* and *power* variants are pointwise: a pool
scored chunk by chunk (with offsets) and merged by streaming top-k gives the
same batch. *Softrank* needs the ranks over the whole pool and is not pointwise.

``most_informative=False`` samples the least informative items instead
(weights ``exp(−β s)``, ``s^(−β)``, ``r^β``).

A NaN score says nothing about its item, so NaN items are drawn *last* — only
once every scored item is taken — in every mode, in both directions and at any
coldness (also ``β = 0``): their perturbed key is ``-inf`` and every scored
item's key is at least the lowest finite float (a zero-weight item, e.g. a
``-inf`` softmax score, is drawn after all positive-weight items but still
before any NaN item). Softrank ranks the scored items ``1..M`` among
themselves, as if the NaN items were not in the pool.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from bal.acquisition._validation import check_k, check_scores, is_tracer
from bal.acquisition.selection import ranking_keys

__all__ = ["MODES", "perturbed_scores", "stochastic_select", "softmax_select", "power_select", "softrank_select"]

#: Supported stochastic variants; ``POINTWISE_MODES`` can be streamed chunk by chunk.
MODES = ("softmax", "power", "softrank")
POINTWISE_MODES = ("softmax", "power")


def _gumbel(key, n: int, offset):
    idx = jnp.arange(n, dtype=jnp.uint32) + jnp.asarray(offset, jnp.uint32)
    return jax.vmap(lambda i: jax.random.gumbel(jax.random.fold_in(key, i)))(idx)


def _log_weights(scores, nan, mode: str):
    """Log-weights of the most-informative variant; ``nan`` marks items whose key is overridden later."""
    if mode == "softmax":
        return scores
    if mode == "power":
        # s^β with s clamped to the smallest normal float: zero (or -1e-7 rounding) scores stay sampleable.
        return jnp.log(jnp.maximum(scores, jnp.finfo(scores.dtype).tiny))
    if mode == "softrank":
        # NaN items rank after every scored item (-inf included); ties: lower index ranks first.
        order = jnp.lexsort((-ranking_keys(scores), nan))
        ranks = jnp.zeros(scores.shape, jnp.int32).at[order].set(jnp.arange(1, scores.shape[0] + 1, dtype=jnp.int32))
        return -jnp.log(ranks.astype(scores.dtype))
    raise ValueError(f"unknown stochastic mode {mode!r}; valid modes: {list(MODES)}")


@partial(jax.jit, static_argnames=("mode", "most_informative"))
def _perturbed(key, scores, coldness, offset, *, mode: str, most_informative: bool):
    nan = jnp.isnan(scores)
    scores = jnp.where(nan, -jnp.inf, scores)  # a placeholder: NaN items' keys are set to -inf below
    logw = _log_weights(scores, nan, mode)
    logw = logw if most_informative else -logw
    base = jnp.where(coldness == 0, 0.0, coldness * logw)  # β = 0: uniform, even where log-weight is ±inf
    keys = base + _gumbel(key, scores.shape[0], offset)
    # NaN last in both directions: a sign flip must not turn the NaN placeholder into the top weight.
    # Scored items keep keys >= the lowest finite float, so they all rank strictly above the NaN items.
    return jnp.where(nan, -jnp.inf, jnp.maximum(keys, jnp.finfo(keys.dtype).min))


def _check(scores, coldness, mode):
    scores = check_scores(scores)
    if mode not in MODES:
        raise ValueError(f"unknown stochastic mode {mode!r}; valid modes: {list(MODES)}")
    if not is_tracer(coldness) and not float(coldness) >= 0:
        raise ValueError(f"coldness (β) must be >= 0 (0 = uniform, large = top-k); got {coldness!r}")
    return scores


def perturbed_scores(key, scores, *, mode: str = "power", coldness: float = 1.0, offset=0,
                     most_informative: bool = True):
    """Gumbel-perturbed log-weights ``β·log w_i + ε_i``; their top-k is a stochastic batch.

    Args:
      key: PRNG key.
      scores: ``[n]`` pointwise scores (higher = more informative; ``>= 0`` for ``"power"``).
      mode: ``"softmax"``, ``"power"`` or ``"softrank"``.
      coldness: ``β >= 0``.
      offset: global index of ``scores[0]`` (streaming; not meaningful for softrank).
      most_informative: sample informative (True) or uninformative (False) items.

    Returns:
      ``[n]`` perturbed keys (float): ``-inf`` for NaN scores, at least the
      lowest finite float for every other item, so NaN items come last.
    """
    scores = _check(scores, coldness, mode)
    return _perturbed(key, scores, jnp.asarray(coldness, scores.dtype), offset, mode=mode,
                      most_informative=bool(most_informative))


def stochastic_select(key, scores, k: int, *, mode: str = "power", coldness: float = 1.0,
                      most_informative: bool = True):
    """Draw ``k`` distinct pool indices with probabilities given by ``mode`` and ``coldness``.

    Args:
      key: PRNG key (required).
      scores: ``[N]`` pointwise scores.
      k: static acquisition size ``1 <= k <= N``.

    Returns:
      ``int32[k]`` indices, in the order drawn (Gumbel-top-k order); NaN-scored
      items only after every other item, in both directions.
    """
    if key is None:
        raise ValueError("stochastic acquisition needs a PRNG key; got key=None")
    scores = _check(scores, coldness, mode)
    k = check_k(k, scores.shape[0])
    keys = _perturbed(key, scores, jnp.asarray(coldness, scores.dtype), 0, mode=mode,
                      most_informative=bool(most_informative))
    return _top_k(keys, k)


@partial(jax.jit, static_argnums=1)
def _top_k(keys, k: int):
    return jax.lax.top_k(ranking_keys(keys), k)[1].astype(jnp.int32)


def softmax_select(key, scores, k: int, *, coldness: float = 1.0, most_informative: bool = True):
    """Softmax acquisition: ``p(i) ∝ exp(β s_i)`` (Kirsch et al. 2023)."""
    return stochastic_select(key, scores, k, mode="softmax", coldness=coldness, most_informative=most_informative)


def power_select(key, scores, k: int, *, coldness: float = 1.0, most_informative: bool = True):
    """Power acquisition: ``p(i) ∝ s_i^β`` (Kirsch et al. 2023); on BALD scores this is PowerBALD."""
    return stochastic_select(key, scores, k, mode="power", coldness=coldness, most_informative=most_informative)


def softrank_select(key, scores, k: int, *, coldness: float = 1.0, most_informative: bool = True):
    """Soft-rank acquisition: ``p(i) ∝ rank_i^(−β)`` (Kirsch et al. 2023)."""
    return stochastic_select(key, scores, k, mode="softrank", coldness=coldness, most_informative=most_informative)
