"""The settings of an active-learning experiment, as one plain dataclass.

An experiment is ``strategies x seeds`` runs of the loop over one dataset,
model and posterior family. The config is saved beside the results
(``config.json``) so that plots, summaries and ``--resume`` can check what a
results directory holds. Load one from TOML with :func:`load_config`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tomllib
import types
import typing
from typing import Any

from bal.checks import check_int, check_number

__all__ = ["Config", "ExperimentConfig", "load_config", "config_from_dict", "TASKS"]

#: settings that may differ between an interrupted run and its ``--resume``
RUNTIME_ONLY = ("quiet", "chunk_size")

#: who labels acquisitions (``oracle``): the dataset's own labels, or people (:mod:`bal.labeling`)
ORACLES = ("dataset", "human")

#: the largest seed (numpy's SeedSequence and jax keys both take it)
MAX_SEED = 2**32 - 1


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_type(name: str, hint, value):
    """``value`` checked against the type ``hint`` of a config field, strictly:
    no bool for an int, no float for an int, no string for a list, finite
    numbers only. Returns the value normalised (lists become tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return check_type(name, inner, value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false; got {_show(value)}")
        return value
    if hint is int:
        return check_int(name, value)
    if hint is float:
        return check_number(name, value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string; got {_show(value)}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a table / JSON object; got {_show(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list (e.g. [{_show(value)}]); got {_show(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_type(f"{name}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{name} must have {len(args)} entries; got {_show(value)}")
        return tuple(check_type(f"{name}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
    raise TypeError(f"config field {name} has an unsupported type {hint}")  # a bug, not bad input


class Config:
    """What every task's config shares: strict types, a ``task`` name, JSON round trips.

    Subclasses are frozen dataclasses; :meth:`check_types` runs first in their
    ``__post_init__`` so range checks see values of the right type.
    """

    def check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = check_type(field.name, hints[field.name], getattr(self, field.name))
            object.__setattr__(self, field.name, value)

    def to_dict(self) -> dict[str, Any]:
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v
        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a table / JSON object of settings; got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        d = cls.complete(dict(d))
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)} for task {cls.TASK!r}; valid settings: "
                f"{', '.join(sorted(fields))}"
            )
        return cls(**d)

    @classmethod
    def complete(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Settings implied by others (e.g. a growth rate replaces the default batch size)."""
        return d

    def compatible_with(self, other: "Config") -> list[str]:
        """Settings that differ from ``other`` beyond runtime-only ones."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in sorted(set(a) | set(b)) if k not in RUNTIME_ONLY and a.get(k) != b.get(k)]

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def check_seeds(self) -> None:
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed")
        for i, s in enumerate(self.seeds):
            check_int(f"seeds[{i}]", s, minimum=0, maximum=MAX_SEED)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds lists a seed twice: {list(self.seeds)}")

#: one line per setting, for ``bal run --help`` (a test checks every field has one)
HELP = {
    "task": "classification (the default) or segmentation; each task has its own settings",
    "dataset": "bal.data name: digits (bundled), mnist, fashion_mnist, cifar10, cifar100 ...",
    "data_dir": "directory of the dataset files; unset: $BAL_DATA_DIR, else the cache",
    "repeat": "copies of every training image in the pool (Repeated MNIST uses 3)",
    "repeat_noise": "std of the Gaussian noise added to each copy, inputs in [0, 1]",
    "model": "bal.models name: mlp, gal_cnn, lenet5, resnet18",
    "model_kwargs": "extra model constructor arguments, e.g. dropout rates",
    "posterior": "deterministic, mc_dropout, variational, ensemble, regularized_ensemble",
    "num_samples": "posterior samples S used to score the pool and evaluate",
    "num_members": "ensemble size (default 5 for ensemble, 8 for regularized_ensemble)",
    "estimator": "variational gradient estimator: reparam, local_reparam, flipout",
    "regularization": "beta of the regularized ensemble (DPE) penalty",
    "strategies": "acquisition names from the bal.acquisition registry (bald, entropy, batchbald ...)",
    "include_random": "add the random baseline",
    "most_informative": "acquire the highest scores (--no-most-informative: the lowest)",
    "acquisition_params": "per-strategy parameters, e.g. {\"batchbald\": {\"num_configs\": 10000}}",
    "initial_labels": "size of the initial labeled set",
    "initial_balanced": "initial labels class-balanced (k per class) instead of uniform",
    "acquisition_size": "items acquired per cycle (or use --growth)",
    "growth": "acquire this fraction of the current labeled set per cycle (0.1, 0.33, 1.0)",
    "cycles": "number of acquisition cycles",
    "label_budget": "stop once this many labels are reached",
    "target_accuracy": "end a run once its test accuracy reaches this (e.g. 0.95)",
    "pool_subset": "score a random subset of this many pool items per cycle (Gal 2017: 2000)",
    "epochs": "training epochs per cycle (an epoch is ceil(labels / batch_size) steps: every label once)",
    "min_steps": "train at least this many steps per cycle (whole epochs), a floor for tiny labeled sets",
    "weight_decay_per_example": "coupled L2 on kernels of weight_decay_per_example / labels (Gal et al. 2017: 3.5)",
    "validation_size": "labeled validation examples held out of the pool for early stopping (Gal et al. 2017: 100)",
    "patience": "with validation_size: stop training after this many epochs without better validation accuracy",
    "kl_weight": "variational ELBO: weight of the KL term (1 = the ELBO)",
    "kl_anneal_steps": "variational ELBO: warm the KL weight up linearly from 0 over this many steps",
    "train_samples": "variational: weight draws per training step, averaged",
    "batch_size": "training minibatch size",
    "learning_rate": "Adam(W) learning rate",
    "weight_decay": "AdamW weight decay",
    "warm_start": "continue from the previous cycle's weights instead of a fresh init",
    "oracle": "who labels acquisitions: dataset (its labels) or human (pause; bal queries export / labels import)",
    "seeds": "one run per seed and strategy",
    "chunk_size": "pool items per prediction chunk (memory S * chunk * C floats; none: 128 on the CPU, 2048 otherwise)",
    "quiet": "no progress display",
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Every setting of an active-learning experiment.

    Data and model:
      dataset: a ``bal.data`` name ("digits", "mnist", "fashion_mnist",
        "cifar10", ...); data_dir: where its files are (default: BAL_DATA_DIR).
      repeat: copies of every training image in the pool (Repeated MNIST of
        Kirsch et al. 2019 uses 3); repeat_noise: std of the Gaussian noise
        added to each copy (0.1 in the paper), on inputs scaled to [0, 1].
      model: a ``bal.models`` name; posterior: a ``bal.posteriors`` family.
      num_samples: posterior samples S for scoring; num_members: ensemble size;
      estimator: gradient estimator of variational layers; regularization:
        β of the regularized ensemble; dropout: model kwargs like dropout rates
        go in ``model_kwargs``.
    Acquisition:
      strategies: acquisition names (``bal.acquisition`` registry);
        include_random: add the "random" baseline if missing.
      most_informative: take the highest scores (False: the lowest).
      initial_labels: size of the initial labeled set; initial_balanced: k
        per class (Gal et al. 2017) instead of uniformly at random.
      acquisition_size: items acquired per cycle; or growth: a fraction of the
        current labeled set acquired per cycle (0.1, 0.33, 1.0 ...).
      cycles: number of acquisition cycles; label_budget: stop once this many
        labels are reached (either or both); target_accuracy: also end a run
        once its test accuracy reaches this.
      pool_subset: score a random subset of this many pool items per cycle
        (Gal et al. 2017 used 2,000); acquisition_params: extra parameters of
        the strategies, keyed by strategy name (e.g.
        ``{"batchbald": {"num_configs": 10000}}``).
    Training (from scratch every cycle unless warm_start):
      epochs (an epoch is ``ceil(labels / batch_size)`` steps), min_steps (a
      floor on steps per cycle), batch_size, learning_rate, weight_decay
      (decoupled, AdamW), weight_decay_per_example (coupled L2 on the kernels
      of ``weight_decay_per_example / num_labels``, as in Gal et al.'s Keras
      code with 3.5), validation_size and patience (a labeled validation set
      held out of the pool, early stopping on its accuracy), kl_weight,
      kl_anneal_steps and train_samples (the variational ELBO), warm_start.
    Labeling:
      oracle: "dataset" (the dataset's own labels, the default) or "human": a
        run pauses after each cycle until people label its queries
        (``bal queries export`` / ``bal labels import``, :mod:`bal.labeling`).
    Runs:
      seeds: one run per seed and strategy; chunk_size: pool items per
        prediction chunk (None: :func:`bal.predict.default_chunk_size`); quiet: no progress display.
    """

    TASK: typing.ClassVar[str] = "classification"

    task: str = "classification"
    dataset: str = "digits"
    data_dir: str | None = None
    repeat: int = 1
    repeat_noise: float = 0.1
    model: str = "mlp"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    posterior: str = "mc_dropout"
    num_samples: int = 20
    num_members: int | None = None
    estimator: str = "reparam"
    regularization: float = 1e-3
    strategies: tuple[str, ...] = ("bald", "entropy")
    include_random: bool = True
    most_informative: bool = True
    acquisition_params: dict = dataclasses.field(default_factory=dict)
    initial_labels: int = 20
    initial_balanced: bool = True
    acquisition_size: int | None = 10
    growth: float | None = None
    cycles: int | None = 10
    label_budget: int | None = None
    target_accuracy: float | None = None
    pool_subset: int | None = None
    epochs: int = 50
    min_steps: int = 0
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    weight_decay_per_example: float | None = None
    validation_size: int = 0
    patience: int | None = None
    kl_weight: float = 1.0
    kl_anneal_steps: int = 0
    train_samples: int = 1
    warm_start: bool = False
    oracle: str = "dataset"
    seeds: tuple[int, ...] = (0, 1, 2)
    chunk_size: int | None = None
    quiet: bool = False

    def __post_init__(self):
        self.check_types()
        if self.task != self.TASK:
            raise ValueError(f"task must be {self.TASK!r} for these settings; got {self.task!r}")
        if not self.strategies:
            raise ValueError("strategies is empty: name at least one acquisition strategy")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies lists a name twice: {list(self.strategies)}")
        self.check_seeds()
        for name, params in self.acquisition_params.items():
            if not isinstance(params, dict):
                raise ValueError(f"acquisition_params.{name} must be a table of parameters; got {params!r}")
        if self.num_members is not None and self.num_members < 1:
            raise ValueError(f"num_members must be >= 1; got {self.num_members}")
        for name in ("learning_rate", "growth"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {getattr(self, name)}")
        for name in ("weight_decay", "repeat_noise", "regularization", "kl_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if (self.acquisition_size is None) == (self.growth is None):
            raise ValueError("give exactly one of acquisition_size and growth")
        if self.acquisition_size is not None and self.acquisition_size < 1:
            raise ValueError(f"acquisition_size must be >= 1; got {self.acquisition_size}")
        if self.growth is not None and not self.growth > 0:
            raise ValueError(f"growth must be a positive fraction (e.g. 0.1); got {self.growth}")
        if self.cycles is None and self.label_budget is None:
            raise ValueError("give cycles or label_budget (or both) to bound the run")
        if self.cycles is not None and self.cycles < 0:
            raise ValueError(f"cycles must be >= 0; got {self.cycles}")
        if self.initial_labels < 1:
            raise ValueError(f"initial_labels must be >= 1; got {self.initial_labels}")
        if self.label_budget is not None and self.label_budget < self.initial_labels:
            raise ValueError(
                f"label_budget {self.label_budget} is below initial_labels {self.initial_labels}"
            )
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must lie in (0, 1]; got {self.target_accuracy}")
        if self.pool_subset is not None and self.pool_subset < 1:
            raise ValueError(f"pool_subset must be >= 1; got {self.pool_subset}")
        if self.repeat < 1:
            raise ValueError(f"repeat must be >= 1; got {self.repeat}")
        for name in ("epochs", "batch_size", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("min_steps", "validation_size", "kl_anneal_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if self.train_samples < 1:
            raise ValueError(f"train_samples must be >= 1; got {self.train_samples}")
        if self.patience is not None and (self.patience < 0 or not self.validation_size):
            raise ValueError("patience needs validation_size > 0 and must be >= 0")
        if self.weight_decay_per_example is not None and not self.weight_decay_per_example >= 0:
            raise ValueError(f"weight_decay_per_example must be >= 0; got {self.weight_decay_per_example}")
        if self.oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {', '.join(ORACLES)}; got {self.oracle!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 (or None for the backend default); got {self.chunk_size}")

    @classmethod
    def complete(cls, d: dict[str, Any]) -> dict[str, Any]:
        # TOML has no null: `growth = 0.1` alone means "no fixed acquisition size", and
        # `label_budget = 500` alone "run until the budget", not the default 10 cycles
        if d.get("growth") is not None and "acquisition_size" not in d:
            d["acquisition_size"] = None
        if d.get("label_budget") is not None and "cycles" not in d:
            d["cycles"] = None
        return d

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


def load_config(path) -> dict[str, Any]:
    """Read settings from a TOML (``.toml``) or JSON (``.json``) file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"config file {path} must end in .toml or .json")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} cannot be read: {err}") from None
    try:
        settings = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValueError(f"config file {path} is not valid {kind}: {err}") from None
    if not isinstance(settings, dict):
        raise ValueError(f"config file {path} must hold a table / object of settings; got "
                         f"{type(settings).__name__}")
    return settings


def config_class(task: str):
    """The config dataclass of ``task`` ("classification", "segmentation", "detection")."""
    if task == "classification":
        return ExperimentConfig
    if task == "segmentation":
        from bal.active.segmentation.config import SegmentationConfig
        return SegmentationConfig
    if task == "detection":
        from bal.active.detection_config import DetectionConfig
        return DetectionConfig
    raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")


#: the tasks the loop runs
TASKS = ("classification", "segmentation", "detection")


def config_from_dict(settings: dict[str, Any]) -> Config:
    """A config of the task named by ``settings["task"]`` (default classification)."""
    if not isinstance(settings, dict):
        raise ValueError(f"a config must be a table / JSON object of settings; got {type(settings).__name__}")
    task = settings.get("task", "classification")
    if not isinstance(task, str):
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    return config_class(task).from_dict(settings)
