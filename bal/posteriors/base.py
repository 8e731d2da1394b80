"""What the single-model families share: sampling machinery and an abstract base.

The interface itself is :class:`bal.posteriors.protocol.Posterior`; the losses
are :mod:`bal.posteriors.losses`. This module holds the rest of what
:class:`~bal.posteriors.Deterministic`, :class:`~bal.posteriors.MCDropout` and
:class:`~bal.posteriors.Variational` have in common: running a ``bal.models``
module (one training pass, one posterior sample) and mapping samples, in
:class:`SingleModelPosterior`, whose concrete methods no family overrides.

Other outputs than class logits (a detector's heatmaps and boxes): give a
single-model family a ``data_loss`` (used instead of the label NLL on float
targets ``y [B, ...]``, e.g. :func:`bal.detection.centernet.loss_terms`) and an
``output_transform`` (used instead of ``log_softmax`` at prediction, e.g.
:func:`raw_outputs`); every family then trains and predicts the model's own
outputs, ``[S, N, ...]`` per sample or member.

Sample strategy: posterior samples (keys) are mapped with ``jax.vmap`` or
``jax.lax.map``. On XLA:CPU a vmap over per-sample *weights* turns
convolutions into slow grouped convolutions (about 30x slower, measured in
``shared/notes-performance.md``); even for MC dropout, whose noise-free trunk
XLA hoists out of the vmap, ``lax.map`` measures faster there.
``sample_map="auto"`` picks per backend and use (:func:`resolve_sample_map`);
"vmap", "map" and "unroll" force one.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar, final

import jax
import jax.numpy as jnp

from bal import nn as bnn
from bal.posteriors import losses
from bal.posteriors.losses import cross_entropy, data_nll, split_data_loss  # their old home, kept importable
from bal.posteriors.protocol import LossAux, Variables

__all__ = [
    "SAMPLE_MAPS",
    "SingleModelPosterior",
    "Variables",
    "check_num_samples",
    "cross_entropy",
    "data_nll",
    "map_over",
    "model_rngs",
    "raw_outputs",
    "resolve_sample_map",
    "split_data_loss",
]

SAMPLE_MAPS = ("auto", "vmap", "map", "unroll")


def model_rngs(key: jax.Array) -> dict[str, jax.Array]:
    """The RNG streams a ``bal`` model reads: weight ``noise`` and ``dropout``."""
    noise, dropout = jax.random.split(key)
    return {"noise": noise, "dropout": dropout}


def map_over(fn: Callable, xs, strategy: str, batch_size: int | None = None):
    """Map ``fn`` over the leading axis of ``xs``.

    ``"vmap"``: one batched computation; ``"map"``: ``lax.map`` (a loop inside
    XLA, optionally ``batch_size`` at a time); ``"unroll"``: a Python loop at
    trace time, i.e. ``n`` copies of ``fn`` in one program (for small ``n``).
    """
    if strategy == "vmap":
        return jax.vmap(fn)(xs)
    if strategy == "map":
        return jax.lax.map(fn, xs, batch_size=batch_size)
    if strategy == "unroll":
        n = jax.tree.leaves(xs)[0].shape[0]
        outs = [fn(jax.tree.map(lambda a, i=i: a[i], xs)) for i in range(n)]
        return jax.tree.map(lambda *parts: jnp.stack(parts), *outs)
    raise ValueError(f"unknown map strategy {strategy!r}; expected 'vmap', 'map' or 'unroll'")


def resolve_sample_map(strategy: str, training: bool = False, *, members: bool = False) -> str:
    """Pick how to map samples (``members=True``: ensemble members) for ``strategy="auto"``.

    The choice is the backend policy's (:func:`bal.backend.policy`):
    ``train_map`` under ``grad``, else ``member_map`` / ``sample_map``.
    Measured on XLA:CPU (Gal CNN, 2 cores, 2,000 inputs x 20 samples): in
    prediction ``lax.map`` beats ``vmap`` for weight samples and ensemble
    members by ~13x (vmap turns per-sample kernels into grouped convolutions)
    and for MC dropout by ~1.25x (0.94 vs 1.18 s). Under ``grad``, ``lax.map``
    is itself ~6x slower than a plain step, so training unrolls the (few)
    members or weight draws. Accelerators use ``vmap``.
    """
    if strategy not in SAMPLE_MAPS:
        raise ValueError(f"unknown sample_map {strategy!r}; expected one of {SAMPLE_MAPS}")
    if strategy != "auto":
        return strategy
    from bal import backend  # here: the policy is read at trace time

    p = backend.policy()
    if training:
        return p.train_map
    return p.member_map if members else p.sample_map


def check_num_samples(num_samples) -> int:
    """Validate a user-supplied sample count (an int >= 1)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1; got {num_samples!r}")
    return num_samples


