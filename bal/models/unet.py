"""A small U-Net for semantic segmentation (Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional
Networks for Biomedical Image Segmentation"), deterministic, variational or MC dropout.

``[N, H, W, C_in] -> logits [N, H, W, num_classes]``: an encoder of ``depth``
levels (two 3x3 convolutions, then a 2x2 max-pool), a bottleneck, and a
decoder that upsamples by 2 (nearest neighbour), concatenates the encoder
features of the same resolution (skip connection) and applies two 3x3
convolutions; a 1x1 convolution gives the per-pixel logits. Level ``l`` has
``width · 2**l`` channels. Upsampling by repetition followed by a
convolution replaces the paper's transposed convolution: it has no
checkerboard artefacts (Odena, Dumoulin & Olah 2016) and needs only the
``conv`` layers that every kind provides.

Any input size works: inputs are zero-padded at the bottom and right to a
multiple of ``2**depth`` and the logits cropped back to ``H x W`` (the
convolutions' "SAME" padding pads with zeros too).

Dropout: ``dropout_rate`` on the bottleneck features (the end of the
contracting path, where the U-Net paper puts its dropout, and the central
encoder/decoder units of Bayesian SegNet, Kendall, Badrinarayanan & Cipolla
2017) and ``head_dropout_rate`` on the per-pixel features before the
classifier (0 by default; set ``dropout_rate=0, head_dropout_rate>0`` for
last-layer MC dropout, which keeps the whole trunk noise-free so XLA
computes it once for all posterior samples). Masks are shared over the batch
at prediction (consistent MC dropout, see :mod:`bal.models.common`).

Normalisation (``norm``): ``"group"`` (default; per example, no running
statistics, see :mod:`bal.models.resnet`), ``"batch"`` or ``"none"``.

The embedding (``return_embedding=True``) is the per-pixel feature map
before the classifier, ``[N, H, W, width]`` (after the last decoder block,
before head dropout); pool it over pixels or crops for BADGE / core-set.
"""

from __future__ import annotations

import numbers

import flax.linen as nn
import jax.numpy as jnp

from bal.models.common import BayesModel, check_images, check_rate
from bal.models.resnet import NORMS, _norm
from bal.nn import ops


class UNet(BayesModel):
    """A U-Net of ``depth`` down/up levels with ``width · 2**l`` channels at level ``l``.

    Attributes:
      width: channels of the first level (64 in the paper; 16 by default, small for CPUs).
      depth: number of 2x poolings (the bottleneck is at ``1 / 2**depth`` resolution).
      norm: ``"group"`` (default), ``"batch"`` or ``"none"``.
      num_groups: GroupNorm groups (reduced to ``gcd(num_groups, channels)``).
      dropout_rate: dropout on the bottleneck features (kinds deterministic, mc_dropout).
      head_dropout_rate: dropout on the per-pixel features before the classifier.

    Inputs ``[N, H, W, C_in]`` (any ``H, W >= 1``); logits ``[N, H, W, C]``;
    embedding ``[N, H, W, width]``.
    """

    width: int = 16
    depth: int = 2
    norm: str = "group"
    num_groups: int = 8
    dropout_rate: float = 0.5
    head_dropout_rate: float = 0.0

    def _check(self):
        check_rate("dropout_rate", self.dropout_rate)
        check_rate("head_dropout_rate", self.head_dropout_rate)
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        for name, minimum in (("width", 1), ("num_groups", 1), ("depth", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")

    @nn.compact
    def __call__(self, x, train: bool = False, sample: bool = False, return_embedding: bool = False):
        check_images(x, "UNet")
        self._check()
        layers = self.layers(train, sample)
        use_bias = self.norm == "none"

        def block(y, features: int, name: str):
            for i in (1, 2):
                y = layers.conv(features, (3, 3), padding="SAME", use_bias=use_bias, name=f"{name}_conv{i}")(y)
                y = nn.relu(_norm(self.norm, y, bool(train), self.num_groups))
            return y

        height, width = x.shape[1:3]
        factor = 2**self.depth
        pad_h, pad_w = -height % factor, -width % factor
        if pad_h or pad_w:
            x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))

        skips = []
        for level in range(self.depth):
            x = block(x, self.width * 2**level, f"down{level + 1}")
            skips.append(x)
            x = ops.max_pool(x, (2, 2), strides=(2, 2))
        x = block(x, self.width * 2**self.depth, "bottleneck")
        x = layers.dropout(x, self.dropout_rate)
        for level in reversed(range(self.depth)):
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
            x = block(jnp.concatenate([x, skips[level]], axis=-1), self.width * 2**level, f"up{level + 1}")

        embedding = x = x[:, :height, :width]
        x = layers.dropout(x, self.head_dropout_rate)
        logits = layers.conv(self.num_classes, (1, 1), padding="VALID", name="head")(x)
        return self.output(logits, embedding, return_embedding)
