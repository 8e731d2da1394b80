"""A multi-layer perceptron classifier."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from bal.models.common import BayesModel, check_rate


class MLP(BayesModel):
    """``flatten -> [dense -> relu -> dropout] x len(hidden_sizes) -> dense C``.

    Inputs ``[N, ...]`` (e.g. ``[N, H, W, C]`` or ``[N, D]``) are flattened to
    ``[N, D]``. Returns logits ``[N, C]`` and, with ``return_embedding``, the
    last hidden layer's activations ``[N, hidden_sizes[-1]]`` (before dropout).
    Dropout (kinds deterministic and mc_dropout) follows every hidden layer.
    """

    hidden_sizes: Sequence[int] = (512, 512)
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = False, sample: bool = False, return_embedding: bool = False):
        check_rate("dropout_rate", self.dropout_rate)
        if not self.hidden_sizes or not all(isinstance(h, int) and h >= 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be a non-empty sequence of integers >= 1; got {self.hidden_sizes!r}")
        if jnp.ndim(x) < 2:
            raise ValueError(f"MLP expects inputs [N, ...] of rank >= 2; got shape {jnp.shape(x)}")
        layers = self.layers(train, sample)
        h = jnp.reshape(x, (x.shape[0], -1))
        for i, width in enumerate(self.hidden_sizes):
            if i:
                h = layers.dropout(h, self.dropout_rate)
            h = nn.relu(layers.dense(width, name=f"dense{i + 1}")(h))
        embedding = h
        h = layers.dropout(embedding, self.dropout_rate)
        logits = layers.dense(self.num_classes, name="head")(h)
        return self.output(logits, embedding, return_embedding)
