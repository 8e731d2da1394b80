"""Classification as a task of the loop: an image is the unit, and costs one label.

One cycle (Gal et al. 2017): train the posterior on the labeled set (from
scratch unless ``warm_start``), evaluate it on the test set, score the pool (or
a random ``pool_subset`` of it), take the best ``k`` (top-k is budgeted
selection where every unit costs 1; batch-aware strategies choose the batch
themselves), and ask the oracle for the labels. The oracle is any function
``indices -> labels`` (by default the dataset's own labels), so a human
labeling step can replace it.

The labeled state is a :class:`Labels`: the :class:`bal.data.Pool` split and
the labels the oracle gave. A ``validation_size`` set is held out of the pool
(neither labeled nor unlabeled) for early stopping.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable, NamedTuple

import jax
import numpy as np
import optax

from bal import data as bdata
from bal import metrics as bmetrics
from bal import posteriors as bposteriors
from bal.active import stopping
from bal.active import strategy as bstrategy
from bal.active.config import ExperimentConfig
from bal.active.tasks import check_model
from bal.predict import predict, predictive
from bal.train import fit

__all__ = ["Problem", "load_problem", "build_posterior", "ClassificationTask", "Labels", "Oracle"]

Oracle = Callable[[np.ndarray], np.ndarray]


def stack(trees):
    """Pytrees of equal structure stacked on a new leading run axis."""
    return jax.tree.map(lambda *leaves: jax.numpy.stack(leaves), *trees)


def unstack(tree, count: int) -> list:
    """The ``count`` pytrees of a tree stacked by :func:`stack`."""
    return [jax.tree.map(lambda leaf: leaf[r], tree) for r in range(count)]


@dataclasses.dataclass(frozen=True)
class Problem:
    """The arrays of one experiment: inputs scaled to [0, 1], ``[N, H, W, C]``.

    From a packed pool (``dataset = "pool:PATH"``) the inputs are
    :class:`bal.pools.PoolArray` views that read rows from the shards when
    indexed, so the pool is scored chunk by chunk without being loaded.
    """

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
    """Load and scale the dataset; build Repeated-MNIST copies when ``repeat > 1``.

    ``dataset = "pool:PATH"`` opens the packed pool folder ``PATH`` (``bal pool
    pack mnist PATH``: labels, classes and the test split) with
    :func:`bal.pools.view.open_labeled`: the inputs stay in the shards.
    """
    from bal.pools.view import POOL_PREFIX, open_labeled

    if config.dataset.startswith(POOL_PREFIX):
        path = config.dataset[len(POOL_PREFIX):]
        if not path:
            raise ValueError(f"dataset {config.dataset!r} names no folder: use dataset = \"pool:PATH\"")
        if config.repeat > 1:
            raise ValueError(f"repeat = {config.repeat} copies an in-memory dataset; pack the copies into the pool "
                             f"instead of dataset = {config.dataset!r}")
        packed = open_labeled(path)
        return Problem(packed.train_x, packed.train_y, packed.test_x, packed.test_y, packed.num_classes)
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
    kl_weight = config.kl_weight
    if config.kl_anneal_steps:  # KL warm-up (Sønderby et al. 2016); built once, so jit caches it
        kl_weight = optax.linear_schedule(0.0, config.kl_weight, config.kl_anneal_steps)
    return bposteriors.build(
        config.posterior, config.model, num_classes,
        num_samples=config.num_samples, num_members=config.num_members,
        regularization=config.regularization, estimator=config.estimator,
        kl_weight=kl_weight, train_samples=config.train_samples,
        model_kwargs=config.model_kwargs,
    )


class Labels(NamedTuple):
    """The labeled state: the pool split and the oracle's labels (``-1``: not asked)."""

    pool: bdata.Pool
    y: np.ndarray  # int32 [N]