def raw_outputs(outputs: jax.Array) -> jax.Array:
    """The ``output_transform`` that keeps a model's outputs as they are (e.g. CenterNet's
    heatmap logits, sizes and offsets ``[N, H', W', C + 4]``)."""
    return outputs


class SingleModelPosterior(abc.ABC):
    """Abstract base of the families built from one model (not an ensemble).

    Each family is a final frozen dataclass declaring these fields, in this order
    (so that the constructors read alike), then its own:

    Attributes:
      model: a ``bal.models`` module (or any Linen module with the same call
        contract: ``apply(variables, x, train=, sample=, return_embedding=)``,
        reading the RNG streams ``"noise"`` and ``"dropout"``).
      num_classes: ``C``, the number of classes the model predicts.
      default_num_samples: ``S`` when ``predict`` is called with ``num_samples=None``.
      sample_map: how posterior samples are mapped: "auto", "vmap", "map" (``lax.map``)
        or "unroll" (:func:`resolve_sample_map`).
      sample_batch_size: with ``sample_map="map"``, samples computed together per step.
      class_weights: optional per-class weights ``[C]`` of the label NLL (a tuple;
        :func:`bal.posteriors.losses.data_nll`).
      data_loss: the data term on float targets ``y [B, ...]``, ``data_loss(outputs, y)``
        -> a scalar, ``(loss, aux)`` or a dict with ``"loss"``
        (:func:`bal.posteriors.losses.split_data_loss`); ``None``: the label NLL. Pass a
        module-level function: it is part of the posterior's hash (a jit static argument).
      output_transform: one sample's prediction from the model outputs; ``None``:
        ``log_softmax`` over the last axis. :func:`raw_outputs` keeps them as they are.

    The concrete methods here are final; a family defines ``loss``,
    ``num_samples_for`` and ``predict_with_embeddings`` (the abstract methods).
    """

    # annotations only: each family declares the dataclass fields itself
    model: Any
    num_classes: int
    default_num_samples: int
    sample_map: str
    sample_batch_size: int | None
    class_weights: tuple[float, ...] | None
    data_loss: Callable | None
    output_transform: Callable | None

    #: one model: no stacked members.
    num_members: ClassVar[None] = None

    @final
    def _check_fields(self) -> None:
        """Validate the shared fields (and store ``class_weights`` as a tuple of floats)."""
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {self.num_classes!r}")
        check_num_samples(self.default_num_samples)
        resolve_sample_map(self.sample_map)
        if self.class_weights is not None:
            weights = tuple(float(w) for w in self.class_weights)
            if len(weights) != self.num_classes or min(weights) < 0 or not sum(weights) > 0:
                raise ValueError(f"class_weights must be {self.num_classes} non-negative numbers (one per class, "
                                 f"not all zero); got {self.class_weights!r}")
            object.__setattr__(self, "class_weights", weights)  # frozen: a hashable tuple
        if self.class_weights is not None and self.data_loss is not None:
            raise ValueError("class_weights weight the label NLL; with a data_loss put class weights "
                             "into that loss instead")
        for name in ("data_loss", "output_transform"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ValueError(f"{name} must be a function; got {getattr(self, name)!r}")

    @property
    def uses_labels(self) -> bool:
        """Whether ``y`` holds integer labels (the NLL loss) rather than targets of a ``data_loss``."""
        return self.data_loss is None

    @final
    def data_term(self, outputs, y) -> tuple[jax.Array, dict]:
        """The data term of the loss and its aux scalars, :func:`bal.posteriors.losses.data_term`."""
        return losses.data_term(outputs, y, class_weights=self.class_weights, data_loss=self.data_loss)

    @final
    def transform_outputs(self, outputs):
        """One posterior sample's prediction from the model outputs (``log_softmax`` by default)."""
        if self.output_transform is None:
            return jax.nn.log_softmax(outputs)
        return self.output_transform(outputs)

    # --- initialisation -----------------------------------------------------------------
    @final
    def init(self, key: jax.Array, example_x: jax.Array) -> Variables:
        """Initialise the variables from ``key`` and an example batch ``[B, ...]``."""
        params_key, noise_key, dropout_key = jax.random.split(key, 3)
        variables = self.model.init(
            {"params": params_key, "noise": noise_key, "dropout": dropout_key},
            example_x,
            train=False,
        )
        return {k: v for k, v in variables.items() if k in ("params", "batch_stats")}

    # --- training -----------------------------------------------------------------------
    @final
    def _train_forward(self, variables: Variables, x: jax.Array, key: jax.Array):
        """One stochastic training pass: ``(outputs [B, C], new batch_stats or None, kl [])``
        (``kl`` is 0 for a model without Bayesian layers)."""
        mutable = ["kl"] + (["batch_stats"] if "batch_stats" in variables else [])
        logits, updates = self.model.apply(
            variables, x, train=True, rngs=model_rngs(key), mutable=mutable
        )
        kl = bnn.collect_kl(updates.get("kl", {}))
        return logits, updates.get("batch_stats"), kl

    @final
    def _one_pass_loss(self, variables: Variables, x, y, key) -> tuple[jax.Array, LossAux]:
        """The data term of one training pass: the whole loss of a maximum-likelihood family."""
        outputs, stats, _ = self._train_forward(variables, x, key)
        value, aux = self.data_term(outputs, y)
        return value, (stats, aux)

    @abc.abstractmethod
    def loss(self, variables: Variables, x, y, key, *, num_train: int, step=0) -> tuple[jax.Array, LossAux]:
        """See :meth:`bal.posteriors.protocol.Posterior.loss`."""

    # --- prediction ---------------------------------------------------------------------
    @final
    def _one_sample(self, variables, x, key, sample: bool = True):
        """``(log_probs [N, C], embeddings [N, D])`` for one posterior sample (with an
        ``output_transform``: its value of the outputs instead of ``log_probs``)."""
        logits, embedding = self.model.apply(
            variables, x, train=False, sample=sample, rngs=model_rngs(key), return_embedding=True
        )
        return self.transform_outputs(logits), embedding

    @final
    def _sampled_predictions(self, variables, x, key, num_samples: int | None):
        """``S`` posterior samples ``(log_probs [S, N, C], embeddings [S, N, D])``.

        Sample ``s`` uses the key ``split(key, S)[s]`` for every item of ``x``, so
        calling this on chunks of a pool with the same ``key`` gives the same
        posterior sample (weights or dropout masks) for every chunk: joint
        scores such as BatchBALD stay meaningful.
        """
        keys = jax.random.split(key, self.num_samples_for(num_samples))
        strategy = resolve_sample_map(self.sample_map)
        return map_over(
            lambda k: self._one_sample(variables, x, k), keys, strategy, self.sample_batch_size
        )

    @abc.abstractmethod
    def num_samples_for(self, num_samples: int | None) -> int:
        """See :meth:`bal.posteriors.protocol.Posterior.num_samples_for`."""

    @abc.abstractmethod
    def predict_with_embeddings(self, variables, x, key, num_samples: int | None = None):
        """See :meth:`bal.posteriors.protocol.Posterior.predict_with_embeddings`."""

    @final
    def predict(self, variables, x, key, num_samples: int | None = None) -> jax.Array:
        """Posterior-sample log-probabilities ``log p(y | x, θ_s)``: ``[S, N, C]``."""
        return self.predict_with_embeddings(variables, x, key, num_samples)[0]
