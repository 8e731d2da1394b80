"""The MNIST CNN of Gal, Islam & Ghahramani (2017), "Deep Bayesian Active Learning with Image Data"."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from bal.nn import ops
from bal.models.common import BayesModel, check_images, check_rate


class GalCNN(BayesModel):
    """``conv 32 4x4 -> relu -> conv 32 4x4 -> relu -> max-pool 2 -> dropout 0.25
    -> dense 128 -> relu -> dropout 0.5 -> dense C`` (valid padding, as the
    authors' Keras code).

    Inputs ``[N, H, W, C_in]`` (MNIST: ``[N, 28, 28, 1]``, giving 11x11x32
    features after pooling). Returns logits ``[N, C]`` and, with
    ``return_embedding``, the dense-128 activations ``[N, hidden]`` (after the
    relu, before dropout). Everything before the first dropout is noise-free
    for the deterministic and mc_dropout kinds, so XLA can hoist it out of a
    vmap over sample keys.
    """

    filters: int = 32
    kernel_size: int = 4
    hidden: int = 128
    conv_dropout: float = 0.25
    dense_dropout: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = False, sample: bool = False, return_embedding: bool = False):
        check_images(x, "GalCNN")
        check_rate("conv_dropout", self.conv_dropout)
        check_rate("dense_dropout", self.dense_dropout)
        layers = self.layers(train, sample)
        k = (self.kernel_size, self.kernel_size)
        x = nn.relu(layers.conv(self.filters, k, padding="VALID", name="conv1")(x))
        x = nn.relu(layers.conv(self.filters, k, padding="VALID", name="conv2")(x))
        x = ops.max_pool(x, (2, 2), strides=(2, 2))
        x = layers.dropout(x, self.conv_dropout)
        x = jnp.reshape(x, (x.shape[0], -1))
        embedding = nn.relu(layers.dense(self.hidden, name="fc1")(x))
        x = layers.dropout(embedding, self.dense_dropout)
        logits = layers.dense(self.num_classes, name="fc2")(x)
        return self.output(logits, embedding, return_embedding)