class ClassificationTask:
    """The :class:`bal.active.kernel.Task` of image classification.

    Everything that can fail (dataset, model, posterior and strategy names,
    sizes) fails in the constructor, before a run directory is touched.
    """

    name = "classification"

    def __init__(self, config: ExperimentConfig, *, problem: Problem | None = None,
                 oracle: Oracle | None = None):
        self.config = config
        from bal.nn.estimators import check_estimator

        check_estimator(config.estimator)  # checked for every family: a typo is never silently ignored
        if config.data_dir is not None and pathlib.Path(config.data_dir).exists() \
                and not pathlib.Path(config.data_dir).is_dir():
            raise ValueError(f"data_dir {config.data_dir} is a file, not a directory")
        for name in config.all_strategies:
            bstrategy.resolve(name, config.acquisition_params)
        self.problem = load_problem(config) if problem is None else problem
        self.posterior = build_posterior(config, self.problem.num_classes)
        check_model(self.posterior, np.asarray(self.problem.train_x[:1]))
        self.oracle = self.problem.oracle if oracle is None else oracle
        self._stop_sets: dict[int, np.ndarray] = {}
        self._check_sizes()

    # -- the labeled state -------------------------------------------------
    def _initial_pool(self, seed: int) -> bdata.Pool:
        config, problem = self.config, self.problem
        n = problem.train_y.shape[0]
        if config.initial_labels + config.validation_size > n:
            raise ValueError(f"initial_labels={config.initial_labels} (+ validation_size={config.validation_size}) "
                             f"is larger than the training set ({n} examples)")
        if config.initial_balanced:
            per_class, rest = divmod(config.initial_labels, problem.num_classes)
            if rest or per_class == 0:
                raise ValueError(
                    f"a class-balanced initial set needs initial_labels to be a multiple of the "
                    f"{problem.num_classes} classes; got {config.initial_labels} "
                    "(or set initial_balanced = false)")
            pool = bdata.initial_pool(problem.train_y, per_class, seed, num_classes=problem.num_classes)
        else:
            pool = bdata.random_pool(n, config.initial_labels, seed)
        if config.validation_size:  # held out of both: neither labeled nor acquirable
            rng = np.random.default_rng([seed, 0x7A11D])
            held_out = rng.choice(pool.unlabeled, config.validation_size, replace=False)
            pool = bdata.Pool(pool.labeled, np.setdiff1d(pool.unlabeled, held_out), pool.num_examples)
        return pool

    def _check_sizes(self) -> None:
        config = self.config
        pool = self._initial_pool(config.seeds[0])
        k = config.acquisition_count(pool.num_labeled)
        available = pool.num_unlabeled if config.pool_subset is None else min(
            config.pool_subset, pool.num_unlabeled)
        if (config.cycles or 0) > 0 and k > available:
            raise ValueError(
                f"acquisition size {k} is larger than the pool "
                f"({available} items{' in the scored subset' if config.pool_subset else ''})")

    def initial_labels(self, seed: int) -> Labels:
        pool = self._initial_pool(seed)
        y = np.full(pool.num_examples, -1, np.int32)
        y[pool.labeled] = self.oracle(pool.labeled)
        return Labels(pool, y)

    def apply(self, labels: Labels, acquired: np.ndarray, strategy: str) -> Labels:
        pool = labels.pool.acquire(acquired)  # checks the indices before the oracle sees them
        y = labels.y.copy()
        y[acquired] = self.oracle(acquired)
        return Labels(pool, y)

    def counts(self, labels: Labels) -> dict:
        return {"num_labels": labels.pool.num_labeled}

    # -- one cycle -----------------------------------------------------------
    def _validation(self, labels: Labels):
        if self.config.patience is None:
            return None
        pool = labels.pool
        held_out = np.setdiff1d(np.arange(pool.num_examples), np.union1d(pool.labeled, pool.unlabeled))
        return self.problem.train_x[held_out], self.oracle(held_out)

    def _fit(self, init_key, fit_key, labels: Labels, variables, *, runs: bool = False, validation=None):
        """Train on the labeled set (``runs``: keys, labels and variables are lists over runs)."""
        config, problem, posterior = self.config, self.problem, self.posterior
        idx = [l.pool.labeled for l in labels] if runs else labels.pool.labeled
        x_lab = np.stack([problem.train_x[i] for i in idx]) if runs else problem.train_x[idx]
        y_lab = np.stack([l.y[i] for l, i in zip(labels, idx)]) if runs else labels.y[idx]
        if runs:
            fresh = [posterior.init(k, x[:1]) if v is None or not config.warm_start else v
                     for k, x, v in zip(init_key, x_lab, variables)]
            variables, fit_key = stack(fresh), jax.numpy.stack(fit_key)
        elif variables is None or not config.warm_start:
            variables = posterior.init(init_key, x_lab[:1])
        n = y_lab.shape[-1]
        l2 = 0.0 if config.weight_decay_per_example is None else config.weight_decay_per_example / n
        result = fit(posterior, variables, x_lab, y_lab, fit_key, num_epochs=config.epochs,
                     min_steps=config.min_steps, batch_size=config.batch_size,
                     learning_rate=config.learning_rate, weight_decay=config.weight_decay, l2=l2,
                     validation=validation, patience=config.patience, monitor="accuracy", runs=runs)
        return jax.block_until_ready(result.variables)

    def stop_set(self, seed: int) -> np.ndarray:
        """The ``stop_set_size`` pool items whose predictions the stopping criteria watch (fixed per
        seed, drawn from the initial unlabeled pool; they may be acquired later)."""
        if seed not in self._stop_sets:
            unlabeled = self._initial_pool(seed).unlabeled
            size = min(self.config.stop_set_size, unlabeled.size)
            self._stop_sets[seed] = np.sort(np.random.default_rng([seed, 0x5709]).choice(unlabeled, size,
                                                                                          replace=False))
        return self._stop_sets[seed]

    def _evaluate(self, variables, eval_key, seeds, *, runs: bool = False) -> list[dict]:
        """Test metrics (and the stop set's statistics) of one run, or of ``runs`` side by side."""
        problem, chunk = self.problem, self.config.chunk_size
        log_probs = predict(self.posterior, variables, problem.test_x, eval_key, chunk_size=chunk,
                            reduce=predictive, runs=runs)
        log_probs = log_probs if runs else log_probs[None]
        out = [{m: float(v) for m, v in bmetrics.evaluate(lp, problem.test_y).items()} for lp in log_probs]
        if self.config.stop_set_size:
            stop_x = np.stack([problem.train_x[self.stop_set(s)] for s in seeds]) if runs else \
                problem.train_x[self.stop_set(seeds[0])]
            stop_key = jax.vmap(jax.random.fold_in, in_axes=(0, None))(eval_key, 1) if runs else \
                jax.random.fold_in(eval_key, 1)
            stop = predict(self.posterior, variables, stop_x, stop_key, chunk_size=chunk, reduce=predictive,
                           runs=runs, per_run_x=runs)
            for metrics, lp in zip(out, stop if runs else stop[None]):
                metrics.update(stopping.stop_set_statistics(lp))
        return out

    def train_and_evaluate(self, keys, labels: Labels, variables, *, seed: int, cycle: int):
        init_key, fit_key, eval_key = keys
        variables = self._fit(init_key, fit_key, labels, variables, validation=self._validation(labels))
        return variables, self._evaluate(variables, eval_key, [seed])[0]

    def train_and_evaluate_runs(self, keys, labels, variables, *, seeds, cycle: int):
        """:meth:`train_and_evaluate` of several seeds side by side (one vmapped program;
        :func:`bal.active.kernel.step_runs`)."""
        if self.config.patience is not None:  # early stopping ends runs at different epochs
            return [self.train_and_evaluate(k, l, v, seed=s, cycle=cycle)
                    for k, l, v, s in zip(keys, labels, variables, seeds)]
        init_keys, fit_keys, eval_keys = zip(*keys)
        stacked = self._fit(init_keys, fit_keys, labels, variables, runs=True)
        metrics = self._evaluate(stacked, jax.numpy.stack(eval_keys), seeds, runs=True)
        return list(zip(unstack(stacked, len(labels)), metrics))

    def _num_cycles(self) -> int:
        """An upper bound on acquisition cycles (the budget may stop earlier)."""
        return self.config.cycles if self.config.cycles is not None else self.problem.train_y.shape[0]

    def finished(self, labels: Labels, cycle: int, metrics: dict) -> bool:
        config = self.config
        return (cycle >= self._num_cycles() or config.acquisition_count(labels.pool.num_labeled) <= 0
                or labels.pool.num_unlabeled == 0
                or (config.target_accuracy is not None and metrics["accuracy"] >= config.target_accuracy))

    def _candidates(self, labels: Labels, seed: int, cycle: int) -> np.ndarray:
        """The pool items scored this cycle: the unlabeled ones, or a random ``pool_subset``.

        With ``repeat`` copies of every image (Repeated MNIST) the subset is drawn by image,
        with all its unlabeled copies: a uniform subset of 2,000 of 180,000 items would hold
        almost no two copies of one image, hiding the redundancy the data set exists to test.
        """
        candidates, subset = labels.pool.unlabeled, self.config.pool_subset
        if subset is None or subset >= candidates.size:
            return candidates
        rng = np.random.default_rng([seed, cycle])
        if self.config.repeat == 1:
            return np.sort(rng.choice(candidates, subset, replace=False))
        images = candidates % (labels.pool.num_examples // self.config.repeat)  # copy c of i: i + c * N
        order = rng.permutation(np.unique(images))  # images in random order, each with all its copies
        rank = np.empty(images.max() + 1, np.int64)
        rank[order] = np.arange(order.size)
        by_image = candidates[np.lexsort((candidates, rank[images]))]
        return np.sort(by_image[:subset])

    def acquire(self, key, strategy: str, labels: Labels, variables, *, seed: int, cycle: int):
        return self.acquire_runs([key], strategy, [labels], [variables], seeds=[seed], cycle=cycle)[0]

    def acquire_runs(self, keys, strategy: str, labels, variables, *, seeds, cycle: int):
        """:meth:`acquire` of several seeds (side by side for pointwise strategies)."""
        config = self.config
        candidates = [self._candidates(l, s, cycle) for l, s in zip(labels, seeds)]
        k = min(config.acquisition_count(labels[0].pool.num_labeled), candidates[0].size)
        select = bstrategy.resolve(strategy, config.acquisition_params)
        common = dict(chunk_size=config.chunk_size, most_informative=config.most_informative)
        if len(labels) > 1 and select.side_by_side:
            picks = select.select_runs(self.posterior, stack(variables), self.problem.train_x, candidates,
                                       [l.pool.labeled for l in labels], k, keys, **common)
        else:
            picks = [select.select(self.posterior, v, self.problem.train_x, c, l.pool.labeled, k, key, **common)
                     for key, l, v, c in zip(keys, labels, variables, candidates)]
        out = []
        for c, (chosen, scores) in zip(candidates, picks):
            extra = {}
            if scores is not None:  # pointwise strategies: the priority of each acquired item (labeling tools)
                extra["scores"] = [round(float(v), 6) for v in scores]
            out.append((c[np.asarray(chosen)], extra))
        return out

    def expected_cycles(self) -> int:
        """Cycles a run will take (for progress / ETA), simulating the acquisition sizes."""
        config = self.config
        n = config.initial_labels
        pool = self.problem.train_y.shape[0] - n - config.validation_size
        cycles, limit = 0, self._num_cycles()
        while cycles < limit and pool > 0:
            k = config.acquisition_count(n)
            if k <= 0:
                break
            k = min(k, pool)
            n, pool, cycles = n + k, pool - k, cycles + 1
        return cycles + 1

    @property
    def keeps_weights(self) -> bool:
        """Whether a cycle starts from the previous cycle's weights (resume restores them)."""
        return self.config.warm_start
