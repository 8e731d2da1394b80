"""A small CenterNet detector (Zhou, Wang & Krähenbühl 2019, "Objects as Points"), deterministic,
variational (Bayesian heads) or MC dropout.

``[N, H, W, C_in] -> outputs [N, H', W', C + 4]`` with ``H' = ceil(H / 4)``,
``W' = ceil(W / 4)`` (output stride 4). The channels of the one output array are

====================  ==========================================================
``[..., :C]``         centre heatmap *logits*, one per class (sigmoid -> the
                      probability that an object of that class is centred in
                      the cell); the last layer's bias starts at -2.19
                      (sigmoid 0.1), as in the paper
``[..., C:C + 2]``    box size ``(w, h)`` in *output-map* cells (input pixels
                      divided by the stride), as the paper regresses it
``[..., C + 2:]``     sub-cell centre offset ``(dx, dy)`` in cells
====================  ==========================================================

:func:`split_outputs` takes it apart (any leading axes, so posterior samples
``[S, N, H', W', C + 4]`` split the same way) and
:mod:`bal.detection.centernet` encodes targets, computes the loss and decodes
boxes. One array (rather than a dict) keeps the model inside the ``bal.models``
call contract: posterior sampling maps over keys and stacks it as
``[S, N, H', W', C + 4]``, ensembles as ``[M, ...]``.

Architecture (sized for 96x128 images on a small CPU): ``len(widths)`` stages
of two 3x3 convolutions, the first with stride 2 (stage ``l`` at stride
``2**l``, ``widths[l - 1]`` channels), each followed by normalisation and a
relu; then a top-down path as in a U-Net / FPN: the deepest features are
upsampled by 2 (nearest neighbour), concatenated with the stage features of
that resolution and merged by a 3x3 convolution, until stride 4. Those
stride-4 features (``widths[1]`` channels) are the embedding. Three heads,
each a 3x3 convolution of ``head_width`` channels, a relu and a 1x1
convolution (the paper's heads, narrower), give heatmap, size and offset.

Kinds:

* ``"deterministic"`` -- dropout ``dropout_rate`` on the stride-4 features in
  training only.
* ``"mc_dropout"`` -- the same dropout, kept on at sampling time (one mask per
  call shared by the batch, see :mod:`bal.models.common`). The trunk before it
  is noise-free, so a map over sample keys computes it once.
* ``"variational"`` -- the six head convolutions are mean-field Gaussian
  (:mod:`bal.nn`); the backbone stays deterministic (Bayesian last layers),
  no dropout. ``mutable=["kl"]`` collects only the heads' KL.

Inputs of any size are zero-padded at the bottom and right to a multiple of
``2**len(widths)`` and the outputs cropped back to ``ceil(H / 4) x ceil(W / 4)``.
Normalisation (``norm``): ``"group"`` (default, per example, see
:mod:`bal.models.resnet`), ``"batch"`` or ``"none"``.
"""

from __future__ import annotations

import dataclasses
import numbers

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen import initializers

from bal.models.common import BayesModel, check_images, check_rate
from bal.models.resnet import NORMS, _norm

#: the output stride: outputs are ``ceil(H / 4) x ceil(W / 4)``.
OUTPUT_STRIDE = 4
#: channels after the ``C`` heatmap logits: size ``(w, h)``, then offset ``(dx, dy)``.
EXTRA_CHANNELS = 4
#: initial bias of the heatmap logits: ``-log((1 - 0.1) / 0.1)``, sigmoid 0.1 (the paper's -2.19).
HEATMAP_BIAS_INIT = -2.19


def num_output_channels(num_classes: int) -> int:
    """``C + 4``: the channels of a CenterNet output for ``C`` classes."""
    return num_classes + EXTRA_CHANNELS


