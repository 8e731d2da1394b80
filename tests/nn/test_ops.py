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


# 2-D convolutions with >= 8 input channels and >= 64 output pixels take the
# patch-matmul kernel gradient; 1x1 kernels become matmuls.
FAST_CASES = [
    # (lhs shape, rhs shape, strides, rhs_dilation, dimension_numbers, padding)
    ((3, 25, 25, 8), (4, 4, 8, 5), (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), "VALID"),
    ((3, 16, 16, 9), (3, 3, 9, 6), (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), "SAME"),
    ((2, 21, 19, 8), (3, 3, 8, 4), (2, 2), (1, 1), ("NHWC", "HWIO", "NHWC"), "SAME"),
    ((2, 23, 29, 8), (3, 2, 8, 4), (2, 3), (1, 1), ("NHWC", "HWIO", "NHWC"), [(1, 2), (0, 3)]),
    ((2, 22, 20, 8), (3, 3, 8, 4), (1, 2), (2, 3), ("NHWC", "HWIO", "NHWC"), [(2, 1), (1, 1)]),
    ((2, 24, 24, 8), (3, 3, 8, 4), (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), [(-1, 0), (2, -1)]),
    ((2, 8, 18, 17), (5, 8, 3, 3), (1, 1), (1, 1), ("NCHW", "OIHW", "NCHW"), "SAME"),
    ((2, 18, 17, 8), (5, 8, 3, 3), (1, 1), (1, 1), ("NHWC", "OIHW", "NCHW"), "VALID"),
    # 1x1 kernels, any rank
    ((3, 12, 12, 8), (1, 1, 8, 5), (2, 2), (1, 1), ("NHWC", "HWIO", "NHWC"), "VALID"),
    ((3, 12, 11, 4), (1, 1, 4, 5), (1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), [(1, 0), (0, 2)]),
    ((2, 4, 9, 7), (6, 4, 1, 1), (1, 2), (1, 1), ("NCHW", "OIHW", "NCHW"), "SAME"),
    ((2, 20, 4), (1, 4, 3), (3,), (1,), ("NWC", "WIO", "NWC"), "VALID"),
    ((1, 6, 7, 5, 2), (1, 1, 1, 2, 3), (1, 2, 1), (1, 1, 1), ("NDHWC", "DHWIO", "NDHWC"), "VALID"),
]


def _fast_conv(strides, dilation, dn, padding, conv=None):
    conv = conv or ops.conv_general_dilated

    def out(x, w):
        return conv(x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=dn)
    return out


@pytest.mark.parametrize("lhs_shape,rhs_shape,strides,dilation,dn,padding", FAST_CASES)
def test_fast_conv_gradients_match_lax(lhs_shape, rhs_shape, strides, dilation, dn, padding):
    x, w = _arr(*lhs_shape), _arr(*rhs_shape)
    ref = _fast_conv(strides, dilation, dn, padding, lax.conv_general_dilated)
    got = _fast_conv(strides, dilation, dn, padding)
    np.testing.assert_allclose(jax.jit(got)(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
    ct = _arr(*ref(x, w).shape)
    g_ref = jax.vjp(ref, x, w)[1](ct)
    g_got = jax.jit(lambda x, w, ct: jax.vjp(got, x, w)[1](ct))(x, w, ct)
    for a, b in zip(g_got, g_ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_fast_paths_are_taken_where_they_pay():
    def jaxpr(lhs_shape, rhs_shape, padding="VALID"):
        x, w = _arr(*lhs_shape), _arr(*rhs_shape)
        return str(jax.make_jaxpr(_fast_conv((1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), padding))(x, w))

    assert "custom_vjp" in jaxpr((2, 25, 25, 32), (4, 4, 32, 32))      # Gal CNN conv2
    assert "custom_vjp" not in jaxpr((2, 28, 28, 1), (4, 4, 1, 32))    # one input channel: XLA's own
    assert "custom_vjp" not in jaxpr((2, 4, 4, 64), (3, 3, 64, 64), "SAME")  # 16 output pixels: XLA's own
    text = jaxpr((2, 8, 8, 16), (1, 1, 16, 4))
    assert "dot_general" in text and "conv_general_dilated" not in text


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])
def test_weight_gradient_chunks_sum_to_the_whole(chunk_bytes):
    # 7 examples: small chunks need zero padding of the batch, which must add nothing
    x, w = _arr(7, 14, 13, 8), _arr(3, 3, 8, 5)
    dn = ("NHWC", "HWIO", "NHWC")
    ref = _fast_conv((2, 1), (1, 2), dn, [(1, 1), (2, 2)], lax.conv_general_dilated)
    ct = _arr(*ref(x, w).shape)
    cfg = ops._ConvConfig((2, 1), ((1, 1), (2, 2)), (1, 2), lax.conv_dimension_numbers(x.shape, w.shape, dn), 1,
                          None, None)
    got = ops.weight_gradient(x, ct, w.shape, cfg, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(got, jax.vjp(ref, x, w)[1](ct)[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])
def test_forward_patches_chunks_match_lax(chunk_bytes):
    # 7 examples in interleaved chunks: padded examples must be cut off again, in order
    x, w = _arr(7, 14, 13, 8), _arr(3, 3, 8, 5)
    dn = ("NHWC", "HWIO", "NHWC")
    ref = _fast_conv((2, 1), (1, 2), dn, [(1, 1), (2, 2)], lax.conv_general_dilated)
    cfg = ops._ConvConfig((2, 1), ((1, 1), (2, 2)), (1, 2), lax.conv_dimension_numbers(x.shape, w.shape, dn), 1,
                          None, None)
    got = jax.jit(lambda x, w: ops.forward_patches(x, w, cfg, chunk_bytes=chunk_bytes))(x, w)
    np.testing.assert_allclose(got, ref(x, w), rtol=1e-5, atol=1e-5)


def test_stride_one_forward_is_a_patch_matmul_and_strided_is_xla():
    # stride 1: the forward (prediction and training) is a patch matmul; the input gradient stays XLA's conv
    x, w = _arr(4, 25, 25, 32), _arr(4, 4, 32, 32)
    conv = _fast_conv((1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), "VALID")
    primal = jax.jit(conv).lower(x, w).as_text()
    assert "convolution" not in primal and "dot_general" in primal
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), (0, 1))).lower(x, w).as_text()
    assert "convolution" in grad
    strided = _fast_conv((2, 2), (1, 1), ("NHWC", "HWIO", "NHWC"), "SAME")
    assert "convolution" in jax.jit(strided).lower(_arr(2, 32, 32, 16), _arr(3, 3, 16, 8)).as_text()


