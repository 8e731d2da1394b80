"""bal.posteriors.losses and the family structure.

The variational loss as a whole, on a model with Bayesian conv and dense layers (each with its
own Gaussian prior, one with a Bayesian bias) next to a plain layer, against the closed-form
Gaussian KL and the NLL of each weight draw computed here with numpy/scipy; the losses as
functions of arrays; every family satisfies the ``Posterior`` protocol, is final, and overrides
nothing concrete.
"""

import dataclasses
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import log_softmax

from bal import nn as bnn
from bal import posteriors as P
from bal.checks import IGNORE_LABEL
from bal.posteriors import losses
from bal.posteriors.protocol import EnsemblePosterior, Posterior

from .tinynet import TinyNet, blobs

C = 3
CONV_PRIOR, HEAD_PRIOR = 0.5, 1.0  # prior standard deviations N(0, s^2)


class BayesCNN(nn.Module):
    """Bayesian conv (Bayesian bias, prior N(0, 0.5^2)) -> plain dense -> Bayesian dense head (N(0, 1))."""

    @nn.compact
    def __call__(self, x, *, train=False, sample=True, return_embedding=False):
        mean_only = not (train or sample)
        h = bnn.Conv(2, (3, 3), prior=bnn.GaussianPrior(CONV_PRIOR), bayesian_bias=True, name="conv")(
            x, deterministic=mean_only)
        h = nn.relu(nn.Dense(5, name="plain")(nn.relu(h).reshape(x.shape[0], -1)))  # no KL of its own
        logits = bnn.Dense(C, prior=bnn.GaussianPrior(HEAD_PRIOR), name="head")(h, deterministic=mean_only)
        return (logits, h) if return_embedding else logits


def gaussian_kl(mean, logvar, prior_std) -> float:
    """sum KL(N(mean, exp(logvar)) || N(0, prior_std^2)), closed form in float64."""
    mean, var = np.asarray(mean, np.float64), np.exp(np.asarray(logvar, np.float64))
    return float(np.sum(np.log(prior_std) - 0.5 * np.log(var) + (var + mean ** 2) / (2 * prior_std ** 2) - 0.5))


def closed_form_kl(params) -> float:
    conv, head = params["conv"], params["head"]
    return (gaussian_kl(conv["kernel_mean"], conv["kernel_logvar"], CONV_PRIOR)
            + gaussian_kl(conv["bias_mean"], conv["bias_logvar"], CONV_PRIOR)
            + gaussian_kl(head["kernel_mean"], head["kernel_logvar"], HEAD_PRIOR))


def nll_of_draw(model, variables, x, y, key) -> float:
    """The mean cross-entropy of one training weight draw, from the model itself (the posteriors'
    RNG contract: ``split(key)`` gives the ``noise`` and ``dropout`` streams)."""
    noise, dropout = jax.random.split(key)
    logits = model.apply(variables, x, train=True, rngs={"noise": noise, "dropout": dropout}, mutable=["kl"])[0]
    log_p = log_softmax(np.asarray(logits, np.float64), axis=-1)
    return float(-np.mean(log_p[np.arange(len(y)), y]))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, C, 8).astype(np.int32)
    variables = P.Variational(BayesCNN(), C).init(jax.random.key(0), x[:1])
    # wide posteriors: a KL far from 0 and weight draws that visibly differ
    variables = jax.tree_util.tree_map_with_path(
        lambda p, a: (rng.uniform(-3.0, -1.0, a.shape).astype(np.float32) if p[-1].key.endswith("_logvar") else a),
        variables)
    return x, y, variables


@pytest.mark.parametrize("draws", [1, 3])
@pytest.mark.parametrize("kl_weight, step, expected_weight", [
    (1.0, 0, 1.0), (0.2, 11, 0.2), (optax.linear_schedule(0.0, 1.0, 100), 30, 0.3)])
