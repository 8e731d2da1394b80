"""The posterior families on a tiny model: interface, equivalences, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import posteriors as P
from bal.posteriors.regularized import dpe_penalty
from bal.train import fit

from .tinynet import TinyNet, blobs, tree_allclose

C = 3


def _families():
    det = P.Deterministic(TinyNet(C), C)
    return {
        "deterministic": det,
        "mc_dropout": P.MCDropout(TinyNet(C, dropout=0.5), C, default_num_samples=7),
        "ensemble": P.deep_ensemble(det, 3),
        "regularized_ensemble": P.regularized_ensemble(det, 4, regularization=1e-3),
    }


@pytest.mark.parametrize("name", ["deterministic", "mc_dropout", "ensemble", "regularized_ensemble"])
def test_predict_shapes_and_normalisation(name):
    post = _families()[name]
    x, _ = blobs(11)
    v = post.init(jax.random.key(0), x[:2])
    log_probs, emb = post.predict_with_embeddings(v, x, jax.random.key(1))
    s = {"deterministic": 1, "mc_dropout": 7, "ensemble": 3, "regularized_ensemble": 4}[name]
    assert log_probs.shape == (s, 11, C) and emb.shape == (s, 11, 16)
    np.testing.assert_allclose(jnp.exp(log_probs).sum(-1), 1.0, rtol=1e-5)


def test_mc_dropout_masks_are_consistent_across_pool_items():
    """Sample s is one sub-network: identical inputs get identical outputs within a
    sample, and the samples differ from each other."""
    post = P.MCDropout(TinyNet(C, dropout=0.5), C, default_num_samples=8)
    x, _ = blobs(5)
    pool = np.concatenate([x, x[::-1]])  # every item twice
    v = post.init(jax.random.key(0), x)
    lp = np.asarray(post.predict(v, pool, jax.random.key(3)))
    np.testing.assert_allclose(lp[:, :5], lp[:, 5:][:, ::-1], rtol=1e-6)
    assert not np.allclose(lp[0], lp[1])
    # the same item alone gives the same samples as inside the batch
    alone = np.asarray(post.predict(v, x[2:3], jax.random.key(3)))
    np.testing.assert_allclose(alone[:, 0], lp[:, 2], rtol=1e-5, atol=1e-6)


def test_samples_same_key_identical_different_keys_distinct():
    post = P.MCDropout(TinyNet(C, dropout=0.5), C, default_num_samples=4)
    x, _ = blobs(6)
    v = post.init(jax.random.key(0), x)
    a = post.predict(v, x, jax.random.key(1))
    b = jax.jit(post.predict)(v, x, jax.random.key(1))
    c = post.predict(v, x, jax.random.key(2))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, c)


def test_dpe_penalty_matches_independent_numpy():
    rng = np.random.default_rng(0)
    E = 5
    params = {
        "Conv_0": {"kernel": rng.normal(size=(E, 3, 3, 2, 4)), "bias": rng.normal(size=(E, 4))},
        "Dense_0": {"kernel": rng.normal(size=(E, 6, 7)), "bias": rng.normal(size=(E, 7))},
        "BatchNorm_0": {"scale": 1 + 0.1 * rng.normal(size=(E, 4)), "bias": 0.1 * rng.normal(size=(E, 4))},
    }

    def omega(w, prior_mean, prior_var):
        total = 0.0
        for idx in np.ndindex(w.shape[1:]):
            vals = w[(slice(None),) + idx]
            mu, var = vals.mean(), ((vals - vals.mean()) ** 2).sum() / len(vals)
            total += np.log(var) + prior_var / var + (mu - prior_mean) ** 2 / var
        return total

    expected = (
        omega(params["Conv_0"]["kernel"], 0.0, 2.0 / (4 * 3 * 3))
        + omega(params["Dense_0"]["kernel"], 0.0, 2.0 / 7)
        + omega(params["BatchNorm_0"]["scale"], 1.0, 0.01)
        + omega(params["BatchNorm_0"]["bias"], 0.0, 0.01)
    )  # dense/conv biases carry no prior
    got = dpe_penalty(jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params))
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)


def test_regularized_ensemble_reduces_to_deep_ensemble():
    det = P.Deterministic(TinyNet(C), C)
    x, y = blobs(8)
    deep = P.deep_ensemble(det, 3)
    v = deep.init(jax.random.key(0), x)
    xb, yb = np.stack([x] * 3), np.stack([y] * 3)
    keys = deep.member_keys(jax.random.key(1))
    ref = deep.loss(v, xb, yb, keys, num_train=8)[0]
    zero = P.regularized_ensemble(det, 3, regularization=0.0).loss(v, xb, yb, keys, num_train=8)[0]
    reg = P.regularized_ensemble(det, 3, regularization=0.5).loss(v, xb, yb, keys, num_train=8)[0]
    np.testing.assert_allclose(zero, ref)
    np.testing.assert_allclose(reg, ref + 0.5 * dpe_penalty(v["params"]) / 8, rtol=1e-5)
    # one member: the penalty is undefined, the family is a plain (one-member) ensemble
    one = P.regularized_ensemble(det, 1, regularization=0.5)
    v1 = one.init(jax.random.key(0), x)
    np.testing.assert_allclose(
        one.loss(v1, x[None], y[None], one.member_keys(jax.random.key(1)), num_train=8)[0],
        P.deep_ensemble(det, 1).loss(v1, x[None], y[None], one.member_keys(jax.random.key(1)), num_train=8)[0],
    )


@pytest.mark.parametrize("member_map", ["vmap", "map", "unroll"])
def test_vmapped_ensemble_step_equals_members_trained_separately(member_map):
    member = P.MCDropout(TinyNet(C, dropout=0.2), C)  # stochastic members: keys must line up too
    ens = P.Ensemble(member, num_members=3, member_map=member_map)
    x, y = blobs(50)
    init_key, fit_key = jax.random.key(10), jax.random.key(11)
    res = fit(ens, ens.init(init_key, x[:2]), x, y, fit_key, num_epochs=3, batch_size=16)
    for m, (ik, fk) in enumerate(zip(ens.member_keys(init_key), ens.member_keys(fit_key))):
        alone = fit(member, member.init(ik, x[:2]), x, y, fk, num_epochs=3, batch_size=16)
        mine = jax.tree.map(lambda a: a[m], res.variables)
        assert tree_allclose(mine, alone.variables, rtol=1e-5, atol=1e-6), f"member {m} differs"


@pytest.mark.parametrize("name", ["deterministic", "mc_dropout", "ensemble", "regularized_ensemble"])
def test_each_family_learns_blobs(name):
    post = _families()[name]
    x, y = blobs(300, seed=1)
    xt, yt = blobs(300, seed=2)
    res = fit(post, post.init(jax.random.key(0), x[:2]), x, y, jax.random.key(1),
              num_epochs=30, batch_size=32, learning_rate=1e-2)
    lp = post.predict(res.variables, xt, jax.random.key(2))
    from bal.metrics import evaluate

    assert evaluate(lp, yt)["accuracy"] > 0.85  # chance is 1/3; the families reach 0.89-0.95
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def test_bad_input_raises_clear_errors():
    post = _families()["deterministic"]
    x, y = blobs(10)
    v = post.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        fit(post, v, x, y + 5, jax.random.key(0), num_epochs=1)
    with pytest.raises(ValueError, match="empty"):
        fit(post, v, x[:0], y[:0], jax.random.key(0), num_epochs=1)
    with pytest.raises(ValueError, match=r"shape \[N\] = \[10\]"):
        fit(post, v, x, y[:4], jax.random.key(0), num_epochs=1)
    with pytest.raises(ValueError, match="floating point"):
        fit(post, v, (x * 10).astype(np.uint8), y, jax.random.key(0), num_epochs=1)
    with pytest.raises(ValueError, match="exactly one of num_epochs and num_steps"):
        fit(post, v, x, y, jax.random.key(0))
    mc = _families()["mc_dropout"]
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        mc.predict(mc.init(jax.random.key(0), x), x, jax.random.key(0), num_samples=0)
    with pytest.raises(ValueError, match="num_classes"):
        P.Deterministic(TinyNet(C), 1)
    with pytest.raises(ValueError, match="multiple of the ensemble size"):
        _families()["ensemble"].num_samples_for(4)


def test_early_stopping_returns_best_epoch():
    post = _families()["deterministic"]
    x, y = blobs(60, seed=3)
    xv, yv = blobs(40, seed=4)
    res = fit(post, post.init(jax.random.key(0), x), x, y, jax.random.key(1), num_epochs=40,
              batch_size=16, learning_rate=0.05, validation=(xv, yv), patience=2)
    assert res.best_epoch is not None and len(res.history) <= 40
    best = min(h["val_nll"] for h in res.history)
    assert res.history[res.best_epoch]["val_nll"] == best
    assert len(res.history) - 1 - res.best_epoch <= 3


def test_fit_is_deterministic_given_key_and_handles_tiny_sets():
    post = _families()["mc_dropout"]
    x, y = blobs(12)
    v = post.init(jax.random.key(0), x)
    a = fit(post, v, x, y, jax.random.key(5), num_steps=7, batch_size=64)
    b = fit(post, v, x, y, jax.random.key(5), num_steps=7, batch_size=64)
    assert tree_allclose(a.variables, b.variables, rtol=0, atol=0)
    assert a.history[-1]["step"] == 7


@pytest.mark.parametrize("model", ["gal_cnn", "lenet5", "mlp"])
def test_mc_dropout_models_are_consistent_across_pool_items(model):
    """With the real models: sample s applies one dropout mask to every pool item,
    also across chunks (BatchBALD's joint scores need this)."""
    from bal.predict import pool_mesh, predict

    post = P.build("mc_dropout", model, 10, num_samples=6)
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    pool = np.concatenate([x, x[::-1]])
    v = post.init(jax.random.key(0), x[:1])
    lp = predict(post, v, pool, jax.random.key(3), chunk_size=4, mesh=pool_mesh(jax.devices()[:1]))
    np.testing.assert_allclose(lp[:, :5], lp[:, 5:][:, ::-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(lp[0], lp[1])
