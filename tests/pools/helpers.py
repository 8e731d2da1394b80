"""Small models and pools shared by the bal.pools tests (and their subprocess scripts)."""

from __future__ import annotations

import numpy as np

HIDDEN = (16,)


def tiny_posterior(num_samples: int = 4, family: str = "mc_dropout", seed: int = 1):
    """An MC-dropout MLP over 8x8x1 inputs, 10 classes, and its (deterministic) variables."""
    import jax

    from bal import posteriors

    post = posteriors.build(family, "mlp", 10, num_samples=num_samples, model_kwargs={"hidden_sizes": HIDDEN})
    variables = post.init(jax.random.key(seed), np.zeros((1, 8, 8, 1), np.float32))
    return post, variables


def pool_array(n: int, seed: int = 0) -> np.ndarray:
    """``float32 [n, 8, 8, 1]`` inputs in [0, 1)."""
    return np.random.default_rng(seed).random((n, 8, 8, 1), dtype=np.float32)


class GeneratedSource:
    """A pool source that makes its rows on demand (row i from seed i): any size, no memory."""

    def __new__(cls, n: int):
        from bal.pools.sources import PoolSource

        class _Generated(PoolSource):
            item_shape = (8, 8, 1)
            dtype = np.dtype(np.float32)

            def __len__(self):
                return n

            def read_raw(self, start, stop):
                rows = np.arange(start, stop, dtype=np.uint64)
                # a cheap deterministic hash of (row, pixel) -> [0, 1)
                pix = np.arange(64, dtype=np.uint64)
                h = (rows[:, None] * np.uint64(2654435761) + pix[None, :] * np.uint64(40503)) % np.uint64(65521)
                return (h.astype(np.float32) / np.float32(65521.0)).reshape(-1, 8, 8, 1)

        return _Generated()
