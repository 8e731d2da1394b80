"""Classifiers for active learning, each deterministic, variational or MC dropout.

``build(name, num_classes, kind=..., estimator=..., prior=..., **kwargs)`` returns
a ``flax.linen`` module with the call contract

    logits = model.apply(variables, x, train=False, sample=True,
                         rngs={"noise": k1, "dropout": k2})                # [N, C]
    logits, embedding = model.apply(..., return_embedding=True)            # [N, C], [N, D]

(modes in :mod:`bal.models.common`). Architectures: :class:`MLP`,
:class:`GalCNN` (Gal et al. 2017), :class:`LeNet5`, :class:`ResNet18` (32x32),
and for segmentation :class:`UNet`, whose logits and embeddings are per pixel:
``[N, H, W, C]`` and ``[N, H, W, D]``.
"""

from bal.models.common import KINDS, BayesModel, Layers, check_kind
from bal.models.gal_cnn import GalCNN
from bal.models.lenet import LeNet5
from bal.models.mlp import MLP
from bal.models.registry import MODELS, build
from bal.models.resnet import NORMS, BasicBlock, ResNet18
from bal.models.unet import UNet

__all__ = [
    "KINDS",
    "MODELS",
    "NORMS",
    "BasicBlock",
    "BayesModel",
    "GalCNN",
    "LeNet5",
    "Layers",
    "MLP",
    "ResNet18",
    "UNet",
    "build",
    "check_kind",
]
