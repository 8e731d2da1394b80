"""Scoring a pool of any size with flat host memory, resumably.

:func:`score_pool` streams a :class:`~bal.pools.sources.PoolSource` through
the chunked, sharded prediction of :mod:`bal.predict` (its compiled per-chunk
function, with a ``reduce`` that turns each chunk's posterior samples into
ranking keys on the device) and keeps only a running top-k on the host
(:class:`~bal.pools.topk.RunningTopK`), optionally with a per-item payload
for the candidates (per-sample log-probabilities, the predictive, mean
embeddings). Host memory is one chunk of inputs plus ``O(k)``, whatever the
pool size. While the device works on chunk ``c`` the host reads chunk
``c + 1`` and merges chunk ``c - 1``.

The selection equals the active-learning loop's on the same inputs: the key is
split as :class:`bal.active.strategy.Selector` splits it (prediction key,
selection key), chunks are padded to one compiled shape, ties go to the lowest
global index, and stochastic scores are keyed by the item's position in the
source.

Resuming: with ``state_path``, the progress (the next row to score) and the
running top-k are written atomically (temporary file, fsync, rename) every
``save_every`` chunks and at the end. A job killed at any point (``kill -9``)
and started again with the same arguments continues from the last state and
returns the same result as an uninterrupted run. The state records a
fingerprint of the job (pool size and range, chunk size, ``k``, strategy,
samples, key, a hash of the variables); a state of another job is refused.

:func:`map_pool` is the same stream without the top-k: per-item outputs
written into an array (e.g. cluster ids of every pool item).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import pathlib
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from bal import acquisition
from bal.acquisition.selection import ranking_keys
from bal.checks import input_shape_errors
from bal.predict import Chunk, _chunk, default_chunk_size, pool_mesh
from bal.pools.sources import PoolSource
from bal.pools.topk import RunningTopK

__all__ = ["ScoreResult", "score_pool", "map_pool", "resolve_chunk", "PAYLOADS", "STATE_VERSION"]

#: per-item outputs a scoring pass can keep with its candidates
PAYLOADS = ("log_probs", "mean_log_probs", "embedding")
STATE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """The top-k of a scoring pass.

    Attributes:
      indices: ``int64 [m]`` global pool indices, best first (``m = min(k, items scored)``).
      scores: ``float32 [m]`` their ranking keys (the strategy's priority; NaN -> ``-inf``).
      payload: per-candidate arrays ``[m, ...]``: ``log_probs [m, S, C]``,
        ``mean_log_probs [m, C]``, ``embedding [m, D]`` as requested.
      num_scored: items scored (the range's size).
      seconds: wall time of this call (a resumed job counts only its own part).
      resumed_from: the row this call started at (``start`` unless resumed).
    """

    indices: np.ndarray
    scores: np.ndarray
    payload: dict
    num_scored: int
    seconds: float
    resumed_from: int


def resolve_chunk(pool_size: int, chunk_size: int | None, num_devices: int) -> int:
    """Items per chunk: ``chunk_size`` (default :func:`bal.predict.default_chunk_size`), at most the next power
    of two of the pool size, rounded up to a multiple of the device count — as :func:`bal.predict.predict`."""
    chunk_size = default_chunk_size() if chunk_size is None else chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}")
    chunk = min(int(chunk_size), 1 << (max(pool_size, 1) - 1).bit_length())
    return -(-chunk // num_devices) * num_devices


# ----------------------------------------------------------------------------- reduce functions
def _payload_outputs(chunk: Chunk, payload: tuple) -> dict:
    out = {}
    if "log_probs" in payload:
        out["log_probs"] = jnp.swapaxes(chunk.log_probs, 0, 1)
    if "mean_log_probs" in payload:
        out["mean_log_probs"] = jax.nn.logsumexp(chunk.log_probs, axis=0) - math.log(chunk.log_probs.shape[0])
    if "embedding" in payload:
        out["embedding"] = jnp.mean(chunk.embeddings, axis=0)
    return out


@functools.lru_cache(maxsize=None)
def _named_reducer(name: str, params_json: str, most_informative: bool, payload: tuple):
    """A stable reduce object per (strategy, params, direction, payload): compiled once, reused across calls."""
    strategy = acquisition.get(name, **json.loads(params_json))
    if not strategy.pointwise:
        raise ValueError(f"strategy {strategy.name!r} is not pointwise and cannot be streamed over a pool; use "
                         "bal.pools.prefilter (pointwise top-M, then the batch-aware method) or a pointwise score")

    def reduce(chunk: Chunk, key):
        scores = strategy.score(chunk.log_probs, key=key, offset=chunk.start, most_informative=most_informative)
        return ranking_keys(scores), _payload_outputs(chunk, payload)

    return reduce


@functools.lru_cache(maxsize=None)
def _custom_reducer(fn: Callable, most_informative: bool, payload: tuple):
    def reduce(chunk: Chunk, key):
        return ranking_keys(fn(chunk, key), descending=most_informative), _payload_outputs(chunk, payload)

    return reduce


def _reducer(strategy, params, most_informative, payload):
    if callable(strategy):
        if params:
            raise ValueError("params apply to a named strategy; bind them into the callable instead")
        return _custom_reducer(strategy, bool(most_informative), payload), getattr(strategy, "__qualname__",
                                                                                  repr(strategy))
    if not isinstance(strategy, str):
        raise ValueError("strategy must be a pointwise strategy name or a callable score(chunk, key); "
                         f"got {strategy!r}")
    params_json = json.dumps(params or {}, sort_keys=True)
    return _named_reducer(strategy, params_json, bool(most_informative), payload), f"{strategy}{params_json}"


def _check_payload(payload) -> tuple:
    payload = tuple(payload)
    unknown = sorted(set(payload) - set(PAYLOADS))
    if unknown:
        raise ValueError(f"unknown payload(s) {unknown}; valid: {list(PAYLOADS)}")
    return tuple(p for p in PAYLOADS if p in payload)


# ----------------------------------------------------------------------------- the stream
def _stream(posterior, variables, source: PoolSource, key, reduce, reduce_args, *, num_samples, chunk: int,
            mesh, start: int, stop: int):
    """Yield ``(position, valid, host outputs)`` per chunk of rows ``[start, stop)``, in order.

    The device computes chunk ``c`` while the host reads chunk ``c + 1`` and
    hands out chunk ``c - 1``.
    """
    data_sharding = NamedSharding(mesh, PartitionSpec("pool"))
    replicated = NamedSharding(mesh, PartitionSpec())
    variables = jax.device_put(variables, replicated)
    key = jax.device_put(key, replicated)
    reduce_args = jax.device_put(tuple(reduce_args), replicated)
    run = functools.partial(_chunk, posterior=posterior, num_samples=num_samples, reduce=reduce,
                            with_embeddings=False)
    check_finite = not np.issubdtype(np.dtype(source.dtype), np.integer)  # uint8 pixels are always finite

    def load(pos):
        part = source.read(pos, min(pos + chunk, stop))
        valid = part.shape[0]
        if check_finite and not np.isfinite(part).all():
            raise ValueError(f"rows [{pos}, {pos + valid}) of the pool {source!r} hold NaN or infinite values")
        if valid < chunk:
            part = np.concatenate([part, np.zeros((chunk - valid,) + part.shape[1:], part.dtype)])
        return part, valid

    positions = range(start, stop, chunk)
    if not positions:
        return
    pending = None
    nxt = load(positions[0])
    for i, pos in enumerate(positions):
        part, valid = nxt
        if pending is None:
            with input_shape_errors((len(source),) + tuple(source.item_shape)):
                out = run(variables, jax.device_put(part, data_sharding), key, pos, reduce_args)
        else:
            out = run(variables, jax.device_put(part, data_sharding), key, pos, reduce_args)
        del part
        if pending is not None:
            yield pending[0], pending[1], jax.tree.map(lambda a, v=pending[1]: np.asarray(a)[:v], pending[2])
        if i + 1 < len(positions):
            nxt = load(positions[i + 1])
        pending = (pos, valid, out)
    yield pending[0], pending[1], jax.tree.map(lambda a, v=pending[1]: np.asarray(a)[:v], pending[2])


# ----------------------------------------------------------------------------- state files
def _variables_digest(variables) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _key_data(key) -> list:
    try:
        data = jax.random.key_data(key)
    except (TypeError, ValueError):
        data = key
    return np.asarray(data).ravel().tolist()


def _write_state(path: pathlib.Path, meta: dict, arrays: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _read_state(path: pathlib.Path, fingerprint: dict):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode())
    except Exception as e:  # zipfile / json / KeyError: any unreadable state
        reason = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"{path}: unreadable scoring state ({type(e).__name__}: {reason}); "
                         "delete it to start over") from None
    if meta.get("version") != STATE_VERSION or meta.get("job") != fingerprint:
        theirs = meta.get("job") or {}
        differ = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
        raise ValueError(f"{path}: the state of a different scoring job (differs in {', '.join(differ) or 'version'}); "
                         "delete it or choose another state path")
    return int(meta["next"]), arrays


# ----------------------------------------------------------------------------- scoring
def score_pool(posterior, variables, source: PoolSource, key, k: int, *, strategy="bald",
               params: dict | None = None, most_informative: bool = True, payload: Sequence[str] = (),
               num_samples: int | None = None, chunk_size: int | None = None, mesh=None, start: int = 0,
               stop: int | None = None, state_path=None, save_every: int = 256,
               progress: Callable[[int, int], None] | None = None) -> ScoreResult:
    """The ``k`` highest-priority items of ``source`` rows ``[start, stop)`` under a pointwise strategy.

    Args:
      posterior, variables: a ``bal.posteriors`` family and its variables.
      source: the pool (any :class:`~bal.pools.sources.PoolSource`).
      key: PRNG key, split into a prediction and a selection key (as the loop does).
      k: how many to keep (fewer if the range holds fewer items).
      strategy: a pointwise strategy name of :mod:`bal.acquisition` (``bald``,
        ``entropy``, ``margin``, ``power_bald``, ``random`` ...), or a jittable
        ``score(chunk: bal.predict.Chunk, key) -> [n]`` (a stable object).
      params: the named strategy's parameters (e.g. ``{"coldness": 2.0}``).
      most_informative: top-k (True) or bottom-k (False).
      payload: per-candidate outputs to keep, from :data:`PAYLOADS`.
      num_samples, chunk_size, mesh: as :func:`bal.predict.predict` (the chunk
        size is fixed by the *whole* source's size, so every range of a pool
        uses the same chunk grid).
      start, stop: the rows to score; ``start`` should sit on the chunk grid
        (a multiple of the chunk size) for results identical to a whole-pool run.
      state_path: a file for resumable progress (see the module docstring).
      save_every: chunks between state writes.
      progress: called as ``progress(rows_done, rows_total)`` after each chunk.
    """
    n = len(source)
    stop = n if stop is None else int(stop)
    start = int(start)
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows [{start}, {stop}) are outside the pool of {n} items")
    if n == 0:
        raise ValueError("the pool is empty: nothing to score")
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise ValueError(f"save_every must be an integer >= 1; got {save_every!r}")
    payload = _check_payload(payload)
    top = RunningTopK(k)
    predict_key, select_key = jax.random.split(key)
    mesh = pool_mesh() if mesh is None else mesh
    chunk = resolve_chunk(n, chunk_size, mesh.devices.size)
    num_samples = posterior.num_samples_for(num_samples)
    reduce, strategy_id = _reducer(strategy, params, most_informative, payload)
    t0 = time.perf_counter()
    position = start
    state_path = None if state_path is None else pathlib.Path(state_path)
    fingerprint = None
    if state_path is not None:
        fingerprint = {"pool": n, "item_shape": list(source.item_shape), "range": [start, stop], "chunk": chunk,
                       "k": int(k), "strategy": strategy_id, "most_informative": bool(most_informative),
                       "payload": list(payload), "num_samples": int(num_samples), "key": _key_data(key),
                       "variables": _variables_digest(variables)}
        if state_path.exists():
            position, arrays = _read_state(state_path, fingerprint)
            top = RunningTopK.from_state(k, arrays)
    resumed_from = position

    def save():
        _write_state(state_path, {"version": STATE_VERSION, "job": fingerprint, "next": position}, top.state())

    if position < stop and isinstance(strategy, str) and acquisition.get(strategy, **(params or {})).name == "random" \
            and not payload:
        _score_random(source, select_key, top, position, stop, chunk, strategy, params, most_informative)
        position = stop
    elif position < stop:
        since_save = 0
        for pos, valid, (keys, extra) in _stream(posterior, variables, source, predict_key, reduce, (select_key,),
                                                 num_samples=num_samples, chunk=chunk, mesh=mesh, start=position,
                                                 stop=stop):
            top.update(keys, source.indices(pos, pos + valid), extra)
            position = pos + valid
            since_save += 1
            if state_path is not None and since_save >= save_every and position < stop:
                save()
                since_save = 0
            if progress is not None:
                progress(position - start, stop - start)
    if state_path is not None:
        save()
    r = top.result()
    return ScoreResult(r.indices, r.values, r.payload, stop - start, time.perf_counter() - t0, resumed_from)


def _score_random(source, key, top, start, stop, chunk, strategy, params, most_informative):
    """Random priorities need no prediction: the same keys as the loop's, without reading the pool."""
    s = acquisition.get(strategy, **(params or {}))
    for pos in range(start, stop, chunk):
        valid = min(chunk, stop - pos)
        scores = s.score(jnp.full((1, chunk, 2), math.log(0.5)), key=key, offset=pos,
                         most_informative=most_informative)
        top.update(np.asarray(ranking_keys(scores))[:valid], source.indices(pos, pos + valid))


def map_pool(posterior, variables, source: PoolSource, key, reduce: Callable, *, reduce_args: tuple = (),
             out=None, num_samples: int | None = None, chunk_size: int | None = None, mesh=None,
             start: int = 0, stop: int | None = None):
    """Per-item outputs of ``reduce`` over rows ``[start, stop)``, written into ``out``.

    ``reduce(chunk: bal.predict.Chunk, *reduce_args) -> [n, ...]`` (one array; a
    stable object). ``out`` is an array ``[stop - start, ...]`` to fill (e.g. an
    ``np.lib.format.open_memmap`` for a pool too big for memory); default: a
    new numpy array. Returns ``out``.
    """
    n = len(source)
    stop = n if stop is None else int(stop)
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows [{start}, {stop}) are outside the pool of {n} items")
    mesh = pool_mesh() if mesh is None else mesh
    chunk = resolve_chunk(n, chunk_size, mesh.devices.size)
    num_samples = posterior.num_samples_for(num_samples)
    for pos, valid, values in _stream(posterior, variables, source, key, reduce, reduce_args,
                                      num_samples=num_samples, chunk=chunk, mesh=mesh, start=start, stop=stop):
        if out is None:
            out = np.empty((stop - start,) + values.shape[1:], values.dtype)
        out[pos - start:pos - start + valid] = values
    return out
