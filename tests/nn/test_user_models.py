"""Importing one bal layer into a user's own model (Linen and NNX): it trains and its KL is collected."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import bal.nn as bnn
from bal.nn import nnx as bnnx
from .nn_testing import fast_key

NUM_TRAIN = 64


def toy_data():
    """Two classes of 6x6 one-channel images differing in their mean intensity."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, NUM_TRAIN)
    x = rng.normal(size=(NUM_TRAIN, 6, 6, 1)) + (2.0 * y - 1.0)[:, None, None, None]
    return jnp.asarray(x, jnp.float32), jnp.asarray(y)


def nll(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


class UserNet(nn.Module):
    """Ordinary Flax layers with one bal layer in the middle."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
        x = nn.relu(bnn.Dense(8, estimator="flipout", logvar_init=bnn.logvar_init(-6.0))(x))
        return nn.Dense(2)(x)


def test_linen_user_model_trains_and_collects_kl():
    x, y = toy_data()
    model = UserNet()
    params = model.init({"params": fast_key(0), "noise": fast_key(1)}, x)["params"]
    tx = optax.adam(1e-2)

    def loss_fn(params, key):
        logits, upd = model.apply({"params": params}, x, rngs={"noise": key}, mutable=["kl"])
        kl = bnn.collect_kl(upd)
        data_term = nll(logits, y)
        return data_term + kl / NUM_TRAIN, (data_term, kl)

    @jax.jit
    def train(params, key):
        def step(carry, k):
            params, opt_state = carry
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, k)
            updates, opt_state = tx.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), (loss,) + aux

        (params, _), (losses, nlls, kls) = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, 40))
        return params, losses, nlls, kls

    new_params, losses, nlls, kls = train(params, fast_key(2))
    assert float(losses[-5:].mean()) < float(losses[:5].mean())
    assert float(nlls[-5:].mean()) < 0.5 * float(nlls[:5].mean())
    # the KL is that of the one Bayesian layer, the same as computed straight from params
    np.testing.assert_allclose(kls[0], bnn.kl_from_params(params), rtol=1e-5)
    assert float(kls[0]) > 0
    # and training moved the variational parameters (means and log-variances)
    assert set(params["Dense_1"]) == {"kernel_mean", "kernel_logvar", "bias"}
    for name in ("kernel_mean", "kernel_logvar"):
        assert not np.allclose(new_params["Dense_1"][name], params["Dense_1"][name])


class UserNNX(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.hidden = nnx.Linear(144, 8, rngs=rngs)
        self.out = bnnx.Dense(8, 2, estimator="local_reparam", logvar_init=bnn.logvar_init(-6.0), rngs=rngs)

    def __call__(self, x, key):
        x = nnx.relu(self.conv(x))
        x = nnx.relu(self.hidden(x.reshape(x.shape[0], -1)))
        return self.out(x, key)


def test_nnx_user_model_trains_and_collects_kl():
    x, y = toy_data()
    model = UserNNX(nnx.Rngs(fast_key(0)))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    logvar_before = np.asarray(model.out.kernel_logvar[...])
    kl_before = float(bnn.nnx_kl(model))
    np.testing.assert_allclose(kl_before, float(model.out.kl()), rtol=1e-6)

    @nnx.jit
    def step(model, optimizer, key):
        def loss_fn(model):
            data_term = nll(model(x, key), y)
            return data_term + bnn.nnx_kl(model) / NUM_TRAIN, data_term

        (loss, data_term), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return loss, data_term

    losses, nlls = np.array([step(model, optimizer, k) for k in jax.random.split(fast_key(1), 40)]).T
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert np.mean(nlls[-5:]) < 0.5 * np.mean(nlls[:5])
    assert not np.allclose(model.out.kernel_logvar[...], logvar_before)
    assert float(bnn.nnx_kl(model)) != kl_before
