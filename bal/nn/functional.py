"""Bayesian dense and convolution layers as pure functions of parameters and a key.

Both front ends (:mod:`bal.nn.linen`, :mod:`bal.nn.nnx`) call these, which is
what makes them give identical outputs for the same parameters and key.

Parameters (Flax layout, so code that inspects ``params`` can rely on it):

* ``kernel_mean``, ``kernel_logvar``: dense ``[in, out]``, conv
  ``[*kernel_size, in // groups, out]``;
* the bias is deterministic by default (``bias [out]``, as in TFP's layers);
  with ``bayesian_bias=True`` it is ``bias_mean``, ``bias_logvar`` ``[out]``.

Modes: ``deterministic=True`` gives the posterior-mean network (no key
needed); otherwise ``estimator`` (``"reparam"``, ``"local_reparam"``,
``"flipout"``) draws noise from ``key``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from flax.linen.linear import canonicalize_padding

from bal.nn import estimators, gaussian, ops

#: ``fold_in`` salt deriving the Monte Carlo KL key from a layer's noise key.
_KL_SALT = 0x6B6C


def kl_key(key: jax.Array | None) -> jax.Array | None:
    """The key a layer uses for a Monte Carlo KL, derived from its noise key."""
    return None if key is None else jax.random.fold_in(key, _KL_SALT)


def layer_kl(prior, kernel_mean, kernel_logvar, bias_mean=None, bias_logvar=None, key=None) -> jax.Array:
    """KL of one layer's posterior from ``prior``: kernel (+ bias when Bayesian); a scalar."""
    if prior.needs_key and key is None:
        raise ValueError(f"the KL for {type(prior).__name__} is a Monte Carlo estimate and needs a key")
    kernel_key, bias_key = jax.random.split(key) if prior.needs_key else (None, None)
    kl = prior.kl(kernel_mean, kernel_logvar, key=kernel_key)
    if bias_logvar is not None:
        kl = kl + prior.kl(bias_mean, bias_logvar, key=bias_key)
    return kl


def _bayes_linear(op, x, kernel_mean, kernel_logvar, bias, bias_logvar, *, key, estimator, deterministic,
                  spatial_ndim, dtype):
    """Shared body: dtype promotion, kernel estimator, bias (deterministic or Bayesian)."""
    estimators.check_estimator(estimator)
    gaussian.check_pair(kernel_mean, kernel_logvar)
    x, kernel_mean, kernel_logvar, bias, bias_logvar = promote_dtype(
        x, kernel_mean, kernel_logvar, bias, bias_logvar, dtype=dtype
    )
    if deterministic:
        y = estimators.mean_forward(op, x, kernel_mean)
        return y if bias is None else y + bias
    if key is None:
        raise ValueError(
            "a Bayesian layer needs a PRNG key to sample (pass key=..., or an rngs stream in Linen); "
            "use deterministic=True for the posterior mean"
        )
    # split only when the bias needs its own noise (fewer PRNG calls compile faster)
    kernel_key, bias_key = jax.random.split(key) if bias_logvar is not None else (key, None)
    if estimator == "local_reparam" and bias_logvar is not None:
        return estimators.local_reparam(kernel_key, op, x, kernel_mean, kernel_logvar, jnp.exp(bias_logvar)) + bias
    y = estimators.forward(estimator, kernel_key, op, x, kernel_mean, kernel_logvar, spatial_ndim)
    if bias is None:
        return y
    if bias_logvar is not None:  # one bias draw shared by the batch (as TFP's Flipout layers)
        bias = gaussian.sample(bias_key, bias, bias_logvar)
    return y + bias


def dense(
    x: jax.Array,
    kernel_mean: jax.Array,
    kernel_logvar: jax.Array,
    bias: jax.Array | None = None,
    bias_logvar: jax.Array | None = None,
    *,
    key: jax.Array | None = None,
    estimator: str = "reparam",
    deterministic: bool = False,
    dtype=None,
    precision=None,
) -> jax.Array:
    """Bayesian dense layer ``[..., in] -> [..., out]``.

    ``bias`` is the deterministic bias or, with ``bias_logvar``, the Bayesian
    bias mean. Raises ``ValueError`` on a scalar input or a feature mismatch.
    """
    if jnp.ndim(x) < 1:
        raise ValueError(f"Dense expects inputs of rank >= 1 ([..., features]); got shape {jnp.shape(x)}")
    if jnp.shape(kernel_mean)[0] != jnp.shape(x)[-1]:
        raise ValueError(
            f"Dense kernel expects {jnp.shape(kernel_mean)[0]} input features; got inputs of shape {jnp.shape(x)}"
        )

    def op(inputs, kernel):
        return jnp.matmul(inputs, kernel, precision=precision)

    return _bayes_linear(op, x, kernel_mean, kernel_logvar, bias, bias_logvar, key=key, estimator=estimator,
                         deterministic=deterministic, spatial_ndim=0, dtype=dtype)


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    if value is None:
        value = 1
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a sequence of {n} ints; got {value}")
    return value


