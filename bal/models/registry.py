"""Build a model by name: ``build("gal_cnn", 10, kind="variational", estimator="flipout")``."""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from bal import nn as bnn
from bal.models.centernet import CenterNet
from bal.models.common import KINDS, check_kind
from bal.models.gal_cnn import GalCNN
from bal.models.lenet import LeNet5
from bal.models.mlp import MLP
from bal.models.resnet import ResNet18
from bal.models.unet import UNet

MODELS = {"mlp": MLP, "gal_cnn": GalCNN, "lenet5": LeNet5, "resnet18": ResNet18, "unet": UNet,
          "centernet": CenterNet}


def build(
    name: str,
    num_classes: int,
    *,
    kind: str = "deterministic",
    estimator: str = "reparam",
    prior: bnn.Prior | None = None,
    **model_kwargs,
) -> nn.Module:
    """A ``flax.linen`` model of the given architecture and kind.

    Args:
      name: ``"mlp"``, ``"gal_cnn"``, ``"lenet5"``, ``"resnet18"``, ``"unet"``
        (segmentation: logits ``[N, H, W, C]``, embedding ``[N, H, W, D]``) or
        ``"centernet"`` (detection: outputs ``[N, H/4, W/4, C + 4]``, see
        :mod:`bal.models.centernet`).
      num_classes: ``C``.
      kind: ``"deterministic"``, ``"variational"`` or ``"mc_dropout"``.
      estimator: training estimator of variational layers: ``"reparam"``,
        ``"local_reparam"`` or ``"flipout"`` (ignored by other kinds).
      prior: weight prior of variational layers (default ``GaussianPrior(1.0)``).
      **model_kwargs: architecture options (e.g. ``width``, ``norm`` for
        ResNet-18; ``hidden_sizes`` for the MLP; ``logvar_init``,
        ``bayesian_bias``, ``consistent_dropout`` for all).

    Call contract: ``model.apply(variables, x, train=False, sample=True,
    rngs={"noise": k1, "dropout": k2}, return_embedding=False)`` with
    ``x [N, H, W, C_in]``; returns logits ``[N, C]`` (and the embedding
    ``[N, D]``). See :mod:`bal.models.common` for the modes.

    Raises:
      ValueError: unknown name, kind, estimator or option, or a bad value.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {tuple(MODELS)}")
    check_kind(kind)
    bnn.check_estimator(estimator)
    cls = MODELS[name]
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", "num_classes", "kind",
                                                           "estimator", "prior"}
    unknown = sorted(set(model_kwargs) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for model {name!r}; valid options: {sorted(fields)}")
    prior = bnn.GaussianPrior() if prior is None else prior
    return cls(num_classes=num_classes, kind=kind, estimator=estimator, prior=prior, **model_kwargs)


__all__ = ["KINDS", "MODELS", "build"]
