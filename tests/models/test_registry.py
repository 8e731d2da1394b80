"""Building models by name and their parameter layout (traced with eval_shape: nothing compiles)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import bal.models as bm
import bal.nn as bnn

MNIST = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
CIFAR = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)


def param_shapes(model, x=MNIST):
    variables = jax.eval_shape(lambda k: model.init(k, jnp.zeros(x.shape, x.dtype)), jax.random.key(0))
    return jax.tree.map(lambda a: a.shape, variables)


def out_shapes(model, x=MNIST, **kw):
    def run(k):
        xs = jnp.zeros(x.shape, x.dtype)
        variables = model.init(k, xs)
        rngs = {"noise": k, "dropout": k}
        return model.apply(variables, xs, rngs=rngs, return_embedding=True, mutable=["batch_stats", "kl"], **kw)[0]

    return jax.tree.map(lambda a: a.shape, jax.eval_shape(run, jax.random.key(0)))


@pytest.mark.parametrize("name,embed_dim", [("mlp", 512), ("gal_cnn", 128), ("lenet5", 84), ("resnet18", 512)])
@pytest.mark.parametrize("kind", bm.KINDS)
def test_every_model_and_kind_gives_logits_and_embedding(name, embed_dim, kind):
    model = bm.build(name, 7, kind=kind, estimator="flipout")
    assert isinstance(model, bm.MODELS[name]) and isinstance(model, nn.Module)
    x = CIFAR if name == "resnet18" else MNIST
    for mode in (dict(train=True), dict(train=False, sample=True), dict(train=False, sample=False)):
        assert out_shapes(model, x, **mode) == ((2, 7), (2, embed_dim)), mode


def test_gal_cnn_architecture_and_parameter_names():
    det = param_shapes(bm.build("gal_cnn", 10))["params"]
    assert det == {
        "conv1": {"kernel": (4, 4, 1, 32), "bias": (32,)},
        "conv2": {"kernel": (4, 4, 32, 32), "bias": (32,)},
        "fc1": {"kernel": (11 * 11 * 32, 128), "bias": (128,)},
        "fc2": {"kernel": (128, 10), "bias": (10,)},
    }
    var = param_shapes(bm.build("gal_cnn", 10, kind="variational"))
    for layer, shapes in det.items():
        assert var["params"][layer] == {"kernel_mean": shapes["kernel"], "kernel_logvar": shapes["kernel"],
                                        "bias": shapes["bias"]}
    var = param_shapes(bm.build("gal_cnn", 10, kind="variational", bayesian_bias=True))["params"]
    assert var["fc2"]["bias_logvar"] == (10,)
    assert param_shapes(bm.build("gal_cnn", 10, kind="mc_dropout"))["params"] == det


def test_lenet5_and_mlp_layouts():
    lenet = param_shapes(bm.build("lenet5", 10))["params"]
    assert lenet["conv1"]["kernel"] == (5, 5, 1, 6) and lenet["conv2"]["kernel"] == (5, 5, 6, 16)
    assert lenet["fc1"]["kernel"] == (400, 120) and lenet["fc3"]["kernel"] == (84, 10)
    mlp = param_shapes(bm.build("mlp", 3, hidden_sizes=(32, 16)))["params"]
    assert {k: v["kernel"] for k, v in mlp.items()} == {"dense1": (784, 32), "dense2": (32, 16), "head": (16, 3)}


@pytest.mark.parametrize("norm", bm.NORMS)
def test_resnet18_layout_and_norms(norm):
    variables = param_shapes(bm.build("resnet18", 10, kind="variational", width=4, norm=norm), CIFAR)
    params = variables["params"]
    blocks = [k for k in params if k.startswith("stage")]
    assert len(blocks) == 8  # 4 stages x 2 basic blocks
    leaves = jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda a: isinstance(a, tuple))[0]
    convs = [p for p, shape in leaves if p[-1].key == "kernel_mean" and len(shape) == 4]
    assert len(convs) == 1 + 16 + 3  # stem, 2 per block, 3 projection shortcuts
    assert params["stem_conv"]["kernel_mean"] == (3, 3, 3, 4)
    assert params["head"]["kernel_mean"] == (32, 10)
    norm_modules = {p[-2].key for p, _ in leaves if "Norm" in p[-2].key}
    if norm == "none":
        assert not norm_modules and "batch_stats" not in variables
        assert "bias" in params["stem_conv"]
    else:
        expected = {"batch": "BatchNorm", "group": "GroupNorm"}[norm]
        assert norm_modules and all(m.startswith(expected) for m in norm_modules)
        assert ("batch_stats" in variables) == (norm == "batch")
        assert "bias" not in params["stem_conv"]  # a norm follows every conv


def test_build_rejects_bad_arguments_with_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown model 'vgg'.*'mlp', 'gal_cnn', 'lenet5', 'resnet18'"):
        bm.build("vgg", 10)
    with pytest.raises(ValueError, match=r"unknown model kind 'bayes'.*'deterministic', 'variational'"):
        bm.build("mlp", 10, kind="bayes")
    with pytest.raises(ValueError, match=r"unknown estimator 'lrt'.*'local_reparam'"):
        bm.build("mlp", 10, kind="variational", estimator="lrt")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['widht'\].*'width'"):
        bm.build("resnet18", 10, widht=8)
    with pytest.raises(ValueError, match="num_classes"):
        bm.build("mlp", 1)
    with pytest.raises(ValueError, match="prior"):
        bm.build("mlp", 10, prior=1.0)
    with pytest.raises(ValueError, match="scale"):
        bm.build("mlp", 10, prior=bnn.GaussianPrior(-1.0))
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        out_shapes(bm.build("resnet18", 10, norm="layer", width=4), CIFAR)
    with pytest.raises(ValueError, match="dropout rate"):
        out_shapes(bm.build("gal_cnn", 10, dense_dropout=1.5))
    with pytest.raises(ValueError, match=r"images \[N, H, W, C\]"):
        out_shapes(bm.build("gal_cnn", 10), jax.ShapeDtypeStruct((2, 28, 28), jnp.float32))
    with pytest.raises(ValueError, match="rank >= 2"):
        out_shapes(bm.build("mlp", 10), jax.ShapeDtypeStruct((784,), jnp.float32))
