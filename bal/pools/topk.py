"""An exact running top-k on the host, with per-item payloads, mergeable across chunks and processes.

Items are ranked by ``(value descending, global index ascending)`` — the
tie rule of :func:`bal.acquisition.selection.top_k` (lowest index wins), so a
top-k kept over chunks, over a resumed stream or over the local top-k's of
several processes equals the top-k of the whole pool at once. Values are
ranking keys (:func:`bal.acquisition.selection.ranking_keys`: NaN -> ``-inf``,
``-0.0`` -> ``+0.0``); :meth:`RunningTopK.update` applies that mapping again
on the host, so raw scores are fine too.

Memory is ``O(k)``: once ``k`` items are kept, a new item enters only when it
beats the current k-th, and accepted items are buffered and compacted (one
sort of at most ``2k`` rows) when the buffer reaches ``k``, so the cost is
amortised ``O(log k)`` per accepted item and ``O(1)`` per rejected one.

A payload is a dict of per-item arrays (e.g. embeddings ``[n, D]``,
per-sample log-probabilities ``[n, S, C]``) that travel with the items: the
candidates a batch-aware method needs later.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

__all__ = ["TopKResult", "RunningTopK", "merge_results", "ranking_keys_np"]

#: index of an empty slot (sorts after every real item)
EMPTY_INDEX = np.iinfo(np.int64).max


class TopKResult(NamedTuple):
    """Items in rank order: ``values float32 [m]`` (ranking keys, descending), ``indices int64 [m]``
    (global pool indices), ``payload`` (dict of ``[m, ...]`` arrays); ``m = min(k, items seen)``."""

    values: np.ndarray
    indices: np.ndarray
    payload: dict


def ranking_keys_np(values) -> np.ndarray:
    """NaN -> ``-inf``, ``-0.0`` -> ``+0.0`` (float32), as :func:`bal.acquisition.selection.ranking_keys`."""
    v = np.asarray(values, np.float32)
    v = np.where(np.isnan(v), np.float32(-np.inf), v)
    return np.where(v == 0, np.float32(0.0), v).astype(np.float32)


def _rank_order(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.lexsort((indices, -values.astype(np.float64)))


class RunningTopK:
    """The ``k`` best items seen so far.

    Args:
      k: how many to keep (``>= 1``).
    """

    def __init__(self, k: int):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1; got {k!r}")
        self.k = int(k)
        self._values = np.zeros(0, np.float32)
        self._indices = np.zeros(0, np.int64)
        self._payload: dict | None = None
        self._pending: list = []
        self._num_pending = 0
        self._threshold = None  # (value, index) of the k-th item once k are kept

    # ------------------------------------------------------------------ updates
    def update(self, values, indices, payload: Mapping[str, np.ndarray] | None = None) -> None:
        """Offer items ``values [n]`` with global ``indices [n]`` (and ``payload`` arrays ``[n, ...]``)."""
        values = ranking_keys_np(values)
        indices = np.asarray(indices, np.int64)
        if values.shape != indices.shape or values.ndim != 1:
            raise ValueError(f"values and indices must both have shape [n]; got {values.shape} and {indices.shape}")
        payload = {} if payload is None else {name: np.asarray(a) for name, a in payload.items()}
        for name, a in payload.items():
            if a.shape[:1] != values.shape:
                raise ValueError(f"payload {name!r} has {a.shape[:1]} rows for {values.shape[0]} items")
        if self._payload is None:
            self._payload = {name: np.zeros((0,) + a.shape[1:], a.dtype) for name, a in payload.items()}
        elif set(payload) != set(self._payload):
            raise ValueError(f"payload names {sorted(payload)} differ from the earlier {sorted(self._payload)}")
        if self._threshold is not None:
            tv, ti = self._threshold
            keep = (values > tv) | ((values == tv) & (indices < ti))
            if not keep.all():
                values, indices = values[keep], indices[keep]
                payload = {name: a[keep] for name, a in payload.items()}
        if values.size == 0:
            return
        self._pending.append((values, indices, payload))
        self._num_pending += values.size
        if self._num_pending >= self.k:
            self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        values = np.concatenate([self._values] + [p[0] for p in self._pending])
        indices = np.concatenate([self._indices] + [p[1] for p in self._pending])
        payload = {name: np.concatenate([kept] + [p[2][name] for p in self._pending])
                   for name, kept in (self._payload or {}).items()}
        self._pending, self._num_pending = [], 0
        if values.size > self.k or not _is_ranked(values, indices):
            order = _rank_order(values, indices)[:self.k]
            values, indices = values[order], indices[order]
            payload = {name: a[order] for name, a in payload.items()}
        self._values, self._indices, self._payload = values, indices, payload
        if values.size == self.k:
            self._threshold = (values[-1], indices[-1])

    def merge(self, other: "RunningTopK | TopKResult") -> None:
        """Merge another top-k (e.g. another process's) into this one."""
        r = other.result() if isinstance(other, RunningTopK) else other
        self.update(r.values, r.indices, r.payload)

    # ------------------------------------------------------------------ results and state
    def result(self) -> TopKResult:
        """The kept items in rank order (at most ``k``; fewer if fewer were offered)."""
        self._compact()
        return TopKResult(self._values.copy(), self._indices.copy(),
                          {name: a.copy() for name, a in (self._payload or {}).items()})

    def __len__(self) -> int:
        self._compact()
        return int(self._values.size)

    def state(self) -> dict:
        """Arrays to save (see :meth:`from_state`): ``values``, ``indices``, ``payload/<name>``."""
        r = self.result()
        out = {"values": r.values, "indices": r.indices}
        out.update({f"payload/{name}": a for name, a in r.payload.items()})
        return out

    @classmethod
    def from_state(cls, k: int, arrays: Mapping[str, np.ndarray]) -> "RunningTopK":
        top = cls(k)
        payload = {name[len("payload/"):]: np.asarray(a) for name, a in arrays.items() if name.startswith("payload/")}
        if np.asarray(arrays["values"]).size:  # an empty state fixes no payload names yet
            top.update(arrays["values"], arrays["indices"], payload)
            top._compact()
        return top


def _is_ranked(values, indices) -> bool:
    if values.size < 2:
        return True
    a, b = values[:-1], values[1:]
    return bool(np.all((a > b) | ((a == b) & (indices[:-1] < indices[1:]))))


def merge_results(results, k: int) -> TopKResult:
    """The top-``k`` of several :class:`TopKResult` (e.g. one per process), by the same rule."""
    top = RunningTopK(k)
    for r in results:
        top.merge(r)
    return top.result()
