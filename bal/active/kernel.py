"""The active-learning loop as a pure kernel over a :class:`Task` (in the shape of blackjax).

    state = init(task, seed)                       # the initial labels, no model yet
    state, info = step(task, strategy, state)      # train, evaluate, score, select, label
    [(state, info), ...] = step_runs(task, strategy, states)  # several seeds side by side
    state = replay(task, strategy, state, acquired)  # a recorded cycle's acquisitions (resume)
    state, n = receive(task, state, answers)       # a human oracle's labels (tasks that queue)

Who owns what, the keys of a cycle and why a resumed run is exact: ARCHITECTURE.md.
The state also keeps what the stopping criteria (:mod:`bal.active.stopping`) read of
each past cycle (``history``), so a resumed run decides exactly as before. A task
whose oracle is people (:class:`bal.labeling.oracle.HumanTask`) only queues the
acquired units in ``apply``; ``receive`` labels the queued units whose answers have
arrived, a pure function of the state and the answers.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from bal.active import stopping

__all__ = ["Task", "LoopState", "CycleInfo", "init", "step", "step_runs", "replay", "receive", "cycle_key"]


class Task(Protocol):
    """What the kernel needs of a task. Implementations: :mod:`bal.active.tasks`."""

    name: str  # "classification", "segmentation", ... (recorded in every record)

    def initial_labels(self, seed: int) -> Any:
        """The labeled state before the first cycle (the same for every strategy of a seed)."""

    def train_and_evaluate(self, keys: tuple, labels: Any, variables: Any, *, seed: int,
                           cycle: int) -> tuple[Any, dict]:
        """Train on ``labels`` (from ``variables`` when warm-starting, else from
        ``keys[0]``; ``keys = (init, fit, eval)``) and evaluate: ``(variables, record fields)``."""

    def finished(self, labels: Any, cycle: int, metrics: dict) -> bool:
        """True when the run ends after this cycle's evaluation (budget, cycles, target)."""

    def acquire(self, key, strategy: str, labels: Any, variables: Any, *, seed: int,
                cycle: int) -> tuple[np.ndarray, dict]:
        """The units to label next ``int [K]`` (K = 0: nothing left) and record fields."""

    def apply(self, labels: Any, acquired: np.ndarray, strategy: str) -> Any:
        """The labeled state with ``strategy``'s ``acquired`` units labeled (asks the oracle)."""

    def counts(self, labels: Any) -> dict:
        """Record fields describing the labeled state (e.g. ``num_labels``)."""

    # Optional, for tasks whose oracle answers later (people): ``apply`` queues the units and
    # ``receive(labels, answers) -> (labels, number labeled)`` labels the queued units ``answers``
    # (``{unit: label}``) holds.


class LoopState(NamedTuple):
    """One run's state between cycles."""

    seed: int
    cycle: int  # the next cycle to run
    labels: Any  # the task's labeled state
    variables: Any = None  # the last cycle's weights (used by warm starts)
    final: bool = False
    history: tuple = ()  # per past cycle, what the stopping criteria read (bal.active.stopping.trace)


class CycleInfo(NamedTuple):
    record: dict  # what results.jsonl keeps of the cycle
    acquired: np.ndarray  # int [K]


def cycle_key(seed: int, cycle: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), cycle)


def init(task: Task, seed: int) -> LoopState:
    return LoopState(seed, 0, task.initial_labels(seed))


def replay(task: Task, strategy: str, state: LoopState, acquired) -> LoopState:
    """The state after the recorded cycle whose acquisitions were ``acquired``."""
    acquired = np.asarray(acquired, np.int64)
    labels = task.apply(state.labels, acquired, strategy) if acquired.size else state.labels
    return state._replace(cycle=state.cycle + 1, labels=labels)


def replay_record(task: Task, strategy: str, state: LoopState, record: dict) -> LoopState:
    """:func:`replay` of a recorded cycle, keeping what the stopping criteria read of it."""
    state = replay(task, strategy, state, record.get("acquired") or [])
    return state._replace(history=stopping.extend(state.history, record))


def receive(task: Task, state: LoopState, answers) -> tuple[LoopState, int]:
    """The state with the queued units that ``answers`` (``{unit: label}``) holds labeled, and how
    many (tasks without a queue: the state unchanged, 0)."""
    if not hasattr(task, "receive"):
        return state, 0
    labels, received = task.receive(state.labels, answers)
    return state._replace(labels=labels), int(received)


