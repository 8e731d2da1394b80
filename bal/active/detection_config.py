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

from bal.acquisition.boxes import BOX_REDUCTIONS, BOX_SCORES
from bal.acquisition.dense import REDUCTIONS
from bal.acquisition.scores import SCORES
from bal.active.config import ORACLES, Config
from bal.posteriors import FAMILIES

__all__ = ["DetectionConfig", "Strategy", "parse_strategy", "HELP", "DATASETS", "KINDS"]

#: built-in detection sets (procedural, offline)
DATASETS = ("road_scenes",)

#: pointwise scores that are 0 for a single sample (they measure disagreement between samples)
SAMPLE_SCORES = ("bald", "mean_std")

#: the kinds of strategy (see the module docstring)
KINDS = ("random", "heatmap", "box", "disagreement")

#: one line per detection setting, for ``bal run --help`` (names shared with the other
#: tasks mean the same there)
HELP = {
    "task": "detection: object detection with a CenterNet, an image is the unit",
    "dataset": "detection set: road_scenes (procedural, offline)",
    "num_train": "pool images generated",
    "num_test": "test images generated",
    "image_size": "image height and width, e.g. 96 128",
    "data_seed": "seed of the generated images (the same for every run)",
    "night_fraction": "fraction of night scenes in the generated images",
    "model": "bal.models detector: centernet",
    "model_kwargs": "CenterNet options, e.g. {\"widths\": [16, 32, 64], \"head_width\": 32, \"dropout_rate\": 0.1}",
    "posterior": "deterministic, mc_dropout, variational (Bayesian heads), ensemble, regularized_ensemble",
    "num_samples": "posterior samples S used to score the pool and evaluate",
    "num_members": "ensemble size (default 5 for ensemble, 8 for regularized_ensemble)",
    "estimator": "variational gradient estimator: reparam, local_reparam, flipout",
    "kl_weight": "variational: weight of the KL of the Bayesian heads (1 = the ELBO)",
    "regularization": "beta of the regularized ensemble (DPE) penalty",
    "strategies": "random, <score>_heatmap, box_bald/_localisation/_miss/_total, disagreement; +_targeted",
    "reduction": "cell or box scores to an image score: max, top_mean, sum (heatmap also mean, quantile)",
    "q": "level of the top_mean / quantile reductions, in [0, 1]",
    "score_threshold": "detections at least this confident enter box scores and disagreement",
    "max_detections": "detections decoded per image and sample (top-k peaks) for acquisition",
    "iou_threshold": "IoU at which boxes match (box clusters, disagreement)",
    "box_weights": "weights of bald, localisation and miss in box_total",
    "target_classes": "class ids the _targeted strategies weight by (road scenes: 1 pedestrian, 2 cyclist)",
    "target_strength": "how strongly _targeted strategies weight, in [0, 1]",
    "initial_images": "labeled images at the start (random per seed)",
    "acquisition_images": "images labeled per cycle",
    "cycles": "number of acquisition cycles",
    "epochs": "training epochs per cycle (an epoch is ceil(labeled images / batch_size) steps); or steps",
    "steps": "Adam steps per cycle instead of epochs",
    "min_steps": "train at least this many steps per cycle (whole epochs), for small labeled sets",
    "hflip": "also train on the mirror image of every labeled image (its boxes mirrored)",
    "curve_every": "evaluate the test mAP every this many training epochs of a cycle (its curve); 0: never",
    "curve_cycles": "cycles that record a training curve, e.g. 0 -1 (-1: the last; default: every cycle)",
    "batch_size": "training minibatch size (images)",
    "learning_rate": "Adam(W) learning rate",
    "weight_decay": "AdamW weight decay",
    "seeds": "one run per seed and strategy",
    "chunk_size": "images per prediction chunk",
    "quiet": "no progress display",
    "oracle": "who labels acquisitions: dataset (its boxes) or human (pause; bal queries export / labels import)",
}


