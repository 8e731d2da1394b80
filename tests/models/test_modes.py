"""The call contract of the models: train / sample / mean modes, consistency, KL, posterior sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from .model_testing import fast_key, random_variables

import bal.models as bm
import bal.nn as bnn

def images(shape, seed=0):
    """A batch whose first two rows are the same image (for consistency checks)."""
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    x[1] = x[0]
    return jnp.asarray(x)


def behaviour(model, variables, x, mutable, sampler=jax.lax.map):
    """Every mode of one model in one compiled function.

    Posterior samples for the keys ``[k1, k1, k2, k3]`` come from ``sampler``:
    ``lax.map`` by default (it compiles about 3x faster than a vmap of the PRNG
    on the CPU; ``test_vmap_posterior_samples`` checks that both agree);
    training uses a fast-compiling key (``model_testing.fast_key``).
    """

    def apply(variables, k, **kw):
        return model.apply(variables, x, rngs={"noise": k, "dropout": jax.random.fold_in(k, 1)}, **kw)

    @jax.jit
    def run(variables, train_key, keys):
        def one_sample(k):
            return apply(variables, k, train=False, sample=True, return_embedding=True)

        def elbo(params):
            (logits, emb), updates = apply({**variables, "params": params}, train_key, train=True,
                                           mutable=mutable, return_embedding=True)
            nll = -jnp.mean(jax.nn.log_softmax(logits)[:, 0])
            return nll + bnn.collect_kl(updates) / 100, (logits, emb, updates)

        # one training forward pass, with the gradient of a (toy) ELBO
        (_, (train_logits, train_emb, updates)), grads = jax.value_and_grad(elbo, has_aux=True)(
            variables["params"])
        return {
            "grads": grads,
            "mean": [apply(variables, k, train=False, sample=False) for k in keys[:3:2]],
            "train": train_logits,
            "train_emb": train_emb,
            "updates": updates,
            "samples": sampler(one_sample, keys),
        }

    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    return run(variables, fast_key(0), jnp.stack([k1, k1, k2, k3]))


CASES = {
    # name: (model, input shape)
    "gal_cnn-variational-local_reparam": (bm.build("gal_cnn", 5, kind="variational", estimator="local_reparam"),
                                          (4, 12, 12, 1)),
    "gal_cnn-mc_dropout": (bm.build("gal_cnn", 5, kind="mc_dropout"), (4, 12, 12, 1)),
    "gal_cnn-deterministic": (bm.build("gal_cnn", 5), (4, 12, 12, 1)),
    # narrow, shallow ResNets (the full ResNet-18, variational included, is traced in test_registry)
    "resnet-batch-mc_dropout": (bm.build("resnet18", 5, kind="mc_dropout", width=4, norm="batch",
                                         stage_sizes=(1, 1)), (4, 8, 8, 3)),
    "resnet-group-deterministic": (bm.build("resnet18", 5, width=4, norm="group", stage_sizes=(1, 1)),
                                   (4, 8, 8, 3)),
}


def distinct(a, b):
    return not np.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_modes(case):
    model, shape = CASES[case]
    x = images(shape)
    variables = random_variables(model, x)
    # MC dropout samples by vmap (only the masks depend on the key: cheap to compile)
    sampler = (lambda f, ks: jax.vmap(f)(ks)) if model.kind == "mc_dropout" else jax.lax.map
    out = behaviour(model, variables, x, mutable=["kl", "batch_stats"], sampler=sampler)
    kind = model.kind
    logits, embedding = out["samples"]
    n = shape[0]
    assert logits.shape == (4, n, 5) and embedding.shape[:2] == (4, n)  # [S, N, C], [S, N, D]
    assert out["train_emb"].shape == embedding.shape[1:]

    # sample=False is deterministic: the posterior mean / dropout off
    np.testing.assert_array_equal(*out["mean"])
    np.testing.assert_array_equal(logits[0], logits[1])  # same key, same sample
    if kind == "deterministic":
        for s in logits:
            np.testing.assert_allclose(s, out["mean"][0], rtol=1e-5, atol=1e-6)  # ignores `sample`
        assert distinct(out["train"], out["mean"][0])  # dropout is on in training
    else:
        # other keys, other posterior samples, all different from the mean
        for i, j in [(1, 2), (1, 3), (2, 3)]:
            assert distinct(logits[i], logits[j])
        assert distinct(logits[0], out["mean"][0])
        # one draw (weights or dropout masks) shared by the batch: identical rows agree ...
        np.testing.assert_allclose(logits[:, 0], logits[:, 1], rtol=1e-5, atol=1e-6)
        # ... while training noise is per example (flipout, local reparam, dropout masks)
        if model.kind == "mc_dropout" or model.estimator != "reparam":
            assert distinct(out["train"][0], out["train"][1])

    # the KL of a variational model is collected; the others have none
    kl = bnn.collect_kl(out["updates"])
    if kind == "variational":
        np.testing.assert_allclose(kl, bnn.kl_from_params(variables), rtol=1e-5)
    else:
        assert float(kl) == 0.0
    # gradients reach every parameter (variational: every mean and log-variance)
    for path, leaf in jax.tree_util.tree_flatten_with_path(out["grads"])[0]:
        leaf = np.asarray(leaf)
        assert np.isfinite(leaf).all() and np.abs(leaf).max() > 0, jax.tree_util.keystr(path)
    if kind == "variational":
        names = {p[-1].key for p, _ in jax.tree_util.tree_flatten_with_path(out["grads"])[0]}
        assert {"kernel_mean", "kernel_logvar"} <= names
    if "batch_stats" in variables:  # batch norm: training updates the running statistics
        changed = jax.tree.map(lambda a, b: not np.allclose(a, b), out["updates"]["batch_stats"],
                               variables["batch_stats"])
        assert all(jax.tree.leaves(changed))


def test_mc_dropout_masks_per_example_unless_consistent():
    x = images((3, 4, 4, 1))
    consistent = bm.build("mlp", 3, kind="mc_dropout", hidden_sizes=(16,))
    per_example = consistent.clone(consistent_dropout=False)
    variables = random_variables(consistent, x)
    rngs = {"dropout": fast_key(3)}

    @jax.jit
    def run():
        return [m.apply(variables, x, sample=True, rngs=rngs) for m in (consistent, per_example)]

    a, b = run()
    np.testing.assert_allclose(a[0], a[1], rtol=1e-6)
    assert distinct(b[0], b[1])


def test_vmap_posterior_samples():
    """jax.vmap over keys: [S, N, C] in one compiled call, distinct across keys, identical
    for the same key, equal to lax.map (one call per key)."""
    model, shape = bm.build("mlp", 3, kind="variational", hidden_sizes=(8,)), (3, 2, 2, 1)
    x = images(shape)
    variables = random_variables(model, x)

    def one(k):
        return model.apply(variables, x, sample=True, rngs={"noise": k, "dropout": k})

    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    keys = jnp.stack([k1, k2, k3, k1])
    by_vmap, by_map = jax.jit(lambda ks: (jax.vmap(one)(ks), jax.lax.map(one, ks)))(keys)
    assert by_vmap.shape == (4, shape[0], 3)
    np.testing.assert_allclose(by_vmap, by_map, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(by_vmap[0], by_vmap[3])
    assert all(distinct(by_vmap[i], by_vmap[j]) for i, j in [(0, 1), (0, 2), (1, 2)])


def test_variational_params_convert_to_the_deterministic_twin():
    """Module names agree across kinds: the posterior mean runs in the deterministic model."""
    variational = bm.build("gal_cnn", 5, kind="variational", bayesian_bias=True)
    x = images((2, 12, 12, 1))
    variables = random_variables(variational, x)
    twin_params = bnn.to_deterministic(variables)
    expected = variational.apply(variables, x, sample=False)
    np.testing.assert_allclose(bm.build("gal_cnn", 5).apply({"params": twin_params}, x), expected, rtol=1e-5, atol=1e-6)
    sampled = jax.eval_shape(lambda k: bnn.to_deterministic(variables, key=k), jax.random.key(0))
    assert jax.tree.map(lambda a: a.shape, sampled) == jax.tree.map(jnp.shape, twin_params)
