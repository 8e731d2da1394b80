"""bal.nn.ops: the XLA:CPU drop-ins give lax's / flax's values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from bal.nn import ops

RNG = np.random.default_rng(0)


def _arr(*shape):
    return jnp.asarray(RNG.normal(size=shape).astype(np.float32))


CASES = [
    # (lhs shape, rhs shape, strides, rhs_dilation, dimension_numbers, feature_group_count)
    ((3, 25, 25, 4), (4, 4, 4, 5), (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), 1),
    ((3, 17, 12, 4), (3, 2, 4, 6), (2, 3), (1, 1), ("NHWC", "HWIO", "NHWC"), 1),
    ((3, 16, 16, 4), (1, 1, 4, 6), (2, 2), (1, 1), ("NHWC", "HWIO", "NHWC"), 1),
    ((2, 13, 11, 4), (3, 3, 4, 4), (1, 2), (2, 2), ("NHWC", "HWIO", "NHWC"), 1),
    ((2, 4, 13, 11), (6, 4, 3, 3), (1, 1), (1, 1), ("NCHW", "OIHW", "NCHW"), 1),
    ((2, 12, 12, 4), (3, 3, 2, 8), (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), 2),
    ((2, 20, 4), (5, 4, 3), (3,), (1,), ("NWC", "WIO", "NWC"), 1),
    ((1, 6, 7, 5, 2), (2, 3, 2, 2, 3), (1, 2, 1), (1, 1, 1), ("NDHWC", "DHWIO", "NDHWC"), 1),
]


@pytest.mark.parametrize("lhs_shape,rhs_shape,strides,dilation,dn,groups", CASES)
@pytest.mark.parametrize("padding", ["VALID", "zeros"])
def test_conv_matches_lax_values_and_gradients(lhs_shape, rhs_shape, strides, dilation, dn, groups, padding):
    assert ops.rewrite_enabled()  # tests run on the CPU: the rewrite is what is under test
    x, w = _arr(*lhs_shape), _arr(*rhs_shape)
    pad = "VALID" if padding == "VALID" else [(0, 0)] * len(strides)

    def f(conv):
        def out(x, w):
            return conv(x, w, strides, pad, rhs_dilation=dilation, dimension_numbers=dn, feature_group_count=groups)
        return out

    ref, got = f(lax.conv_general_dilated), f(ops.conv_general_dilated)
    np.testing.assert_allclose(jax.jit(got)(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
    assert jax.jit(got)(x, w).shape == ref(x, w).shape
    ct = _arr(*ref(x, w).shape)
    g_ref = jax.vjp(ref, x, w)[1](ct)
    g_got = jax.jit(lambda x, w, ct: jax.vjp(got, x, w)[1](ct))(x, w, ct)
    for a, b in zip(g_got, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_rewrite_applies_only_to_unpadded_convs():
    x, w = _arr(2, 9, 9, 3), _arr(3, 3, 3, 4)
    dn = ("NHWC", "HWIO", "NHWC")

    def hlo(padding, **kw):
        return jax.jit(lambda x, w: ops.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dn, **kw)
                       ).lower(x, w).as_text()

    assert "slice" in hlo("VALID")  # padded by one column, sliced back
    assert "slice" not in hlo("SAME")
    assert "slice" not in hlo([(1, 1), (0, 2)])
    assert "slice" not in hlo([(0, 0), (0, 0)], lhs_dilation=(2, 2))  # transposed convs untouched


def test_conv_rewrite_switch(monkeypatch):
    monkeypatch.setenv("BAL_CONV_REWRITE", "0")
    assert not ops.rewrite_enabled()
    x, w = _arr(2, 9, 9, 3), _arr(3, 3, 3, 4)
    text = jax.jit(lambda x, w: ops.conv_general_dilated(x, w, (1, 1), "VALID",
                                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))).lower(x, w).as_text()
    assert "slice" not in text


@pytest.mark.parametrize("shape,window", [((4, 22, 22, 8), (2, 2)), ((2, 11, 9, 3), (2, 2)), ((5, 12, 3), (3,)),
                                          ((2, 3, 9, 9, 2), (3, 3)), ((9, 9, 2), (2, 2))])
def test_max_pool_matches_flax_values_and_gradients(shape, window):
    # distinct values: no ties, so the gradients must agree exactly
    x = jnp.asarray(RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float32))
    ref = nn.max_pool(x, window, strides=window)
    got = ops.max_pool(x, window, strides=window)
    np.testing.assert_array_equal(got, ref)
    ct = _arr(*ref.shape)
    g_ref = jax.vjp(lambda x: nn.max_pool(x, window, strides=window), x)[1](ct)[0]
    g_got = jax.vjp(lambda x: ops.max_pool(x, window, strides=window), x)[1](ct)[0]
    np.testing.assert_array_equal(g_got, g_ref)


@pytest.mark.parametrize("kwargs", [dict(window_shape=(3, 3), strides=(2, 2)), dict(window_shape=(2, 2), strides=(2, 2), padding="SAME"),
                                    dict(window_shape=(2, 2))])
def test_max_pool_falls_back_for_overlapping_or_padded_windows(kwargs):
    x = _arr(2, 9, 9, 3)
    np.testing.assert_array_equal(ops.max_pool(x, **kwargs), nn.max_pool(x, **kwargs))


def test_max_pool_ties_split_the_gradient():
    x = jnp.zeros((1, 2, 2, 1))
    g = jax.grad(lambda x: ops.max_pool(x, (2, 2), strides=(2, 2)).sum())(x)
    np.testing.assert_allclose(g, np.full((1, 2, 2, 1), 0.25))
