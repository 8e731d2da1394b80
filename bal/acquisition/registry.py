"""Acquisition strategies by name, behind one calling convention.

Every strategy is called the same way by the active-learning loop and the CLI::

    indices = acquire(name, key, log_probs, k, *, embeddings=None,
                      labeled_embeddings=None, most_informative=True, **params)

    strategy = get(name, **params)             # a Strategy: callable + metadata
    indices = strategy(key, log_probs, k, embeddings=..., labeled_embeddings=...)

``log_probs [S, N, C]``, ``key`` a PRNG key, ``k`` a static int; the result is
``int32[k]`` distinct indices into the pool axis, in acquisition order.

Names follow the one grammar of :mod:`bal.acquisition.grammar` (case-insensitive, ``-`` = ``_``):

- pointwise scores, top-k: ``bald`` (``mutual_information``), ``entropy``
  (``max_entropy``), ``margin``, ``variation_ratios``, ``mean_std``,
  ``least_confidence``, and ``random``;
- stochastic batch acquisition (Kirsch et al. 2023) of any score above:
  ``softmax_<score>``, ``power_<score>``, ``softrank_<score>``, ``powerbald``,
  or ``stochastic(<score>[, mode=power][, coldness=1.0])``; parameter
  ``coldness`` (β);
- batch-aware: ``batchbald`` (``num_configs``, ``chunk_size``, ``lazy``,
  ``lazy_tolerance``), ``badge`` (``first``; needs ``embeddings``),
  ``coreset`` (``chunk_size``; needs ``embeddings``, uses
  ``labeled_embeddings``).

Metadata: ``Strategy.pointwise`` — the selection is the top-k of
``Strategy.score`` computed item by item, so it can be streamed over pool
chunks (:func:`acquire_streaming`); ``needs_embeddings``;
``uses_labeled_embeddings``; ``stochastic`` — the result depends on ``key``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from bal.acquisition import grammar as _grammar
from bal.acquisition import scores as _scores
from bal.acquisition._validation import check_embeddings, check_k, check_log_probs
from bal.acquisition.badge import badge
from bal.acquisition.batchbald import batchbald
from bal.acquisition.coreset import coreset
from bal.acquisition.selection import top_k
from bal.acquisition.stochastic import MODES, POINTWISE_MODES, perturbed_scores, stochastic_select
from bal.acquisition.streaming import streaming_top_k

__all__ = ["Strategy", "get", "acquire", "acquire_streaming", "names", "register"]

def _freeze(value):
    """A hashable stand-in of a parameter value (dicts and lists become sorted tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    hash(value)  # raises TypeError for anything else that is unhashable
    return value


@dataclass(frozen=True, eq=False)
class Strategy:
    """A named acquisition strategy with its parameters bound.

    Call it as ``strategy(key, log_probs, k, *, embeddings=None,
    labeled_embeddings=None, most_informative=True) -> int32[k]``.

    A strategy is a value: equal names and parameters compare and hash equal
    (and :func:`get` returns the very same object for them), so a strategy can be
    a static argument of ``jax.jit`` without recompiling every cycle.
    """

    name: str
    params: Mapping[str, Any]
    pointwise: bool
    needs_embeddings: bool = False
    uses_labeled_embeddings: bool = False
    stochastic: bool = False
    _select: Callable | None = field(default=None, repr=False)
    _score: Callable | None = field(default=None, repr=False)

    def __call__(self, key, log_probs, k: int, *, embeddings=None, labeled_embeddings=None,
                 most_informative: bool = True):
        if self.needs_embeddings and embeddings is None:
            raise ValueError(f"strategy {self.name!r} needs embeddings [N, D]; pass embeddings=...")
        if self.stochastic and key is None:
            raise ValueError(f"strategy {self.name!r} is random; pass a PRNG key")
        if self.pointwise:
            return top_k(None, self.score(log_probs, key=key, most_informative=most_informative), k)
        return self._select(key, log_probs, k, embeddings=embeddings, labeled_embeddings=labeled_embeddings,
                            most_informative=most_informative)

    def _identity(self):
        return (self.name, _freeze(self.params))

    def __eq__(self, other):
        return isinstance(other, Strategy) and self._identity() == other._identity()

    def __hash__(self):
        return hash(self._identity())

    def score(self, log_probs, *, key=None, offset=0, most_informative: bool = True):
        """Per-item priorities ``[n]`` of a pointwise strategy: the batch is their top-k.

        For a deterministic score with ``most_informative=True`` this is the
        score itself (negated for ``False``); for stochastic strategies it is
        the Gumbel-perturbed log-weight of each item, keyed by its global
        index ``offset + i`` so that chunks of a pool score consistently.
        """
        if not self.pointwise:
            raise ValueError(f"strategy {self.name!r} is not pointwise (it needs the whole pool at once); "
                             "call it directly instead of scoring chunks")
        return self._score(log_probs, key=key, offset=offset, most_informative=bool(most_informative))


# ----------------------------------------------------------------------------- factories
def _check_params(name: str, params: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for acquisition strategy {name!r}; "
                         f"accepted: {sorted(allowed) or 'none'}")
    return {**allowed, **params}


def _pointwise(score_name: str, **params) -> Strategy:
    _check_params(score_name, params, {})
    fn = _scores.SCORES[score_name]

    def score(log_probs, *, key, offset, most_informative):
        s = fn(log_probs)
        return s if most_informative else -s

    return Strategy(score_name, {}, pointwise=True, _score=score)


def _random(**params) -> Strategy:
    _check_params("random", params, {})

    def score(log_probs, *, key, offset, most_informative):
        if key is None:
            raise ValueError("strategy 'random' needs a PRNG key")
        return _scores.random_scores(key, log_probs, offset=offset)

    return Strategy("random", {}, pointwise=True, stochastic=True, _score=score)


def _stochastic(score_name: str, **params) -> Strategy:
    p = _check_params(f"stochastic({score_name})", params, {"mode": "power", "coldness": 1.0})
    mode, coldness = p["mode"], p["coldness"]
    if mode not in MODES:
        raise ValueError(f"unknown stochastic mode {mode!r}; valid modes: {list(MODES)}")
    if (isinstance(coldness, bool) or not isinstance(coldness, (int, float))
            or not 0 <= coldness < float("inf")):
        raise ValueError(f"coldness (β) of {mode}_{score_name} must be a finite number >= 0 (0 = uniform, large = top-k); "
                         f"got {coldness!r}")
    base = _scores.SCORES[score_name]
    name = f"{mode}_{score_name}"

    def score(log_probs, *, key, offset, most_informative):
        if key is None:
            raise ValueError(f"strategy {name!r} is random; pass a PRNG key")
        return perturbed_scores(key, base(log_probs), mode=mode, coldness=coldness, offset=offset,
                                most_informative=most_informative)

    def select(key, log_probs, k, *, embeddings, labeled_embeddings, most_informative):
        return stochastic_select(key, base(log_probs), k, mode=mode, coldness=coldness,
                                 most_informative=most_informative)

    pointwise = mode in POINTWISE_MODES
    return Strategy(name, {"mode": mode, "coldness": coldness}, pointwise=pointwise, stochastic=True,
                    _select=None if pointwise else select, _score=score if pointwise else None)


def _only_most_informative(name, most_informative):
    if not most_informative:
        raise ValueError(f"strategy {name!r} is batch-aware and has no least-informative variant; "
                         "use most_informative=True (or a pointwise score for bottom-k)")


def _batchbald(**params) -> Strategy:
    p = _check_params("batchbald", params, {"num_configs": 10_000, "chunk_size": None, "lazy": True,
                                            "lazy_tolerance": 1e-4})

    def select(key, log_probs, k, *, embeddings, labeled_embeddings, most_informative):
        _only_most_informative("batchbald", most_informative)
        return batchbald(key, log_probs, k, **p).indices

    return Strategy("batchbald", p, pointwise=False, stochastic=True, _select=select)


def _badge(**params) -> Strategy:
    p = _check_params("badge", params, {"first": "max_norm"})

    def select(key, log_probs, k, *, embeddings, labeled_embeddings, most_informative):
        _only_most_informative("badge", most_informative)
        return badge(key, log_probs, embeddings, k, **p)

    return Strategy("badge", p, pointwise=False, needs_embeddings=True, stochastic=True, _select=select)


def _coreset(**params) -> Strategy:
    p = _check_params("coreset", params, {"chunk_size": 1024})

    def select(key, log_probs, k, *, embeddings, labeled_embeddings, most_informative):
        _only_most_informative("coreset", most_informative)
        emb = check_embeddings(embeddings, None)
        if log_probs is not None:
            n = check_log_probs(log_probs, check_values=False).shape[1]
            if emb.shape[0] != n:
                raise ValueError(f"embeddings have {emb.shape[0]} rows but log_probs has N = {n} pool items")
        return coreset(key, emb, k, labeled_embeddings=labeled_embeddings, **p)

    return Strategy("coreset", p, pointwise=False, needs_embeddings=True, uses_labeled_embeddings=True,
                    stochastic=True, _select=select)


_FACTORIES: dict[str, Callable[..., Strategy]] = {
    "random": _random,
    "batchbald": _batchbald, "batch_bald": _batchbald,
    "badge": _badge,
    "coreset": _coreset, "core_set": _coreset, "k_center": _coreset,
    "powerbald": lambda **p: _stochastic("bald", **{"mode": "power", **p}),
}
for _alias, _score_name in _grammar.SCORE_ALIASES.items():
    _FACTORIES[_alias] = lambda _s=_score_name, **p: _pointwise(_s, **p)

def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown acquisition strategy {name!r}; valid names: {', '.join(names())} "
                      f"(aliases: {', '.join(sorted(_ALIASES))}; <score> is one of {sorted(_scores.SCORES)})")


