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
from typing import Any

__all__ = ["ExperimentConfig", "load_config"]

#: settings that may differ between an interrupted run and its ``--resume``
RUNTIME_ONLY = ("quiet", "chunk_size")

#: one line per setting, for ``bal run --help`` (a test checks every field has one)
HELP = {
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
    "pool_subset": "score a random subset of this many pool items per cycle (Gal 2017: 2000)",
    "epochs": "training epochs per cycle (an epoch is max(1, labels // batch_size) steps)",
    "batch_size": "training minibatch size",
    "learning_rate": "Adam(W) learning rate",
    "weight_decay": "AdamW weight decay",
    "warm_start": "continue from the previous cycle's weights instead of a fresh init",
    "seeds": "one run per seed and strategy",
    "chunk_size": "pool items per prediction chunk (memory S * chunk * C floats; none: 128 on the CPU, 2048 otherwise)",
    "quiet": "no progress display",
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
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
        labels are reached (either or both).
      pool_subset: score a random subset of this many pool items per cycle
        (Gal et al. 2017 used 2,000); acquisition_params: extra parameters of
        the strategies, keyed by strategy name (e.g.
        ``{"batchbald": {"num_configs": 10000}}``).
    Training (from scratch every cycle unless warm_start):
      epochs, batch_size, learning_rate, weight_decay (scaled by
      ``weight_decay_per_example / num_labels`` when that is set, as in
      Gal et al.'s Keras code), warm_start.
    Runs:
      seeds: one run per seed and strategy; chunk_size: pool items per
        prediction chunk (None: :func:`bal.predict.default_chunk_size`); quiet: no progress display.
    """

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
    pool_subset: int | None = None
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warm_start: bool = False
    seeds: tuple[int, ...] = (0, 1, 2)
    chunk_size: int | None = None
    quiet: bool = False

    def __post_init__(self):
        object.__setattr__(self, "strategies", tuple(self.strategies))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.strategies:
            raise ValueError("strategies is empty: name at least one acquisition strategy")
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed")
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
        if self.pool_subset is not None and self.pool_subset < 1:
            raise ValueError(f"pool_subset must be >= 1; got {self.pool_subset}")
        if self.repeat < 1:
            raise ValueError(f"repeat must be >= 1; got {self.repeat}")
        for name in ("epochs", "batch_size", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 (or None for the backend default); got {self.chunk_size}")

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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["strategies"], d["seeds"] = list(self.strategies), list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(sorted(fields))}"
            )
        return cls(**d)

    def compatible_with(self, other: "ExperimentConfig") -> list[str]:
        """Settings that differ from ``other`` beyond runtime-only ones."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in RUNTIME_ONLY and a[k] != b[k]]

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def load_config(path) -> dict[str, Any]:
    """Read settings from a TOML (``.toml``) or JSON (``.json``) file."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {path} is not valid TOML: {err}") from None
    raise ValueError(f"config file {path} must end in .toml or .json")
