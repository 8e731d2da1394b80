"""Selection rules: scores ``[N]`` -> indices ``[k]`` of the next batch.

Every rule has the signature ``rule(key, scores, k) -> int32[k]`` (``k`` a
static Python int) so the active-learning loop can call any of them the same
way; deterministic rules accept and ignore the key.

Tie-breaking is deterministic and identical everywhere in
:mod:`bal.acquisition` (top-k here, streaming merges, BatchBALD, core-set):
*among equal scores the lowest pool index wins*. ``jax.lax.top_k`` documents
this ("if two elements are equal, the lower-index element appears first");
two of its corner cases are normalised first by :func:`ranking_keys`: ``-0.0``
ranks below ``+0.0`` in XLA's total order, so ``-0.0`` is mapped to ``+0.0``;
and NaN ranks *above* everything, so NaN scores are mapped to ``-inf`` (never
preferred, in top-k or bottom-k).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from bal.acquisition._validation import check_k, check_scores
from bal.acquisition.scores import _random_scores

__all__ = ["ranking_keys", "top_k", "bottom_k", "random_k", "RULES", "select"]


def ranking_keys(scores, *, descending: bool = True):
    """Scores turned into keys whose top-k is the rule's selection.

    ``descending=False`` negates (bottom-k). NaN -> ``-inf``; ``-0.0`` -> ``+0.0``.
    """
    keys = scores if descending else -scores
    keys = jnp.where(jnp.isnan(keys), -jnp.inf, keys)
    return jnp.where(keys == 0, jnp.zeros((), keys.dtype), keys)


@partial(jax.jit, static_argnums=(1, 2))
def _top_k_keys(scores, k: int, descending: bool = True):
    values, idx = jax.lax.top_k(ranking_keys(scores, descending=descending), k)
    return values, idx.astype(jnp.int32)


def _check_scores(scores, k):
    scores = check_scores(scores)
    return scores, check_k(k, scores.shape[0])


def top_k(key, scores, k: int):
    """The ``k`` highest scores (most informative first); ties -> lowest index.

    Args:
      key: unused (rules share one signature); may be None.
      scores: ``[N]`` scores, higher = more informative.
      k: static acquisition size, ``1 <= k <= N``.

    Returns:
      ``int32[k]`` pool indices, in decreasing score order.
    """
    del key
    scores, k = _check_scores(scores, k)
    return _top_k_keys(scores, k)[1]


def bottom_k(key, scores, k: int):
    """The ``k`` lowest scores (least informative first); ties -> lowest index. NaN is never preferred."""
    del key
    scores, k = _check_scores(scores, k)
    return _top_k_keys(scores, k, False)[1]


@partial(jax.jit, static_argnums=(1, 2))
def _random_k(key, n: int, k: int):
    return _top_k_keys(_random_scores(key, n), k)[1]


def random_k(key, scores, k: int):
    """A uniformly random ``k``-subset of the pool (without replacement).

    Implemented as the top-k of i.i.d. uniform scores keyed by
    ``fold_in(key, global index)`` (:func:`bal.acquisition.scores.random_scores`),
    which makes it identical to streaming top-k over chunks of the same pool.

    Args:
      key: a PRNG key (required).
      scores: ``[N]`` (only ``N`` is used) or an ``int`` pool size.
      k: static acquisition size.
    """
    if key is None:
        raise ValueError("random selection needs a PRNG key; got key=None")
    if isinstance(scores, int) and not isinstance(scores, bool):
        if scores < 1:
            raise ValueError(f"the pool is empty: N = {scores}; there is nothing to select")
        n = scores
    else:
        scores, _ = _check_scores(scores, 1)
        n = scores.shape[0]
    return _random_k(key, n, check_k(k, n))


#: Selection rules by name, all ``rule(key, scores, k) -> int32[k]``.
RULES = {"top_k": top_k, "bottom_k": bottom_k, "random": random_k}


def select(rule: str, key, scores, k: int):
    """Apply the selection rule named ``rule`` (one of :data:`RULES`)."""
    try:
        fn = RULES[rule]
    except KeyError:
        raise ValueError(f"unknown selection rule {rule!r}; valid rules: {sorted(RULES)}") from None
    return fn(key, scores, k)

