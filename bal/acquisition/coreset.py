"""Core-set acquisition: greedy k-center on embeddings.

Sener & Savarese 2018, "Active Learning for Convolutional Neural Networks: A
Core-Set Approach" (ICLR), Algorithm 1 (the greedy 2-approximation of the
k-center problem, Gonzalez 1985):

    repeat k times:  u = argmax_{i ∈ pool} min_{j ∈ centers} ||x_i − x_j||;  centers ∪= {u}

with the labeled set's embeddings as the initial centers. Ties go to the
lowest pool index. With an empty labeled set the first center is drawn
uniformly with ``key``. Distances to the ``L`` labeled embeddings are reduced
in chunks of ``chunk_size`` (memory ``N * chunk_size`` floats); each greedy
step then costs ``O(N D)``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from bal.acquisition._ops import _HI
from bal.acquisition._validation import check_embeddings, check_k, static_int

__all__ = ["coreset", "min_sq_distances"]


def _sq_dist(x, x_sq, c):
    """``||x_i − c_j||²`` for ``x [N, D]``, centers ``c [L, D]`` -> ``[N, L]`` (clamped at 0)."""
    c_sq = jnp.sum(c * c, axis=-1)
    return jnp.maximum(x_sq[:, None] + c_sq[None, :] - 2.0 * jnp.dot(x, c.T, precision=_HI), 0.0)


@partial(jax.jit, static_argnames=("chunk_size",))
def _min_sq_distances(x, centers, *, chunk_size: int):
    n, l = x.shape[0], centers.shape[0]
    x_sq = jnp.sum(x * x, axis=-1)
    if l == 0:
        return jnp.full((n,), jnp.inf, x.dtype)
    n_chunks = -(-l // chunk_size)
    pad = n_chunks * chunk_size - l
    padded = jnp.concatenate([centers, jnp.broadcast_to(centers[:1], (pad, centers.shape[1]))])  # repeats: harmless
    blocks = padded.reshape(n_chunks, chunk_size, -1)

    def body(m, block):
        return jnp.minimum(m, jnp.min(_sq_dist(x, x_sq, block), axis=1)), None

    m, _ = jax.lax.scan(body, jnp.full((n,), jnp.inf, x.dtype), blocks)
    return m


def min_sq_distances(embeddings, centers, *, chunk_size: int = 1024):
    """``min_j ||x_i − c_j||²`` for pool ``[N, D]`` and centers ``[L, D]`` -> ``[N]`` (``inf`` when ``L = 0``)."""
    x = check_embeddings(embeddings, None)
    c = check_embeddings(centers, None, name="centers", allow_empty=True)
    if c.shape[1] != x.shape[1]:
        raise ValueError(f"centers have D = {c.shape[1]} features but embeddings have D = {x.shape[1]}")
    return _min_sq_distances(x, c.astype(x.dtype), chunk_size=static_int(chunk_size, "chunk_size"))


@partial(jax.jit, static_argnames=("k", "chunk_size"))
def _coreset(key, x, labeled, *, k: int, chunk_size: int):
    n = x.shape[0]
    x_sq = jnp.sum(x * x, axis=-1)
    chosen = jnp.zeros((k,), jnp.int32)

    def add_center(chosen, d2, j, u):
        d2 = jnp.minimum(d2, _sq_dist(x, x_sq, x[u][None, :])[:, 0]).at[u].set(-jnp.inf)  # chosen: never again
        return chosen.at[j].set(u), d2

    if labeled.shape[0] == 0:
        first = jax.random.randint(key, (), 0, n, dtype=jnp.int32)
        chosen, d2 = add_center(chosen, jnp.full((n,), jnp.inf, x.dtype), 0, first)
        start = 1
    else:
        d2, start = _min_sq_distances(x, labeled, chunk_size=chunk_size), 0

    def body(j, state):
        chosen, d2 = state
        u = jnp.argmax(d2).astype(jnp.int32)  # farthest from every center; first maximum = lowest index
        return add_center(chosen, d2, j, u)

    chosen, _ = jax.lax.fori_loop(start, k, body, (chosen, d2))
    return chosen


def coreset(key, embeddings, k: int, *, labeled_embeddings=None, chunk_size: int = 1024):
    """Select ``k`` pool items by greedy k-center (Sener & Savarese 2018).

    Args:
      key: PRNG key; used only to draw the first center when there are no labeled embeddings.
      embeddings: ``[N, D]`` pool embeddings.
      k: static batch size ``1 <= k <= N``.
      labeled_embeddings: ``[L, D]`` embeddings of the labeled set (initial centers), or None.
      chunk_size: labeled embeddings per distance block (memory ``N * chunk_size``).

    Returns:
      ``int32[k]`` distinct pool indices in the order chosen.
    """
    x = check_embeddings(embeddings, None)
    k = check_k(k, x.shape[0])
    if labeled_embeddings is None:
        labeled = jnp.zeros((0, x.shape[1]), x.dtype)
    else:
        labeled = check_embeddings(labeled_embeddings, None, name="labeled_embeddings", allow_empty=True)
        if labeled.shape[1] != x.shape[1]:
            raise ValueError(f"labeled_embeddings have D = {labeled.shape[1]} features but embeddings "
                             f"have D = {x.shape[1]}")
    if labeled.shape[0] == 0 and key is None:
        raise ValueError("coreset without labeled embeddings draws its first center at random; pass a PRNG key")
    if key is None:
        key = jax.random.key(0)  # unused: the labeled set fixes the first center
    return _coreset(key, x, labeled.astype(x.dtype), k=k, chunk_size=static_int(chunk_size, "chunk_size"))