def canonical_kernel_size(kernel_size: int | Sequence[int]) -> tuple[int, ...]:
    """As ``flax.linen.Conv``: an int means a 1-D kernel ``(k,)``."""
    return (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)


def conv(
    x: jax.Array,
    kernel_mean: jax.Array,
    kernel_logvar: jax.Array,
    bias: jax.Array | None = None,
    bias_logvar: jax.Array | None = None,
    *,
    key: jax.Array | None = None,
    estimator: str = "reparam",
    deterministic: bool = False,
    strides=1,
    padding="SAME",
    input_dilation=1,
    kernel_dilation=1,
    feature_group_count: int = 1,
    dtype=None,
    precision=None,
    conv_general_dilated=None,
) -> jax.Array:
    """Bayesian convolution, channels last, with ``flax.linen.Conv`` semantics.

    Args:
      x: ``[*batch, *spatial, C_in]`` with at least one batch axis (extra batch
        axes are flattened and restored, as Flax does).
      kernel_mean, kernel_logvar: ``[*kernel_size, C_in // groups, C_out]``.
      padding: ``"SAME"``, ``"VALID"``, ``"CIRCULAR"``, ``"REFLECT"``,
        ``"CAUSAL"`` (1-D), an int, or a sequence of ``(low, high)`` pairs.
      conv_general_dilated: the convolution, with ``jax.lax.conv_general_dilated``'s signature (as
        ``flax.linen.Conv(conv_general_dilated=...)``); ``None``: :func:`bal.backend.conv_general_dilated`,
        which follows the backend policy (CPU rewrites on the CPU, ``lax``'s own elsewhere).

    Returns:
      ``[*batch, *spatial_out, C_out]``.
    """
    kernel_size = tuple(jnp.shape(kernel_mean)[:-2])
    n = len(kernel_size)
    if jnp.ndim(x) < n + 2:
        raise ValueError(
            f"a {n}-D Conv expects inputs [batch, {n} spatial axes, channels] (rank {n + 2}); got shape "
            f"{jnp.shape(x)}. (As in flax.linen.Conv, an int kernel_size means a 1-D kernel: pass e.g. (3, 3).)"
        )
    if jnp.shape(x)[-1] != jnp.shape(kernel_mean)[-2] * feature_group_count:
        raise ValueError(
            f"Conv kernel expects {jnp.shape(kernel_mean)[-2] * feature_group_count} input channels; "
            f"got inputs of shape {jnp.shape(x)}"
        )
    batch_shape = jnp.shape(x)[: jnp.ndim(x) - n - 1]
    x = jnp.reshape(x, (-1,) + jnp.shape(x)[len(batch_shape):])
    strides = _tuple(strides, n, "strides")
    input_dilation = _tuple(input_dilation, n, "input_dilation")
    kernel_dilation = _tuple(kernel_dilation, n, "kernel_dilation")
    pad = canonicalize_padding(padding, n)
    if isinstance(pad, str) and pad in ("CIRCULAR", "REFLECT", "CAUSAL"):
        # pre-pad the input; zero/wrap/reflect padding commutes with the x^2 of local reparam
        dilated = [(k - 1) * d + 1 for k, d in zip(kernel_size, kernel_dilation)]
        if pad == "CAUSAL":
            if n != 1:
                raise ValueError("CAUSAL padding is only implemented for 1-D convolutions")
            x = jnp.pad(x, [(0, 0), (dilated[0] - 1, 0), (0, 0)])
        else:
            pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in dilated] + [(0, 0)]
            x = jnp.pad(x, pads, mode={"CIRCULAR": "wrap", "REFLECT": "reflect"}[pad])
        pad = "VALID"
    dims = jax.lax.ConvDimensionNumbers(
        lhs_spec=(0, n + 1) + tuple(range(1, n + 1)),
        rhs_spec=(n + 1, n) + tuple(range(n)),
        out_spec=(0, n + 1) + tuple(range(1, n + 1)),
    )

    conv_fn = ops.conv_general_dilated if conv_general_dilated is None else conv_general_dilated

    def op(inputs, kernel):
        return conv_fn(
            inputs, kernel, strides, pad, lhs_dilation=input_dilation, rhs_dilation=kernel_dilation,
            dimension_numbers=dims, feature_group_count=feature_group_count, precision=precision,
        )

    y = _bayes_linear(op, x, kernel_mean, kernel_logvar, bias, bias_logvar, key=key, estimator=estimator,
                      deterministic=deterministic, spatial_ndim=n, dtype=dtype)
    return jnp.reshape(y, batch_shape + y.shape[1:])
