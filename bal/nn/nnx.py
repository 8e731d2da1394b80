"""``flax.nnx`` front end: Bayesian ``Dense`` and ``Conv`` that take the key at call time.

Constructors mirror ``nnx.Linear`` / ``nnx.Conv`` (``in_features``,
``out_features``, ``kernel_size``, ``strides``, ``padding``, ``use_bias``,
``dtype``, ``param_dtype``, ``precision``, ``kernel_init``, ``bias_init``,
``rngs``) plus the Bayesian options of :mod:`bal.nn.linen`. ``rngs`` is used
only to initialise the parameters and is *not stored*: a layer that kept an
``nnx.Rngs`` would, under ``jax.jit``/``jax.vmap``, silently reuse the same
noise. The noise key is an explicit call argument instead::

    layer = bnnx.Dense(784, 10, estimator="flipout", rngs=nnx.Rngs(0))
    y = layer(x, key)                      # a sample
    y = layer(x, deterministic=True)       # the posterior mean
    kl = bal.nn.nnx_kl(model)              # every Bayesian layer in `model`

Parameters are ``nnx.Param`` attributes ``kernel_mean``, ``kernel_logvar`` and
``bias`` (or ``bias_mean``, ``bias_logvar`` with ``bayesian_bias=True``), with
the same shapes and meaning as the Linen layers', so the two front ends give
identical outputs for the same parameters and key.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from flax.linen import initializers

from bal.nn import estimators, functional, gaussian
from bal.nn.priors import GaussianPrior, Prior, check_prior


class BayesianLayer(nnx.Module):
    """Base of the NNX Bayesian layers: parameter creation and :meth:`kl`."""

    def _init_params(self, kernel_shape, bias_shape, *, use_bias, bayesian_bias, param_dtype,
                     kernel_init, bias_init, logvar_init, estimator, prior, deterministic, dtype,
                     precision, rngs: nnx.Rngs):
        self.estimator = estimators.check_estimator(estimator)
        self.prior = check_prior(prior)
        self.deterministic = deterministic
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.kernel_mean = nnx.Param(kernel_init(rngs.params(), kernel_shape, param_dtype))
        self.kernel_logvar = nnx.Param(logvar_init(rngs.params(), kernel_shape, param_dtype))
        self.bayesian_bias = bool(use_bias and bayesian_bias)
        if self.bayesian_bias:
            self.bias_mean = nnx.Param(bias_init(rngs.params(), bias_shape, param_dtype))
            self.bias_logvar = nnx.Param(logvar_init(rngs.params(), bias_shape, param_dtype))
        elif use_bias:
            self.bias = nnx.Param(bias_init(rngs.params(), bias_shape, param_dtype))
        else:
            self.bias = nnx.data(None)

    def _values(self):
        """``(kernel_mean, kernel_logvar, bias or bias_mean, bias_logvar)`` arrays (or None)."""
        if self.bayesian_bias:
            bias, bias_logvar = self.bias_mean[...], self.bias_logvar[...]
        else:
            bias, bias_logvar = (None if self.bias is None else self.bias[...]), None
        return self.kernel_mean[...], self.kernel_logvar[...], bias, bias_logvar

    def _mode(self, deterministic, estimator):
        deterministic = self.deterministic if deterministic is None else deterministic
        estimator = estimators.check_estimator(self.estimator if estimator is None else estimator)
        return deterministic, estimator

    def kl(self, key: jax.Array | None = None) -> jax.Array:
        """KL of this layer's posterior from its prior (a scalar); ``key`` for Monte Carlo priors."""
        return functional.layer_kl(self.prior, *self._values(), key=key)


