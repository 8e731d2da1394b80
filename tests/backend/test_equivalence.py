"""The accelerator policy's branches (vmap maps, big chunks, no conv rewrite), forced on the CPU,
give the CPU policy's numbers: predictions and a few fit steps, at float32 tolerance."""

import jax
import numpy as np
import pytest

from bal import posteriors as P
from bal.backend import accelerator_policy, cpu_policy, use
from bal.predict import predict
from bal.train import fit

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 28, 28, 1)).astype(np.float32)
Y = RNG.integers(0, 3, size=20).astype(np.int32)
SMALL_CNN = dict(filters=8, hidden=16)  # conv2 has 8 input channels: the CPU rewrite applies

CASES = {
    "mc_dropout_gal_cnn": lambda: P.build("mc_dropout", "gal_cnn", 3, num_samples=3, model_kwargs=SMALL_CNN),
    "variational_gal_cnn": lambda: P.build("variational", "gal_cnn", 3, num_samples=3, train_samples=2,
                                           model_kwargs=SMALL_CNN),
    "ensemble_mlp": lambda: P.build("ensemble", "mlp", 3, num_members=3),
}


def _run(make):
    post = make()
    variables = post.init(jax.random.key(0), X[:2])
    log_probs = predict(post, variables, X, jax.random.key(1))  # default chunk size: the policy's
    trained = fit(post, variables, X, Y, jax.random.key(2), num_steps=3, batch_size=8).variables
    return log_probs, trained


@pytest.mark.parametrize("name", sorted(CASES))
def test_accelerator_policy_gives_the_cpu_policys_numbers(name, monkeypatch):
    monkeypatch.delenv("BAL_CONV_REWRITE", raising=False)
    with use(cpu_policy()):
        cpu = _run(CASES[name])
    with use(accelerator_policy()):
        acc = _run(CASES[name])
    np.testing.assert_allclose(acc[0], cpu[0], rtol=1e-4, atol=1e-5)
    for a, c in zip(jax.tree.leaves(acc[1]), jax.tree.leaves(cpu[1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-4, atol=1e-5)
