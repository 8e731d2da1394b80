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

from bal.config import MAX_SEED, Config, help_of, setting

from bal.acquisition import grammar
from bal.acquisition.dense import REDUCTIONS
from bal.active.config import ORACLES

__all__ = ["SegmentationConfig", "Strategy", "parse_strategy", "DATASETS", "HELP"]


#: built-in segmentation sets (procedural, offline)
DATASETS = ("road_markings",)


class Strategy(NamedTuple):
    """A parsed strategy name: ``score`` (None for random), ``unit`` ("image" | "crop"), ``targeted``."""

    name: str
    score: str | None
    unit: str
    targeted: bool


def parse_strategy(name: str) -> Strategy:
    """Parse ``<score>[_crops][_targeted]`` or ``random`` (:mod:`bal.acquisition.grammar`); a
    one-line ``ValueError`` otherwise."""
    parsed = grammar.parse(name, task="segmentation", units=("crops",), targeting=True)
    return Strategy(name, parsed.base if parsed.score else None, "crop" if parsed.unit else "image",
                    parsed.targeted)


@dataclasses.dataclass(frozen=True)
class SegmentationConfig(Config):
    """Every setting of a segmentation active-learning experiment.

    Each field's ``help`` is its documentation (``bal run --help``, :data:`HELP`).
    Strategies follow the module docstring's grammar; the per-cycle budget is
    exactly one of ``acquisition_pixels`` and ``acquisition_images``. A cycle
    trains ``steps + steps_per_image * (labeled pixels / (H * W))`` Adam steps,
    times (images holding a label) / (labeled pixels in whole images) with
    ``scale_steps_by_sparsity``, so scattered crops see as many labeled pixels
    as whole images; from ``pretrained`` (an orbax checkpoint of the
    variables, :func:`bal.checkpoint.save`) instead of a fresh init when given.
    """

    TASK: typing.ClassVar[str] = "segmentation"

    task: str = setting("segmentation", help="segmentation: pixel labels, image- or crop-level acquisition")
    dataset: str = setting("road_markings", help="built-in procedural set: road_markings")
    num_train: int = setting(400, minimum=1, help="pool images generated")
    num_test: int = setting(200, minimum=1, help="test images generated")
    image_size: tuple[int, int] = setting((48, 64), minimum=1, help="image height and width, e.g. 48 64")
    data_seed: int = setting(0, minimum=0, maximum=MAX_SEED, help="seed of the generated images (the same for "
                             "every run)")
    model: str = setting("unet", help="bal.models name of a dense model: unet")
    model_kwargs: dict = setting(default_factory=lambda: {"width": 8}, help="extra model constructor arguments")
    posterior: str = setting("mc_dropout", help="a bal.posteriors family")
    num_samples: int = setting(8, minimum=1, help="posterior samples S used to score the pool and evaluate")
    num_members: int | None = setting(None, minimum=1, help="ensemble size")
    class_weights: tuple[float, ...] | None = setting(None, minimum=0, help="per-class loss weights [C], e.g. to "
                                                      "up-weight rare classes")
    strategies: tuple[str, ...] = setting(("random", "entropy", "bald", "entropy_crops", "bald_crops"),
                                          nonempty=True, unique=True, help="<score>[_crops][_targeted] or random")
    reduction: str = setting("mean", help="pixel scores to a unit score: mean, sum, max, quantile, top_mean")
    q: float = setting(0.9, minimum=0, maximum=1, help="level of the quantile / top_mean reductions, in [0, 1]")
    grid_rows: int = setting(3, minimum=1, help="crops per image column (the _crops unit grid)")
    grid_cols: int = setting(4, minimum=1, help="crops per image row (the _crops unit grid)")
    target_classes: tuple[int, ...] = setting((), minimum=0, help="class ids the _targeted strategies weight "
                                              "pixels by")
    target_strength: float = setting(1.0, minimum=0, maximum=1, help="how strongly _targeted strategies weight, "
                                     "in [0, 1]")
    initial_images: int = setting(10, minimum=1, help="fully labeled images at the start (random per seed)")
    acquisition_pixels: int | None = setting(None, minimum=1, help="pixels labeled per cycle (or "
                                             "acquisition_images)")
    acquisition_images: float | None = setting(10.0, above=0, help="whole images' worth of pixels labeled per "
                                               "cycle")
    cycles: int = setting(4, minimum=0, help="number of acquisition cycles")
    steps: int = setting(150, minimum=1, help="Adam steps per cycle, plus steps_per_image per labeled image's "
                         "worth")
    steps_per_image: float = setting(0.0, minimum=0, help="extra steps per labeled image's worth of pixels")
    scale_steps_by_sparsity: bool = setting(False, help="scale steps so scattered crops see as many labeled "
                                            "pixels as whole images")
    batch_size: int = setting(16, minimum=1, help="training minibatch size (images)")
    learning_rate: float = setting(3e-3, above=0, help="Adam(W) learning rate")
    weight_decay: float = setting(0.0, minimum=0, help="AdamW weight decay")
    pretrained: str | None = setting(None, help="orbax checkpoint of the variables every cycle starts from")
    seeds: tuple[int, ...] = setting((0, 1, 2), minimum=0, maximum=MAX_SEED, nonempty=True, unique=True,
                                     help="one run per seed and strategy")
    chunk_size: int = setting(16, minimum=1, help="images per prediction chunk")
    quiet: bool = setting(False, help="no progress display")
    oracle: str = setting("dataset", choices=ORACLES, help="who labels acquisitions: dataset (its masks) or human "
                          "(pause; bal queries export / labels import)")

    def validate(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown segmentation dataset {self.dataset!r}; built in: {list(DATASETS)}")
        parsed = [parse_strategy(s) for s in self.strategies]
        if any(p.targeted for p in parsed) and not self.target_classes:
            raise ValueError("a '_targeted' strategy needs target_classes (e.g. [5] for crosswalk)")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"unknown pixel reduction {self.reduction!r}; valid reductions: {list(REDUCTIONS)}")
        height, width = self.image_size
        if self.grid_rows > height or self.grid_cols > width:
            raise ValueError(f"a grid of {self.grid_rows} x {self.grid_cols} crops does not fit {height}x{width} "
                             f"images (a crop needs at least one pixel); use grid_rows <= {height} and "
                             f"grid_cols <= {width}")
        if (self.acquisition_pixels is None) == (self.acquisition_images is None):
            raise ValueError("give exactly one of acquisition_pixels and acquisition_images (the per-cycle budget)")
        if self.budget_pixels < 1:
            raise ValueError(f"the per-cycle budget must be at least one pixel; got {self.budget_pixels}")
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

    def train_steps(self, labeled_pixels: int, labeled_images: int | None = None) -> int:
        """Adam steps of a cycle with ``labeled_pixels`` labels spread over ``labeled_images`` images."""
        image_units = labeled_pixels / math.prod(self.image_size)
        steps = self.steps + self.steps_per_image * image_units
        if self.scale_steps_by_sparsity and labeled_images and image_units > 0:
            steps *= max(1.0, labeled_images / image_units)
        return int(round(steps))


#: one line per setting, for ``bal run --help``
HELP = help_of(SegmentationConfig)
