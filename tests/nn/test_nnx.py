"""The flax.nnx front end: parity with Linen, explicit keys, KL walk, vmap/jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import bal.nn as bnn
from bal.nn import nnx as bnnx
from .nn_testing import fast_key

X = jnp.asarray(np.random.default_rng(0).normal(size=(3, 6, 6, 2)), jnp.float32)


def linen_params(module, x, seed):
    """Random parameters of the shapes a Linen layer creates (traced, not compiled)."""
    shapes = jax.eval_shape(lambda k: module.init(k, x, deterministic=True), jax.random.key(0))["params"]
    rng = np.random.default_rng(seed)
    params = {k: jnp.asarray(rng.normal(size=v.shape), jnp.float32) for k, v in shapes.items()}
    for k in params:
        if k.endswith("logvar"):
            params[k] = params[k] - 2.0
    return params


def load(layer: bnnx.BayesianLayer, params):
    for name, value in params.items():
        getattr(layer, name)[...] = value


def cheap(**kw):
    """Constant initialisers: the parameters are overwritten, and skipping the random
    initialisers saves their compilation."""
    zeros = jax.nn.initializers.zeros
    return dict(kernel_init=zeros, bias_init=zeros, logvar_init=bnn.logvar_init(0.0, 0.0), rngs=nnx.Rngs(0), **kw)


def test_linen_and_nnx_give_identical_outputs():
    x_dense = X.reshape(3, -1)[:, :10]
    pairs = [  # a Bayesian bias on the dense layer, a deterministic one on the conv
        (bnn.Dense(4, bayesian_bias=True), bnnx.Dense(10, 4, **cheap(bayesian_bias=True)), x_dense),
        (bnn.Conv(5, (3, 3), strides=2), bnnx.Conv(2, 5, (3, 3), strides=2, **cheap()), X),
    ]
    key = fast_key(42)
    for i, (lin, nx, x) in enumerate(pairs):
        params = linen_params(lin, x, i)
        load(nx, params)
        assert set(nnx.state(nx, nnx.Param).keys()) == set(params)
        variables = {"params": params}
        for e in bnn.ESTIMATORS:
            np.testing.assert_array_equal(lin.apply(variables, x, key=key, estimator=e), nx(x, key, estimator=e))
        np.testing.assert_array_equal(lin.apply(variables, x, deterministic=True), nx(x, deterministic=True))
        _, upd = lin.apply(variables, x, key=key, mutable=["kl"])
        np.testing.assert_allclose(bnn.nnx_kl(nx), bnn.collect_kl(upd), rtol=1e-6)


def test_key_is_required_and_never_stored():
    layer = bnnx.Dense(3, 2, **cheap(estimator="local_reparam"))
    with pytest.raises(ValueError, match="PRNG key"):
        layer(jnp.ones((1, 3)))
    assert not jax.tree.leaves(nnx.state(layer, nnx.RngState))
    layer(jnp.ones((1, 3)), deterministic=True)  # the posterior mean needs no key


def test_vmap_over_keys_gives_distinct_samples_under_jit():
    layer = bnnx.Dense(4, 3, **cheap(estimator="flipout"))
    layer.kernel_mean[...] = jnp.ones((4, 3))
    x = X[:, 0, 0, :1] * jnp.ones((3, 4))

    @nnx.jit
    def samples(layer, keys):
        return jax.vmap(lambda k: layer(x, k, estimator="reparam"))(keys)

    keys = jax.random.split(jax.random.key(0), 4)
    ys = samples(layer, jnp.concatenate([keys, keys[:1]]))
    assert ys.shape == (5, 3, 3)
    np.testing.assert_array_equal(ys[0], ys[4])
    flat = np.asarray(ys[:4]).reshape(4, -1)
    assert min(np.abs(flat[i] - flat[j]).max() for i in range(4) for j in range(i)) > 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown estimator"):
        bnnx.Dense(3, 2, estimator="gauss", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="prior"):
        bnnx.Dense(3, 2, prior="normal", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible"):
        bnnx.Conv(3, 2, (3, 3), feature_group_count=2, rngs=nnx.Rngs(0))
    layer = bnnx.Conv(2, 3, (3, 3), **cheap())
    with pytest.raises(ValueError, match="rank 4"):
        layer(X[0], deterministic=True)
    with pytest.raises(ValueError, match="nnx.Module"):
        bnn.nnx_kl({"kernel_mean": 1.0})