def step(task: Task, strategy: str, state: LoopState) -> tuple[LoopState, CycleInfo]:
    """Run cycle ``state.cycle``: train, evaluate, and (unless the run ends) acquire."""
    return step_runs(task, strategy, [state])[0]


def _side_by_side(task, method: str, count: int) -> bool:
    return count > 1 and hasattr(task, method)


def step_runs(task: Task, strategy: str, states) -> list[tuple[LoopState, CycleInfo]]:
    """Run one cycle of several runs of ``strategy`` (different seeds, the same cycle and label
    counts), each with exactly the keys and outcome :func:`step` gives it alone.

    A task with ``train_and_evaluate_runs`` / ``acquire_runs`` (the same arguments as
    ``train_and_evaluate`` / ``acquire``, as lists over the runs, ``seeds`` for ``seed``) advances
    them side by side as one vmapped program; others run them one after another. Side by side,
    a run's ``train_seconds`` / ``acquisition_seconds`` are its share of the group's time.
    """
    states = list(states)
    keys = [jax.random.split(cycle_key(s.seed, s.cycle), 4) for s in states]  # init, fit, eval, acquire
    seeds, cycle = [s.seed for s in states], states[0].cycle
    if any(s.cycle != cycle for s in states):
        raise ValueError(f"runs side by side must be at the same cycle; got cycles {[s.cycle for s in states]}")
    t0 = time.perf_counter()
    if _side_by_side(task, "train_and_evaluate_runs", len(states)):
        trained = task.train_and_evaluate_runs([tuple(k[:3]) for k in keys], [s.labels for s in states],
                                               [s.variables for s in states], seeds=seeds, cycle=cycle)
    else:
        trained = [task.train_and_evaluate(tuple(k[:3]), s.labels, s.variables, seed=s.seed, cycle=cycle)
                   for k, s in zip(keys, states)]
    train_seconds = (time.perf_counter() - t0) / len(states)
    config = getattr(task, "config", None)
    trained = [(v, stopping.observe(s.history, m)) for s, (v, m) in zip(states, trained)]
    stopped = [stopping.stop_reason(config, s.history + (m,)) for s, (_, m) in zip(states, trained)]
    final = [task.finished(s.labels, cycle, m) or reason is not None
             for s, (_, m), reason in zip(states, trained, stopped)]
    acquiring = [i for i, f in enumerate(final) if not f]
    picks = {i: (np.zeros(0, np.int64), {}) for i in range(len(states))}
    acq_seconds = 0.0
    if acquiring:
        t0 = time.perf_counter()
        args = [(keys[i][3], states[i].labels, trained[i][0]) for i in acquiring]
        if _side_by_side(task, "acquire_runs", len(acquiring)):
            out = task.acquire_runs([a[0] for a in args], strategy, [a[1] for a in args], [a[2] for a in args],
                                    seeds=[seeds[i] for i in acquiring], cycle=cycle)
        else:
            out = [task.acquire(k, strategy, labels, variables, seed=seeds[i], cycle=cycle)
                   for i, (k, labels, variables) in zip(acquiring, args)]
        acq_seconds = (time.perf_counter() - t0) / len(acquiring)
        for i, (acquired, extra) in zip(acquiring, out):
            picks[i] = (np.asarray(acquired, np.int64), extra)
            final[i] = picks[i][0].size == 0  # nothing left to acquire
    results = []
    for i, (state, (variables, metrics)) in enumerate(zip(states, trained)):
        acquired, extra = picks[i]
        record = {
            "task": task.name, "strategy": strategy, "seed": state.seed, "cycle": cycle,
            **task.counts(state.labels), **metrics, "train_seconds": round(train_seconds, 4),
            "acquisition_seconds": round(acq_seconds if i in acquiring else 0.0, 4), **extra,
            "acquired": [int(j) for j in acquired], "final": bool(final[i]),
            **({"stopped_by": stopped[i]} if stopped[i] else {}),
        }
        labels = state.labels if final[i] else task.apply(state.labels, acquired, strategy)
        history = stopping.extend(state.history, metrics)
        results.append((LoopState(state.seed, cycle + 1, labels, variables, final[i], history),
                        CycleInfo(record, acquired)))
    return results
