"""Gradient estimators for layers whose kernel has a mean-field Gaussian posterior.

Each estimator computes ``y = op(x, W)`` for a random ``W ~ N(mean, exp(logvar))``
where ``op`` is any map that is linear in the kernel (a dense ``x @ W`` or a
convolution). They differ in how the randomness is shared across a batch:

* ``"reparam"`` -- one weight draw per call, shared by every example
  (Kingma & Welling 2014; Blundell et al. 2015). This is also the estimator
  used for posterior sampling at prediction time: one draw = one network.
* ``"local_reparam"`` -- Kingma, Salimans & Welling (2015): sample the
  pre-activations instead of the weights. For ``op`` linear,
  ``y | x ~ N(op(x, mean), op(x^2, sigma^2))`` element-wise, so
  ``y = op(x, mean) + sqrt(op(x^2, sigma^2)) * zeta`` with independent
  ``zeta ~ N(0, 1)`` per example and output unit (dense and conv alike; for
  convolutions the noise of neighbouring outputs is independent, as in the
  paper's approximation).
* ``"flipout"`` -- Wen et al. (2018): one shared perturbation
  ``dW = sigma * eps`` decorrelated per example by random sign vectors,
  ``y_n = op(x_n, mean) + op(x_n * s_n, dW) * r_n`` with ``s_n, r_n`` in
  ``{-1, +1}``. For convolutions the signs are per example and channel,
  shared over spatial positions.

All three have the same marginal distribution of ``y_n`` for a single example
(tests check the moments), but differ in the correlation between examples.
The posterior mean (no noise) is :func:`mean_forward`.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from bal.nn import gaussian

ESTIMATORS = ("reparam", "local_reparam", "flipout")

#: ``op(x, kernel) -> y``, linear in ``kernel``.
LinearOp = Callable[[jax.Array, jax.Array], jax.Array]


def check_estimator(name) -> str:
    """Return ``name`` if it is a known estimator, else raise ``ValueError`` listing them."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; expected one of {ESTIMATORS}")
    return name


def mean_forward(op: LinearOp, x: jax.Array, mean: jax.Array) -> jax.Array:
    """The posterior-mean network: ``op(x, mean)``; deterministic."""
    return op(x, mean)


def reparam(key: jax.Array, op: LinearOp, x: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """``op(x, W)`` with one draw ``W ~ q`` shared by the whole batch."""
    return op(x, gaussian.sample(key, mean, logvar))


def local_reparam_moments(op: LinearOp, x: jax.Array, mean: jax.Array, logvar: jax.Array):
    """``(mean, variance)`` of the Gaussian pre-activations ``op(x, W)``, ``W ~ q``."""
    return op(x, mean), op(jnp.square(x), jnp.exp(logvar))


def local_reparam(
    key: jax.Array,
    op: LinearOp,
    x: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    extra_variance: jax.Array | float = 0.0,
) -> jax.Array:
    """Local reparameterisation: sample ``y ~ N(op(x, mean), op(x^2, sigma^2))``.

    ``extra_variance`` (e.g. a Bayesian bias's ``sigma_b^2``, broadcast over
    the output) is added to the variance. Noise is independent per output
    element.
    """
    mu, var = local_reparam_moments(op, x, mean, logvar)
    var = var + extra_variance
    # a tiny floor keeps the sqrt differentiable where the variance is exactly 0
    sd = jnp.sqrt(var + jnp.finfo(var.dtype).tiny)
    return mu + sd * jax.random.normal(key, mu.shape, mu.dtype)


def _sign_shape(shape: tuple[int, ...], spatial_ndim: int) -> tuple[int, ...]:
    """Per-example, per-channel sign shape: ``[*batch, 1 (x spatial), C]``."""
    batch = shape[: len(shape) - 1 - spatial_ndim]
    return tuple(batch) + (1,) * spatial_ndim + (shape[-1],)


def flipout(
    key: jax.Array,
    op: LinearOp,
    x: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    spatial_ndim: int = 0,
) -> jax.Array:
    """Flipout (Wen et al. 2018): pseudo-independent per-example perturbations.

    Args:
      key: PRNG key.
      op: linear-in-kernel map.
      x: ``[*batch, *spatial, C_in]`` inputs (``spatial_ndim`` spatial axes).
      mean, logvar: kernel posterior parameters.
      spatial_ndim: 0 for dense, 2 for a 2-D convolution.

    Returns:
      ``op(x, mean) + op(x * s, sigma * eps) * r`` with Rademacher ``s``
      (``[*batch, 1.., C_in]``) and ``r`` (``[*batch, 1.., C_out]``).
    """
    pert_key, sign_key = jax.random.split(key)
    delta = gaussian.stddev(logvar) * jax.random.normal(pert_key, jnp.shape(mean), jnp.result_type(mean))
    y = op(x, mean)
    in_shape, out_shape = _sign_shape(x.shape, spatial_ndim), _sign_shape(y.shape, spatial_ndim)
    n_in = math.prod(in_shape)
    # one draw for both sign vectors (fewer PRNG calls compile faster)
    signs = jax.random.rademacher(sign_key, (n_in + math.prod(out_shape),), y.dtype)
    s_in = signs[:n_in].reshape(in_shape).astype(x.dtype)
    s_out = signs[n_in:].reshape(out_shape)
    return y + op(x * s_in, delta) * s_out


def forward(
    estimator: str,
    key: jax.Array,
    op: LinearOp,
    x: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    spatial_ndim: int = 0,
) -> jax.Array:
    """Dispatch to the named estimator (no bias)."""
    check_estimator(estimator)
    if estimator == "reparam":
        return reparam(key, op, x, mean, logvar)
    if estimator == "local_reparam":
        return local_reparam(key, op, x, mean, logvar)
    return flipout(key, op, x, mean, logvar, spatial_ndim)
