"""What every ``bal`` model shares: the three kinds, the call modes, layer building.

A model is built as one of three *kinds*:

* ``"deterministic"`` -- ordinary ``nn.Dense``/``nn.Conv``; dropout (where the
  architecture has it) is on in training only.
* ``"variational"`` -- mean-field Gaussian weights in every dense/conv layer
  (:mod:`bal.nn.linen`) trained with the chosen ``estimator``; no dropout.
* ``"mc_dropout"`` -- the deterministic architecture with dropout kept on at
  prediction time (Gal & Ghahramani 2016).

and called in one of three *modes* (the ``bal.models`` call contract):

* ``train=True`` -- variational layers use the configured estimator; dropout
  on with per-example masks; batch norm uses batch statistics (pass
  ``mutable=["batch_stats"]``).
* ``train=False, sample=True`` (posterior sampling) -- variational layers draw
  one weight sample per call (plain reparameterisation, ``"noise"`` stream)
  shared by the whole batch; MC-dropout models keep dropout on with one mask
  per layer shared by the batch (``"dropout"`` stream); deterministic models
  ignore ``sample``; batch norm uses its running averages.
* ``train=False, sample=False`` -- fully deterministic: posterior means,
  dropout off, running averages.

The defaults are ``train=False, sample=False`` (so ``model.apply(variables, x)``
is the deterministic prediction and needs no ``rngs``); ``sample`` is ignored
when ``train=True`` and by deterministic models.

Sharing one draw (weights or masks) across the batch at prediction makes a
posterior sample one network, so joint scores over a pool (BatchBALD) are
meaningful and chunks scored with the same key see the same network
("consistent" MC dropout, Kirsch et al. 2019). ``consistent_dropout=False``
gives per-example masks at prediction instead.

Models put dropout only after a noise-free trunk, so when posterior samples are
mapped over keys (``jax.vmap`` or ``jax.lax.map``) XLA computes the trunk once
for MC dropout (``shared/notes-performance.md``).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from bal import nn as bnn
from bal.nn import ops
from bal.models.dropout import Dropout

KINDS = ("deterministic", "variational", "mc_dropout")


def check_kind(kind) -> str:
    """Return ``kind`` if valid, else raise ``ValueError`` listing the kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    return kind


def check_rate(name: str, rate) -> None:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be a dropout rate in [0, 1); got {rate!r}")


def check_images(x, model: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[N, H, W, C]``."""
    if jnp.ndim(x) != 4:
        raise ValueError(f"{model} expects images [N, H, W, C]; got shape {jnp.shape(x)}")


@dataclasses.dataclass(frozen=True)
class Layers:
    """Builds dense/conv/dropout layers of the right kind for one call mode.

    Create it inside a ``@nn.compact`` method (layers are attached to the
    module being defined) or pass it to a submodule as an attribute.
    """

    kind: str
    train: bool
    sample: bool
    estimator: str = "reparam"
    prior: Any = bnn.GaussianPrior()
    logvar_init: Any = bnn.gaussian.default_logvar_init
    bayesian_bias: bool = False
    consistent_dropout: bool = True

    @property
    def _bayes_call(self) -> dict:
        """Call-time options of the Bayesian layers in this mode."""
        if self.train:
            return {"deterministic": False}  # the configured estimator
        if self.sample:
            return {"deterministic": False, "estimator": "reparam"}
        return {"deterministic": True}

    def _wrap(self, layer):
        if self.kind != "variational":
            return layer
        return lambda x: layer(x, **self._bayes_call)

    def _bayes_kwargs(self) -> dict:
        return dict(estimator=self.estimator, prior=self.prior, logvar_init=self.logvar_init,
                    bayesian_bias=self.bayesian_bias)

    def dense(self, features: int, *, name: str, **kwargs):
        """A callable ``x -> y``: ``nn.Dense`` or ``bal.nn.Dense`` per kind."""
        if self.kind == "variational":
            return self._wrap(bnn.Dense(features, name=name, **kwargs, **self._bayes_kwargs()))
        return nn.Dense(features, name=name, **kwargs)

    def conv(self, features: int, kernel_size, *, name: str, **kwargs):
        """A callable ``x -> y``: ``nn.Conv`` or ``bal.nn.Conv`` per kind."""
        if self.kind == "variational":
            return self._wrap(bnn.Conv(features, kernel_size, name=name, **kwargs, **self._bayes_kwargs()))
        kwargs.setdefault("conv_general_dilated", ops.conv_general_dilated)
        return nn.Conv(features, kernel_size, name=name, **kwargs)

    @property
    def dropout_active(self) -> bool:
        if self.kind == "variational":
            return False
        return self.train or (self.kind == "mc_dropout" and self.sample)

    def dropout(self, x, rate: float):
        """Dropout per the mode; masks shared over the batch at prediction (if consistent)."""
        if rate == 0.0 or not self.dropout_active:
            return x
        return Dropout(rate)(x, shared=not self.train and self.consistent_dropout)


class BayesModel(nn.Module):
    """Base of the ``bal`` models: the kind and the variational options.

    Attributes:
      num_classes: ``C``.
      kind: ``"deterministic"`` | ``"variational"`` | ``"mc_dropout"``.
      estimator: training estimator of variational layers
        (``"reparam"`` | ``"local_reparam"`` | ``"flipout"``).
      prior: weight prior of variational layers (default ``GaussianPrior(1.0)``).
      logvar_init: initialiser of ``log sigma^2`` (default ``N(-9, 0.1)``, TFP).
      bayesian_bias: Gaussian posterior on biases too (default False, as TFP).
      consistent_dropout: share dropout masks across the batch at prediction.
    """

    num_classes: int
    kind: str = "deterministic"
    estimator: str = "reparam"
    prior: Any = bnn.GaussianPrior()
    logvar_init: Any = bnn.gaussian.default_logvar_init
    bayesian_bias: bool = False
    consistent_dropout: bool = True

    def __post_init__(self):
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, numbers.Integral) \
                or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2; got {self.num_classes!r}")
        check_kind(self.kind)
        bnn.check_estimator(self.estimator)
        bnn.check_prior(self.prior)
        super().__post_init__()

    def layers(self, train: bool, sample: bool) -> Layers:
        """The :class:`Layers` factory for one call mode."""
        return Layers(self.kind, bool(train), bool(sample), self.estimator, self.prior, self.logvar_init,
                      self.bayesian_bias, self.consistent_dropout)

    @staticmethod
    def output(logits, embedding, return_embedding: bool):
        return (logits, embedding) if return_embedding else logits
