"""Pure mean-field Gaussian functions and priors, checked against numpy/scipy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bal.nn as bnn
from bal.nn import gaussian


def closed_form_kl(mean, logvar, scale):
    """Independent float64 KL(N(mean, exp(logvar)) || N(0, scale^2)) per element."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    var = np.exp(logvar)
    return np.log(scale) - 0.5 * logvar + (var + mean**2) / (2 * scale**2) - 0.5


@pytest.fixture(scope="module")
def tensors():
    rng = np.random.default_rng(0)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return {
        "a": (f32(rng.normal(size=(3, 4))), f32(rng.uniform(-4.0, 0.5, size=(3, 4)))),
        "b": (f32(0.3 * rng.normal(size=(2, 2, 3, 5))), f32(rng.uniform(-9.0, -1.0, size=(2, 2, 3, 5)))),
    }


def test_default_init_matches_tfp_bayesian_resnet():
    mean, logvar = jax.jit(gaussian.init, static_argnums=1)(jax.random.key(1), (200, 300))
    assert mean.shape == logvar.shape == (200, 300)
    assert abs(float(jnp.mean(logvar)) - (-9.0)) < 0.01
    assert abs(float(jnp.std(logvar)) - 0.1) < 0.01
    # lecun_normal: variance 1 / fan_in
    assert abs(float(jnp.var(mean)) * 200 - 1.0) < 0.05
    custom = gaussian.init(jax.random.key(1), (5, 10), logvar_init=bnn.logvar_init(-3.0, 0.0))[1]
    np.testing.assert_allclose(custom, -3.0)


def test_posterior_is_numpyro_normal(tensors):
    mean, logvar = tensors["a"]
    q = bnn.posterior(mean, logvar)
    np.testing.assert_allclose(q.scale, np.exp(0.5 * np.asarray(logvar)), rtol=1e-6)
    np.testing.assert_allclose(q.loc, mean)


@pytest.mark.parametrize("scale", [1.0, 0.1, 3.0])
def test_analytic_kl_equals_closed_form_per_tensor_and_summed(tensors, scale):
    prior = bnn.GaussianPrior(scale)
    total_expected = 0.0
    for mean, logvar in tensors.values():
        expected = closed_form_kl(mean, logvar, scale).sum()
        np.testing.assert_allclose(float(prior.kl(mean, logvar)), expected, rtol=1e-5)
        np.testing.assert_allclose(float(bnn.gaussian_kl(mean, logvar, scale)), expected, rtol=1e-5)
        total_expected += expected
    params = {"layer1": dict(zip(("kernel_mean", "kernel_logvar"), tensors["a"])),
              "block": {"conv": dict(zip(("kernel_mean", "kernel_logvar"), tensors["b"])), "bias": jnp.ones(5)}}
    np.testing.assert_allclose(float(bnn.kl_from_params({"params": params}, prior)), total_expected, rtol=1e-5)


def test_monte_carlo_kl_agrees_with_closed_form(tensors):
    mean, logvar = tensors["a"]
    n = 4000
    prior = bnn.GaussianPrior(1.0)
    # per-draw estimates give the Monte Carlo standard error
    draws = jax.jit(lambda ks: jax.lax.map(lambda k: gaussian.monte_carlo_kl(k, mean, logvar, prior.log_prob), ks))(
        jax.random.split(jax.random.key(2), n))
    exact = closed_form_kl(mean, logvar, 1.0).sum()
    se = float(jnp.std(draws)) / math.sqrt(n)
    assert abs(float(jnp.mean(draws)) - exact) < 5 * se
    # and an independent scipy estimate from sampled weights
    rng = np.random.default_rng(0)
    sd = np.exp(0.5 * np.asarray(logvar, np.float64))
    w = np.asarray(mean, np.float64) + sd * rng.standard_normal((n,) + mean.shape)
    per = (stats.norm.logpdf(w, np.asarray(mean, np.float64), sd) - stats.norm.logpdf(w, 0, 1)).sum(axis=(1, 2))
    assert abs(per.mean() - exact) < 5 * per.std() / math.sqrt(n)


def test_sampled_weights_have_learned_moments(tensors):
    n = 4000
    for mean, logvar in tensors.values():
        w = jax.jit(lambda ks: jax.lax.map(lambda k: bnn.sample(k, mean, logvar), ks))(
            jax.random.split(jax.random.key(3), n))
        sd = np.exp(0.5 * np.asarray(logvar))
        z = (np.asarray(w.mean(0)) - np.asarray(mean)) / (sd / math.sqrt(n))
        assert np.abs(z).max() < 5
        ratio = np.asarray(w.std(0)) / sd
        assert np.abs(ratio - 1).max() < 5 * math.sqrt(0.5 / n)


def test_sample_limit_of_zero_variance_is_the_mean(tensors):
    mean, _ = tensors["a"]
    w = bnn.sample(jax.random.key(0), mean, jnp.full(mean.shape, -jnp.inf))
    np.testing.assert_array_equal(w, mean)


def test_scale_mixture_log_prob_and_kl():
    prior = bnn.ScaleMixturePrior(pi=0.25, scale1=math.exp(-1), scale2=math.exp(-7), num_samples=1)
    w = np.linspace(-2, 2, 11)
    expected = np.log(0.25 * stats.norm.pdf(w, 0, math.exp(-1)) + 0.75 * stats.norm.pdf(w, 0, math.exp(-7)))
    np.testing.assert_allclose(jax.jit(prior.log_prob)(jnp.asarray(w)), expected, rtol=1e-4, atol=1e-4)
    mean = jnp.asarray(np.linspace(-0.5, 0.5, 12).reshape(3, 4), jnp.float32)
    logvar = jnp.asarray(np.full((3, 4), -4.0), jnp.float32)
    n = 3000
    draws = jax.jit(lambda ks: jax.lax.map(lambda k: prior.kl(mean, logvar, key=k), ks))(
        jax.random.split(jax.random.key(4), n))
    # independent numpy/scipy estimate of the same expectation
    rng = np.random.default_rng(1)
    sd = math.exp(-2.0)
    ws = np.asarray(mean, np.float64) + sd * rng.standard_normal((20000, 3, 4))
    log_p = np.log(0.25 * stats.norm.pdf(ws, 0, math.exp(-1)) + 0.75 * stats.norm.pdf(ws, 0, math.exp(-7)))
    reference = (stats.norm.logpdf(ws, np.asarray(mean, np.float64), sd) - log_p).sum(axis=(1, 2)).mean()
    se = float(jnp.std(draws)) / math.sqrt(n)
    assert abs(float(jnp.mean(draws)) - reference) < 5 * se + 0.05
    with pytest.raises(ValueError, match="needs a PRNG key"):
        prior.kl(mean, logvar)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), "1"])
def test_non_positive_prior_scale_raises(scale):
    with pytest.raises(ValueError, match="scale"):
        bnn.GaussianPrior(scale)
    with pytest.raises(ValueError, match="scale"):
        bnn.ScaleMixturePrior(scale2=scale)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="pi"):
        bnn.ScaleMixturePrior(pi=1.5)
    with pytest.raises(ValueError, match="same shape"):
        bnn.sample(jax.random.key(0), jnp.zeros((2, 3)), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="prior"):
        bnn.check_prior(1.0)
    with pytest.raises(ValueError, match="needs key"):
        bnn.kl_from_params({"d": {"kernel_mean": jnp.zeros(2), "kernel_logvar": jnp.zeros(2)}},
                           bnn.ScaleMixturePrior())
