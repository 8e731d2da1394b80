"""The active-learning loop: train, evaluate, score the pool, select, label.

One *run* is one acquisition strategy with one seed. Its state is the pool
(labeled and unlabeled indices, :class:`bal.data.Pool`) and the cycle number;
every random choice of cycle ``c`` derives from ``fold_in(key(seed), c)``, so a
cycle's outcome is a function of (seed, cycle, labeled set) alone. That is what
makes ``--resume`` exact: the labeled set after the last completed cycle is
replayed from the ``acquired`` indices in ``results.jsonl`` and the run goes
on as if it had never stopped.

One cycle (Gal et al. 2017): train the posterior on the labeled set (from
scratch unless ``warm_start``), evaluate it on the test set, score the pool
(or a random subset of it), select, ask the oracle for the labels, and append
the record. The oracle is any function ``indices -> labels`` (by default the
dataset's own labels), so a human labeling step can replace it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import numpy as np

from bal import data as bdata
from bal import metrics as bmetrics
from bal import posteriors as bposteriors
from bal.active import strategy as bstrategy
from bal.active.config import ExperimentConfig
from bal.active.results import RunDirectory, runs
from bal.predict import predict, predictive
from bal.train import fit

__all__ = ["Problem", "load_problem", "run_experiment", "run_one", "Oracle"]

Oracle = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Problem:
    """The arrays of one experiment: inputs scaled to [0, 1], ``[N, H, W, C]``."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int

    def oracle(self, indices: np.ndarray) -> np.ndarray:
        """The default oracle: the dataset's own labels of ``indices``."""
        return self.train_y[np.asarray(indices)]


