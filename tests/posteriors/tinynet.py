"""A tiny model that follows the ``bal.models`` call contract, for fast tests of
the posterior machinery independently of the model zoo."""

import flax.linen as nn
import jax
import numpy as np


class TinyNet(nn.Module):
    num_classes: int = 3
    hidden: int = 16
    dropout: float = 0.0  # > 0: MC dropout, kept on at prediction when sample=True

    @nn.compact
    def __call__(self, x, *, train=False, sample=True, return_embedding=False):
        h = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        if self.dropout:
            # consistent masks at prediction: one mask per call, shared by the batch
            drop = nn.Dropout(self.dropout, broadcast_dims=() if train else (0,))
            h = drop(h, deterministic=not (train or sample))
        logits = nn.Dense(self.num_classes)(h)
        return (logits, h) if return_embedding else logits


def blobs(n, num_classes=3, dim=4, seed=0, spread=0.6):
    """Gaussian blobs: ``x [n, dim]`` float32, ``y [n]`` int32."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_classes, dim)) * 2.0
    y = rng.integers(0, num_classes, size=n).astype(np.int32)
    x = (centers[y] + spread * rng.normal(size=(n, dim))).astype(np.float32)
    return x, y


def tree_allclose(a, b, **kw):
    leaves = jax.tree.leaves(jax.tree.map(lambda u, v: np.allclose(u, v, **kw), a, b))
    return all(leaves)
