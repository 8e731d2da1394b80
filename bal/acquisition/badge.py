"""BADGE: diverse, uncertain batches by k-means++ seeding on gradient embeddings.

Ash, Zhang, Krishnamurthy, Langford & Agarwal 2020, "Deep Batch Active
Learning by Diverse, Uncertain Gradient Lower Bounds" (ICLR).

The gradient embedding of pool item ``x`` is the gradient of the cross-entropy
at the model's own prediction ``ŷ = argmax_c p̄_c`` with respect to the last
(linear) layer's weights:

    g_x = (p̄ − onehot(ŷ)) ⊗ h(x)  ∈ R^{C·D},   i.e. g_x[c, d] = (p̄_c − 1[c = ŷ]) h_d

where ``h(x) [D]`` is the penultimate embedding. Its norm grows with the
model's uncertainty and its direction encodes the input, so k-means++ seeding
(Arthur & Vassilvitskii 2007) — each next center drawn with probability ∝ the
squared distance to the nearest chosen center — picks a batch that is both
uncertain and diverse.

``g`` is never materialised (that would be ``[N, C·D]``): with
``a = p̄ − onehot(ŷ)``, ``⟨g_i, g_j⟩ = ⟨a_i, a_j⟩ ⟨h_i, h_j⟩``, so

    ||g_i − g_j||² = ||a_i||²||h_i||² + ||a_j||²||h_j||² − 2 ⟨a_i, a_j⟩⟨h_i, h_j⟩,

and each k-means++ step costs ``O(N (C + D))``.

The first center is the item with the largest gradient norm (as in the
authors' released code; ``first="random"`` draws it uniformly, as in plain
k-means++). Chosen items have distance 0 and are never redrawn; when every
remaining distance is 0 (duplicates), the next center is uniform over the
unchosen items.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from bal.acquisition._ops import _HI
from bal.acquisition._validation import check_embeddings, check_k, check_log_probs

__all__ = ["gradient_embedding_factors", "gradient_embeddings", "badge"]

_FIRST = ("max_norm", "random")


def _mean_probs(log_probs):
    if log_probs.ndim == 3:
        return jnp.mean(jnp.exp(log_probs), axis=0)
    return jnp.exp(log_probs)


@jax.jit
def _factors(log_probs, embeddings):
    p = _mean_probs(log_probs)
    a = p - jax.nn.one_hot(jnp.argmax(p, axis=-1), p.shape[-1], dtype=p.dtype)
    return a, embeddings.astype(p.dtype)


def _inputs(log_probs, embeddings, validate):
    log_probs = check_log_probs(log_probs, ndim=(3, 2), check_values=validate)
    embeddings = check_embeddings(embeddings, log_probs.shape[-2])
    return log_probs, embeddings


def gradient_embedding_factors(log_probs, embeddings, *, validate: bool = True):
    """The two factors of BADGE's gradient embedding ``g = a ⊗ h``.

    Args:
      log_probs: ``[S, N, C]`` (averaged over ``S``: ``p̄``) or ``[N, C]`` log-probabilities.
      embeddings: ``[N, D]`` penultimate-layer embeddings ``h``.

    Returns:
      ``(a [N, C], h [N, D])`` with ``a = p̄ − onehot(argmax p̄)``.
    """
    return _factors(*_inputs(log_probs, embeddings, validate))


def gradient_embeddings(log_probs, embeddings, *, validate: bool = True):
    """Materialised gradient embeddings ``g [N, C*D]``, ``g[n, c*D + d] = a[n, c] h[n, d]``.

    For inspection and tests; :func:`badge` never builds this array.
    """
    a, h = gradient_embedding_factors(log_probs, embeddings, validate=validate)
    return (a[:, :, None] * h[:, None, :]).reshape(a.shape[0], -1)


@partial(jax.jit, static_argnames=("k", "first"))
def _badge(key, a, h, *, k: int, first: str):
    n = a.shape[0]
    a_sq = jnp.sum(a * a, axis=-1)
    h_sq = jnp.sum(h * h, axis=-1)
    g_sq = a_sq * h_sq  # ||g_i||²

    def dist_to(c):
        """Squared distances ``||g_i − g_c||²`` to center ``c`` (clamped at 0, exactly 0 at i = c)."""
        cross = jnp.dot(a, a[c], precision=_HI) * jnp.dot(h, h[c], precision=_HI)
        d = jnp.maximum(g_sq + g_sq[c] - 2.0 * cross, 0.0)
        return d.at[c].set(0.0)

    key_first, key_rest = jax.random.split(key)
    if first == "max_norm":
        c0 = jnp.argmax(g_sq).astype(jnp.int32)
    else:
        c0 = jax.random.randint(key_first, (), 0, n, dtype=jnp.int32)
    chosen = jnp.zeros((k,), jnp.int32).at[0].set(c0)
    mask = jnp.zeros((n,), bool).at[c0].set(True)

    def body(j, state):
        chosen, mask, d2 = state
        total = jnp.sum(jnp.where(mask, 0.0, d2))
        logits = jnp.where(mask, -jnp.inf, jnp.where(total > 0, jnp.log(d2), 0.0))  # log 0 = -inf: never drawn
        c = jax.random.categorical(jax.random.fold_in(key_rest, j), logits).astype(jnp.int32)
        return chosen.at[j].set(c), mask.at[c].set(True), jnp.minimum(d2, dist_to(c))

    chosen, _, _ = jax.lax.fori_loop(1, k, body, (chosen, mask, dist_to(c0)))
    return chosen


def badge(key, log_probs, embeddings, k: int, *, first: str = "max_norm", validate: bool = True):
    """Select ``k`` items by BADGE: k-means++ seeding on gradient embeddings (Ash et al. 2020).

    Args:
      key: PRNG key (the D² sampling is random).
      log_probs: ``[S, N, C]`` or ``[N, C]`` log-probabilities (the mean
        prediction ``p̄`` defines the hypothetical label and the gradient).
      embeddings: ``[N, D]`` penultimate embeddings of the pool.
      k: static batch size ``1 <= k <= N``.
      first: ``"max_norm"`` (largest gradient norm, authors' code) or ``"random"``.

    Returns:
      ``int32[k]`` distinct pool indices in the order chosen.
    """
    if key is None:
        raise ValueError("badge needs a PRNG key (k-means++ sampling is random); got key=None")
    if first not in _FIRST:
        raise ValueError(f"first must be one of {list(_FIRST)}; got {first!r}")
    log_probs, embeddings = _inputs(log_probs, embeddings, validate)
    k = check_k(k, log_probs.shape[-2])
    a, h = _factors(log_probs, embeddings)
    return _badge(key, a, h, k=k, first=first)