def test_variational_loss_is_the_elbo_with_closed_form_kl(problem, draws, kl_weight, step, expected_weight):
    x, y, variables = problem
    post = P.Variational(BayesCNN(), C, kl_weight=kl_weight, train_samples=draws)
    key, num_train = jax.random.key(7), 250
    total, (stats, aux) = post.loss(variables, x, y, key, num_train=num_train, step=step)

    kl = closed_form_kl(variables["params"])
    nlls = [nll_of_draw(post.model, variables, x, y, k) for k in jax.random.split(key, draws)]
    if draws > 1:
        assert np.std(nlls) > 1e-3  # the draws differ: averaging them is visible
    assert stats is None and set(aux) == {"nll", "kl", "kl_weight"}
    np.testing.assert_allclose(float(aux["kl"]), kl, rtol=1e-5)
    np.testing.assert_allclose(float(aux["kl_weight"]), expected_weight, rtol=1e-6)
    np.testing.assert_allclose(float(aux["nll"]), np.mean(nlls), rtol=1e-5)
    np.testing.assert_allclose(float(total), np.mean(nlls) + expected_weight * kl / num_train, rtol=1e-5)


def test_elbo_averages_draws_and_reads_the_schedule_at_step():
    data = jnp.array([1.0, 2.0, 4.0])
    kls = jnp.array([30.0, 33.0, 36.0])  # a Monte Carlo KL differs per draw
    aux = {"nll": data, "part": jnp.array([0.0, 1.0, 2.0])}
    total, out = losses.elbo(data, kls, kl_weight=lambda t: t / 10, num_train=11, step=5, data_aux=aux)
    np.testing.assert_allclose(total, 7 / 3 + 0.5 * 33.0 / 11, rtol=1e-6)
    assert {k: float(v) for k, v in out.items()} == pytest.approx(
        {"nll": 7 / 3, "part": 1.0, "kl": 33.0, "kl_weight": 0.5})
    assert float(losses.elbo(data, kls, kl_weight=2.0, num_train=3)[0]) == pytest.approx(7 / 3 + 2 * 33 / 3)


def test_label_nll_classification_and_pixels_with_the_ignore_label():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 6)
    expect = -np.mean(log_softmax(logits.astype(np.float64), -1)[np.arange(6), labels])
    np.testing.assert_allclose(losses.data_nll(jnp.asarray(logits), jnp.asarray(labels)), expect, rtol=1e-6)

    dense = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    pixels = rng.integers(0, 4, (2, 3, 4)).astype(np.int32)
    pixels[0, 0] = IGNORE_LABEL
    pixels[1] = IGNORE_LABEL
    keep = pixels != IGNORE_LABEL
    log_p = log_softmax(dense.astype(np.float64), -1)
    ce = -np.take_along_axis(log_p, np.where(keep, pixels, 0)[..., None], -1)[..., 0]
    np.testing.assert_allclose(losses.data_nll(jnp.asarray(dense), jnp.asarray(pixels)), ce[keep].mean(), rtol=1e-5)
    nothing = np.full_like(pixels, IGNORE_LABEL)
    assert float(losses.data_nll(jnp.asarray(dense), jnp.asarray(nothing))) == 0.0


def test_data_term_with_a_task_loss_and_the_ensemble_losses():
    def task_loss(outputs, y):
        return {"loss": jnp.sum(outputs * y), "part": jnp.float32(3.0)}

    value, aux = losses.data_term(jnp.ones((2, 2)), jnp.full((2, 2), 0.5), data_loss=task_loss)
    assert float(value) == 2.0 and {k: float(v) for k, v in aux.items()} == {"data_loss": 2.0, "part": 3.0}

    member_losses, member_aux = jnp.array([1.0, 2.0, 6.0]), {"nll": jnp.array([1.0, 2.0, 6.0])}
    total, aux = losses.ensemble_loss(member_losses, member_aux)
    assert float(total) == 9.0 and float(aux["nll"]) == 3.0  # a sum: each member's own gradient
    params = {"Dense_0": {"kernel": jax.random.normal(jax.random.key(0), (3, 4, 2))}}
    reg, reg_aux = losses.regularized_ensemble_loss(member_losses, member_aux, params, regularization=0.5,
                                                    num_train=10)
    np.testing.assert_allclose(reg, 9.0 + 0.5 * reg_aux["dpe_penalty"] / 10, rtol=1e-6)
    assert losses.regularized_ensemble_loss(member_losses, member_aux, params, regularization=0.0,
                                            num_train=10)[1].keys() == {"nll"}