class Strategy(NamedTuple):
    """A parsed strategy name: ``kind`` (:data:`KINDS`), ``score`` (pixel or box score), ``targeted``."""

    name: str
    kind: str
    score: str | None
    targeted: bool


def parse_strategy(name: str) -> Strategy:
    """Parse a detection strategy name (module docstring); a one-line ``ValueError`` otherwise."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a strategy must be a non-empty name; got {name!r}")
    rest, targeted = name, False
    if rest.endswith("_targeted"):
        rest, targeted = rest[: -len("_targeted")], True
    if rest == "random":
        if targeted:
            raise ValueError(f"strategy {name!r}: random acquisition cannot be class-targeted (it uses no "
                             "predictions); use e.g. 'box_bald_targeted'")
        return Strategy(name, "random", None, False)
    if rest == "disagreement":
        return Strategy(name, "disagreement", None, targeted)
    if rest.startswith("box_") and rest[4:] in BOX_SCORES:
        return Strategy(name, "box", rest[4:], targeted)
    if rest.endswith("_heatmap") and rest[: -len("_heatmap")] in SCORES:
        return Strategy(name, "heatmap", rest[: -len("_heatmap")], targeted)
    raise ValueError(
        f"unknown detection strategy {name!r}; use random, <score>_heatmap (<score> one of {sorted(SCORES)}), "
        f"box_<score> (<score> one of {list(BOX_SCORES)}) or disagreement, optionally + '_targeted'")


@dataclasses.dataclass(frozen=True)
class DetectionConfig(Config):
    """Every setting of an object-detection active-learning experiment (one line each in :data:`HELP`).

    Data: dataset (``"road_scenes"``), num_train (pool images), num_test,
      image_size ``(H, W)``, data_seed, night_fraction (the generated images;
      the same for every run and seed).
    Model: model (``"centernet"``), model_kwargs, posterior (a
      ``bal.posteriors`` family: the CenterNet's focal + L1 loss on its packed
      targets; variational: Bayesian heads, loss + kl_weight KL / labeled
      images), num_samples ``S``, num_members, estimator, kl_weight, regularization.
    Acquisition: strategies (module docstring), reduction / q, score_threshold,
      max_detections, iou_threshold, box_weights, target_classes /
      target_strength; initial_images (chosen at random per seed, the same for
      every strategy), acquisition_images per cycle, cycles.
    Training (from scratch every cycle): epochs (or steps), min_steps,
      hflip (mirror-image augmentation: every labeled image and its mirror,
      boxes mirrored; an epoch still counts ``ceil(labeled / batch_size)``
      steps), batch_size, learning_rate, weight_decay; curve_every /
      curve_cycles (a training curve: test AP every ``curve_every`` epochs,
      in the cycles listed, ``-1`` the last, all by default; the talk's mAP
      against epochs).
    Runs: seeds, chunk_size (images per prediction chunk), quiet, oracle (``"dataset"``, or
      ``"human"``: people label the acquired images, :mod:`bal.labeling`).
    """

    TASK: typing.ClassVar[str] = "detection"

    task: str = "detection"
    dataset: str = "road_scenes"
    num_train: int = 2000
    num_test: int = 500
    image_size: tuple[int, int] = (96, 128)
    data_seed: int = 0
    night_fraction: float = 0.3
    model: str = "centernet"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    posterior: str = "mc_dropout"
    num_samples: int = 8
    num_members: int | None = None
    estimator: str = "reparam"
    kl_weight: float = 1.0
    regularization: float = 1e-3
    strategies: tuple[str, ...] = ("random", "bald_heatmap", "box_bald", "disagreement")
    reduction: str = "max"
    q: float = 0.9
    score_threshold: float = 0.3
    max_detections: int = 20
    iou_threshold: float = 0.5
    box_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    target_classes: tuple[int, ...] = ()
    target_strength: float = 1.0
    initial_images: int = 100
    acquisition_images: int = 100
    cycles: int = 5
    epochs: int | None = 30
    steps: int | None = None
    min_steps: int = 200
    hflip: bool = True
    curve_every: int = 0
    curve_cycles: tuple[int, ...] | None = None
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    seeds: tuple[int, ...] = (0, 1, 2)
    chunk_size: int = 32
    quiet: bool = False
    oracle: str = "dataset"

    def __post_init__(self):
        self.check_types()
        if self.task != self.TASK:
            raise ValueError(f"task must be {self.TASK!r} for these settings; got {self.task!r}")
        self.check_seeds()
        if self.oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {', '.join(ORACLES)}; got {self.oracle!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown detection dataset {self.dataset!r}; built in: {list(DATASETS)}")
        if self.posterior not in FAMILIES:
            raise ValueError(f"unknown posterior family {self.posterior!r}; valid: {', '.join(FAMILIES)}")
        if self.model != "centernet":
            raise ValueError(f"unknown detection model {self.model!r}; built in: ['centernet']")
        if not self.strategies:
            raise ValueError("strategies is empty: name at least one strategy (e.g. 'random', 'box_bald')")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies lists a name twice: {list(self.strategies)}")
        parsed = [parse_strategy(s) for s in self.strategies]
        if any(p.targeted for p in parsed) and not self.target_classes:
            raise ValueError("a '_targeted' strategy needs target_classes (e.g. [1, 2] for pedestrian, cyclist)")
        if len(set(self.target_classes)) != len(self.target_classes) or any(c < 0 for c in self.target_classes):
            raise ValueError(f"target_classes must be distinct class ids >= 0; got {list(self.target_classes)}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {self.reduction!r}; valid reductions: {list(REDUCTIONS)}")
        if self.num_members is not None and self.num_members < 1:
            raise ValueError(f"num_members must be >= 1; got {self.num_members}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1; got {self.num_samples}")
        needs = [p.name for p in parsed if p.kind == "box" or (p.kind == "heatmap" and p.score in SAMPLE_SCORES)]
        if needs and self.posterior_samples < 2:
            raise ValueError(f"strategies {needs} measure disagreement between posterior samples, but this "
                             f"{self.posterior} posterior has {self.posterior_samples}; use mc_dropout, variational "
                             "or an ensemble with 2 or more samples / members")
        box_like = [p.name for p in parsed if p.kind == "box"]
        if box_like and self.reduction not in BOX_REDUCTIONS:
            raise ValueError(f"reduction {self.reduction!r} does not apply to box strategies {box_like}; use one "
                             f"of {list(BOX_REDUCTIONS)}")
        for name, lo, hi in (("q", 0.0, 1.0), ("target_strength", 0.0, 1.0), ("night_fraction", 0.0, 1.0),
                             ("score_threshold", 0.0, 1.0)):
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} must lie in [{lo}, {hi}]; got {getattr(self, name)}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must lie in (0, 1]; got {self.iou_threshold}")
        if any(w < 0 for w in self.box_weights):
            raise ValueError(f"box_weights must be >= 0; got {list(self.box_weights)}")
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"image_size must be (H, W) with both >= 16; got {list(self.image_size)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate}")
        for name in ("weight_decay", "kl_weight", "regularization"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs and steps (the training budget of a cycle)")
        for name in ("num_train", "num_test", "num_samples", "batch_size", "chunk_size", "initial_images",
                     "acquisition_images", "max_detections", "epochs", "steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if self.curve_cycles is not None:
            bad = [c for c in self.curve_cycles if not -(self.cycles + 1) <= c <= self.cycles]
            if bad or len(set(self.curve_cycle_numbers)) != len(self.curve_cycles):
                raise ValueError(f"curve_cycles must be distinct cycles in [0, cycles={self.cycles}] (or from the end: "
                                 f"-1 is the last); got {list(self.curve_cycles)}")
        for name in ("cycles", "min_steps", "curve_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
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

    @property
    def parsed_strategies(self) -> tuple[Strategy, ...]:
        return tuple(parse_strategy(s) for s in self.strategies)
