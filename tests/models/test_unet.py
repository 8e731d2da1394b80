"""The segmentation U-Net: per-pixel shapes for any input size, every kind and mode, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bal.models as bm
import bal.nn as bnn
from bal.segmentation import masked_cross_entropy

from .model_testing import fast_key, random_variables

C = 4


def shapes(model, x_shape, **mode):
    def run(k):
        x = jnp.zeros(x_shape)
        variables = model.init({"params": k, "noise": k, "dropout": k}, x)
        return model.apply(variables, x, rngs={"noise": k, "dropout": k}, return_embedding=True,
                           mutable=["batch_stats", "kl"], **mode)[0]

    return jax.tree.map(lambda a: a.shape, jax.eval_shape(run, jax.random.key(0)))


@pytest.mark.parametrize("kind", bm.KINDS)
def test_per_pixel_logits_and_embedding_for_any_size(kind):
    model = bm.build("unet", C, kind=kind, width=4, depth=2)
    assert isinstance(model, bm.UNet)
    for hw in [(1, 1), (5, 7), (8, 8), (13, 6)]:  # sizes not divisible by 2**depth are padded and cropped back
        for mode in (dict(train=True), dict(train=False, sample=True), dict(train=False, sample=False)):
            assert shapes(model, (2, *hw, 3), **mode) == ((2, *hw, C), (2, *hw, 4)), (hw, mode)


def test_depth_width_and_norm_options():
    assert shapes(bm.build("unet", C, width=2, depth=0, norm="none"), (1, 3, 5, 1)) == ((1, 3, 5, C), (1, 3, 5, 2))
    assert shapes(bm.build("unet", C, width=2, depth=3, norm="batch"), (1, 9, 10, 1)) == ((1, 9, 10, C), (1, 9, 10, 2))
    params = jax.eval_shape(lambda k: bm.build("unet", C, width=4, depth=2).init(k, jnp.zeros((1, 8, 8, 3))),
                            jax.random.key(0))["params"]
    assert params["down1_conv1"]["kernel"].shape == (3, 3, 3, 4)
    assert params["bottleneck_conv2"]["kernel"].shape == (3, 3, 16, 16)
    assert params["up1_conv1"]["kernel"].shape == (3, 3, 8 + 4, 4)  # upsampled level 2 + skip of level 1
    assert params["head"]["kernel"].shape == (1, 1, 4, C)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['widht'\]"):
        bm.build("unet", C, widht=8)
    with pytest.raises(ValueError, match="depth must be an integer >= 0"):
        shapes(bm.build("unet", C, depth=-1), (1, 4, 4, 1))
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        shapes(bm.build("unet", C, norm="layer"), (1, 4, 4, 1))
    with pytest.raises(ValueError, match="dropout rate"):
        shapes(bm.build("unet", C, head_dropout_rate=1.0), (1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"images \[N, H, W, C\]"):
        shapes(bm.build("unet", C), (4, 4, 1))


def images(shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    x[1] = x[0]  # identical rows: a posterior sample is one network for the whole batch
    return jnp.asarray(x)


def distinct(a, b):
    return not np.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("kind", bm.KINDS)
def test_modes_samples_and_gradients(kind):
    model = bm.build("unet", C, kind=kind, width=4, depth=1, head_dropout_rate=0.2)  # depth 1: fast to compile
    x = images((3, 7, 6, 2))
    labels = jnp.asarray(np.random.default_rng(1).integers(0, C, size=(3, 7, 6)), jnp.int32)
    variables = random_variables(model, x)

    @jax.jit
    def run(variables):
        def apply(v, key, **kw):
            return model.apply(v, x, rngs={"noise": key, "dropout": jax.random.fold_in(key, 1)}, **kw)

        def loss(params):
            logits, updates = apply({**variables, "params": params}, fast_key(9), train=True, mutable=["kl"])
            return masked_cross_entropy(logits, labels) + bnn.collect_kl(updates) / 100, logits

        (_, train_logits), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
        k1, k2 = fast_key(1), fast_key(2)
        return {
            "mean": [apply(variables, k, return_embedding=True) for k in (k1, k2)],
            "samples": [apply(variables, k, sample=True) for k in (k1, k1, k2)],
            "train": train_logits,
            "grads": grads,
        }

    out = run(variables)
    (mean, emb), (mean2, _) = out["mean"]
    assert mean.shape == (3, 7, 6, C) and emb.shape == (3, 7, 6, 4)
    np.testing.assert_array_equal(mean, mean2)  # train=False, sample=False: deterministic, key ignored
    a, b, c = out["samples"]
    np.testing.assert_array_equal(a, b)  # same key, same posterior sample
    if kind == "deterministic":
        np.testing.assert_allclose(a, mean, rtol=1e-5, atol=1e-6)  # `sample` ignored
        np.testing.assert_allclose(c, mean, rtol=1e-5, atol=1e-6)
    else:
        assert distinct(a, c) and distinct(a, mean)  # other key, other sample; neither is the mean
        np.testing.assert_allclose(a[0], a[1], rtol=1e-5, atol=1e-6)  # one draw shared by the batch
    if kind != "variational":
        assert distinct(out["train"], mean)  # dropout is on in training
    for path, leaf in jax.tree_util.tree_flatten_with_path(out["grads"])[0]:
        leaf = np.asarray(leaf)
        assert np.isfinite(leaf).all() and np.abs(leaf).max() > 0, jax.tree_util.keystr(path)
