"""A human oracle: the loop's labeling step answered from a label store instead of the dataset.

With ``oracle = "human"`` the loop's task is wrapped in a :class:`HumanTask`.
Everything but labeling is the wrapped task's: training, metrics, acquisition.
Labeling splits in two steps:

* ``apply(labels, acquired)`` (the kernel's, at the end of a cycle) only
  **queues** the acquired units: they leave the pool (no later cycle queries
  them again) but are not labeled;
* ``receive(labels, answers)`` (:func:`bal.active.kernel.receive`, before a
  cycle) labels the queued units whose answers arrived — the labels people
  imported into the run's label store (:mod:`bal.labeling.state`).

The semantics, exactly:

* The initial labeled set (and a ``validation_size`` hold-out) keep the
  dataset's labels: they are the seed set a project starts from. People
  answer the acquisitions only.
* Before every cycle the run receives every stored label of a queued unit.
  If units are queued and none arrived since the last cycle, the run
  **pauses** ("awaiting labels"): its queries go to the pending-queries file
  and the driver moves on. Resuming with no new label pauses again at once.
* **Partial imports**: a cycle runs as soon as at least one new label has
  arrived. It trains on the labeled units only; the queued units without a
  label stay queued — out of the pool and out of training — until their
  labels arrive (they are then received before the next cycle, in any later
  import) and are listed again in every export. The cycle still acquires its
  full ``k`` new units, but the label budget and the stopping checks count
  the queued units as spent (they are paid for once labeled), so a budget is
  never overdrawn.
* When a run ends (cycles or budget reached, pool exhausted) its queued
  units are dropped from the pending file: the final cycle trained on what
  was labeled by then.
* With every query answered before each resume, a run is exactly the
  dataset-oracle run of the same seed (same labeled sets, same records).

Only classification runs take a human oracle today (its labeled state is a
:class:`bal.active.tasks.classification.Labels`); the label store and the
exports/imports also carry detection boxes and segmentation crops for the
other tasks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from bal.labeling import state as lstate
from bal.labeling.state import parse_class  # noqa: F401 (re-exported)

__all__ = ["HumanLabels", "HumanTask", "class_names", "parse_class"]


class HumanLabels(NamedTuple):
    """The wrapped task's labeled state and the units queued for people to label."""

    labels: Any  # the wrapped task's labeled state (queued units are not labeled)
    queued: np.ndarray  # int64 [Q], in the order they were acquired


def class_names(config, num_classes: int) -> tuple[str, ...]:
    """The dataset's class names (``bal.data`` registry), else ``"0" .. "C-1"``."""
    try:
        from bal.data.registry import get_info

        names = tuple(get_info(config.dataset).class_names)
    except (ValueError, AttributeError):
        names = ()
    return names if len(names) == num_classes else tuple(str(i) for i in range(num_classes))


