"""Factorised (mean-field) Gaussian weights as pure functions.

A weight tensor ``W`` of any shape has the variational posterior

    q(W) = prod_i N(W_i | mean_i, exp(logvar_i))

parameterised by a ``mean`` and a log-variance ``logvar = log sigma^2`` of the
same shape (Graves 2011; Blundell et al. 2015, "Weight Uncertainty in Neural
Networks"). Everything here is a pure function of arrays and an explicit PRNG
``key``: initialisation, sampling, the posterior as a
``numpyro.distributions.Normal``, and the KL divergence from a zero-mean
Gaussian prior (analytic) or from any prior with a log-density (Monte Carlo).

Default initialisation follows the TensorFlow Probability Bayesian ResNet
(``tensorflow_probability/examples/models/bayesian_resnet.py``): means from the
usual fan-in initialiser (``lecun_normal``, Flax's default kernel initialiser),
log-variances drawn from ``N(-9, 0.1)``, so the network starts close to its
deterministic twin (``sigma ~ exp(-4.5) ~ 0.011``). Note: TFP's docstring calls
that draw the log-variance, but its layers pass it through a softplus as the
"untransformed scale" (``sigma ~ softplus(-9) ~ 1.2e-4``); here the draw *is*
``log sigma^2``. TFP's ResNet also clips ``log sigma^2 <= log 0.2`` during
training; that is an optimiser-side projection, not part of these layers.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from flax.linen import initializers

#: ``(key, shape, dtype) -> array``, the Flax initialiser convention.
Initializer = Callable[..., jax.Array]

DEFAULT_LOGVAR_MEAN = -9.0
DEFAULT_LOGVAR_STDDEV = 0.1

#: Flax's default kernel initialiser (fan-in scaled normal), used for the means.
default_mean_init: Initializer = initializers.lecun_normal()


def logvar_init(mean: float = DEFAULT_LOGVAR_MEAN, stddev: float = DEFAULT_LOGVAR_STDDEV) -> Initializer:
    """Initialiser drawing ``logvar ~ N(mean, stddev^2)`` element-wise.

    The default ``N(-9, 0.1)`` is the TFP Bayesian ResNet setting. ``stddev=0``
    gives a constant.
    """
    if not stddev >= 0:
        raise ValueError(f"logvar_init stddev must be >= 0; got {stddev}")

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return mean + stddev * jax.random.normal(key, shape, dtype)

    return init


default_logvar_init: Initializer = logvar_init()


def init(
    key: jax.Array,
    shape,
    dtype=jnp.float32,
    *,
    mean_init: Initializer = default_mean_init,
    logvar_init: Initializer = default_logvar_init,
) -> tuple[jax.Array, jax.Array]:
    """Initial ``(mean, logvar)`` of a weight tensor of ``shape``; both ``shape``."""
    mean_key, logvar_key = jax.random.split(key)
    return mean_init(mean_key, tuple(shape), dtype), logvar_init(logvar_key, tuple(shape), dtype)


def check_pair(mean: jax.Array, logvar: jax.Array) -> None:
    """Raise ``ValueError`` unless ``mean`` and ``logvar`` have the same shape."""
    if jnp.shape(mean) != jnp.shape(logvar):
        raise ValueError(
            f"mean and logvar must have the same shape; got {jnp.shape(mean)} and {jnp.shape(logvar)}"
        )


def stddev(logvar: jax.Array) -> jax.Array:
    """``sigma = exp(logvar / 2)``, same shape as ``logvar``."""
    return jnp.exp(0.5 * logvar)


def posterior(mean: jax.Array, logvar: jax.Array) -> dist.Normal:
    """The factorised posterior as a ``numpyro`` ``Normal`` with batch shape ``mean.shape``."""
    check_pair(mean, logvar)
    return dist.Normal(mean, stddev(logvar))


def sample(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """One reparameterised draw ``W = mean + sigma * eps``, ``eps ~ N(0, I)``; shape ``mean.shape``.

    Differentiable in ``mean`` and ``logvar`` (the reparameterisation trick,
    Kingma & Welling 2014). ``jax.vmap`` over keys gives many draws.
    """
    check_pair(mean, logvar)
    eps = jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))
    return mean + stddev(logvar) * eps


def gaussian_kl(mean: jax.Array, logvar: jax.Array, prior_scale: float) -> jax.Array:
    """Analytic ``KL(q || N(0, prior_scale^2 I))`` summed over all elements: a scalar.

    Per element: ``log(s / sigma) + (sigma^2 + mean^2) / (2 s^2) - 1/2``,
    computed by ``numpyro.distributions.kl_divergence``.
    """
    prior = dist.Normal(jnp.zeros((), jnp.result_type(mean)), prior_scale)
    return jnp.sum(dist.kl_divergence(posterior(mean, logvar), prior))


def monte_carlo_kl(
    key: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    log_prior: Callable[[jax.Array], jax.Array],
    num_samples: int = 1,
) -> jax.Array:
    """Unbiased Monte Carlo ``KL(q || p) ~ mean_s sum_i [log q(W_s,i) - log p(W_s,i)]``.

    Blundell et al. (2015), eq. (2), for priors without a closed-form KL.
    ``log_prior`` maps weights to element-wise log-densities (same shape).
    Returns a scalar, differentiable in ``mean`` and ``logvar``.
    """
    check_pair(mean, logvar)
    q = posterior(mean, logvar)

    def one(k):
        w = sample(k, mean, logvar)
        return jnp.sum(q.log_prob(w) - log_prior(w))

    return jnp.mean(jax.vmap(one)(jax.random.split(key, num_samples)))
