"""Streaming top-k: select from a pool too large to score at once.

The prediction code reduces each pool chunk straight to pointwise scores
(:mod:`bal.acquisition.scores`); here each chunk's scores are reduced to its
top-k candidates ``(values, global indices)``, and candidates are merged into
the running global top-k. The result equals ``top_k`` over the whole pool,
ties included: every merge orders candidates by ``(value descending, global
index ascending)``, the same lowest-index-wins rule as
:func:`bal.acquisition.selection.top_k`.

Usage::

    state = topk_init(k)
    for offset, chunk in chunks:                   # chunk: log_probs [S, n, C]
        state = topk_update(state, bald(chunk), offset)
    indices = topk_result(state)                   # int32[k]

or :func:`streaming_top_k` which runs that loop.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bal.acquisition._validation import static_int
from bal.acquisition.selection import ranking_keys

__all__ = ["TopK", "topk_init", "chunk_top_k", "merge_top_k", "topk_update", "topk_result", "streaming_top_k"]

_EMPTY_INDEX = np.iinfo(np.int32).max  # empty slots sort after every real candidate


class TopK(NamedTuple):
    """Running top-k candidates: ``values [k]`` (ranking keys, descending) and ``indices int32[k]`` (global).

    Empty slots hold ``value = -inf`` and ``index = 2**31 - 1``.
    """

    values: jax.Array
    indices: jax.Array


def topk_init(k: int, dtype=jnp.float32) -> TopK:
    """An empty running top-k of size ``k``."""
    k = static_int(k, "k")
    return TopK(jnp.full((k,), -jnp.inf, dtype), jnp.full((k,), _EMPTY_INDEX, jnp.int32))


@partial(jax.jit, static_argnums=2)
def merge_top_k(values, indices, k: int) -> TopK:
    """Top-k of candidate ``(values [m], global indices [m])`` by (value desc, index asc).

    ``values`` must already be ranking keys (see
    :func:`bal.acquisition.selection.ranking_keys`); pads with empty slots when ``m < k``.
    """
    m = values.shape[0]
    if m < k:
        values = jnp.concatenate([values, jnp.full((k - m,), -jnp.inf, values.dtype)])
        indices = jnp.concatenate([indices, jnp.full((k - m,), _EMPTY_INDEX, jnp.int32)])
    neg, idx = jax.lax.sort((-values, indices.astype(jnp.int32)), num_keys=2)
    return TopK(-neg[:k], idx[:k])


@partial(jax.jit, static_argnums=(1, 3))
def chunk_top_k(scores, k: int, offset=0, most_informative: bool = True) -> TopK:
    """Top-k candidates of one chunk's ``scores [n]`` with global indices ``offset + arange(n)``.

    ``most_informative=False`` selects the lowest scores (bottom-k).
    """
    keys = ranking_keys(scores, descending=most_informative)
    kk = min(k, keys.shape[0])
    values, idx = jax.lax.top_k(keys, kk)
    return merge_top_k(values, idx.astype(jnp.int32) + jnp.asarray(offset, jnp.int32), k)


@partial(jax.jit, static_argnums=3)
def _update(state: TopK, scores, offset, most_informative: bool) -> TopK:
    k = state.values.shape[0]
    cand = chunk_top_k(scores, k, offset, most_informative)
    return merge_top_k(jnp.concatenate([state.values, cand.values.astype(state.values.dtype)]),
                       jnp.concatenate([state.indices, cand.indices]), k)


def topk_update(state: TopK, scores, offset, *, most_informative: bool = True) -> TopK:
    """Merge one chunk's ``scores [n]`` (items ``offset .. offset + n - 1``) into the running top-k."""
    scores = jnp.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"chunk scores must have shape [n]; got shape {tuple(scores.shape)}")
    return _update(state, scores, offset, bool(most_informative))


def topk_result(state: TopK, *, pool_size: int | None = None):
    """The selected global indices ``int32[k]``; raises if the stream had fewer than ``k`` items."""
    k = state.indices.shape[0]
    if pool_size is not None and pool_size < k:
        if pool_size == 0:
            raise ValueError("the pool is empty: the stream yielded no items; there is nothing to acquire")
        raise ValueError(f"acquisition size k = {k} is larger than the pool (N = {pool_size}); use k <= {pool_size}")
    return state.indices


def streaming_top_k(score_fn: Callable, chunks: Iterable, k: int, *, most_informative: bool = True):
    """Top-k over a pool given as chunks, scoring each chunk as it arrives.

    Args:
      score_fn: ``score_fn(chunk, offset) -> [n]`` scores of one chunk
        (e.g. ``lambda lp, off: bald(lp)``; ``offset`` is the chunk's first
        global index, needed by random scores).
      chunks: iterable of pool chunks whose item axis is axis 1
        (``log_probs [S, n, C]``) — or any objects for which ``score_fn``
        returns ``[n]`` scores.
      k: static acquisition size.
      most_informative: top-k (True) or bottom-k (False).

    Returns:
      ``int32[k]`` global pool indices, equal to top-k over the concatenated pool.
    """
    state = topk_init(k)
    offset = 0
    for chunk in chunks:
        scores = jnp.asarray(score_fn(chunk, offset))
        if scores.shape[0] == 0:
            continue
        state = topk_update(state, scores, offset, most_informative=most_informative)
        offset += int(scores.shape[0])
    return topk_result(state, pool_size=offset)