def _scale(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255.0


def load_problem(config: ExperimentConfig) -> Problem:
    """Load and scale the dataset; build Repeated-MNIST copies when ``repeat > 1``."""
    train = bdata.load(config.dataset, split="train", data_dir=config.data_dir)
    test = bdata.load(config.dataset, split="test", data_dir=config.data_dir)
    x, y = _scale(train.images), train.labels.astype(np.int32)
    if config.repeat > 1:
        # Repeated MNIST (Kirsch et al. 2019): every image `repeat` times, each copy
        # with its own isotropic Gaussian noise; fixed seed so every run sees one pool
        rng = np.random.default_rng(20190101)
        copies = [x + config.repeat_noise * rng.standard_normal(x.shape, dtype=np.float32)
                  for _ in range(config.repeat)]
        x, y = np.concatenate(copies), np.tile(y, config.repeat)
    return Problem(x, y, _scale(test.images), test.labels.astype(np.int32), train.num_classes)


def build_posterior(config: ExperimentConfig, num_classes: int):
    return bposteriors.build(
        config.posterior, config.model, num_classes,
        num_samples=config.num_samples, num_members=config.num_members,
        regularization=config.regularization, estimator=config.estimator,
        model_kwargs=config.model_kwargs,
    )


def initial_pool(config: ExperimentConfig, problem: Problem, seed: int) -> bdata.Pool:
    n = problem.train_y.shape[0]
    if config.initial_labels > n:
        raise ValueError(
            f"initial_labels={config.initial_labels} is larger than the training set ({n} examples)"
        )
    if config.initial_balanced:
        per_class, rest = divmod(config.initial_labels, problem.num_classes)
        if rest or per_class == 0:
            raise ValueError(
                f"a class-balanced initial set needs initial_labels to be a multiple of the "
                f"{problem.num_classes} classes; got {config.initial_labels} "
                "(or set initial_balanced = false)"
            )
        return bdata.initial_pool(problem.train_y, per_class, seed, num_classes=problem.num_classes)
    return bdata.random_pool(n, config.initial_labels, seed)


def check_experiment(config: ExperimentConfig, problem: Problem) -> None:
    """Every check that can fail, before any training starts."""
    for name in config.all_strategies:
        bstrategy.resolve(name, config.acquisition_params)
    pool = initial_pool(config, problem, config.seeds[0])
    k = config.acquisition_count(pool.num_labeled)
    available = pool.num_unlabeled if config.pool_subset is None else min(
        config.pool_subset, pool.num_unlabeled)
    if (config.cycles or 0) > 0 and k > available:
        raise ValueError(
            f"acquisition size {k} is larger than the pool "
            f"({available} items{' in the scored subset' if config.pool_subset else ''})"
        )


def _num_cycles(config: ExperimentConfig, pool_size: int) -> int:
    """An upper bound on acquisition cycles (the budget may stop earlier)."""
    if config.cycles is not None:
        return config.cycles
    return pool_size  # label_budget stops the run


def run_one(config, problem, posterior, strategy: str, seed: int, run_dir: RunDirectory,
            done: list[dict], *, oracle: Oracle | None = None, on_cycle=None) -> list[dict]:
    """Run (or resume) one strategy with one seed; returns all its records."""
    oracle = problem.oracle if oracle is None else oracle
    pool = initial_pool(config, problem, seed)
    labels = np.full(problem.train_y.shape[0], -1, np.int32)
    labels[pool.labeled] = oracle(pool.labeled)
    records = list(done)
    for r in records:  # replay the completed cycles
        if r["num_labels"] != pool.num_labeled:
            raise ValueError(
                f"{run_dir.results_path}: record of cycle {r['cycle']} ({strategy}, seed {seed}) "
                f"has {r['num_labels']} labels but the replay has {pool.num_labeled}"
            )
        if r.get("acquired"):
            acquired = np.asarray(r["acquired"], np.int64)
            labels[acquired] = oracle(acquired)
            pool = pool.acquire(acquired)
    if records and records[-1].get("final"):
        return records
    base_key = jax.random.key(seed)
    select = bstrategy.resolve(strategy, config.acquisition_params)
    variables = None
    for cycle in range(len(records), _num_cycles(config, problem.train_y.shape[0]) + 1):
        init_key, fit_key, eval_key, acq_key = jax.random.split(jax.random.fold_in(base_key, cycle), 4)
        x_lab, y_lab = problem.train_x[pool.labeled], labels[pool.labeled]
        t0 = time.perf_counter()
        if variables is None or not config.warm_start:
            variables = posterior.init(init_key, x_lab[:1])
        result = fit(posterior, variables, x_lab, y_lab, fit_key, num_epochs=config.epochs,
                     batch_size=config.batch_size, learning_rate=config.learning_rate,
                     weight_decay=config.weight_decay)
        variables = result.variables
        jax.block_until_ready(variables)
        train_seconds = time.perf_counter() - t0
        test_log_probs = predict(posterior, variables, problem.test_x, eval_key,
                             chunk_size=config.chunk_size, reduce=predictive)
        scores = bmetrics.evaluate(test_log_probs, problem.test_y)
        k = config.acquisition_count(pool.num_labeled)
        final = (cycle == _num_cycles(config, problem.train_y.shape[0]) or k <= 0
                 or pool.num_unlabeled == 0)
        acquired, acq_seconds = [], 0.0
        if not final:
            t0 = time.perf_counter()
            candidates = pool.unlabeled
            if config.pool_subset is not None and config.pool_subset < candidates.size:
                rng = np.random.default_rng([seed, cycle])
                candidates = np.sort(rng.choice(candidates, config.pool_subset, replace=False))
            k = min(k, candidates.size)
            chosen = select(posterior, variables, problem.train_x, candidates, pool.labeled, k,
                            acq_key, chunk_size=config.chunk_size,
                            most_informative=config.most_informative)
            acquired = candidates[np.asarray(chosen)]
            acq_seconds = time.perf_counter() - t0
        record = {
            "strategy": strategy, "seed": seed, "cycle": cycle, "num_labels": int(pool.num_labeled),
            **{m: float(v) for m, v in scores.items()},
            "train_seconds": round(train_seconds, 4), "acquisition_seconds": round(acq_seconds, 4),
            "acquired": [int(i) for i in acquired], "final": bool(final),
        }
        run_dir.append(record)
        records.append(record)
        if on_cycle is not None:
            on_cycle(record)
        if final:
            break
        acquired = np.asarray(acquired, np.int64)
        labels[acquired] = oracle(acquired)
        pool = pool.acquire(acquired)
    return records


def run_experiment(config: ExperimentConfig, out_dir, *, resume: bool = False,
                   overwrite: bool = False, problem: Problem | None = None,
                   oracle: Oracle | None = None, progress=None) -> list[dict]:
    """Run every strategy x seed of ``config``, appending records to ``out_dir``.

    Returns all records (resumed ones included). ``progress`` is an optional
    object with ``start(total_cycles)``, ``update(record)`` and ``close()``.
    """
    problem = load_problem(config) if problem is None else problem
    check_experiment(config, problem)
    run_dir = RunDirectory(out_dir)
    done = runs(run_dir.prepare(config, resume=resume, overwrite=overwrite))
    posterior = build_posterior(config, problem.num_classes)
    total = len(config.all_strategies) * len(config.seeds) * (_expected_cycles(config, problem) + 1)
    finished = sum(len(v) for v in done.values())
    if progress is not None:
        progress.start(total, finished)
    out = []
    try:
        # seed-major: an interrupted experiment holds every strategy for the seeds done
        for seed in config.seeds:
            for strategy in config.all_strategies:
                out += run_one(config, problem, posterior, strategy, seed, run_dir,
                               done.get((strategy, seed), []), oracle=oracle,
                               on_cycle=None if progress is None else progress.update)
    finally:
        if progress is not None:
            progress.close()
    return out


def _expected_cycles(config: ExperimentConfig, problem: Problem) -> int:
    """Cycles a run will take (for progress/ETA), simulating the acquisition sizes."""
    n = config.initial_labels
    pool = problem.train_y.shape[0] - n
    cycles = 0
    limit = config.cycles if config.cycles is not None else pool
    while cycles < limit and pool > 0:
        k = config.acquisition_count(n)
        if k <= 0:
            break
        k = min(k, pool)
        n, pool, cycles = n + k, pool - k, cycles + 1
    return cycles
