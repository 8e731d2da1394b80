"""The active-learning loop as a pure kernel over a :class:`Task` (in the shape of blackjax).

    state = init(task, seed)                       # the initial labels, no model yet
    state, info = step(task, strategy, state)      # train, evaluate, score, select, label
    state = replay(task, strategy, state, acquired)  # a recorded cycle's acquisitions (resume)
    state, n = receive(task, state, answers)       # a human oracle's labels (tasks that queue)

A *task* (classification, segmentation, ...) owns everything that depends on
what a label is: the labeled state (a :class:`bal.data.Pool` of images, a
labeled-pixel mask, ...), training on it, the task's metrics, acquisition
(scoring units and choosing them within the cycle's budget, every unit with its
cost: an image costs 1, a crop its pixels) and ``apply(labels, acquired)``,
which hands the acquired units to the oracle and marks them labeled. The kernel
owns the cycle: keys, timing, when a run ends and the record of the cycle.

Every random choice of cycle ``c`` of a run derives from ``fold_in(key(seed),
c)``, so a cycle's outcome is a function of (seed, cycle, labeled state, and,
with warm starts, the previous cycle's weights) alone. That is what makes a
resumed run exact: ``replay`` folds ``apply`` over the recorded acquisitions
and the run continues as if it had never stopped.

A task whose oracle is people (:class:`bal.labeling.oracle.HumanTask`) only
queues the acquired units in ``apply``; ``receive`` labels the queued units
whose answers have arrived, a pure function of the state and the answers
(the driver decides which answers a cycle sees, and when a run pauses).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

__all__ = ["Task", "LoopState", "CycleInfo", "init", "step", "replay", "receive", "cycle_key"]


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


def receive(task: Task, state: LoopState, answers) -> tuple[LoopState, int]:
    """The state with the queued units that ``answers`` (``{unit: label}``) holds labeled, and how
    many (tasks without a queue: the state unchanged, 0)."""
    if not hasattr(task, "receive"):
        return state, 0
    labels, received = task.receive(state.labels, answers)
    return state._replace(labels=labels), int(received)


def step(task: Task, strategy: str, state: LoopState) -> tuple[LoopState, CycleInfo]:
    """Run cycle ``state.cycle``: train, evaluate, and (unless the run ends) acquire."""
    init_key, fit_key, eval_key, acq_key = jax.random.split(cycle_key(state.seed, state.cycle), 4)
    counts = task.counts(state.labels)
    t0 = time.perf_counter()
    variables, metrics = task.train_and_evaluate((init_key, fit_key, eval_key), state.labels,
                                                 state.variables, seed=state.seed, cycle=state.cycle)
    train_seconds = time.perf_counter() - t0
    final = task.finished(state.labels, state.cycle, metrics)
    acquired, extra, acq_seconds = np.zeros(0, np.int64), {}, 0.0
    if not final:
        t0 = time.perf_counter()
        acquired, extra = task.acquire(acq_key, strategy, state.labels, variables, seed=state.seed,
                                       cycle=state.cycle)
        acquired = np.asarray(acquired, np.int64)
        acq_seconds = time.perf_counter() - t0
        final = acquired.size == 0  # nothing left to acquire
    record = {
        "task": task.name, "strategy": strategy, "seed": state.seed, "cycle": state.cycle,
        **counts, **metrics, "train_seconds": round(train_seconds, 4),
        "acquisition_seconds": round(acq_seconds, 4), **extra,
        "acquired": [int(i) for i in acquired], "final": bool(final),
    }
    labels = state.labels if final else task.apply(state.labels, acquired, strategy)
    return LoopState(state.seed, state.cycle + 1, labels, variables, final), CycleInfo(record, acquired)
