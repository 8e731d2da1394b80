"""ResNet-18 for 32x32 inputs (He et al. 2016, "Deep Residual Learning for Image Recognition").

CIFAR variant: a 3x3 stride-1 stem convolution and no max-pool, then four
stages of two basic blocks with ``width * (1, 2, 4, 8)`` channels (strides 1, 2,
2, 2), global average pooling and a dense head. This is the post-activation
(v1) ResNet-18 used throughout the active-learning literature; TFP's Bayesian
ResNet-18 (the reference for the variational initialisation) has the same
stages in pre-activation form.

Normalisation (``norm``):

* ``"group"`` (default) -- GroupNorm (Wu & He 2018). It normalises each example
  on its own, computes the same thing in training and at prediction, and has
  no running statistics. So a posterior sample's prediction for an image does
  not depend on the rest of the batch or chunk; there is no mismatch between
  running statistics, averaged over training-time noise (weight draws,
  dropout masks), and the one network a posterior sample is (the "variance
  shift" of Li et al. 2019); it works at the tiny batch sizes of the first
  active-learning cycles; and there is no mutable state to thread through a
  ``vmap`` over samples or ensemble members.
* ``"batch"`` -- BatchNorm (the standard CIFAR recipe): batch statistics in
  training (pass ``mutable=["batch_stats"]``), running averages whenever
  ``train=False`` (sampling included).
* ``"none"`` -- no normalisation (convolutions get biases).

Normalisation layers keep Flax's automatic names (``BatchNorm_0``,
``GroupNorm_1``, ...) so code can recognise their ``scale``/``bias`` by module
name; they are never Bayesian.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from bal.models.common import BayesModel, Layers, check_images, check_rate

NORMS = ("group", "batch", "none")


def _norm(kind: str, x, train: bool, num_groups: int):
    """Apply the chosen normalisation to ``x [N, H, W, C]``."""
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
    if kind == "group":
        return nn.GroupNorm(num_groups=math.gcd(num_groups, x.shape[-1]), epsilon=1e-5)(x)
    return x


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection: ``[N, H, W, C] -> [N, H/s, W/s, features]``."""

    features: int
    strides: int
    layers: Layers
    norm: str
    num_groups: int

    @nn.compact
    def __call__(self, x):
        use_bias = self.norm == "none"
        train = self.layers.train
        conv = self.layers.conv
        y = conv(self.features, (3, 3), strides=self.strides, padding="SAME", use_bias=use_bias, name="conv1")(x)
        y = nn.relu(_norm(self.norm, y, train, self.num_groups))
        y = conv(self.features, (3, 3), padding="SAME", use_bias=use_bias, name="conv2")(y)
        y = _norm(self.norm, y, train, self.num_groups)
        if self.strides != 1 or x.shape[-1] != self.features:
            x = conv(self.features, (1, 1), strides=self.strides, padding="VALID", use_bias=use_bias,
                     name="shortcut_conv")(x)
            x = _norm(self.norm, x, train, self.num_groups)
        return nn.relu(x + y)


class ResNet18(BayesModel):
    """ResNet-18 for 32x32 images.

    Attributes:
      width: channels of the first stage (64 in the paper; tests use 4-8).
      norm: ``"group"`` (default), ``"batch"`` or ``"none"`` (module docstring).
      num_groups: GroupNorm groups (reduced to ``gcd(num_groups, channels)``).
      dropout_rate: dropout before the head (kinds deterministic, mc_dropout):
        the trunk stays noise-free, i.e. last-layer MC dropout.

    Inputs ``[N, H, W, C_in]``; logits ``[N, C]``; embedding ``[N, 8 * width]``
    (globally average-pooled features).
    """

    width: int = 64
    norm: str = "group"
    num_groups: int = 32
    dropout_rate: float = 0.5
    stage_sizes: Any = (2, 2, 2, 2)

    @nn.compact
    def __call__(self, x, train: bool = False, sample: bool = False, return_embedding: bool = False):
        check_images(x, "ResNet18")
        check_rate("dropout_rate", self.dropout_rate)
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        for name in ("width", "num_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        layers = self.layers(train, sample)
        x = layers.conv(self.width, (3, 3), padding="SAME", use_bias=self.norm == "none", name="stem_conv")(x)
        x = nn.relu(_norm(self.norm, x, bool(train), self.num_groups))
        for stage, num_blocks in enumerate(self.stage_sizes):
            for block in range(num_blocks):
                strides = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(self.width * 2**stage, strides, layers, self.norm, self.num_groups,
                               name=f"stage{stage + 1}_block{block + 1}")(x)
        embedding = jnp.mean(x, axis=(1, 2))
        x = layers.dropout(embedding, self.dropout_rate)
        logits = layers.dense(self.num_classes, name="head")(x)
        return self.output(logits, embedding, return_embedding)