def output_hw(input_hw, stride: int = OUTPUT_STRIDE) -> tuple[int, int]:
    """The output map size ``(ceil(H / stride), ceil(W / stride))`` for inputs ``(H, W)``."""
    height, width = input_hw
    return -(-int(height) // stride), -(-int(width) // stride)


def split_outputs(outputs):
    """``[..., C + 4] -> (heatmap_logits [..., C], size [..., 2], offset [..., 2])``.

    Works on one model output ``[N, H', W', C + 4]`` or on stacked posterior
    samples ``[S, N, H', W', C + 4]`` alike (views, no copies under jit).
    """
    c = outputs.shape[-1] - EXTRA_CHANNELS
    if c < 1:
        raise ValueError(f"CenterNet outputs need C + 4 >= 5 channels; got shape {tuple(outputs.shape)}")
    return outputs[..., :c], outputs[..., c:c + 2], outputs[..., c + 2:]


def merge_outputs(heatmap_logits, size, offset):
    """The inverse of :func:`split_outputs`: concatenate along the last axis."""
    return jnp.concatenate([heatmap_logits, size, offset], axis=-1)


def heatmap_probs(outputs):
    """Sigmoid of the heatmap logits of ``outputs [..., C + 4]``: ``[..., C]``."""
    return jax.nn.sigmoid(split_outputs(outputs)[0])


class CenterNet(BayesModel):
    """A CenterNet with a small stride-2 convolutional backbone and three heads at stride 4.

    Attributes:
      widths: channels of the backbone stages (stage ``l`` at stride ``2**l``);
        at least 2 stages; the top-down path merges back to stride 4.
      head_width: channels of each head's 3x3 convolution (256 in the paper).
      norm: ``"group"`` (default), ``"batch"`` or ``"none"``.
      num_groups: GroupNorm groups (reduced to ``gcd(num_groups, channels)``).
      dropout_rate: dropout on the stride-4 features before the heads (kinds
        deterministic in training, mc_dropout in training and sampling).

    Inputs ``[N, H, W, C_in]``; outputs ``[N, H', W', C + 4]`` (module doc);
    embedding ``[N, H', W', widths[1]]``.
    """

    widths: tuple[int, ...] = (16, 32, 64)
    head_width: int = 32
    norm: str = "group"
    num_groups: int = 8
    dropout_rate: float = 0.1

    def _check(self):
        check_rate("dropout_rate", self.dropout_rate)
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        for name in ("head_width", "num_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        widths = tuple(self.widths) if isinstance(self.widths, (tuple, list)) else None
        if widths is None or len(widths) < 2 or any(
                isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1 for w in widths):
            raise ValueError(f"widths must be a sequence of at least 2 integers >= 1 (stride 4 needs two "
                             f"stride-2 stages); got {self.widths!r}")

    @nn.compact
    def __call__(self, x, train: bool = False, sample: bool = False, return_embedding: bool = False):
        check_images(x, "CenterNet")
        self._check()
        layers = self.layers(train, sample)  # the kind's layers: heads and dropout
        backbone = dataclasses.replace(layers, kind="deterministic")  # never Bayesian, no dropout in it
        use_bias = self.norm == "none"

        def conv_block(y, features: int, strides: int, name: str):
            y = backbone.conv(features, (3, 3), strides=strides, padding="SAME", use_bias=use_bias, name=name)(y)
            return nn.relu(_norm(self.norm, y, bool(train), self.num_groups))

        height, width = x.shape[1:3]
        factor = 2 ** len(self.widths)
        pad_h, pad_w = -height % factor, -width % factor
        if pad_h or pad_w:
            x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))

        stages = []
        for level, features in enumerate(self.widths, start=1):
            x = conv_block(x, features, 2, f"stage{level}_conv1")
            x = conv_block(x, features, 1, f"stage{level}_conv2")
            stages.append(x)
        for level in range(len(self.widths) - 1, 1, -1):  # top-down to stride 4 (level 2)
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
            x = conv_block(jnp.concatenate([x, stages[level - 1]], axis=-1), self.widths[level - 1], 1,
                           f"up{level}_conv")

        out_h, out_w = output_hw((height, width))
        embedding = x = x[:, :out_h, :out_w]
        x = layers.dropout(x, self.dropout_rate)

        def head(out_features: int, name: str, bias_init=initializers.zeros_init()):
            y = nn.relu(layers.conv(self.head_width, (3, 3), padding="SAME", name=f"{name}_conv")(x))
            return layers.conv(out_features, (1, 1), padding="VALID", bias_init=bias_init, name=f"{name}_out")(y)

        heatmap = head(self.num_classes, "heatmap", initializers.constant(HEATMAP_BIAS_INIT))
        outputs = merge_outputs(heatmap, head(2, "size"), head(2, "offset"))
        return self.output(outputs, embedding, return_embedding)


__all__ = ["EXTRA_CHANNELS", "HEATMAP_BIAS_INIT", "OUTPUT_STRIDE", "CenterNet", "heatmap_probs", "merge_outputs",
           "num_output_channels", "output_hw", "split_outputs"]
