"""LeNet-5 (LeCun et al. 1998), in its common modern form (relu, max-pool)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from bal.nn import ops
from bal.models.common import BayesModel, check_images, check_rate


class LeNet5(BayesModel):
    """``conv 6 5x5 (same) -> relu -> max-pool 2 -> conv 16 5x5 (valid) -> relu
    -> max-pool 2 -> dense 120 -> relu -> dropout -> dense 84 -> relu -> dropout
    -> dense C``.

    The first convolution pads its input (28x28 MNIST digits behave like the
    original 32x32 inputs: 16x5x5 = 400 features). Inputs ``[N, H, W, C_in]``;
    logits ``[N, C]``; embedding ``[N, 84]`` (dense-84 activations before
    dropout). Dropout only after the fully connected layers, so the
    convolutional trunk is noise-free for MC dropout.
    """

    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = False, sample: bool = False, return_embedding: bool = False):
        check_images(x, "LeNet5")
        check_rate("dropout_rate", self.dropout_rate)
        layers = self.layers(train, sample)
        x = nn.relu(layers.conv(6, (5, 5), padding="SAME", name="conv1")(x))
        x = ops.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(layers.conv(16, (5, 5), padding="VALID", name="conv2")(x))
        x = ops.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.reshape(x, (x.shape[0], -1))
        x = nn.relu(layers.dense(120, name="fc1")(x))
        x = layers.dropout(x, self.dropout_rate)
        embedding = nn.relu(layers.dense(84, name="fc2")(x))
        x = layers.dropout(embedding, self.dropout_rate)
        logits = layers.dense(self.num_classes, name="fc3")(x)
        return self.output(logits, embedding, return_embedding)
