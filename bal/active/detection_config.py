"""The settings of an object-detection active-learning experiment, and strategy names.

The unit of acquisition is an image (it costs one label: its boxes). Strategy
names, each optionally with the ``_targeted`` suffix (not ``random``):

- ``random`` — uniformly random images;
- ``<score>_heatmap`` — *location uncertainty*: ``<score>`` (``entropy``,
  ``bald``, ``margin``, ... of :mod:`bal.acquisition.scores`) of every
  per-class heatmap Bernoulli ``(p, 1 - p)`` over the posterior samples, per
  output cell and class (:func:`bal.acquisition.dense.pixel_scores`), summed
  over the classes (for entropy: the entropy of the ``C`` independent
  Bernoullis of the cell), and reduced to an image score by ``reduction``
  (``max``, ``top_mean`` with level ``q``, ``sum``, ``mean``, ``quantile``;
  :func:`bal.acquisition.dense.reduce_pixels`);
- ``box_bald``, ``box_localisation``, ``box_miss``, ``box_total`` — *box
  uncertainty* (:mod:`bal.acquisition.boxes`): every posterior sample's
  detections (score ``>= score_threshold``) are matched to the detections
  of the posterior-mean heatmap at ``iou_threshold``; the clusters' BALD of
  the class distributions, normalised box spread, or fraction of samples
  missing them (``total``: the sum weighted by ``box_weights``) are reduced
  over the image's boxes by ``reduction`` (``max``, ``mean`` or ``sum``);
- ``disagreement`` — two detectors trained independently on the labeled
  images (the cycle's model and a second one from another key), the image
  score the Jaccard distance of their detections
  (:func:`bal.acquisition.boxes.disagreement`).

``_targeted`` weights the image scores by the predicted presence of
``target_classes`` (strength ``target_strength``): location scores per cell by
the posterior-mean share of the target classes in the cell's objectness
(:func:`bal.acquisition.dense.class_targeted`), box and disagreement scores by
the most likely target detection of the image
(:func:`bal.acquisition.boxes.class_targeted`).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import NamedTuple

from bal.acquisition import grammar
from bal.acquisition.boxes import BOX_REDUCTIONS, BOX_SCORES
from bal.acquisition.dense import REDUCTIONS
from bal.acquisition.scores import SCORES
from bal.active.config import ORACLES
from bal.config import MAX_SEED, Config, help_of, setting
from bal.posteriors import FAMILIES

__all__ = ["DetectionConfig", "Strategy", "parse_strategy", "HELP", "DATASETS", "KINDS"]

#: built-in detection sets (procedural, offline)
DATASETS = ("road_scenes",)

#: pointwise scores that are 0 for a single sample (they measure disagreement between samples)
SAMPLE_SCORES = ("bald", "mean_std")

#: the kinds of strategy (see the module docstring)
KINDS = ("random", "heatmap", "box", "disagreement")



class Strategy(NamedTuple):
    """A parsed strategy name: ``kind`` (:data:`KINDS`), ``score`` (pixel or box score), ``targeted``."""

    name: str
    kind: str
    score: str | None
    targeted: bool


def parse_strategy(name: str) -> Strategy:
    """Parse a detection strategy name (module docstring; the grammar of
    :mod:`bal.acquisition.grammar`); a one-line ``ValueError`` otherwise."""
    parsed = grammar.parse(name, task="detection", rules=("random", "disagreement", *BOX_STRATEGIES),
                           units=("heatmap",), targeting=True)
    if parsed.score and parsed.unit == "heatmap":
        return Strategy(name, "heatmap", parsed.base, parsed.targeted)
    if parsed.base in BOX_STRATEGIES:
        return Strategy(name, "box", parsed.base[len("box_"):], parsed.targeted)
    if parsed.base in ("random", "disagreement") and parsed.unit is None:
        return Strategy(name, parsed.base, None, parsed.targeted)
    raise ValueError(f"unknown detection strategy {name!r}; use random, <score>_heatmap (<score> one of "
                     f"{sorted(SCORES)}), box_<score> (<score> one of {list(BOX_SCORES)}) or disagreement, "
                     "optionally + '_targeted'")


#: the box-uncertainty strategies (``box_<score>``)
BOX_STRATEGIES = tuple(f"box_{score}" for score in BOX_SCORES)


@dataclasses.dataclass(frozen=True)
class DetectionConfig(Config):
    """Every setting of an object-detection active-learning experiment.

    Each field's ``help`` is its documentation (``bal run --help``, :data:`HELP`).
    The posterior's loss is the CenterNet's focal + L1 on its packed targets
    (variational: Bayesian heads, plus ``kl_weight`` KL / labeled images). With
    ``hflip`` an epoch still counts ``ceil(labeled / batch_size)`` steps;
    ``curve_every`` / ``curve_cycles`` record the talk's test AP against epochs.
    """

    TASK: typing.ClassVar[str] = "detection"

    task: str = setting("detection", help="detection: object detection with a CenterNet, an image is the unit")
    dataset: str = setting("road_scenes", help="detection set: road_scenes (procedural, offline)")
    num_train: int = setting(2000, minimum=1, help="pool images generated")
    num_test: int = setting(500, minimum=1, help="test images generated")
    image_size: tuple[int, int] = setting((96, 128), minimum=16, help="image height and width, e.g. 96 128")
    data_seed: int = setting(0, minimum=0, maximum=MAX_SEED,
                help="seed of the generated images (the same for every run)")
    night_fraction: float = setting(0.3, minimum=0, maximum=1, help="fraction of night scenes in the generated images")
    model: str = setting("centernet", help="bal.models detector: centernet")
    model_kwargs: dict = setting(default_factory=dict,
                help="CenterNet options, e.g. {\"widths\": [16, 32, 64], \"head_width\": 32, \"dropout_rate\": 0.1}")
    posterior: str = setting("mc_dropout",
                help="deterministic, mc_dropout, variational (Bayesian heads), ensemble, regularized_ensemble")
    num_samples: int = setting(8, minimum=1, help="posterior samples S used to score the pool and evaluate")
    num_members: int | None = setting(None, minimum=1,
                help="ensemble size (default 5 for ensemble, 8 for regularized_ensemble)")
    estimator: str = setting("reparam", help="variational gradient estimator: reparam, local_reparam, flipout")
    kl_weight: float = setting(1.0, minimum=0,
                help="variational: weight of the KL of the Bayesian heads (1 = the ELBO)")
    regularization: float = setting(1e-3, minimum=0, help="beta of the regularized ensemble (DPE) penalty")
    strategies: tuple[str, ...] = setting(("random", "bald_heatmap", "box_bald", "disagreement"), nonempty=True, unique=True,
                help="random, <score>_heatmap, box_bald/_localisation/_miss/_total, disagreement; +_targeted")
    reduction: str = setting("max",
                help="cell or box scores to an image score: max, top_mean, sum (heatmap also mean, quantile)")
    q: float = setting(0.9, minimum=0, maximum=1, help="level of the top_mean / quantile reductions, in [0, 1]")
    score_threshold: float = setting(0.3, minimum=0, maximum=1,
                help="detections at least this confident enter box scores and disagreement")
    max_detections: int = setting(20, minimum=1,
                help="detections decoded per image and sample (top-k peaks) for acquisition")
    iou_threshold: float = setting(0.5, above=0, maximum=1,
                help="IoU at which boxes match (box clusters, disagreement)")
    box_weights: tuple[float, float, float] = setting((1.0, 1.0, 1.0), minimum=0,
                help="weights of bald, localisation and miss in box_total")
    target_classes: tuple[int, ...] = setting((), minimum=0, unique=True,
                help="class ids the _targeted strategies weight by (road scenes: 1 pedestrian, 2 cyclist)")
    target_strength: float = setting(1.0, minimum=0, maximum=1,
                help="how strongly _targeted strategies weight, in [0, 1]")
    initial_images: int = setting(100, minimum=1, help="labeled images at the start (random per seed)")
    acquisition_images: int = setting(100, minimum=1, help="images labeled per cycle")
    cycles: int = setting(5, minimum=0, help="number of acquisition cycles")
    epochs: int | None = setting(30, minimum=1,
                help="training epochs per cycle (an epoch is ceil(labeled images / batch_size) steps); or steps")
    steps: int | None = setting(None, minimum=1, help="Adam steps per cycle instead of epochs")
    min_steps: int = setting(200, minimum=0,
                help="train at least this many steps per cycle (whole epochs), for small labeled sets")
    hflip: bool = setting(True, help="also train on the mirror image of every labeled image (its boxes mirrored)")
    curve_every: int = setting(0, minimum=0,
                help="record test AP every this many epochs of a cycle's training (0: off) -- mAP against epochs")
    curve_cycles: tuple[int, ...] | None = setting(None,
                help="cycles whose training curve is recorded (-1: the last; default: all)")
    batch_size: int = setting(16, minimum=1, help="training minibatch size (images)")
    learning_rate: float = setting(2e-3, above=0, help="Adam(W) learning rate")
    weight_decay: float = setting(0.0, minimum=0, help="AdamW weight decay")
    seeds: tuple[int, ...] = setting((0, 1, 2), minimum=0, maximum=MAX_SEED, nonempty=True, unique=True,
                help="one run per seed and strategy")
    chunk_size: int = setting(32, minimum=1, help="images per prediction chunk")
    quiet: bool = setting(False, help="no progress display")
    oracle: str = setting("dataset", choices=ORACLES,
                help="who labels acquisitions: dataset (its boxes) or human (pause; bal queries export / labels import)")

    def validate(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown detection dataset {self.dataset!r}; built in: {list(DATASETS)}")
        if self.posterior not in FAMILIES:
            raise ValueError(f"unknown posterior family {self.posterior!r}; valid: {', '.join(FAMILIES)}")
        if self.model != "centernet":
            raise ValueError(f"unknown detection model {self.model!r}; built in: ['centernet']")
        parsed = [parse_strategy(s) for s in self.strategies]
        if any(p.targeted for p in parsed) and not self.target_classes:
            raise ValueError("a '_targeted' strategy needs target_classes (e.g. [1, 2] for pedestrian, cyclist)")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {self.reduction!r}; valid reductions: {list(REDUCTIONS)}")
        needs = [p.name for p in parsed if p.kind == "box" or (p.kind == "heatmap" and p.score in SAMPLE_SCORES)]
        if needs and self.posterior_samples < 2:
            raise ValueError(f"strategies {needs} measure disagreement between posterior samples, but this "
                             f"{self.posterior} posterior has {self.posterior_samples}; use mc_dropout, variational "
                             "or an ensemble with 2 or more samples / members")
        box_like = [p.name for p in parsed if p.kind == "box"]
        if box_like and self.reduction not in BOX_REDUCTIONS:
            raise ValueError(f"reduction {self.reduction!r} does not apply to box strategies {box_like}; use one "
                             f"of {list(BOX_REDUCTIONS)}")
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs and steps (the training budget of a cycle)")
        if self.curve_cycles is not None:
            bad = [c for c in self.curve_cycles if not -(self.cycles + 1) <= c <= self.cycles]
            if bad or len(set(self.curve_cycle_numbers)) != len(self.curve_cycles):
                raise ValueError(f"curve_cycles must be distinct cycles in [0, cycles={self.cycles}] (or from the end: "
                                 f"-1 is the last); got {list(self.curve_cycles)}")
        if self.initial_images > self.num_train:
            raise ValueError(f"initial_images={self.initial_images} is larger than the pool ({self.num_train} images)")
        needed = self.initial_images + self.cycles * self.acquisition_images
        if needed > self.num_train:
            raise ValueError(f"{self.cycles} cycles of {self.acquisition_images} images after {self.initial_images} "
                             f"initial ones need {needed} images but num_train is {self.num_train}; lower "
                             "cycles or acquisition_images, or raise num_train")

    @classmethod
    def complete(cls, d: dict) -> dict:
        # `steps = 500` alone means "no epoch budget" (TOML has no null); the CLI parses
        # acquisition_images as a float (segmentation's type): 10.0 is 10 images
        if d.get("steps") is not None and "epochs" not in d:
            d["epochs"] = None
        a = d.get("acquisition_images")
        if isinstance(a, float) and a.is_integer():
            d["acquisition_images"] = int(a)
        return d

    @property
    def posterior_samples(self) -> int:
        """``S``, the posterior samples a prediction gives (ensembles: one per member)."""
        if self.posterior == "deterministic":
            return 1
        if self.posterior in ("ensemble", "regularized_ensemble"):
            return self.num_members or (5 if self.posterior == "ensemble" else 8)
        return self.num_samples

    @property
    def curve_cycle_numbers(self) -> tuple[int, ...] | None:
        """``curve_cycles`` with entries from the end (``-1``: cycle ``cycles``) as cycle numbers."""
        if self.curve_cycles is None:
            return None
        return tuple(c if c >= 0 else self.cycles + 1 + c for c in self.curve_cycles)


#: one line per setting, for ``bal run --help``
HELP = help_of(DetectionConfig)