# --- the families' structure -------------------------------------------------------------

FAMILY_CLASSES = (P.Deterministic, P.MCDropout, P.Variational, P.Ensemble, P.RegularizedEnsemble)


def _instances():
    det = P.Deterministic(TinyNet(C), C)
    return [det, P.MCDropout(TinyNet(C, dropout=0.5), C), P.Variational(BayesCNN(), C),
            P.deep_ensemble(det, 2), P.regularized_ensemble(det, 2)]


def test_every_family_satisfies_the_protocol():
    for post in _instances():
        assert isinstance(post, Posterior), type(post).__name__
        stacked = post.num_members is not None
        assert isinstance(post, EnsemblePosterior) == stacked, type(post).__name__
        assert post.num_classes == C and post.uses_labels
        assert post.num_samples_for(None) == post.default_num_samples
        hash(post)  # a static argument of the jitted train step and prediction
    assert [type(p) for p in _instances()] == list(FAMILY_CLASSES)


def test_families_are_final_and_override_nothing_concrete():
    for cls in FAMILY_CLASSES:
        assert getattr(cls, "__final__", False), f"{cls.__name__} is not @final"
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        assert not inspect.isabstract(cls)
        assert not [other for other in FAMILY_CLASSES if other is not cls and issubclass(cls, other)]
        assert cls.__subclasses__() == []
        for base in cls.__mro__[1:]:
            for name, attr in vars(base).items():
                if name.startswith("__") or name == "_abc_impl" or name not in vars(cls):
                    continue
                assert getattr(attr, "__isabstractmethod__", False), (
                    f"{cls.__name__}.{name} overrides the concrete {base.__name__}.{name}")


@dataclasses.dataclass(frozen=True)
class Tempered:
    """A family written against the protocol alone: a deterministic network whose predictive
    distribution is tempered, ``log_softmax(logits / T)``, subclassing nothing."""

    model: nn.Module
    num_classes: int
    temperature: float = 2.0
    num_members = None
    default_num_samples = 1
    uses_labels = True

    def init(self, key, example_x):
        return self.model.init(key, example_x)

    def loss(self, variables, x, y, key, *, num_train, step=0):
        nll = losses.data_nll(self.model.apply(variables, x), y)
        return nll, (None, {"nll": nll})

    def num_samples_for(self, num_samples):
        return 1

    def predict_with_embeddings(self, variables, x, key, num_samples=None):
        logits, emb = self.model.apply(variables, x, return_embedding=True)
        return jax.nn.log_softmax(logits / self.temperature)[None], emb[None]

    def predict(self, variables, x, key, num_samples=None):
        return self.predict_with_embeddings(variables, x, key, num_samples)[0]


def test_a_family_written_against_the_protocol_joins_an_ensemble():
    member = Tempered(TinyNet(C), C)
    assert isinstance(member, Posterior)
    ens = P.Ensemble(member, 2, member_map="vmap")
    x, y = blobs(5)
    v = ens.init(jax.random.key(0), x)
    loss, (_, aux) = ens.loss(v, np.stack([x, x]), np.stack([y, y]), ens.member_keys(jax.random.key(1)), num_train=5)
    assert np.isfinite(float(loss)) and set(aux) == {"nll"}
    assert ens.predict(v, x, jax.random.key(2)).shape == (2, 5, C)
    with pytest.raises(ValueError, match="single-model posterior"):
        P.Ensemble(ens, 2)
