"""The settings of a segmentation active-learning experiment, and strategy names.

Strategy names follow one grammar, ``<score>[_crops][_targeted]``:

- ``<score>`` — a pointwise score of :mod:`bal.acquisition.scores` applied to
  every pixel (``"entropy"``, ``"bald"``, ``"margin"``, ``"variation_ratios"``,
  ``"mean_std"``, ``"least_confidence"``), or ``"random"``;
- ``_crops`` — the unit of acquisition is a crop of the ``grid_rows x
  grid_cols`` grid (default 3 x 4 = 12 crops); without it, a whole image;
- ``_targeted`` — pixel scores are weighted by the predicted probability of
  ``target_classes`` (:func:`bal.acquisition.dense.class_targeted`, strength
  ``target_strength``) before the reduction; not with ``random``.

So ``"random"``, ``"bald"``, ``"entropy_crops"``, ``"bald_crops_targeted"``.
Pixel scores are reduced to a unit score by ``reduction`` (``"mean"``,
``"sum"``, ``"max"``, ``"quantile"``, ``"top_mean"``; level ``q``), counting only
unlabeled pixels.

Cost: labeling is paid per pixel. Every cycle has the same pixel budget
(``acquisition_pixels``, or ``acquisition_images`` whole images' worth); a
strategy takes its units best first while they fit in the budget, so image-
and crop-level strategies spend the same number of pixels per cycle (up to one
unit), and learning curves are drawn against labeled pixels.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import NamedTuple

from bal.active.config import Config

from bal.acquisition.dense import REDUCTIONS
from bal.acquisition.scores import SCORES

__all__ = ["SegmentationConfig", "Strategy", "parse_strategy", "DATASETS"]


#: one line per segmentation-only setting, for ``bal run --help`` (shared names use
#: the classification help)
HELP = {
    "num_train": "pool images generated",
    "num_test": "test images generated",
    "image_size": "image height and width, e.g. 48 64",
    "data_seed": "seed of the generated images (the same for every run)",
    "class_weights": "per-class loss weights [C], e.g. to up-weight rare classes",
    "reduction": "pixel scores to a unit score: mean, sum, max, quantile, top_mean",
    "q": "level of the quantile / top_mean reductions, in [0, 1]",
    "grid_rows": "crops per image column (the _crops unit grid)",
    "grid_cols": "crops per image row (the _crops unit grid)",
    "target_classes": "class ids the _targeted strategies weight pixels by",
    "target_strength": "how strongly _targeted strategies weight, in [0, 1]",
    "initial_images": "fully labeled images at the start (random per seed)",
    "acquisition_pixels": "pixels labeled per cycle (or acquisition_images)",
    "acquisition_images": "whole images' worth of pixels labeled per cycle",
    "steps": "Adam steps per cycle, plus steps_per_image per labeled image's worth",
    "steps_per_image": "extra steps per labeled image's worth of pixels",
    "scale_steps_by_sparsity": "scale steps so scattered crops see as many labeled pixels as whole images",
    "pretrained": "orbax checkpoint of the variables every cycle starts from",
}

#: built-in segmentation sets (procedural, offline)
DATASETS = ("road_markings",)


class Strategy(NamedTuple):
    """A parsed strategy name: ``score`` (None for random), ``unit`` ("image" | "crop"), ``targeted``."""

    name: str
    score: str | None
    unit: str
    targeted: bool


def parse_strategy(name: str) -> Strategy:
    """Parse ``<score>[_crops][_targeted]`` (module docstring); a clear ``ValueError`` otherwise."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a strategy must be a non-empty name; got {name!r}")
    rest, targeted, unit = name, False, "image"
    if rest.endswith("_targeted"):
        rest, targeted = rest[: -len("_targeted")], True
    if rest.endswith("_crops"):
        rest, unit = rest[: -len("_crops")], "crop"
    valid = ["random", *sorted(SCORES)]
    if rest not in valid:
        raise ValueError(f"unknown segmentation strategy {name!r}; use <score>[_crops][_targeted] with <score> "
                         f"one of {valid} (e.g. 'bald', 'entropy_crops', 'bald_crops_targeted')")
    if rest == "random" and targeted:
        raise ValueError(f"strategy {name!r}: random acquisition cannot be class-targeted (it uses no "
                         "predictions); use e.g. 'bald_crops_targeted'")
    return Strategy(name, None if rest == "random" else rest, unit, targeted)


