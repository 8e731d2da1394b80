"""Semantic segmentation as a task of the loop: the unit is an image or a crop, and costs its pixels.

The labeled state is the labeled-pixel mask ``bool [N, H, W]``: ``initial_images``
whole images (chosen per seed, the same for every strategy), then the units
each cycle acquires. One cycle trains the posterior (from a fresh
initialisation, or from the ``pretrained`` checkpoint) on every image with a
labeled pixel, unlabeled pixels set to the ignore label 255 so the loss skips
them; evaluates on the test set (mIoU, pixel accuracy, per-class IoU, NLL);
scores the units (:mod:`bal.active.segmentation.acquire`) and takes them best
first within the cycle's pixel budget. Records::

    {"task": "segmentation", "strategy": "bald_crops", "seed": 0, "cycle": 2,
     "unit": "crop", "num_labeled_pixels": 92160, "num_labeled_images": 41,
     "mean_iou": 0.52, "pixel_accuracy": 0.95, "nll": 0.16, "iou": [...],
     "iou_crosswalk": 0.31, ..., "acquired": [flat unit ids], "acquired_pixels": 30720}

Variational posteriors: the NLL is a mean over labeled pixels, so the KL term
is divided by the number of labeled pixels (the per-pixel ELBO).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from bal import checkpoint
from bal import posteriors as bposteriors
from bal.active.segmentation import acquire
from bal.active.segmentation.config import SegmentationConfig, parse_strategy
from bal.checks import IGNORE_LABEL, check_target_classes
from bal.predict import Chunk, predict
from bal.segmentation.metrics import evaluate as seg_evaluate
from bal.active.tasks import check_model
from bal.train import fit

__all__ = ["SegmentationProblem", "load_segmentation_problem", "build_posterior", "load_pretrained",
           "evaluate_segmentation", "SegmentationTask"]

import dataclasses


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
    """The ``pretrained`` checkpoint's variables (:func:`bal.checkpoint.restore_variables`)."""
    try:
        return checkpoint.restore_variables(path, posterior, example_x)
    except FileNotFoundError:
        raise FileNotFoundError(f"no pretrained checkpoint at {path} (save one with "
                                "bal.checkpoint.save(path, variables))") from None


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


class SegmentationTask:
    """The :class:`bal.active.kernel.Task` of semantic segmentation with pixel budgets."""

    name = "segmentation"
    keeps_weights = False  # every cycle starts from a fresh init or the pretrained weights

    def __init__(self, config: SegmentationConfig, *, problem: SegmentationProblem | None = None):
        if not isinstance(config, SegmentationConfig):
            raise ValueError(f"config must be a SegmentationConfig; got {type(config).__name__}")
        if config.pretrained is not None and not checkpoint.exists(config.pretrained):
            raise FileNotFoundError(f"no pretrained checkpoint at {config.pretrained} (save one with "
                                    "bal.checkpoint.save(path, variables))")
        self.config = config
        self.problem = problem = load_segmentation_problem(config) if problem is None else problem
        if tuple(problem.train_images.shape[1:3]) != tuple(config.image_size):
            raise ValueError(f"the problem's images are {problem.train_images.shape[1:3]} but image_size is "
                             f"{config.image_size}")
        check_target_classes(config.target_classes, problem.class_names)
        self.posterior = build_posterior(config, problem.num_classes)
        check_model(self.posterior, problem.train_images[:1])
        self.pretrained = None
        if config.pretrained is not None:
            self.pretrained = load_pretrained(config.pretrained, self.posterior, problem.train_images[:1])
        height, width = config.image_size
        self.grids = {s: acquire.unit_grid(parse_strategy(s), height, width, config.grid_rows,
                                           config.grid_cols) for s in config.strategies}
        self._cycle0 = {}  # seed -> (variables, metrics): cycle 0 is the same for every strategy

    def initial_labels(self, seed: int) -> np.ndarray:
        shape = self.problem.train_masks.shape
        rng = np.random.default_rng([int(seed), 8])
        labeled = np.zeros(shape, bool)
        labeled[rng.choice(shape[0], self.config.initial_images, replace=False)] = True
        return labeled

    def counts(self, labeled: np.ndarray) -> dict:
        return {"num_labeled_pixels": int(labeled.sum()),
                "num_labeled_images": int(labeled.any(axis=(1, 2)).sum())}

    def apply(self, labeled, acquired, strategy: str) -> np.ndarray:
        return acquire.mark_acquired(labeled, acquired, self.grids[strategy])

    def train_and_evaluate(self, keys, labeled, variables, *, seed: int, cycle: int, masks=None):
        """``masks``: the pool's pixel classes ``int [N, H, W]`` to train on when not the dataset's
        (people's answers, :class:`bal.labeling.oracle.HumanTask`); only labeled pixels are read."""
        if cycle == 0 and seed in self._cycle0 and masks is None:
            return self._cycle0[seed]
        config, problem, posterior = self.config, self.problem, self.posterior
        init_key, fit_key, eval_key = keys
        images = np.flatnonzero(labeled.any(axis=(1, 2)))
        x = problem.train_images[images]
        truth = problem.train_masks if masks is None else masks
        y = np.where(labeled[images], truth[images], IGNORE_LABEL).astype(np.int32)
        variables = posterior.init(init_key, x[:1]) if self.pretrained is None else self.pretrained
        steps = config.train_steps(int(labeled.sum()), len(images))
        result = fit(posterior, variables, x, y, fit_key, num_steps=steps, batch_size=config.batch_size,
                     learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                     num_train=max(1, int((y != IGNORE_LABEL).sum())))
        variables = jax.block_until_ready(result.variables)
        metrics = evaluate_segmentation(posterior, variables, problem.test_images, problem.test_masks,
                                        eval_key, num_samples=config.num_samples, chunk_size=config.chunk_size,
                                        class_names=problem.class_names)
        out = (variables, {"train_steps": int(steps), **metrics})
        if cycle == 0 and masks is None:
            self._cycle0[seed] = out
        return out

    def finished(self, labeled, cycle: int, metrics: dict) -> bool:
        return cycle >= self.config.cycles or bool(labeled.all())

    def acquire(self, key, strategy: str, labeled, variables, *, seed: int, cycle: int):
        config, grid = self.config, self.grids[strategy]
        parsed = parse_strategy(strategy)
        scores = acquire.unit_scores(
            parsed, grid, self.posterior, variables, self.problem.train_images, labeled, key,
            reduction=config.reduction, q=config.q, target_classes=config.target_classes,
            target_strength=config.target_strength, num_samples=config.num_samples,
            chunk_size=config.chunk_size)
        acquired, spent = acquire.select_within_budget(scores, acquire.unit_costs(labeled, grid),
                                                       config.budget_pixels)
        return acquired, {"unit": parsed.unit, "acquired_pixels": int(spent)}
