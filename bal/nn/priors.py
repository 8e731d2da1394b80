"""Priors over weights and the KL of a mean-field Gaussian posterior from them.

A prior is a frozen (hashable) dataclass, so it can be a ``flax.linen``
attribute. Each exposes

* ``log_prob(w) -> [same shape]`` element-wise log-density,
* ``kl(mean, logvar, key=None) -> []`` the KL of ``N(mean, exp(logvar))`` from
  the prior, summed over the tensor,
* ``needs_key``: whether ``kl`` is a Monte Carlo estimate that needs a key.

``GaussianPrior`` has an analytic KL; ``ScaleMixturePrior`` (Blundell et al.
2015) a Monte Carlo one.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Union

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from bal.nn import gaussian


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")


@dataclasses.dataclass(frozen=True)
class GaussianPrior:
    """Zero-mean isotropic Gaussian prior ``N(0, scale^2 I)`` (analytic KL).

    TFP's layers default to ``scale=1``.
    """

    scale: float = 1.0

    needs_key = False

    def __post_init__(self):
        _positive("GaussianPrior scale", self.scale)

    def log_prob(self, w: jax.Array) -> jax.Array:
        return dist.Normal(0.0, self.scale).log_prob(w)

    def kl(self, mean: jax.Array, logvar: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Closed-form KL summed over the tensor; ``key`` is ignored."""
        return gaussian.gaussian_kl(mean, logvar, self.scale)


@dataclasses.dataclass(frozen=True)
class ScaleMixturePrior:
    """Blundell et al. (2015) scale mixture ``pi N(0, s1^2) + (1 - pi) N(0, s2^2)``.

    The paper searches ``pi in {1/4, 1/2, 3/4}``, ``-log s1 in {0, 1, 2}``,
    ``-log s2 in {6, 7, 8}`` (``s1 > s2``, ``s2 << 1``); the defaults are
    ``pi=0.5, s1=1, s2=exp(-6)``. The KL has no closed form, so ``kl`` is the
    Monte Carlo estimate of eq. (2) of the paper over ``num_samples`` draws.
    """

    pi: float = 0.5
    scale1: float = 1.0
    scale2: float = math.exp(-6.0)
    num_samples: int = 1

    needs_key = True

    def __post_init__(self):
        if isinstance(self.pi, bool) or not isinstance(self.pi, numbers.Real) or not 0.0 <= self.pi <= 1.0:
            raise ValueError(f"ScaleMixturePrior pi must be in [0, 1]; got {self.pi!r}")
        _positive("ScaleMixturePrior scale1", self.scale1)
        _positive("ScaleMixturePrior scale2", self.scale2)
        n = self.num_samples
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ScaleMixturePrior num_samples must be an integer >= 1; got {self.num_samples!r}")

    def distribution(self) -> dist.MixtureSameFamily:
        """The prior as a scalar ``numpyro`` mixture distribution."""
        mixing = dist.Categorical(probs=jnp.array([self.pi, 1.0 - self.pi]))
        return dist.MixtureSameFamily(mixing, dist.Normal(0.0, jnp.array([self.scale1, self.scale2])))

    def log_prob(self, w: jax.Array) -> jax.Array:
        return self.distribution().log_prob(w)

    def kl(self, mean: jax.Array, logvar: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Monte Carlo KL summed over the tensor; needs ``key``."""
        if key is None:
            raise ValueError(
                "ScaleMixturePrior.kl is a Monte Carlo estimate and needs a PRNG key; pass key=..."
            )
        return gaussian.monte_carlo_kl(key, mean, logvar, self.log_prob, self.num_samples)


Prior = Union[GaussianPrior, ScaleMixturePrior]


def check_prior(prior) -> Prior:
    """Validate a user-supplied prior (anything with ``kl``, ``log_prob`` and ``needs_key``)."""
    if not all(hasattr(prior, a) for a in ("kl", "log_prob", "needs_key")):
        raise ValueError(
            f"prior must be a bal.nn prior such as GaussianPrior(scale=1.0) or ScaleMixturePrior(); "
            f"got {prior!r}"
        )
    return prior