class Dense(BayesianLayer):
    """Bayesian ``nnx.Linear``: ``[..., in_features] -> [..., out_features]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        dtype=None,
        param_dtype=jnp.float32,
        precision=None,
        kernel_init: gaussian.Initializer = gaussian.default_mean_init,
        bias_init: gaussian.Initializer = initializers.zeros_init(),
        estimator: str = "reparam",
        prior: Prior = GaussianPrior(),
        logvar_init: gaussian.Initializer = gaussian.default_logvar_init,
        bayesian_bias: bool = False,
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.in_features, self.out_features = in_features, out_features
        self._init_params(
            (in_features, out_features), (out_features,), use_bias=use_bias, bayesian_bias=bayesian_bias,
            param_dtype=param_dtype, kernel_init=kernel_init, bias_init=bias_init, logvar_init=logvar_init,
            estimator=estimator, prior=prior, deterministic=deterministic, dtype=dtype, precision=precision,
            rngs=rngs,
        )

    def __call__(self, inputs, key: jax.Array | None = None, *, deterministic: bool | None = None,
                 estimator: str | None = None) -> jax.Array:
        """``key`` is required unless the layer is deterministic (posterior mean)."""
        deterministic, estimator = self._mode(deterministic, estimator)
        return functional.dense(inputs, *self._values(), key=key, estimator=estimator,
                                deterministic=deterministic, dtype=self.dtype, precision=self.precision)


class Conv(BayesianLayer):
    """Bayesian ``nnx.Conv`` (channels last): ``[N, *spatial, in] -> [N, *spatial', out]``.

    ``conv_general_dilated`` (as in ``nnx.Conv``; default ``None``: the backend policy's,
    :func:`bal.backend.conv_general_dilated`) is the convolution.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        *,
        padding="SAME",
        input_dilation: int | Sequence[int] = 1,
        kernel_dilation: int | Sequence[int] = 1,
        feature_group_count: int = 1,
        use_bias: bool = True,
        dtype=None,
        param_dtype=jnp.float32,
        precision=None,
        kernel_init: gaussian.Initializer = gaussian.default_mean_init,
        bias_init: gaussian.Initializer = initializers.zeros_init(),
        estimator: str = "reparam",
        prior: Prior = GaussianPrior(),
        logvar_init: gaussian.Initializer = gaussian.default_logvar_init,
        bayesian_bias: bool = False,
        deterministic: bool = False,
        conv_general_dilated=None,
        rngs: nnx.Rngs,
    ):
        if in_features % feature_group_count:
            raise ValueError(
                f"in_features {in_features} not divisible by feature_group_count {feature_group_count}"
            )
        kernel_size = functional.canonical_kernel_size(kernel_size)
        self.in_features, self.out_features, self.kernel_size = in_features, out_features, kernel_size
        freeze = lambda v: tuple(freeze(e) for e in v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        self.strides, self.padding = freeze(strides), freeze(padding)
        self.input_dilation, self.kernel_dilation = freeze(input_dilation), freeze(kernel_dilation)
        self.feature_group_count = feature_group_count
        self.conv_general_dilated = conv_general_dilated  # None: the backend policy's (bal.backend)
        kernel_shape = kernel_size + (in_features // feature_group_count, out_features)
        self._init_params(
            kernel_shape, (out_features,), use_bias=use_bias, bayesian_bias=bayesian_bias,
            param_dtype=param_dtype, kernel_init=kernel_init, bias_init=bias_init, logvar_init=logvar_init,
            estimator=estimator, prior=prior, deterministic=deterministic, dtype=dtype, precision=precision,
            rngs=rngs,
        )

    def __call__(self, inputs, key: jax.Array | None = None, *, deterministic: bool | None = None,
                 estimator: str | None = None) -> jax.Array:
        """``key`` is required unless the layer is deterministic (posterior mean)."""
        deterministic, estimator = self._mode(deterministic, estimator)
        return functional.conv(
            inputs, *self._values(), key=key, estimator=estimator, deterministic=deterministic,
            strides=self.strides, padding=self.padding, input_dilation=self.input_dilation,
            kernel_dilation=self.kernel_dilation, feature_group_count=self.feature_group_count,
            dtype=self.dtype, precision=self.precision, conv_general_dilated=self.conv_general_dilated,
        )
