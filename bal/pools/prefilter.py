"""Batch-aware acquisition on big pools: a pointwise pre-selection, then BatchBALD / BADGE / core-set.

BatchBALD (Kirsch et al. 2019), BADGE (Ash et al. 2020) and core-set (Sener &
Savarese 2018) need the whole candidate set at once: ``[S, N, C]``
log-probabilities or ``[N, D]`` embeddings, and greedy steps costing ``O(N)``
each. On a pool of millions, first keep the ``M = factor * k`` items of the
highest pointwise score (BALD by default) — a streamed pass with flat memory
that keeps, for those candidates only, what the batch-aware method needs —
then run the method on the ``M`` candidates and map its picks back to global
pool indices. (Kirsch et al. 2019 pre-filter BatchBALD's candidates the same
way for speed; with ``factor = 1`` this is the pointwise top-k.)

Array level: :func:`prefilter` (``log_probs [S, N, C]``, embeddings ``[N, D]``).
Pool level: :func:`prefilter_pool` (any :class:`~bal.pools.sources.PoolSource`,
multi-process when ``jax.distributed`` runs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bal import acquisition
from bal.pools.sources import PoolSource

__all__ = ["METHODS", "prefilter", "prefilter_pool", "payload_for"]

METHODS = ("batchbald", "badge", "coreset")


def _check(method: str, factor, k) -> tuple[str, int]:
    name = method.strip().lower().replace("-", "_")
    name = {"batch_bald": "batchbald", "core_set": "coreset", "k_center": "coreset"}.get(name, name)
    if name not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor (candidates per batch item, M = factor * k) must be an integer >= 1; got {factor!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    return name, int(factor)


def payload_for(method: str) -> tuple[str, ...]:
    """What a streamed pass keeps per candidate for ``method`` (see :data:`bal.pools.score.PAYLOADS`)."""
    name, _ = _check(method, 1, 1)
    return {"batchbald": ("log_probs",), "badge": ("mean_log_probs", "embedding"), "coreset": ("embedding",)}[name]


def _select(name, key, log_probs, embeddings, labeled_embeddings, k, params):
    strategy = acquisition.get(name, **params)
    return np.asarray(strategy(key, log_probs, k, embeddings=embeddings, labeled_embeddings=labeled_embeddings))


def prefilter(key, log_probs, k: int, *, method: str = "batchbald", score: str = "bald", factor: int = 10,
              embeddings=None, labeled_embeddings=None, **params) -> np.ndarray:
    """Top-``M`` by a pointwise ``score`` (``M = min(N, factor * k)``), then ``method`` on those ``M``.

    Args:
      key: PRNG key (split for a stochastic score and for the method).
      log_probs: ``[S, N, C]`` per-sample log-probabilities of the pool.
      k: batch size.
      method: ``"batchbald"``, ``"badge"`` or ``"coreset"``.
      score: a pointwise strategy name (``bald``, ``entropy``, ``margin`` ...).
      factor: candidates per batch item.
      embeddings: ``[N, D]`` (BADGE, core-set); labeled_embeddings: ``[L, D]`` (core-set).
      **params: the method's parameters (e.g. ``num_configs`` of BatchBALD).

    Returns:
      ``int64 [k]`` pool indices in the method's acquisition order.
    """
    name, factor = _check(method, factor, k)
    score_key, select_key = jax.random.split(key)
    lp = jnp.asarray(log_probs)
    if lp.ndim != 3:
        raise ValueError(f"log_probs must be [S, N, C]; got shape {tuple(lp.shape)}")
    n = lp.shape[1]
    if k > n:
        raise ValueError(f"k = {k} is larger than the pool (N = {n})")
    if name != "batchbald" and embeddings is None:
        raise ValueError(f"method {name!r} needs embeddings [N, D]")
    m = min(n, factor * int(k))
    strategy = acquisition.get(score)
    if not strategy.pointwise:
        raise ValueError(f"score {score!r} is not pointwise; use bald, entropy, margin, ...")
    cand = np.asarray(acquisition.top_k(None, strategy.score(lp, key=score_key), m)).astype(np.int64)
    emb = None if embeddings is None else jnp.asarray(embeddings)[cand]
    picked = _select(name, select_key, lp[:, cand], emb, labeled_embeddings, int(k), params)
    return cand[picked]


def prefilter_pool(posterior, variables, source: PoolSource, key, k: int, *, method: str = "batchbald",
                   score: str = "bald", factor: int = 10, labeled: PoolSource | None = None,
                   method_params: dict | None = None, **options) -> np.ndarray:
    """:func:`prefilter` over a pool source, with one streamed pass: ``int64 [k]`` global indices.

    Args:
      posterior, variables, source, key: as :func:`bal.pools.score.score_pool`.
      labeled: the labelled items (core-set's initial centers), embedded with the same key.
      method_params: the method's parameters.
      **options: :func:`bal.pools.score.score_pool` options (``num_samples``,
        ``chunk_size``, ``state_path`` ...).
    """
    from bal.pools.distributed import score as score_any
    from bal.predict import predict

    name, factor = _check(method, factor, k)
    score_key, select_key = jax.random.split(key)
    m = min(len(source), factor * int(k))
    if k > len(source):
        raise ValueError(f"k = {k} is larger than the pool ({len(source)} items)")
    result = score_any(posterior, variables, source, score_key, m, strategy=score, payload=payload_for(name),
                       **options)
    p = result.payload
    labeled_embeddings = None
    if name == "coreset" and labeled is not None and len(labeled):
        from bal.pools.cluster_margin import _mean_embedding

        predict_key = jax.random.split(score_key)[0]  # the key the streamed pass predicted with
        labeled_embeddings = predict(posterior, variables, labeled.read(0, len(labeled)), predict_key,
                                     num_samples=options.get("num_samples"), chunk_size=options.get("chunk_size"),
                                     reduce=_mean_embedding)
    if name == "batchbald":
        log_probs = jnp.swapaxes(jnp.asarray(p["log_probs"]), 0, 1)
        picked = _select(name, select_key, log_probs, None, None, int(k), method_params or {})
    elif name == "badge":
        picked = _select(name, select_key, jnp.asarray(p["mean_log_probs"]), jnp.asarray(p["embedding"]), None,
                         int(k), method_params or {})
    else:
        picked = _select(name, select_key, None, jnp.asarray(p["embedding"]), labeled_embeddings, int(k),
                         method_params or {})
    return result.indices[picked]
