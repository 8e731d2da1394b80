"""Gradient estimators: output moments, decorrelation, limits, gradients, errors."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bal.nn as bnn
from bal.nn import functional
from .nn_testing import fast_key

# Monte Carlo draws (keys) for the moment tests. Draws are mapped with lax.map: on the CPU a
# vmap of the PRNG compiles ~3x slower, and compilation dominates these tests.
S = 3000


def _params(shape, seed, logvar_range=(-3.0, -1.0)):
    rng = np.random.default_rng(seed)
    mean = jnp.asarray(rng.normal(size=shape) / math.sqrt(np.prod(shape[:-1])), jnp.float32)
    logvar = jnp.asarray(rng.uniform(*logvar_range, size=shape), jnp.float32)
    return mean, logvar


LAYERS = {
    # name: (forward(x, mean, logvar, bias, bias_logvar, **kw), x shape, kernel shape)
    "dense": (functional.dense, (3, 5), (5, 4)),
    "conv": (lambda *a, **kw: functional.conv(*a, padding="VALID", **kw), (3, 4, 4, 2), (2, 2, 2, 3)),
}


def _exact_moments(layer, x, mean, logvar, bias=None, bias_logvar=None):
    """Analytic mean and variance of every output: op(x, mean), op(x^2, sigma^2) (+ bias)."""
    fwd = LAYERS[layer][0]
    mu = fwd(x, mean, logvar, bias, deterministic=True)
    var = fwd(x * x, jnp.exp(logvar), logvar, deterministic=True)
    if bias_logvar is not None:
        var = var + jnp.exp(bias_logvar)
    return np.asarray(mu), np.asarray(var)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_output_moments_match_reparameterisation(layer):
    """Flipout and local reparam have the same per-example output distribution as reparam:
    for a fixed input, every estimator's outputs have mean op(x, mean) + b and variance
    op(x^2, sigma^2) + sigma_b^2 (empirical moments over many keys)."""
    fwd, x_shape, k_shape = LAYERS[layer]
    x = jnp.asarray(np.random.default_rng(1).normal(size=x_shape), jnp.float32)
    mean, logvar = _params(k_shape, 2)
    bias, bias_logvar = _params((k_shape[-1],), 3)

    def one(k):  # all estimators in one compiled function (compilation dominates the test time)
        return {e: fwd(x, mean, logvar, bias, bias_logvar, key=k, estimator=e) for e in bnn.ESTIMATORS}

    draws = jax.jit(lambda ks: jax.lax.map(one, ks))(jax.random.split(jax.random.key(4), S))
    mu, var = _exact_moments(layer, x, mean, logvar, bias, bias_logvar)
    for estimator, ys in draws.items():
        ys = np.asarray(ys)
        z = (ys.mean(0) - mu) / np.sqrt(var / S)
        assert np.abs(z).max() < 5.0, estimator
        ratio = ys.var(0) / var
        assert np.abs(ratio - 1).max() < 5 * math.sqrt(2.0 / S), estimator


def test_examples_in_a_batch_share_or_decorrelate_noise():
    """Reparam shares one weight draw (identical inputs -> identical outputs); the others decorrelate."""
    mean, logvar = _params((6, 3), 5, (-1.0, -0.5))
    x = jnp.ones((2, 6))  # two identical examples

    def one(k):
        return {e: functional.dense(x, mean, logvar, key=k, estimator=e) for e in bnn.ESTIMATORS}

    draws = jax.jit(lambda ks: jax.lax.map(one, ks))(jax.random.split(jax.random.key(6), 2000))
    for estimator, ys in draws.items():
        ys = np.asarray(ys)
        corr = np.array([np.corrcoef(ys[:, 0, j], ys[:, 1, j])[0, 1] for j in range(3)])
        if estimator == "reparam":
            np.testing.assert_allclose(corr, 1.0, atol=1e-6)
        else:
            assert np.abs(corr).max() < 0.15, estimator


def test_zero_variance_limit_equals_deterministic_twin():
    """With log sigma^2 -> -inf every estimator reproduces nn.Conv / nn.Dense with the mean kernel."""
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=(4,)), jnp.float32)
    xd, kd = x.reshape(2, -1)[:, :7], kernel.reshape(-1, 4)[:7]

    @jax.jit
    def run(key):
        out = {}
        for e in bnn.ESTIMATORS:
            out[e] = (functional.conv(x, kernel, jnp.full(kernel.shape, -jnp.inf), bias, key=key, estimator=e),
                      functional.dense(xd, kd, jnp.full(kd.shape, -jnp.inf), bias, key=key, estimator=e))
        return out

    conv_twin = nn.Conv(4, (3, 3)).apply({"params": {"kernel": kernel, "bias": bias}}, x)
    dense_twin = nn.Dense(4).apply({"params": {"kernel": kd, "bias": bias}}, xd)
    for estimator, (conv_y, dense_y) in run(fast_key(0)).items():
        np.testing.assert_allclose(conv_y, conv_twin, atol=1e-5, err_msg=estimator)
        np.testing.assert_allclose(dense_y, dense_twin, atol=1e-5, err_msg=estimator)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_gradients_reach_means_and_logvars(layer):
    fwd, x_shape, k_shape = LAYERS[layer]
    x = jnp.asarray(np.random.default_rng(8).normal(size=x_shape), jnp.float32)
    mean, logvar = _params(k_shape, 9)
    bias, bias_logvar = _params((k_shape[-1],), 10)

    def loss(p, estimator):
        y = fwd(x, p["m"], p["lv"], p["b"], p["blv"], key=fast_key(11), estimator=estimator)
        return jnp.sum(jnp.sin(y))

    params = {"m": mean, "lv": logvar, "b": bias, "blv": bias_logvar}
    grads = jax.jit(lambda p: {e: jax.grad(loss)(p, e) for e in bnn.ESTIMATORS})(params)
    for estimator, g in grads.items():
        for name, leaf in g.items():
            assert np.isfinite(np.asarray(leaf)).all(), (estimator, name)
            assert np.abs(np.asarray(leaf)).max() > 0, (estimator, name)


def test_posterior_mean_needs_no_key_and_sampling_does():
    mean, logvar = _params((3, 2), 12)
    x = jnp.ones((1, 3))
    np.testing.assert_allclose(functional.dense(x, mean, logvar, deterministic=True), x @ mean, rtol=1e-6)
    with pytest.raises(ValueError, match="PRNG key"):
        functional.dense(x, mean, logvar)


def test_bad_inputs_raise():
    mean, logvar = _params((3, 2), 13)
    with pytest.raises(ValueError, match="unknown estimator 'bayes'"):
        functional.dense(jnp.ones((1, 3)), mean, logvar, key=jax.random.key(0), estimator="bayes")
    with pytest.raises(ValueError, match="rank"):
        functional.dense(jnp.ones(()), mean, logvar, deterministic=True)
    with pytest.raises(ValueError, match="input features"):
        functional.dense(jnp.ones((1, 4)), mean, logvar, deterministic=True)
    cm, clv = _params((3, 3, 2, 4), 14)
    with pytest.raises(ValueError, match="rank 4"):
        functional.conv(jnp.ones((5, 5, 2)), cm, clv, deterministic=True)
    with pytest.raises(ValueError, match="input channels"):
        functional.conv(jnp.ones((1, 5, 5, 3)), cm, clv, deterministic=True)
    with pytest.raises(ValueError, match="same shape"):
        functional.dense(jnp.ones((1, 3)), mean, clv, deterministic=True)
    with pytest.raises(ValueError, match="expected one of"):
        bnn.check_estimator("mean")