_CANONICAL = ("bald", "entropy", "margin", "variation_ratios", "mean_std", "least_confidence", "random",
              "batchbald", "powerbald", "badge", "coreset")
_ALIASES = {"mutual_information", "mi", "max_entropy", "predictive_entropy", "batch_bald", "core_set", "k_center"}


def names(*, expand: bool = False) -> list[str]:
    """The accepted strategy names.

    By default the canonical names plus the patterns ``softmax_<score>``,
    ``power_<score>``, ``softrank_<score>`` and ``stochastic(<score>, ...)``;
    ``expand=True`` lists every concrete name instead (patterns spelled out,
    aliases and registered extras included).
    """
    if not expand:
        extra = sorted(set(_FACTORIES) - set(_CANONICAL) - _ALIASES)  # registered by users
        return [*_CANONICAL, *extra, "softmax_<score>", "power_<score>", "softrank_<score>",
                "stochastic(<score>, mode=..., coldness=...)"]
    out = set(_FACTORIES)
    for mode in MODES:
        out.update(f"{mode}_{s}" for s in _grammar.SCORE_ALIASES)
    return sorted(out)


def get(name: str, **params) -> Strategy:
    """The strategy called ``name`` with ``params`` bound (see the module docstring for names).

    Raises:
      ValueError: for an unknown name (listing the valid ones) or parameter.
    """
    if not isinstance(name, str):
        raise ValueError(f"strategy name must be a string; got {name!r}")
    try:
        cache_key = (name, _freeze(params))
    except TypeError:
        raise ValueError(f"parameters of strategy {name!r} must be numbers, strings, lists or tables; "
                         f"got {params!r}") from None
    if cache_key not in _CACHE:
        _CACHE[cache_key] = _build(name, **params)
    return _CACHE[cache_key]


