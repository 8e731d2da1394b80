"""The settings of a classification active-learning experiment, and the config of every task.

An experiment is ``strategies x seeds`` runs of the loop over one dataset,
model and posterior family. The config is saved beside the results
(``config.json``) so that plots, summaries and ``--resume`` can check what a
results directory holds. Load one from TOML with :func:`load_config`; settings
are typed and range-checked by :mod:`bal.config`.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any

from bal.active.stopping import CRITERIA, KAPPA_THRESHOLD
from bal.config import MAX_SEED, Config, help_of, load_config, setting

__all__ = ["Config", "ExperimentConfig", "load_config", "config_from_dict", "config_class", "TASKS", "HELP"]

#: who labels acquisitions (``oracle``): the dataset's own labels, or people (:mod:`bal.labeling`)
ORACLES = ("dataset", "human")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Every setting of a classification active-learning experiment.

    Each field's ``help`` is its documentation (``bal run --help``, :data:`HELP`).
    How settings combine: exactly one of ``acquisition_size`` and ``growth``;
    ``cycles`` and / or ``label_budget`` bound a run, ``target_accuracy`` and
    ``stop_on`` (:mod:`bal.active.stopping`) may end it earlier; ``patience``
    needs ``validation_size``; ``kl_weight``, ``kl_anneal_steps`` and
    ``train_samples`` shape the variational ELBO only; ``oracle = "human"``
    pauses each run for people's labels (:mod:`bal.labeling`).
    """

    TASK: typing.ClassVar[str] = "classification"

    task: str = setting("classification", help="classification (the default), segmentation or detection; "
                        "each task has its own settings")
    dataset: str = setting("digits", help="bal.data name: digits (bundled), mnist, fashion_mnist, cifar10, "
                           "cifar100 ...; or pool:PATH, a pool packed by bal pool pack")
    data_dir: str | None = setting(None, help="directory of the dataset files; unset: $BAL_DATA_DIR, else the cache")
    repeat: int = setting(1, minimum=1, help="copies of every training image in the pool (Repeated MNIST uses 3)")
    repeat_noise: float = setting(0.1, minimum=0, help="std of the Gaussian noise added to each copy, inputs in "
                                  "[0, 1]")
    model: str = setting("mlp", help="bal.models name: mlp, gal_cnn, lenet5, resnet18")
    model_kwargs: dict = setting(default_factory=dict, help="extra model constructor arguments, e.g. dropout rates")
    posterior: str = setting("mc_dropout", help="deterministic, mc_dropout, variational, ensemble, "
                             "regularized_ensemble")
    num_samples: int = setting(20, minimum=1, help="posterior samples S used to score the pool and evaluate")
    num_members: int | None = setting(None, minimum=1, help="ensemble size (default 5 for ensemble, 8 for "
                                      "regularized_ensemble)")
    estimator: str = setting("reparam", help="variational gradient estimator: reparam, local_reparam, flipout")
    regularization: float = setting(1e-3, minimum=0, help="beta of the regularized ensemble (DPE) penalty")
    strategies: tuple[str, ...] = setting(("bald", "entropy"), nonempty=True, unique=True,
                                          help="acquisition names from the bal.acquisition registry (bald, "
                                          "entropy, batchbald ...)")
    include_random: bool = setting(True, help="add the random baseline")
    most_informative: bool = setting(True, help="acquire the highest scores (--no-most-informative: the lowest)")
    acquisition_params: dict = setting(default_factory=dict, help="per-strategy parameters, e.g. "
                                       "{\"batchbald\": {\"num_configs\": 10000}}")
    initial_labels: int = setting(20, minimum=1, help="size of the initial labeled set")
    initial_balanced: bool = setting(True, help="initial labels class-balanced (k per class) instead of uniform")
    acquisition_size: int | None = setting(10, minimum=1, help="items acquired per cycle (or use --growth)")
    growth: float | None = setting(None, above=0, help="acquire this fraction of the current labeled set per "
                                   "cycle (0.1, 0.33, 1.0)")
    cycles: int | None = setting(10, minimum=0, help="number of acquisition cycles")
    label_budget: int | None = setting(None, help="stop once this many labels are reached")
    target_accuracy: float | None = setting(None, above=0, maximum=1, help="end a run once its test accuracy "
                                            "reaches this (e.g. 0.95)")
    pool_subset: int | None = setting(None, minimum=1, help="score a random subset of this many pool items per "
                                      "cycle (Gal 2017: 2000); with repeat, whole images with all their copies")
    epochs: int = setting(50, minimum=1, help="training epochs per cycle (an epoch is ceil(labels / batch_size) "
                          "steps: every label once)")
    min_steps: int = setting(0, minimum=0, help="train at least this many steps per cycle (whole epochs), a "
                             "floor for tiny labeled sets")
    batch_size: int = setting(64, minimum=1, help="training minibatch size")
    learning_rate: float = setting(1e-3, above=0, help="Adam(W) learning rate")
    weight_decay: float = setting(0.0, minimum=0, help="AdamW weight decay")
    weight_decay_per_example: float | None = setting(None, minimum=0, help="coupled L2 on kernels of "
                                                     "weight_decay_per_example / labels (Gal et al. 2017: 3.5)")
    validation_size: int = setting(0, minimum=0, help="labeled validation examples held out of the pool for "
                                   "early stopping (Gal et al. 2017: 100)")
    patience: int | None = setting(None, minimum=0, help="with validation_size: stop training after this many "
                                   "epochs without better validation accuracy")
    kl_weight: float = setting(1.0, minimum=0, help="variational ELBO: weight of the KL term (1 = the ELBO)")
    kl_anneal_steps: int = setting(0, minimum=0, help="variational ELBO: warm the KL weight up linearly from 0 "
                                   "over this many steps")
    train_samples: int = setting(1, minimum=1, help="variational: weight draws per training step, averaged")
    warm_start: bool = setting(False, help="continue from the previous cycle's weights instead of a fresh init")
    oracle: str = setting("dataset", choices=ORACLES, help="who labels acquisitions: dataset (its labels) or "
                          "human (pause; bal queries export / labels import)")
    stop_set_size: int = setting(0, minimum=0, help="pool items whose predictions the stopping criteria watch "
                                 "every cycle (Bloodgood & Vijay-Shanker 2009: a few thousand); 0: none")
    stop_on: tuple[str, ...] = setting((), choices=CRITERIA, unique=True, help="end a run when one of these "
                                       "says more labels stop paying: kappa, plateau (needs stop_set_size)")
    kappa_threshold: float = setting(KAPPA_THRESHOLD, above=0, maximum=1, help="kappa: stop when the mean Cohen's "
                                     "kappa of consecutive models over the last stop_window cycles reaches this "
                                     "(0.99 in the paper never fires on models retrained every cycle: RESULTS.md)")
    stop_window: int = setting(3, minimum=1, help="cycles the stopping criteria look back")
    plateau_threshold: float | None = setting(None, minimum=0, help="plateau: stop when the stop set's mean "
                                              "predictive entropy (nats) falls below this")
    plateau_epsilon: float | None = setting(None, above=0, help="plateau: stop when that entropy changed by less "
                                            "than this over stop_window cycles")
    seeds: tuple[int, ...] = setting((0, 1, 2), minimum=0, maximum=MAX_SEED, nonempty=True, unique=True,
                                     help="one run per seed and strategy")
    chunk_size: int | None = setting(None, minimum=1, help="pool items per prediction chunk (memory S * chunk * C "
                                     "floats; none: 128 on the CPU, 2048 otherwise)")
    quiet: bool = setting(False, help="no progress display")

    def validate(self):
        for name, params in self.acquisition_params.items():
            if not isinstance(params, dict):
                raise ValueError(f"acquisition_params.{name} must be a table of parameters; got {params!r}")
        if (self.acquisition_size is None) == (self.growth is None):
            raise ValueError("give exactly one of acquisition_size and growth (a flag unsets the other: "
                             "--acquisition-size none)")
        if self.cycles is None and self.label_budget is None:
            raise ValueError("give cycles or label_budget (or both) to bound the run")
        if self.label_budget is not None and self.label_budget < self.initial_labels:
            raise ValueError(
                f"label_budget {self.label_budget} is below initial_labels {self.initial_labels}"
            )
        if self.stop_on and not self.stop_set_size:
            raise ValueError(f"stop_on {list(self.stop_on)} needs a stop set: set stop_set_size (e.g. 2000)")
        if "plateau" in self.stop_on and self.plateau_threshold is None and self.plateau_epsilon is None:
            raise ValueError("stop_on 'plateau' needs plateau_threshold or plateau_epsilon")
        if self.patience is not None and not self.validation_size:
            raise ValueError("patience needs validation_size > 0 (a held-out set to early-stop on)")

    @classmethod
    def complete(cls, d: dict[str, Any]) -> dict[str, Any]:
        # TOML has no null: `growth = 0.1` alone means "no fixed acquisition size", and
        # `label_budget = 500` alone "run until the budget", not the default 10 cycles
        if d.get("growth") is not None and "acquisition_size" not in d:
            d["acquisition_size"] = None
        if d.get("label_budget") is not None and "cycles" not in d:
            d["cycles"] = None
        return d

    def inert(self) -> frozenset[str]:
        """The settings of stopping criteria that ``stop_on`` does not name."""
        unused = set() if "kappa" in self.stop_on else {"kappa_threshold"}
        if "plateau" not in self.stop_on:
            unused |= {"plateau_threshold", "plateau_epsilon"}
        if not self.stop_on:
            unused.add("stop_window")
        return frozenset(unused)

    @property
    def all_strategies(self) -> tuple[str, ...]:
        """The strategies run, with the random baseline when ``include_random``."""
        if self.include_random and "random" not in self.strategies:
            return self.strategies + ("random",)
        return self.strategies

    def acquisition_count(self, num_labeled: int) -> int:
        """Items to acquire in a cycle that starts with ``num_labeled`` labels."""
        if self.acquisition_size is not None:
            k = self.acquisition_size
        else:
            k = max(1, round(self.growth * num_labeled))
        if self.label_budget is not None:
            k = min(k, self.label_budget - num_labeled)
        return k


#: one line per setting, for ``bal run --help`` (a test checks every field has one)
HELP = help_of(ExperimentConfig)


#: the tasks the loop runs: their config class and task class (``module:name``, imported on demand)
TASKS = {
    "classification": ("bal.active.config:ExperimentConfig", "bal.active.tasks.classification:ClassificationTask"),
    "segmentation": ("bal.active.segmentation.config:SegmentationConfig",
                     "bal.active.tasks.segmentation:SegmentationTask"),
    "detection": ("bal.active.detection_config:DetectionConfig", "bal.active.tasks.detection:DetectionTask"),
}


def task_part(task, part: int):
    """``TASKS[task][part]`` imported (0: the config class, 1: the task class)."""
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    module, name = TASKS[task][part].split(":")
    return getattr(importlib.import_module(module), name)


def config_class(task: str):
    """The config dataclass of ``task`` ("classification", "segmentation", "detection")."""
    return task_part(task, 0)


def config_from_dict(settings: dict[str, Any]) -> Config:
    """A config of the task named by ``settings["task"]`` (default classification)."""
    if not isinstance(settings, dict):
        raise ValueError(f"a config must be a table / JSON object of settings; got {type(settings).__name__}")
    return config_class(settings.get("task", "classification")).from_dict(settings)
