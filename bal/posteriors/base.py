"""The interface every approximate posterior implements.

A posterior is an immutable bundle of pure functions around a Flax model (in
the spirit of ``optax.GradientTransformation``): it holds no parameters. The
parameters live in a ``variables`` pytree (``{"params": ..., "batch_stats":
...}``) that the caller threads through explicitly::

    variables = posterior.init(key, example_x)                  # pytree
    loss, (new_state, aux) = posterior.loss(variables, x, y, key, num_train=N)
    log_probs = posterior.predict(variables, x, key, num_samples=S)        # [S, N, C]
    log_probs, emb = posterior.predict_with_embeddings(variables, x, key)  # [S,N,C], [S,N,D]

Acquisition functions and the active-learning loop see only ``log_probs``
(and embeddings), never which family produced them.

Other outputs than class logits (a detector's heatmaps and boxes): give a
single-model posterior a ``data_loss`` (used instead of the label NLL on float
targets ``y [B, ...]``, e.g. :func:`bal.detection.centernet.loss_terms`) and an
``output_transform`` (used instead of ``log_softmax`` at prediction, e.g.
:func:`raw_outputs`); every family then trains and predicts the model's own
outputs, ``[S, N, ...]`` per sample or member (see :class:`SingleModelPosterior`).

Sample strategy: posterior samples (keys) are mapped with ``jax.vmap`` or
``jax.lax.map``. On XLA:CPU a vmap over per-sample *weights* turns
convolutions into slow grouped convolutions (about 30x slower, measured in
``shared/notes-performance.md``); even for MC dropout, whose noise-free trunk
XLA hoists out of the vmap, ``lax.map`` measures faster there.
``sample_map="auto"`` picks per backend and use (:func:`resolve_sample_map`);
"vmap", "map" and "unroll" force one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from bal import nn as bnn

Variables = Any  # a pytree: {"params": ..., optionally "batch_stats": ...}

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


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean categorical cross-entropy. ``logits: [B, C]``, ``labels: [B]`` -> ``[]``."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def data_nll(logits: jax.Array, labels: jax.Array, class_weights=None) -> jax.Array:
    """The data term of every posterior's loss, for classification or dense prediction.

    - ``logits [B, C]``, ``labels [B]``: :func:`cross_entropy` (unchanged).
    - ``logits [B, H, W, C]`` (any ``[B, ..., C]``), ``labels [B, H, W]``:
      the mean cross-entropy over *labeled* pixels,
      :func:`bal.segmentation.masked_cross_entropy` — pixels holding the
      ignore label 255 (unlabeled crops, void) add nothing to the value and
      get exactly zero gradient; a batch without a labeled pixel has loss 0.

    ``class_weights`` (``[C]``, optional): the weighted mean
    ``Σ w_y CE / Σ w_y`` of :func:`bal.segmentation.masked_cross_entropy`
    (e.g. to up-weight rare classes), for either shape.
    """
    if logits.ndim == 2 and class_weights is None:
        return cross_entropy(logits, labels)
    from bal.segmentation.loss import masked_cross_entropy  # arrays only; imported on use

    weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)
    return masked_cross_entropy(logits, labels, class_weights=weights)


def raw_outputs(outputs: jax.Array) -> jax.Array:
    """The ``output_transform`` that keeps a model's outputs as they are (e.g. CenterNet's
    heatmap logits, sizes and offsets ``[N, H', W', C + 4]``)."""
    return outputs


def split_data_loss(value):
    """A ``data_loss`` result as ``(loss [], aux {name: scalar})``: a scalar, a
    ``(loss, aux)`` pair, or a dict holding ``"loss"`` (plus named parts)."""
    if isinstance(value, dict):
        if "loss" not in value:
            raise ValueError(f"a data_loss returning a dict must hold 'loss'; got keys {sorted(value)}")
        return value["loss"], {k: v for k, v in value.items() if k != "loss"}
    if isinstance(value, tuple):
        loss, aux = value
        return loss, dict(aux)
    return value, {}


@dataclasses.dataclass(frozen=True)
class SingleModelPosterior:
    """Shared machinery of the families built from one model (not an ensemble).

    Attributes:
      model: a ``bal.models`` module (or any Linen module with the same call
        contract: ``apply(variables, x, train=, sample=, return_embedding=)``).
      num_classes: ``C``, the number of classes the model predicts.
    """

    model: Any
    num_classes: int
    #: ``S`` when ``predict`` is called with ``num_samples=None``.
    default_num_samples: int = 20
    #: how posterior samples are mapped: "auto", "vmap" or "map" (``lax.map``).
    sample_map: str = "auto"
    #: with ``sample_map="map"``: samples computed together per map step.
    sample_batch_size: int | None = None
    #: optional per-class loss weights ``[C]`` (a tuple; see :func:`data_nll`).
    class_weights: tuple[float, ...] | None = None
    #: the data term of the loss, ``data_loss(outputs, y)`` -> a scalar, ``(loss, aux)`` or a
    #: dict with ``"loss"`` (:func:`split_data_loss`), on float targets ``y [B, ...]``;
    #: ``None``: the label NLL :func:`data_nll` (classification, segmentation). Pass a
    #: module-level function: it is part of the posterior's hash (a jit static argument).
    data_loss: Callable | None = None
    #: one sample's prediction from the model outputs; ``None``: ``log_softmax`` over the
    #: last axis (log-probabilities). :func:`raw_outputs` keeps the outputs as they are.
    output_transform: Callable | None = None

    #: the number of stacked members (``None`` for a single model).
    num_members = None

    def __post_init__(self):
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {self.num_classes!r}")
        check_num_samples(self.default_num_samples)
        resolve_sample_map(self.sample_map)
        if self.class_weights is not None:
            weights = tuple(float(w) for w in self.class_weights)
            if len(weights) != self.num_classes or min(weights) < 0 or not sum(weights) > 0:
                raise ValueError(f"class_weights must be {self.num_classes} non-negative numbers (one per class, "
                                 f"not all zero); got {self.class_weights!r}")
            object.__setattr__(self, "class_weights", weights)
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

    def data_term(self, outputs, y):
        """The data term of the loss and its aux scalars: ``(loss [], aux)``.

        The label NLL (:func:`data_nll`, aux ``{"nll"}``) or, with a ``data_loss``,
        its value (aux ``{"data_loss", **its named parts}``).
        """
        if self.data_loss is None:
            nll = data_nll(outputs, y, self.class_weights)
            return nll, {"nll": nll}
        value, aux = split_data_loss(self.data_loss(outputs, y))
        return value, {"data_loss": value, **aux}

    def transform_outputs(self, outputs):
        """One posterior sample's prediction from the model outputs (``log_softmax`` by default)."""
        if self.output_transform is None:
            return jax.nn.log_softmax(outputs)
        return self.output_transform(outputs)

    # --- initialisation -----------------------------------------------------------------
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
    def _train_forward(self, variables: Variables, x: jax.Array, key: jax.Array):
        """One stochastic training pass: ``(logits [B, C], new batch_stats, kl [])``."""
        mutable = ["kl"] + (["batch_stats"] if "batch_stats" in variables else [])
        logits, updates = self.model.apply(
            variables, x, train=True, rngs=model_rngs(key), mutable=mutable
        )
        kl = bnn.collect_kl(updates.get("kl", {}))
        return logits, updates.get("batch_stats"), kl

    def loss(self, variables, x, y, key, *, num_train: int, step=0):
        """The training loss of one minibatch: mean cross-entropy (plus family terms).

        Args:
          variables: the model variables.
          x: ``[B, ...]`` inputs; y: ``[B]`` integer labels, or ``[B, H, W]`` pixel
            labels for dense models (255 = unlabeled pixel, see :func:`data_nll`),
            or with a ``data_loss`` its float targets ``[B, ...]``.
          key: PRNG key for this step's noise (dropout, weight noise).
          num_train: size of the labeled set (scales KL terms).
          step: optimisation step (for annealing schedules).

        Returns:
          ``(loss [], (new_model_state, aux))`` where ``new_model_state`` is the
          updated ``batch_stats`` (or ``None``) and ``aux`` a dict of scalars.
        """
        logits, stats, _ = self._train_forward(variables, x, key)
        loss, aux = self.data_term(logits, y)
        return loss, (stats, aux)

    # --- prediction ---------------------------------------------------------------------
    def _one_sample(self, variables, x, key, sample: bool = True):
        """``(log_probs [N, C], embeddings [N, D])`` for one posterior sample (with an
        ``output_transform``: its value of the outputs instead of ``log_probs``)."""
        logits, embedding = self.model.apply(
            variables, x, train=False, sample=sample, rngs=model_rngs(key), return_embedding=True
        )
        return self.transform_outputs(logits), embedding

    def num_samples_for(self, num_samples: int | None) -> int:
        """The ``S`` that ``predict`` returns for a requested ``num_samples``."""
        return self.default_num_samples if num_samples is None else check_num_samples(num_samples)

    def predict_with_embeddings(self, variables, x, key, num_samples: int | None = None):
        """Posterior samples ``(log_probs [S, N, C], embeddings [S, N, D])``.

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

    def predict(self, variables, x, key, num_samples: int | None = None) -> jax.Array:
        """Posterior-sample log-probabilities ``log p(y | x, θ_s)``: ``[S, N, C]``."""
        return self.predict_with_embeddings(variables, x, key, num_samples)[0]


def check_num_samples(num_samples) -> int:
    """Validate a user-supplied sample count (an int >= 1)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1; got {num_samples!r}")
    return num_samples
