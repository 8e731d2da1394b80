"""Inverted dropout by a multiplicative mask, optionally shared across the batch.

``y = x * mask / (1 - rate)`` with ``mask ~ Bernoulli(1 - rate)`` drawn from the
``"dropout"`` RNG stream (Srivastava et al. 2014). With ``shared=True`` one
mask of shape ``[1, *x.shape[1:]]`` serves every example: a posterior sample of
MC dropout is then one sub-network (consistent MC dropout, Kirsch et al.
2019). A multiply instead of ``flax.linen.Dropout``'s broadcast-and-select
measured about 25% faster for the Gal CNN under a ``vmap`` over 20 keys on
the CPU.
"""

from __future__ import annotations

import flax.linen as nn
import jax


class Dropout(nn.Module):
    """Dropout applied whenever called (the caller decides when it is active).

    Attributes:
      rate: probability of dropping a unit, in ``[0, 1)``.
      rng_collection: the RNG stream (default ``"dropout"``).
    """

    rate: float
    rng_collection: str = "dropout"

    @nn.compact
    def __call__(self, x: jax.Array, shared: bool = False) -> jax.Array:
        """``x [N, ...] -> [N, ...]``; one mask for all ``N`` when ``shared``."""
        keep = 1.0 - self.rate
        shape = (1,) + x.shape[1:] if shared else x.shape
        mask = jax.random.bernoulli(self.make_rng(self.rng_collection), keep, shape)
        return x * (mask.astype(x.dtype) / keep)
