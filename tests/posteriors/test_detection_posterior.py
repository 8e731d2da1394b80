"""Posteriors over a CenterNet: the detector's own loss on packed float targets, raw outputs at prediction.

Every family trains a few steps on a tiny procedural set and predicts ``[S, N, H', W', C + 4]``;
the variational loss is the CenterNet loss plus ``kl_weight * KL / N`` with the closed-form KL of
the Bayesian heads; the default (label NLL, log-softmax) path is untouched.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import nn as bnn
from bal import posteriors
from bal.data.detection import load_road_scenes
from bal.detection import centernet
from bal.posteriors.base import model_rngs, split_data_loss
from bal.predict import predict
from bal.train import check_targets, fit

N, H, W, C = 6, 32, 48, 5
HO, WO = 8, 12  # the stride-4 output map
KW = {"widths": (4, 8), "head_width": 4, "norm": "none"}


@pytest.fixture(scope="module")
def data():
    ds = load_road_scenes("train", N, H, W, seed=3)
    y = centernet.encode_targets(ds.boxes, ds.classes, ds.valid, num_classes=C, input_hw=(H, W)).packed()
    return ds.images, y


def _key(seed):
    # "rbg" keys: XLA:CPU compiles RngBitGenerator in a fraction of the time of threefry (each
    # threefry draw in a program costs seconds: ~20 s for a CenterNet's eager init, ~2x for a train
    # step with noise); nothing tested here depends on which generator draws the weights and masks
    return jax.random.key(seed, impl="rbg")


def _init(post, x):
    return jax.jit(post.init)(_key(0), jnp.asarray(x[:1]))


def _build(family, **kw):
    # ensembles map their members with vmap here: one member's program to compile (on the CPU "auto"
    # unrolls them in training, the same member loss twice, and twice the compile time)
    sample_map = "vmap" if "ensemble" in family else "auto"
    return posteriors.build(family, "centernet", C, num_samples=2, num_members=2, model_kwargs=KW,
                            sample_map=sample_map, data_loss=centernet.loss_terms,
                            output_transform=posteriors.raw_outputs, **kw)


@pytest.mark.parametrize("family, num_samples", [("deterministic", 1), ("mc_dropout", 2), ("variational", 2),
                                                 ("ensemble", 2), ("regularized_ensemble", 2)])
def test_every_family_trains_centernet_and_predicts_its_outputs(data, family, num_samples):
    x, y = data
    post = _build(family)
    assert not post.uses_labels
    variables = _init(post, x)
    result = fit(post, variables, x, y, _key(1), num_steps=3, batch_size=4)
    record = result.history[-1]
    assert record["step"] == 3 and np.isfinite(record["loss"])
    for term in ("data_loss", "heatmap", "size", "offset"):  # CenterNet's parts, not a label NLL
        assert np.isfinite(record[term])
    assert ("kl" in record) == (family == "variational")
    out = predict(post, result.variables, x, _key(2), chunk_size=8)
    assert out.shape == (num_samples, N, HO, WO, C + 4)
    assert np.isfinite(out).all()
    if family == "deterministic":  # raw outputs: no log_softmax over the detector's channels
        direct = post.model.apply(result.variables, jnp.asarray(x))
        np.testing.assert_allclose(out[0], direct, rtol=1e-5, atol=1e-5)
        assert not np.allclose(np.exp(out[0]).sum(-1), 1.0)


def test_variational_loss_is_centernet_loss_plus_weighted_kl_of_the_bayesian_heads(data):
    x, y = data
    post = _build("variational", kl_weight=0.3)
    variables = _init(post, x)
    key, num_train = _key(5), 40
    loss, (_, aux) = jax.jit(lambda v, x, y: post.loss(v, x, y, key, num_train=num_train))(variables, x, y)

    # the data term of the same weight draw (train_samples = 1 uses split(key, 1)[0])
    def data_term(v, x, y):
        outputs = post.model.apply(v, x, train=True, rngs=model_rngs(jax.random.split(key, 1)[0]),
                                   mutable=["kl"])[0]
        return centernet.loss(outputs, y)

    data_loss = jax.jit(data_term)(variables, x, y)
    # the closed-form Gaussian KL from N(0, 1), computed here directly over the Bayesian layers
    direct, bayesian = 0.0, []
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]:
        names = [p.key for p in path]
        if names[-1] == "kernel_mean":
            mean = np.asarray(leaf, np.float64)
            logvar = np.asarray(variables["params"][names[0]]["kernel_logvar"], np.float64)
            direct += 0.5 * np.sum(np.exp(logvar) + mean ** 2 - 1.0 - logvar)
            bayesian.append(names[0])
    assert sorted(bayesian) == sorted(f"{h}_{p}" for h in ("heatmap", "size", "offset") for p in ("conv", "out"))
    np.testing.assert_allclose(float(jax.jit(bnn.kl_from_params)(variables["params"])), direct, rtol=1e-5)
    np.testing.assert_allclose(float(aux["kl"]), direct, rtol=1e-5)
    np.testing.assert_allclose(float(aux["data_loss"]), float(data_loss), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(data_loss) + 0.3 * direct / num_train, rtol=1e-5)


def test_default_posteriors_keep_the_label_nll_and_log_softmax():
    post = posteriors.build("mc_dropout", "mlp", 3, num_samples=2, model_kwargs={"hidden_sizes": (4,)})
    assert post.uses_labels and post.data_loss is None and post.output_transform is None
    x = jax.random.normal(_key(0), (5, 6))
    variables = _init(post, x)
    _, (_, aux) = post.loss(variables, x, jnp.array([0, 1, 2, 0, 1]), _key(2), num_train=5)
    assert set(aux) == {"nll"}
    log_probs = post.predict(variables, x, _key(3))
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5)


def test_data_loss_results_and_refusals(data):
    x, y = data
    assert split_data_loss(2.0) == (2.0, {})
    assert split_data_loss((2.0, {"a": 1.0})) == (2.0, {"a": 1.0})
    assert split_data_loss({"loss": 2.0, "a": 1.0}) == (2.0, {"a": 1.0})
    with pytest.raises(ValueError, match="must hold 'loss'"):
        split_data_loss({"a": 1.0})
    with pytest.raises(ValueError, match="class_weights"):
        posteriors.build("deterministic", "centernet", C, model_kwargs=KW, class_weights=[1.0] * C,
                         data_loss=centernet.loss_terms)
    with pytest.raises(ValueError, match="must be a function"):
        posteriors.build("deterministic", "centernet", C, model_kwargs=KW, data_loss="focal")
    post = _build("deterministic")
    variables = _init(post, x)
    with pytest.raises(ValueError, match="floating point"):
        fit(post, variables, x, y.astype(np.int32), _key(1), num_steps=1)
    with pytest.raises(ValueError, match=r"shape \[N, \.\.\.\] with N = 6"):
        fit(post, variables, x, y[:3], _key(1), num_steps=1)
    with pytest.raises(ValueError, match="validation"):
        fit(post, variables, x, y, _key(1), num_steps=1, validation=(x, y))
    bad = y.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_targets(x, bad)
