"""The flax.linen front end: drop-in parity with nn.Dense/nn.Conv, KL sowing, RNG streams, errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bal.nn as bnn
from .nn_testing import fast_key

X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 7, 3)), jnp.float32)


def dense_params(n_in, n_out, seed=0, logvar=-3.0):
    rng = np.random.default_rng(seed)
    return {"params": {"kernel_mean": jnp.asarray(rng.normal(size=(n_in, n_out)), jnp.float32),
                       "kernel_logvar": jnp.full((n_in, n_out), logvar, jnp.float32),
                       "bias": jnp.asarray(rng.normal(size=(n_out,)), jnp.float32)}}


def shapes_of(module, x, **kw):
    """Parameter shapes from tracing ``init`` only (nothing is compiled)."""
    v = jax.eval_shape(lambda k: module.init(k, x, deterministic=True, **kw), jax.random.key(0))
    return jax.tree.map(lambda a: a.shape, v["params"])


def test_parameter_names_shapes_and_default_deterministic_bias():
    assert shapes_of(bnn.Conv(4, (3, 3)), X) == {
        "kernel_mean": (3, 3, 3, 4), "kernel_logvar": (3, 3, 3, 4), "bias": (4,)}
    assert shapes_of(bnn.Dense(5, bayesian_bias=True), X[:, 0, 0]) == {
        "kernel_mean": (3, 5), "kernel_logvar": (3, 5), "bias_mean": (5,), "bias_logvar": (5,)}
    assert "bias" not in shapes_of(bnn.Dense(5, use_bias=False), X[:, 0, 0])


CONV_CONFIGS = [
    dict(kernel_size=(3, 3)),
    dict(kernel_size=(3, 2), strides=2, padding="VALID"),
    dict(kernel_size=(3, 3), padding=((1, 2), (0, 1)), kernel_dilation=2),
    dict(kernel_size=(3, 3), padding="CIRCULAR", feature_group_count=3, use_bias=False),
    dict(kernel_size=(2, 2), padding=1, input_dilation=2),
]


def test_posterior_mean_equals_flax_conv():
    rng = np.random.default_rng(1)
    cases = []
    for kw in CONV_CONFIGS:
        twin_shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(nn.Conv(6, **kw).init, jax.random.key(0), X))
        twin_params = {k: jnp.asarray(rng.normal(size=v), jnp.float32) for k, v in twin_shapes["params"].items()}
        params = {"kernel_mean": twin_params["kernel"], "kernel_logvar": jnp.zeros_like(twin_params["kernel"])}
        if "bias" in twin_params:
            params["bias"] = twin_params["bias"]
        # same parameter shapes as the twin
        assert shapes_of(bnn.Conv(6, **kw), X) == jax.tree.map(jnp.shape, params)
        cases.append((kw, params, twin_params))

    def both(x):  # one compilation for all configurations
        return [(bnn.Conv(6, **kw).apply({"params": p}, x, deterministic=True),
                 nn.Conv(6, **kw).apply({"params": tp}, x)) for kw, p, tp in cases]

    for (y, twin_y), (kw, _, _) in zip(jax.jit(both)(X), cases):
        np.testing.assert_allclose(y, twin_y, atol=1e-4, err_msg=str(kw))


def test_posterior_mean_equals_flax_dense_with_extra_batch_axes():
    x = X[:, :2]  # [2, 2, 7, 3]: Dense acts on the last axis
    tv = nn.Dense(4).init(jax.random.key(2), x)
    params = {"kernel_mean": tv["params"]["kernel"], "kernel_logvar": jnp.full((3, 4), -5.0),
              "bias": tv["params"]["bias"]}
    y = bnn.Dense(4, deterministic=True).apply({"params": params}, x)
    np.testing.assert_allclose(y, nn.Dense(4).apply(tv, x), atol=1e-6)


def test_kl_is_sown_only_when_collected_and_matches_closed_form():
    layer = bnn.Dense(3, prior=bnn.GaussianPrior(0.5))
    v = params = dense_params(3, 3)
    v["params"]["kernel_logvar"] = v["params"]["kernel_logvar"] + jnp.arange(9.0).reshape(3, 3) / 4
    y, upd = layer.apply(params, X[:, 0, 0], rngs={"noise": jax.random.key(4)}, mutable=["kl"])
    m, lv = np.asarray(v["params"]["kernel_mean"], np.float64), np.asarray(v["params"]["kernel_logvar"], np.float64)
    expected = (np.log(0.5) - 0.5 * lv + (np.exp(lv) + m**2) / (2 * 0.25) - 0.5).sum()
    np.testing.assert_allclose(float(bnn.collect_kl(upd)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(bnn.kl_from_params(params, bnn.GaussianPrior(0.5))), expected, rtol=1e-5)
    _, upd = layer.apply(params, X[:, 0, 0], rngs={"noise": jax.random.key(4)}, mutable=["batch_stats"])
    assert "kl" not in upd


def test_shared_layer_counts_its_kl_once():
    class Shared(nn.Module):
        @nn.compact
        def __call__(self, x):
            layer = bnn.Dense(3)
            return layer(layer(x))

    x = jnp.ones((2, 3))
    v = {"params": {"Dense_0": dense_params(3, 3)["params"]}}
    _, upd = Shared().apply(v, x, rngs={"noise": jax.random.key(6)}, mutable=["kl"])
    np.testing.assert_allclose(bnn.collect_kl(upd), bnn.kl_from_params(v), rtol=1e-6)


def test_noise_stream_explicit_key_and_jit():
    layer = bnn.Dense(4, estimator="flipout")
    x = X[:, 0]
    v = dense_params(3, 4)
    k1, k2 = fast_key(1), fast_key(2)

    @jax.jit
    def run():
        by_stream = [layer.apply(v, x, rngs={"noise": k}) for k in (k1, k1, k2)]
        explicit = layer.apply(v, x, key=k1, rngs={"noise": k2})  # an explicit key wins
        override = layer.apply(v, x, key=k1, estimator="reparam")
        mean = layer.apply(v, x, deterministic=True)
        return by_stream, explicit, override, mean

    (a, b, c), explicit, override, mean = run()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(explicit, bnn.functional.dense(x, *v["params"].values(), key=k1,
                                                              estimator="flipout"), atol=1e-5)
    assert not np.allclose(override, explicit)
    expected = x @ v["params"]["kernel_mean"] + v["params"]["bias"]
    np.testing.assert_allclose(mean, expected, atol=1e-5)


def test_scale_mixture_prior_kl_uses_the_noise_stream():
    layer = bnn.Dense(3, prior=bnn.ScaleMixturePrior())
    v = dense_params(3, 3)

    @jax.jit
    def kl(k):
        _, upd = layer.apply(v, X[:, 0, 0], deterministic=True, rngs={"noise": k}, mutable=["kl"])
        return bnn.collect_kl(upd)

    kls = [float(kl(fast_key(i))) for i in (0, 0, 1)]
    assert kls[0] == kls[1] != kls[2]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="rank 4"):
        bnn.Conv(4, (3, 3)).init(jax.random.key(0), X[0], deterministic=True)
    with pytest.raises(ValueError, match=r"pass e\.g\. kernel_size=\(3, 3\)"):
        bnn.Conv(4, 3).init(jax.random.key(0), X[0, 0], deterministic=True)
    with pytest.raises(ValueError, match="unknown estimator 'flip'"):
        bnn.Dense(4, estimator="flip").init(jax.random.key(0), X[:, 0, 0], deterministic=True)
    with pytest.raises(ValueError, match="unknown estimator"):
        bnn.Dense(4).init(jax.random.key(0), X[:, 0, 0], estimator="mc")
    with pytest.raises(ValueError, match="prior"):
        bnn.Dense(4, prior=0.1).init(jax.random.key(0), X[:, 0, 0], deterministic=True)
    with pytest.raises(ValueError, match="rank"):
        bnn.Dense(4).init(jax.random.key(0), jnp.ones(()), deterministic=True)
