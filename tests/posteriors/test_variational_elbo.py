"""The variational loss as a whole, on models with Bayesian layers: NLL + w(step) * KL / N_train,
with the KL checked against the closed form KL(N(mu, sigma^2) || N(0, 1)) computed by hand."""

import jax
import numpy as np
import optax
import pytest
from scipy.special import log_softmax

from bal import posteriors


def closed_form_kl(params) -> float:
    """Sum over every Bayesian kernel of 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2); prior N(0, 1)."""
    total = 0.0
    for layer in params.values():
        mu = np.asarray(layer["kernel_mean"], np.float64)
        logvar = np.asarray(layer["kernel_logvar"], np.float64)
        total += 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1.0 - logvar)
    return total


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    return x, y


@pytest.mark.parametrize("estimator", ["reparam", "local_reparam", "flipout"])
@pytest.mark.parametrize("kl_weight, step, expected_weight", [
    (1.0, 0, 1.0), (0.25, 7, 0.25), (optax.linear_schedule(0.0, 1.0, 100), 30, 0.3)])
def test_loss_is_nll_plus_weighted_kl_over_n(setup, estimator, kl_weight, step, expected_weight):
    x, y = setup
    post = posteriors.build("variational", "mlp", 3, estimator=estimator, kl_weight=kl_weight,
                            model_kwargs={"hidden_sizes": (8,)})
    v = post.init(jax.random.key(0), x[:1])
    total, (_, aux) = post.loss(v, x, y, jax.random.key(1), num_train=1000, step=step)
    kl = closed_form_kl(v["params"])
    np.testing.assert_allclose(float(aux["kl"]), kl, rtol=1e-4)
    np.testing.assert_allclose(float(aux["kl_weight"]), expected_weight, rtol=1e-6)
    np.testing.assert_allclose(float(total), float(aux["nll"]) + expected_weight * kl / 1000, rtol=1e-5)


def test_nll_term_is_the_mean_cross_entropy_of_one_weight_draw(setup):
    # with the weight variances driven to ~0 the draw is the mean network: NLL by hand
    x, y = setup
    post = posteriors.build("variational", "mlp", 3, model_kwargs={"hidden_sizes": (8,)})
    v = post.init(jax.random.key(0), x[:1])
    v = jax.tree_util.tree_map_with_path(
        lambda p, a: np.full_like(a, -40.0) if p[-1].key == "kernel_logvar" else a, v)
    _, (_, aux) = post.loss(v, x, y, jax.random.key(1), num_train=16)
    p = v["params"]
    h = np.maximum(x @ np.asarray(p["dense1"]["kernel_mean"]) + np.asarray(p["dense1"]["bias"]), 0)
    logits = h @ np.asarray(p["head"]["kernel_mean"]) + np.asarray(p["head"]["bias"])
    nll = -np.mean(log_softmax(logits, axis=-1)[np.arange(len(y)), y])
    np.testing.assert_allclose(float(aux["nll"]), nll, rtol=1e-4)


def test_several_training_draws_average_the_nll_and_keep_the_kl(setup):
    x, y = setup
    one = posteriors.build("variational", "mlp", 3, train_samples=1, model_kwargs={"hidden_sizes": (8,)})
    four = posteriors.build("variational", "mlp", 3, train_samples=4, model_kwargs={"hidden_sizes": (8,)})
    v = one.init(jax.random.key(0), x[:1])
    keys = jax.random.split(jax.random.key(1), 4)  # the loss's own draws: one forward per key

    def nll_of_draw(k):
        logits = np.asarray(one._train_forward(v, x, k)[0], np.float64)
        return -np.mean(log_softmax(logits, axis=-1)[np.arange(len(y)), y])

    singles = [nll_of_draw(k) for k in keys]
    assert np.std(singles) > 1e-3  # the draws differ, so averaging is visible
    total, (_, aux) = four.loss(v, x, y, jax.random.key(1), num_train=50)
    np.testing.assert_allclose(float(aux["nll"]), np.mean(singles), rtol=1e-5)
    np.testing.assert_allclose(float(total), np.mean(singles) + closed_form_kl(v["params"]) / 50, rtol=1e-5)