def test_patch_forward_under_vmap_and_sharding_matches_lax():
    dn = ("NHWC", "HWIO", "NHWC")
    ref, got = (_fast_conv((1, 1), (1, 1), dn, "SAME", c) for c in (lax.conv_general_dilated, None))
    x, ws = _arr(5, 12, 12, 8), _arr(3, 3, 3, 8, 4)  # one input, three kernels (weight samples, members)
    np.testing.assert_allclose(jax.jit(jax.vmap(got, (None, 0)))(x, ws), jax.vmap(ref, (None, 0))(x, ws),
                               rtol=1e-5, atol=1e-5)
    xs = _arr(3, 5, 12, 12, 8)
    np.testing.assert_allclose(jax.jit(jax.vmap(got))(xs, ws), jax.vmap(ref)(xs, ws), rtol=1e-5, atol=1e-5)
    # a batch sharded over the (simulated) devices, as bal.predict does
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("pool",))
    xb = jax.device_put(_arr(4 * len(jax.devices()), 12, 12, 8),
                        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("pool")))
    np.testing.assert_allclose(jax.jit(got)(xb, ws[0]), ref(xb, ws[0]), rtol=1e-5, atol=1e-5)


def test_fast_conv_second_order_and_vmap_match_lax():
    x, w = _arr(2, 12, 12, 8), _arr(3, 3, 8, 4)
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.tanh(conv(x, w)) ** 2)

    ref, got = loss(_fast_conv((1, 1), (1, 1), dn, "SAME", lax.conv_general_dilated)), loss(_fast_conv((1, 1), (1, 1), dn, "SAME"))
    # d/dx of |dL/dw|^2: differentiates the custom weight gradient itself
    second = lambda f: jax.grad(lambda x: jnp.sum(jax.grad(f, 1)(x, w) ** 2))(x)  # noqa: E731
    np.testing.assert_allclose(second(got), second(ref), rtol=1e-3, atol=1e-3)
    xs, ws = _arr(3, 2, 12, 12, 8), _arr(3, 3, 3, 8, 4)  # e.g. ensemble members
    g_ref = jax.vmap(jax.grad(ref, (0, 1)))(xs, ws)
    g_got = jax.jit(jax.vmap(jax.grad(got, (0, 1))))(xs, ws)
    for a, b in zip(g_got, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_forward_mode_needs_the_rewrite_off(monkeypatch):
    # the fast kernel gradient is a custom VJP: reverse mode only; BAL_CONV_REWRITE=0 restores jvp
    x, w = _arr(2, 12, 12, 8), _arr(3, 3, 8, 4)
    conv = _fast_conv((1, 1), (1, 1), ("NHWC", "HWIO", "NHWC"), "SAME")
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(conv, (x, w), (x, w))
    monkeypatch.setenv("BAL_CONV_REWRITE", "0")
    jax.jvp(conv, (x, w), (x, w))
