"""The segmentation active-learning loop: train on labeled pixels, evaluate, score units, label.

One *run* is one strategy with one seed. Its state is the labeled-pixel mask
``labeled bool [N, H, W]``: ``initial_images`` whole images (chosen per seed,
the same for every strategy), then the units each cycle acquires. Every
random choice of cycle ``c`` derives from ``fold_in(key(seed), c)``, so a
resumed run replays the ``acquired`` units of ``results.jsonl`` onto the
initial mask and goes on exactly as if it had never stopped.

One cycle: train the posterior (from a fresh initialisation, or from the
``pretrained`` checkpoint) on every image with a labeled pixel, unlabeled
pixels set to the ignore label 255 so the loss skips them; evaluate on the
test set (mIoU, pixel accuracy, per-class IoU, NLL); score the units
(:mod:`bal.active.segmentation.acquire`), take them best first within the
cycle's pixel budget, and append the record::

    {"strategy": "bald_crops", "seed": 0, "cycle": 2, "unit": "crop",
     "num_labeled_pixels": 92160, "num_labels": 92160, "num_labeled_images": 41,
     "mean_iou": 0.52, "pixel_accuracy": 0.95, "nll": 0.16, "iou": [...],
     "iou_crosswalk": 0.31, ..., "train_seconds": 9.1, "acquisition_seconds": 2.0,
     "acquired": [flat unit ids], "acquired_pixels": 30720, "final": false}

``num_labels`` repeats ``num_labeled_pixels`` so :mod:`bal.report` works on
these records; draw curves with
``plot_learning_curves(dir, metric="mean_iou", x_key="num_labeled_pixels")``.

Variational posteriors: the NLL is a mean over labeled pixels, so the KL term
is divided by the number of labeled pixels (the per-pixel ELBO).
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import numpy as np

from bal import checkpoint
from bal import posteriors as bposteriors
from bal.active.results import RunDirectory, runs
from bal.active.segmentation import acquire
from bal.active.segmentation.config import SegmentationConfig, parse_strategy
from bal.predict import Chunk, predict
from bal.segmentation.metrics import IGNORE_LABEL
from bal.segmentation.metrics import evaluate as seg_evaluate
from bal.train import fit

__all__ = ["SegmentationProblem", "load_segmentation_problem", "build_posterior", "run_segmentation",
           "run_segmentation_one", "load_pretrained", "evaluate_segmentation"]


@dataclasses.dataclass(frozen=True)
class SegmentationProblem:
    """Images ``float32 [N, H, W, C_in]`` in [0, 1], masks ``int32 [N, H, W]`` (255 = void)."""

    train_images: np.ndarray
    train_masks: np.ndarray
    test_images: np.ndarray
    test_masks: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_segmentation_problem(config: SegmentationConfig) -> SegmentationProblem:
    from bal.data.segmentation import load_road_markings

    kw = dict(num_train=config.num_train, num_test=config.num_test, seed=config.data_seed,
              size=config.image_size)
    train, test = load_road_markings("train", **kw), load_road_markings("test", **kw)
    return SegmentationProblem(train.images, train.masks, test.images, test.masks, tuple(train.class_names))


def build_posterior(config: SegmentationConfig, num_classes: int):
    return bposteriors.build(config.posterior, config.model, num_classes, num_samples=config.num_samples,
                             num_members=config.num_members, model_kwargs=config.model_kwargs,
                             class_weights=config.class_weights)


def load_pretrained(path, posterior, example_x):
    """Variables restored from an orbax checkpoint of the variables (or of ``{"variables": ...}``).

    Raises:
      FileNotFoundError: no checkpoint at ``path``.
      ValueError: the checkpoint does not fit this posterior's model.
    """
    if not checkpoint.exists(path):
        raise FileNotFoundError(f"no pretrained checkpoint at {path} (save one with "
                                "bal.checkpoint.save(path, variables))")
    like = posterior.init(jax.random.key(0), example_x)
    errors = []
    for wrap in (False, True):
        try:
            restored = checkpoint.restore(path, like={"variables": like} if wrap else like)
            return restored["variables"] if wrap else restored
        except Exception as err:  # orbax raises various types on a structure mismatch
            errors.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
    raise ValueError(f"the checkpoint at {path} does not hold variables of this posterior/model "
                     f"({config_hint(posterior)}): {errors[0]}")


def config_hint(posterior) -> str:
    return f"{type(posterior).__name__} over {type(getattr(posterior, 'member', posterior).model).__name__}"


def _predictive(chunk: Chunk):
    """``[n, H, W, C]`` log of the Monte Carlo predictive."""
    return jax.nn.logsumexp(chunk.log_probs, axis=0) - math.log(chunk.log_probs.shape[0])


def evaluate_segmentation(posterior, variables, images, masks, key, *, num_samples=None,
                          chunk_size: int = 16, class_names=None) -> dict:
    """Test metrics: ``mean_iou``, ``pixel_accuracy``, ``iou`` (list over classes), ``nll``
    (mean over non-void pixels of ``-log p̄(y)``) and ``iou_<class name>`` per class."""
    log_p = predict(posterior, variables, images, key, num_samples=num_samples, chunk_size=chunk_size,
                    reduce=_predictive)
    out = seg_evaluate(log_p, masks)
    valid = masks != IGNORE_LABEL
    picked = np.take_along_axis(log_p, np.where(valid, masks, 0)[..., None], axis=-1)[..., 0]
    out["nll"] = float(-picked[valid].mean()) if valid.any() else float("nan")
    for name, v in zip(class_names or (), out["iou"]):
        out[f"iou_{name}"] = v
    return out


def _initial_mask(config: SegmentationConfig, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng([int(seed), 8])
    labeled = np.zeros(shape, bool)
    labeled[rng.choice(shape[0], config.initial_images, replace=False)] = True
    return labeled


def run_segmentation_one(config: SegmentationConfig, problem: SegmentationProblem, posterior, strategy: str,
                         seed: int, run_dir: RunDirectory, done: list[dict], *, pretrained=None,
                         cache: dict | None = None, on_cycle=None) -> list[dict]:
    """Run (or resume) one strategy with one seed; returns all its records.

    ``cache`` (optional dict) shares the cycle-0 model between strategies of one
    seed: cycle 0 trains on the same initial images with the same keys for all.
    """
    parsed = parse_strategy(strategy)
    height, width = config.image_size
    grid = acquire.unit_grid(parsed, height, width, config.grid_rows, config.grid_cols)
    labeled = _initial_mask(config, problem.train_masks.shape, seed)
    records = list(done)
    for r in records:  # replay the completed cycles
        if r["num_labeled_pixels"] != int(labeled.sum()):
            raise ValueError(f"{run_dir.results_path}: record of cycle {r['cycle']} ({strategy}, seed {seed}) has "
                             f"{r['num_labeled_pixels']} labeled pixels but the replay has {int(labeled.sum())}")
        labeled = acquire.mark_acquired(labeled, r.get("acquired") or [], grid)
    if records and records[-1].get("final"):
        return records
    base_key = jax.random.key(seed)
    for cycle in range(len(records), config.cycles + 1):
        init_key, fit_key, eval_key, acq_key = jax.random.split(jax.random.fold_in(base_key, cycle), 4)
        num_pixels = int(labeled.sum())
        cached = cache.get(seed) if (cache is not None and cycle == 0) else None
        if cached is None:
            t0 = time.perf_counter()
            images = np.flatnonzero(labeled.any(axis=(1, 2)))
            x = problem.train_images[images]
            y = np.where(labeled[images], problem.train_masks[images], IGNORE_LABEL).astype(np.int32)
            variables = posterior.init(init_key, x[:1]) if pretrained is None else pretrained
            steps = config.train_steps(num_pixels, len(images))
            result = fit(posterior, variables, x, y, fit_key, num_steps=steps, batch_size=config.batch_size,
                         learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                         num_train=max(1, int((y != IGNORE_LABEL).sum())))
            variables = jax.block_until_ready(result.variables)
            train_seconds = time.perf_counter() - t0
            scores = evaluate_segmentation(posterior, variables, problem.test_images, problem.test_masks,
                                           eval_key, num_samples=config.num_samples, chunk_size=config.chunk_size,
                                           class_names=problem.class_names)
            if cache is not None and cycle == 0:
                cache[seed] = (variables, scores, train_seconds, steps)
        else:
            variables, scores, train_seconds, steps = cached
        final = cycle == config.cycles or labeled.all()
        acquired, spent, acq_seconds = np.zeros(0, np.int64), 0, 0.0
        if not final:
            t0 = time.perf_counter()
            unit_scores = acquire.unit_scores(
                parsed, grid, posterior, variables, problem.train_images, labeled, acq_key,
                reduction=config.reduction, q=config.q, target_classes=config.target_classes,
                target_strength=config.target_strength, num_samples=config.num_samples,
                chunk_size=config.chunk_size)
            acquired, spent = acquire.select_within_budget(unit_scores, acquire.unit_costs(labeled, grid),
                                                           config.budget_pixels)
            acq_seconds = time.perf_counter() - t0
            final = acquired.size == 0  # nothing fits: the pool is exhausted for this unit
        record = {
            "strategy": strategy, "seed": seed, "cycle": cycle, "unit": parsed.unit,
            "num_labeled_pixels": num_pixels, "num_labels": num_pixels,
            "num_labeled_images": int(labeled.any(axis=(1, 2)).sum()), "train_steps": int(steps),
            **scores, "train_seconds": round(train_seconds, 4), "acquisition_seconds": round(acq_seconds, 4),
            "acquired": [int(i) for i in acquired], "acquired_pixels": int(spent), "final": bool(final),
        }
        run_dir.append(record)
        records.append(record)
        if on_cycle is not None:
            on_cycle(record)
        if final:
            break
        labeled = acquire.mark_acquired(labeled, acquired, grid)
    return records


def run_segmentation(config: SegmentationConfig, out_dir, *, resume: bool = False, overwrite: bool = False,
                     problem: SegmentationProblem | None = None, progress=None) -> list[dict]:
    """Run every strategy x seed of ``config`` (seed-major), appending records to ``out_dir``.

    Returns all records (resumed ones included). ``progress``: optional object
    with ``start(total, done)``, ``update(record)``, ``close()``
    (:class:`bal.active.progress.Progress`).

    Raises:
      ValueError / FileNotFoundError: bad settings, a missing pretrained
        checkpoint, or a directory holding another config — before any training.
    """
    if not isinstance(config, SegmentationConfig):
        raise ValueError(f"config must be a SegmentationConfig; got {type(config).__name__}")
    if config.pretrained is not None and not checkpoint.exists(config.pretrained):
        raise FileNotFoundError(f"no pretrained checkpoint at {config.pretrained} (save one with "
                                "bal.checkpoint.save(path, variables))")
    problem = load_segmentation_problem(config) if problem is None else problem
    if tuple(problem.train_images.shape[1:3]) != tuple(config.image_size):
        raise ValueError(f"the problem's images are {problem.train_images.shape[1:3]} but image_size is "
                         f"{config.image_size}")
    for c in config.target_classes:
        if not 0 <= c < problem.num_classes:
            raise ValueError(f"target class {c} is out of range: the dataset has classes 0..{problem.num_classes - 1} "
                             f"({', '.join(problem.class_names)})")
    posterior = build_posterior(config, problem.num_classes)
    pretrained = None
    if config.pretrained is not None:
        pretrained = load_pretrained(config.pretrained, posterior, problem.train_images[:1])
    run_dir = RunDirectory(out_dir, config_class=SegmentationConfig)
    done = runs(run_dir.prepare(config, resume=resume, overwrite=overwrite))
    total = len(config.strategies) * len(config.seeds) * (config.cycles + 1)
    if progress is not None:
        progress.start(total, sum(len(v) for v in done.values()))
    out = []
    try:
        for seed in config.seeds:
            cache = {}
            for strategy in config.strategies:
                out += run_segmentation_one(config, problem, posterior, strategy, seed, run_dir,
                                            done.get((strategy, seed), []), pretrained=pretrained, cache=cache,
                                            on_cycle=None if progress is None else progress.update)
    finally:
        if progress is not None:
            progress.close()
    return out