class HumanTask:
    """A classification task whose acquisitions are labeled by people (see the module docstring).

    Args:
      task: a :class:`bal.active.tasks.classification.ClassificationTask`.
      run_dir: the run directory holding the label store and the pending-queries file.
    """

    human = True

    def __init__(self, task, run_dir):
        if getattr(task, "name", None) != "classification" or not hasattr(task, "problem"):
            raise ValueError(f"oracle = 'human' is supported for classification runs only; got a "
                             f"{getattr(task, 'name', type(task).__name__)} task")
        self.task = task
        self.store = lstate.LabelStore(run_dir)
        self.run_dir = self.store.run_dir
        self.classes = class_names(task.config, task.problem.num_classes)

    def __getattr__(self, name):  # config, problem, posterior, expected_cycles, keeps_weights ...
        if name == "task":
            raise AttributeError(name)
        return getattr(self.task, name)

    @property
    def name(self) -> str:
        return self.task.name

    # -- the kernel's Task ----------------------------------------------------
    def initial_labels(self, seed: int) -> HumanLabels:
        return HumanLabels(self.task.initial_labels(seed), np.zeros(0, np.int64))

    def counts(self, labels: HumanLabels) -> dict:
        return self.task.counts(labels.labels)

    def train_and_evaluate(self, keys, labels: HumanLabels, variables, *, seed: int, cycle: int):
        return self.task.train_and_evaluate(keys, labels.labels, variables, seed=seed, cycle=cycle)

    def _taken(self, labels: HumanLabels):
        """The wrapped state with the queued units counted as labeled: acquisition never
        picks them again and the budget counts them (training never sees this view)."""
        inner = labels.labels
        if not labels.queued.size:
            return inner
        from bal.data import Pool

        pool = inner.pool
        return inner._replace(pool=Pool(np.union1d(pool.labeled, labels.queued),
                                         np.setdiff1d(pool.unlabeled, labels.queued), pool.num_examples))

    def finished(self, labels: HumanLabels, cycle: int, metrics: dict) -> bool:
        return self.task.finished(self._taken(labels), cycle, metrics)

    def acquire(self, key, strategy: str, labels: HumanLabels, variables, *, seed: int, cycle: int):
        return self.task.acquire(key, strategy, self._taken(labels), variables, seed=seed, cycle=cycle)

    def apply(self, labels: HumanLabels, acquired, strategy: str) -> HumanLabels:
        """Queue ``acquired`` for people to label (see :meth:`receive`)."""
        acquired = np.asarray(acquired, np.int64).reshape(-1)
        free = np.setdiff1d(labels.labels.pool.unlabeled, labels.queued)
        outside = np.setdiff1d(acquired, free)
        if outside.size or np.unique(acquired).size != acquired.size:
            raise ValueError(f"indices {outside[:10].tolist() or acquired.tolist()[:10]} are not in the "
                             "unlabeled pool (or repeat)")
        return HumanLabels(labels.labels, np.concatenate([labels.queued, acquired]))

    def receive(self, labels: HumanLabels, answers: dict) -> tuple[HumanLabels, int]:
        """Label the queued units that ``answers`` (``{index: class}``) holds; returns the new
        state and how many were labeled."""
        got = np.asarray([i for i in labels.queued.tolist() if i in answers], np.int64)
        if not got.size:
            return labels, 0
        inner = labels.labels
        y = inner.y.copy()
        for i in got.tolist():
            c = answers[i]
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(self.classes):
                raise ValueError(f"{self.store.path}: pool item {i} has label {c!r}, not a class index "
                                 f"0..{len(self.classes) - 1}")
            y[i] = c
        rest = np.asarray([i for i in labels.queued.tolist() if i not in answers], np.int64)
        return HumanLabels(inner._replace(pool=inner.pool.acquire(got), y=y), rest), int(got.size)

    def awaiting(self, labels: HumanLabels) -> bool:
        return bool(labels.queued.size)

    def answers(self, upto: int | None = None) -> dict:
        return self.store.answers(upto)

    # -- the pause -------------------------------------------------------------
    def predictions(self, variables, indices, *, strategy: str, seed: int, cycle: int) -> list[dict]:
        """The model's predicted class and its probability for ``indices`` (for pre-annotations)."""
        import jax

        from bal.active.kernel import cycle_key
        from bal.predict import predict, predictive

        idx = np.asarray(indices, np.int64)
        key = jax.random.fold_in(cycle_key(seed, cycle), 0x1AB)  # apart from the loop's keys
        log_p = np.asarray(predict(self.task.posterior, variables, self.task.problem.train_x[idx], key,
                                   chunk_size=self.task.config.chunk_size, reduce=predictive))
        probs = np.exp(log_p)
        version = lstate.model_version(strategy, seed, cycle)
        return [{"label": int(c), "class": self.classes[int(c)], "probability": round(float(p[c]), 6),
                 "model_version": version} for c, p in zip(probs.argmax(-1), probs)]

    def pause(self, strategy: str, seed: int, state, records: list[dict], *, fresh: bool):
        """Write run ``(strategy, seed)``'s queued units to the pending-queries file (none once
        the run is final). ``fresh``: ``state.variables`` is the model of the last record, so its
        predictions are (re)computed; otherwise earlier predictions are kept."""
        config = self.task.config
        meta = dict(task=self.name, dataset=getattr(config, "dataset", None), classes=self.classes)
        if state.final:
            return lstate.update_run(self.run_dir, strategy, seed, None, **meta)
        asked = {}
        for r in records:
            for rank, i in enumerate(r.get("acquired") or []):
                asked[i] = (r, rank)
        old = {q["index"]: q for q in (lstate.read_pending(self.run_dir) or {"queries": []})["queries"]
               if q.get("strategy") == strategy and q.get("seed") == seed}
        queued = state.labels.queued.tolist()
        predictions = {}
        if fresh and state.variables is not None and queued and records:
            predictions = dict(zip(queued, self.predictions(state.variables, queued, strategy=strategy, seed=seed,
                                                            cycle=records[-1]["cycle"])))
        queries = []
        for i in queued:
            r, rank = asked[i]
            score, source = lstate.query_score(r, rank)
            q = {"index": i, "file_name": lstate.file_name(i), "strategy": strategy, "seed": seed,
                 "cycle": r["cycle"], "rank": rank, "k": len(r["acquired"]), "score": score,
                 "score_source": source, "model_version": lstate.model_version(strategy, seed, r["cycle"])}
            prediction = predictions.get(i) or old.get(i, {}).get("prediction")
            if prediction:
                q["prediction"] = prediction
            queries.append(q)
        return lstate.update_run(self.run_dir, strategy, seed, queries, next_cycle=state.cycle,
                                 num_labels=int(state.labels.labels.pool.num_labeled), **meta)