@dataclasses.dataclass(frozen=True)
class SegmentationConfig(Config):
    """Every setting of a segmentation active-learning experiment.

    Data: dataset (``"road_markings"``), num_train (pool images), num_test,
      image_size ``(H, W)``, data_seed (the generated images; the same for all seeds).
    Model: model (``"unet"``), model_kwargs (e.g. ``{"width": 8}``), posterior
      (a ``bal.posteriors`` family), num_samples ``S`` for scoring and
      evaluation, num_members (ensembles), class_weights (optional per-class loss
      weights ``[C]``, e.g. to up-weight rare classes; fixed for the whole run).
    Acquisition: strategies (see the module docstring), reduction and q,
      grid_rows x grid_cols crops, target_classes / target_strength (for
      ``_targeted`` strategies), initial_images (fully labeled at the start,
      chosen at random per seed, the same for every strategy), the per-cycle
      budget — acquisition_pixels or acquisition_images (exactly one) — and cycles.
    Training (from scratch every cycle, or from ``pretrained``): steps
      ``= steps + round(steps_per_image * labeled_pixels / (H * W))`` Adam
      steps of batch_size images, learning_rate, weight_decay;
      scale_steps_by_sparsity multiplies the steps by (images holding a label) /
      (labeled pixels in whole images) >= 1, so a run whose labels are scattered
      crops sees as many labeled pixels per cycle as one labeling whole images
      (a batch of partially labeled images carries fewer labeled pixels). pretrained: an
      orbax checkpoint (:func:`bal.checkpoint.save`) of the posterior's
      variables (or of ``{"variables": ...}``) used as the initial variables of
      every cycle instead of a random initialisation (pretrain, then fine-tune).
    Runs: seeds, chunk_size (images per prediction chunk), quiet.
    """

    TASK: typing.ClassVar[str] = "segmentation"

    task: str = "segmentation"
    dataset: str = "road_markings"
    num_train: int = 400
    num_test: int = 200
    image_size: tuple[int, int] = (48, 64)
    data_seed: int = 0
    model: str = "unet"
    model_kwargs: dict = dataclasses.field(default_factory=lambda: {"width": 8})
    posterior: str = "mc_dropout"
    num_samples: int = 8
    num_members: int | None = None
    class_weights: tuple[float, ...] | None = None
    strategies: tuple[str, ...] = ("random", "entropy", "bald", "entropy_crops", "bald_crops")
    reduction: str = "mean"
    q: float = 0.9
    grid_rows: int = 3
    grid_cols: int = 4
    target_classes: tuple[int, ...] = ()
    target_strength: float = 1.0
    initial_images: int = 10
    acquisition_pixels: int | None = None
    acquisition_images: float | None = 10.0
    cycles: int = 4
    steps: int = 150
    steps_per_image: float = 0.0
    scale_steps_by_sparsity: bool = False
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    pretrained: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    chunk_size: int = 16
    quiet: bool = False

    def __post_init__(self):
        self.check_types()
        if self.task != self.TASK:
            raise ValueError(f"task must be {self.TASK!r} for these settings; got {self.task!r}")
        self.check_seeds()
        for name in ("learning_rate",):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0; got {self.weight_decay}")
        if self.num_members is not None and self.num_members < 1:
            raise ValueError(f"num_members must be >= 1; got {self.num_members}")
        if self.class_weights is not None and any(w < 0 for w in self.class_weights):
            raise ValueError(f"class_weights must be >= 0; got {list(self.class_weights)}")
        if self.acquisition_images is not None and not self.acquisition_images > 0:
            raise ValueError(f"acquisition_images must be > 0; got {self.acquisition_images}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown segmentation dataset {self.dataset!r}; built in: {list(DATASETS)}")
        if not self.strategies:
            raise ValueError("strategies is empty: name at least one strategy (e.g. 'random', 'bald_crops')")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies lists a name twice: {list(self.strategies)}")
        parsed = [parse_strategy(s) for s in self.strategies]
        if any(p.targeted for p in parsed) and not self.target_classes:
            raise ValueError("a '_targeted' strategy needs target_classes (e.g. [5] for crosswalk)")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"unknown pixel reduction {self.reduction!r}; valid reductions: {list(REDUCTIONS)}")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"q must lie in [0, 1]; got {self.q}")
        if not 0.0 <= self.target_strength <= 1.0:
            raise ValueError(f"target_strength must lie in [0, 1]; got {self.target_strength}")
        if len(self.image_size) != 2:
            raise ValueError(f"image_size must be (H, W); got {self.image_size}")
        height, width = self.image_size
        if self.grid_rows < 1 or self.grid_cols < 1:
            raise ValueError(f"the grid needs rows, cols >= 1; got {self.grid_rows} x {self.grid_cols}")
        if self.grid_rows > height or self.grid_cols > width:
            raise ValueError(f"a grid of {self.grid_rows} x {self.grid_cols} crops does not fit {height}x{width} "
                             f"images (a crop needs at least one pixel); use grid_rows <= {height} and "
                             f"grid_cols <= {width}")
        if (self.acquisition_pixels is None) == (self.acquisition_images is None):
            raise ValueError("give exactly one of acquisition_pixels and acquisition_images (the per-cycle budget)")
        if self.budget_pixels < 1:
            raise ValueError(f"the per-cycle budget must be at least one pixel; got {self.budget_pixels}")
        for name in ("num_train", "num_test", "num_samples", "batch_size", "chunk_size", "initial_images",
                     "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.cycles < 0 or self.steps_per_image < 0:
            raise ValueError(f"cycles and steps_per_image must be >= 0; got {self.cycles}, {self.steps_per_image}")
        if self.initial_images > self.num_train:
            raise ValueError(f"initial_images={self.initial_images} is larger than the pool ({self.num_train} images)")
        needed = self.cycles * self.budget_pixels
        left = (self.num_train - self.initial_images) * height * width
        if needed > left:
            raise ValueError(f"{self.cycles} cycles of {self.budget_pixels} pixels need {needed} pixels but only "
                             f"{left} are left to label after the initial images; lower the budget or cycles, "
                             "or raise num_train")

    @property
    def budget_pixels(self) -> int:
        """Pixels labeled per cycle."""
        if self.acquisition_pixels is not None:
            return int(self.acquisition_pixels)
        return int(round(self.acquisition_images * math.prod(self.image_size)))

    @property
    def parsed_strategies(self) -> tuple[Strategy, ...]:
        return tuple(parse_strategy(s) for s in self.strategies)

    def train_steps(self, labeled_pixels: int, labeled_images: int | None = None) -> int:
        """Adam steps of a cycle with ``labeled_pixels`` labels spread over ``labeled_images`` images."""
        image_units = labeled_pixels / math.prod(self.image_size)
        steps = self.steps + self.steps_per_image * image_units
        if self.scale_steps_by_sparsity and labeled_images and image_units > 0:
            steps *= max(1.0, labeled_images / image_units)
        return int(round(steps))