#: (name, frozen params) -> Strategy: one value per name and parameters
_CACHE: dict = {}


def _build(name: str, **params) -> Strategy:
    key = name.strip().lower().replace("-", "_")
    if key in _FACTORIES:
        return _FACTORIES[key](**params)
    try:  # the stochastic forms of the one name grammar (bal.acquisition.names)
        parsed = _grammar.parse(name, task="acquisition", rules=(), modes=True)
    except ValueError as err:
        if "unknown acquisition strategy" in str(err):
            raise _unknown(name) from None
        raise
    call = "stochastic(" in key
    if parsed.mode is None and not call:  # an alias of a score: in _FACTORIES
        return _FACTORIES[parsed.base](**params)
    if call:
        inline = dict(parsed.params)
        clash = sorted(set(inline) & set(params))
        if clash:
            raise ValueError(f"{name!r}: parameter(s) {clash} given both in the name and as keywords")
        return _stochastic(parsed.base, **inline, **params)
    if "mode" in params:
        raise ValueError(f"{name!r} fixes mode={parsed.mode!r}; do not pass mode")
    return _stochastic(parsed.base, mode=parsed.mode, **params)


def register(name: str, factory: Callable[..., Strategy], *, overwrite: bool = False) -> None:
    """Add a strategy: ``factory(**params) -> Strategy`` under ``name``."""
    key = name.strip().lower().replace("-", "_")
    if key in _FACTORIES and not overwrite:
        raise ValueError(f"acquisition strategy {key!r} already exists; pass overwrite=True to replace it")
    _FACTORIES[key] = factory
    _CACHE.clear()  # a replaced factory must not be shadowed by cached strategies


def acquire(name: str, key, log_probs, k: int, *, embeddings=None, labeled_embeddings=None,
            most_informative: bool = True, **params):
    """Select ``k`` pool items with the strategy ``name`` (one call for every strategy).

    Args:
      name: strategy name (see :func:`names`).
      key: PRNG key (required by random / stochastic / sampled strategies).
      log_probs: ``[S, N, C]`` per-sample log-probabilities of the pool
        (may be None for ``coreset``).
      k: static acquisition size, ``1 <= k <= N``.
      embeddings: ``[N, D]`` pool embeddings (BADGE, core-set).
      labeled_embeddings: ``[L, D]`` labeled-set embeddings (core-set).
      most_informative: top-k (True) or bottom-k / least-informative
        sampling (False; pointwise and stochastic strategies only).
      **params: the strategy's parameters (e.g. ``coldness``, ``num_configs``).

    Returns:
      ``int32[k]`` distinct indices into the pool axis.
    """
    return get(name, **params)(key, log_probs, k, embeddings=embeddings, labeled_embeddings=labeled_embeddings,
                               most_informative=most_informative)


def acquire_streaming(name: str, key, chunks: Iterable, k: int, *, most_informative: bool = True, **params):
    """Select ``k`` items of a pool given as ``log_probs`` chunks ``[S, n_i, C]`` (pointwise strategies only).

    Equals :func:`acquire` on the concatenated pool (same indices, same ties).
    """
    strategy = get(name, **params)
    if not strategy.pointwise:
        raise ValueError(f"strategy {strategy.name!r} is not pointwise and cannot be streamed over chunks; "
                         "pointwise strategies are the scores (bald, entropy, margin, ...), random, and their "
                         "softmax_/power_ (not softrank_) variants")
    return streaming_top_k(lambda chunk, offset: strategy.score(chunk, key=key, offset=offset,
                                                                most_informative=most_informative),
                           chunks, check_k(k, 2**31 - 1), most_informative=True)

