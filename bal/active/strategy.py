"""From a strategy name to pool indices: prediction plus ``bal.acquisition``.

The loop calls a :class:`Selector` the same way for every strategy. Pointwise
strategies (BALD, entropy, margin, ..., their stochastic variants, random) are
streamed: each pool chunk's posterior samples are reduced on the device to
scores, so ``[S, N, C]`` never exists for the whole pool. Batch-aware
strategies (BatchBALD, BADGE, core-set) receive the pool's ``log_probs`` and,
when they need them, embeddings averaged over posterior samples.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bal import acquisition
from bal.predict import Chunk, predict

__all__ = ["Selector", "resolve"]


def _probs_and_embedding(chunk: Chunk):
    """Pool-axis-first outputs: ``log_probs [n, S, C]`` and mean embeddings ``[n, D]``."""
    return jnp.swapaxes(chunk.log_probs, 0, 1), jnp.mean(chunk.embeddings, axis=0)


def _embedding(chunk: Chunk):
    return jnp.mean(chunk.embeddings, axis=0)


class Selector:
    """Selects ``k`` of the candidate pool items with one named strategy.

    Instances are cached per strategy value by :func:`resolve`; the reduce
    functions they hand to ``predict`` are stable objects, so the compiled
    scoring is reused across cycles and seeds.
    """

    def __init__(self, name: str, strategy):
        self.name = name
        self.strategy = strategy
        self._score_reducers = {}

    def _reducer(self, most_informative: bool):
        if most_informative not in self._score_reducers:
            strategy = self.strategy

            def reduce(chunk: Chunk, key):
                return strategy.score(chunk.log_probs, key=key, offset=chunk.start,
                                      most_informative=most_informative)

            self._score_reducers[most_informative] = reduce
        return self._score_reducers[most_informative]

    def __call__(self, *args, **kwargs) -> np.ndarray:
        """Indices into ``candidates`` (``int [k]``) of the items to label next (see :meth:`select`)."""
        return self.select(*args, **kwargs)[0]

    def select(self, posterior, variables, train_x, candidates, labeled, k: int, key, *,
               chunk_size: int | None = None, most_informative: bool = True):
        """``(chosen, scores)``: indices into ``candidates`` (``int [k]``) of the items to label
        next, and for pointwise strategies their priorities ``[k]`` (else None).

        Args:
          posterior, variables: the trained posterior.
          train_x: ``[N, ...]`` all training inputs; candidates: ``[P]`` indices of
            the pool items to consider; labeled: ``[L]`` indices already labeled.
          k: how many to select; key: PRNG key of this acquisition.
        """
        predict_key, select_key = jax.random.split(key)
        s = self.strategy
        if s.name == "random":  # needs no prediction at all
            return np.asarray(acquisition.random_k(select_key, jnp.zeros(len(candidates)), k)), None
        pool_x = train_x[candidates]
        if s.pointwise:
            scores = predict(posterior, variables, pool_x, predict_key, chunk_size=chunk_size,
                             reduce=self._reducer(most_informative), reduce_args=(select_key,))
            return _best(scores, k)
        embeddings = labeled_embeddings = None
        if s.needs_embeddings:
            log_probs, embeddings = predict(posterior, variables, pool_x, predict_key,
                                            chunk_size=chunk_size, reduce=_probs_and_embedding)
            log_probs = np.swapaxes(log_probs, 0, 1)
        else:
            log_probs = predict(posterior, variables, pool_x, predict_key, chunk_size=chunk_size)
        if s.uses_labeled_embeddings and len(labeled):
            labeled_embeddings = predict(posterior, variables, train_x[labeled], predict_key,
                                         chunk_size=chunk_size, reduce=_embedding)
        return np.asarray(s(select_key, log_probs, k, embeddings=embeddings,
                            labeled_embeddings=labeled_embeddings,
                            most_informative=most_informative)), None


    @property
    def side_by_side(self) -> bool:
        """Whether :meth:`select_runs` scores several runs as one vmapped program (pointwise
        strategies; the others select run by run)."""
        return self.strategy.pointwise and self.strategy.name != "random"

    def select_runs(self, posterior, variables, train_x, candidates, labeled, k: int, keys, *,
                    chunk_size: int | None = None, most_informative: bool = True) -> list[tuple]:
        """:meth:`select` for ``R`` runs side by side: ``variables`` stacked ``[R, ...]``,
        ``candidates`` and ``labeled`` lists of ``R`` index arrays (the candidates of equal
        size), ``keys [R]``; each run's result equals :meth:`select`'s with its own arguments."""
        if not self.side_by_side:
            return [self.select(posterior, jax.tree.map(lambda a: a[r], variables), train_x, candidates[r],
                                labeled[r], k, keys[r], chunk_size=chunk_size, most_informative=most_informative)
                    for r in range(len(candidates))]
        predict_keys, select_keys = jnp.stack([jax.random.split(key) for key in keys], axis=1)
        pool_x = np.stack([train_x[c] for c in candidates])
        scores = predict(posterior, variables, pool_x, predict_keys, chunk_size=chunk_size,
                         reduce=self._reducer(most_informative), reduce_args=(select_keys,), runs=True,
                         per_run_x=True)
        return [_best(run_scores, k) for run_scores in scores]


def _best(scores, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of ``scores [P]`` (NaN never first) and their scores."""
    chosen = np.asarray(acquisition.top_k(None, jnp.asarray(scores), k))
    return chosen, np.asarray(scores)[chosen]


#: one selector per strategy value (strategies are hashable): compiled scoring is reused
_SELECTORS: dict = {}


def resolve(name: str, params: dict | None = None) -> Selector:
    """The (cached) selector of strategy ``name``; unknown names raise ``ValueError``.

    ``params`` may hold parameters of several strategies keyed by strategy
    name (``{"batchbald": {"num_configs": 1000}}``); only this strategy's
    entry is used.
    """
    params = params or {}
    own = params.get(name, {}) if isinstance(params.get(name, {}), dict) else {}
    strategy = acquisition.get(name, **own)
    if strategy not in _SELECTORS:
        _SELECTORS[strategy] = Selector(name, strategy)
    return _SELECTORS[strategy]
