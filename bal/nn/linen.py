"""``flax.linen`` front end: drop-in Bayesian ``Dense`` and ``Conv``.

Constructor arguments and call signature match ``nn.Dense`` / ``nn.Conv``
(``features``, ``kernel_size``, ``strides``, ``padding``, ``use_bias``,
``dtype``, ``param_dtype``, ``precision``, ``kernel_init`` -- used for the
posterior means -- and ``bias_init``), plus the Bayesian options below. Noise is
drawn from the named RNG stream ``rng_collection`` (default ``"noise"``)::

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(32, (3, 3))(x))
            return bnn.Dense(10, estimator="flipout")(x.reshape(len(x), -1))

    logits, upd = Net().apply(variables, x, rngs={"noise": key}, mutable=["kl"])
    loss = nll(logits) + bnn.collect_kl(upd) / num_train

Parameters: ``kernel_mean``, ``kernel_logvar`` (and ``bias``, or ``bias_mean``,
``bias_logvar`` with ``bayesian_bias=True``), in Flax layout. When the ``"kl"``
collection is mutable, each layer sows its KL from ``prior`` there (a call
repeated on shared parameters overwrites, so shared layers count once).

Call-time options (keyword-only, all optional): ``key`` (an explicit PRNG key
instead of the RNG stream), ``deterministic`` (posterior mean), ``estimator``
(override, e.g. ``"reparam"`` for posterior sampling at prediction).
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen import initializers

from bal.nn import estimators, functional, gaussian
from bal.nn.priors import GaussianPrior, Prior, check_prior

KL_COLLECTION = "kl"


class _Bayesian(nn.Module):
    """Shared attributes and machinery of the Linen Bayesian layers."""

    def _check(self):
        estimators.check_estimator(self.estimator)
        check_prior(self.prior)

    def _params(self, kernel_shape, bias_shape):
        kernel_mean = self.param("kernel_mean", self.kernel_init, kernel_shape, self.param_dtype)
        kernel_logvar = self.param("kernel_logvar", self.logvar_init, kernel_shape, self.param_dtype)
        bias = bias_logvar = None
        if self.use_bias and self.bayesian_bias:
            bias = self.param("bias_mean", self.bias_init, bias_shape, self.param_dtype)
            bias_logvar = self.param("bias_logvar", self.logvar_init, bias_shape, self.param_dtype)
        elif self.use_bias:
            bias = self.param("bias", self.bias_init, bias_shape, self.param_dtype)
        return kernel_mean, kernel_logvar, bias, bias_logvar

    def _mode(self, key, deterministic, estimator):
        """Resolve ``(key, deterministic, estimator, want_kl)`` for this call."""
        deterministic = self.deterministic if deterministic is None else deterministic
        estimator = estimators.check_estimator(self.estimator if estimator is None else estimator)
        want_kl = self.is_mutable_collection(KL_COLLECTION)
        needs_key = not deterministic or (want_kl and self.prior.needs_key)
        if key is None and needs_key:
            key = self.make_rng(self.rng_collection)
        return key, deterministic, estimator, want_kl

    def _sow_kl(self, key, kernel_mean, kernel_logvar, bias, bias_logvar):
        kl_key = functional.kl_key(key) if self.prior.needs_key else None
        kl = functional.layer_kl(self.prior, kernel_mean, kernel_logvar, bias, bias_logvar, key=kl_key)
        self.sow(KL_COLLECTION, "kl", kl, init_fn=lambda: jnp.zeros(()), reduce_fn=lambda _, new: new)


class Dense(_Bayesian):
    """Bayesian ``nn.Dense``: ``[..., in] -> [..., features]``.

    Attributes (beyond ``nn.Dense``'s):
      estimator: ``"reparam"`` | ``"local_reparam"`` | ``"flipout"`` for training.
      prior: a :mod:`bal.nn.priors` prior (default ``GaussianPrior(1.0)``).
      logvar_init: initialiser of ``log sigma^2`` (default ``N(-9, 0.1)``).
      bayesian_bias: give the bias a Gaussian posterior too (default False, as TFP).
      deterministic: default for the call-time flag (False: sample).
      rng_collection: the RNG stream for weight noise (default ``"noise"``).
    """

    features: int
    use_bias: bool = True
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32
    precision: jax.lax.PrecisionLike = None
    kernel_init: gaussian.Initializer = gaussian.default_mean_init
    bias_init: gaussian.Initializer = initializers.zeros_init()
    estimator: str = "reparam"
    prior: Prior = GaussianPrior()
    logvar_init: gaussian.Initializer = gaussian.default_logvar_init
    bayesian_bias: bool = False
    deterministic: bool = False
    rng_collection: str = "noise"

    @nn.compact
    def __call__(self, inputs, *, key=None, deterministic: bool | None = None, estimator: str | None = None):
        self._check()
        if jnp.ndim(inputs) < 1:
            raise ValueError(f"Dense expects inputs of rank >= 1; got shape {jnp.shape(inputs)}")
        params = self._params((jnp.shape(inputs)[-1], self.features), (self.features,))
        key, deterministic, estimator, want_kl = self._mode(key, deterministic, estimator)
        if want_kl:
            self._sow_kl(key, *params)
        return functional.dense(inputs, *params, key=key, estimator=estimator, deterministic=deterministic,
                                dtype=self.dtype, precision=self.precision)


class Conv(_Bayesian):
    """Bayesian ``nn.Conv`` (channels last): ``[N, *spatial, C_in] -> [N, *spatial', features]``.

    Attributes: those of ``nn.Conv`` (except ``mask``) plus the Bayesian ones of
    :class:`Dense`. An int ``kernel_size`` means a 1-D kernel, as in Flax.
    ``conv_general_dilated`` (as in ``nn.Conv``; default ``None``: the backend
    policy's, :func:`bal.backend.conv_general_dilated`) is the convolution.
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: None | int | Sequence[int] = 1
    padding: str | int | Sequence = "SAME"
    input_dilation: None | int | Sequence[int] = 1
    kernel_dilation: None | int | Sequence[int] = 1
    feature_group_count: int = 1
    use_bias: bool = True
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32
    precision: jax.lax.PrecisionLike = None
    kernel_init: gaussian.Initializer = gaussian.default_mean_init
    bias_init: gaussian.Initializer = initializers.zeros_init()
    estimator: str = "reparam"
    prior: Prior = GaussianPrior()
    logvar_init: gaussian.Initializer = gaussian.default_logvar_init
    bayesian_bias: bool = False
    deterministic: bool = False
    rng_collection: str = "noise"
    conv_general_dilated: Callable | None = None

    @nn.compact
    def __call__(self, inputs, *, key=None, deterministic: bool | None = None, estimator: str | None = None):
        self._check()
        kernel_size = functional.canonical_kernel_size(self.kernel_size)
        if jnp.ndim(inputs) < len(kernel_size) + 2:
            raise ValueError(
                f"a {len(kernel_size)}-D Conv expects inputs [batch, spatial..., channels] of rank "
                f"{len(kernel_size) + 2}; got shape {jnp.shape(inputs)} (an int kernel_size means 1-D, as in "
                f"flax.linen.Conv: pass e.g. kernel_size=(3, 3))"
            )
        in_features = jnp.shape(inputs)[-1]
        if in_features % self.feature_group_count:
            raise ValueError(
                f"input channels {in_features} not divisible by feature_group_count {self.feature_group_count}"
            )
        kernel_shape = kernel_size + (in_features // self.feature_group_count, self.features)
        params = self._params(kernel_shape, (self.features,))
        key, deterministic, estimator, want_kl = self._mode(key, deterministic, estimator)
        if want_kl:
            self._sow_kl(key, *params)
        return functional.conv(
            inputs, *params, key=key, estimator=estimator, deterministic=deterministic,
            strides=self.strides, padding=self.padding, input_dilation=self.input_dilation,
            kernel_dilation=self.kernel_dilation, feature_group_count=self.feature_group_count,
            dtype=self.dtype, precision=self.precision, conv_general_dilated=self.conv_general_dilated,
        )
