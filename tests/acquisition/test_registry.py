"""The name registry: one calling convention for every strategy, metadata, and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import SCORES, Strategy, acquire, bald, bottom_k, get, names, register, top_k
from .acq_helpers import random_log_probs

N, K = 24, 4


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    lp = random_log_probs(4, N, 3, seed=6)
    emb = jnp.asarray(rng.normal(size=(N, 5)), jnp.float32)
    labeled = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    return lp, emb, labeled


# batchbald with 3^2 > num_configs = 8: its later steps sample configurations (the stochastic path)
PARAMS = {"batchbald": {"num_configs": 8}, "BatchBALD": {"num_configs": 8}}
ALL = ["bald", "entropy", "margin", "variation_ratios", "mean_std", "least_confidence", "random",
       "batchbald", "powerbald", "softmax_entropy", "softrank_margin",
       "stochastic(bald, mode=softmax, coldness=2.0)", "badge", "coreset", "mutual_information", "BatchBALD"]


@pytest.mark.parametrize("name", ALL)
def test_every_strategy_uses_one_calling_convention(name, pool, key):
    lp, emb, labeled = pool
    params = PARAMS.get(name, {})
    idx = acquire(name, key, lp, K, embeddings=emb, labeled_embeddings=labeled, **params)
    assert idx.shape == (K,) and idx.dtype == jnp.int32
    values = np.asarray(idx).tolist()
    assert len(set(values)) == K and all(0 <= v < N for v in values)
    # the same through get(): a Strategy is the callable
    np.testing.assert_array_equal(get(name, **params)(key, lp, K, embeddings=emb, labeled_embeddings=labeled), idx)


def test_acquire_is_identical_under_jit(pool, key):
    lp, emb, labeled = pool
    names_ = ["margin", "random", "powerbald", "softrank_entropy", "batchbald", "badge", "coreset"]

    def run(kk, x, e, lab):
        return {n: acquire(n, kk, x, K, embeddings=e, labeled_embeddings=lab, **PARAMS.get(n, {})) for n in names_}

    eager = run(key, lp, emb, labeled)
    jitted = jax.jit(run)(key, lp, emb, labeled)
    for n in names_:
        np.testing.assert_array_equal(eager[n], jitted[n], err_msg=n)


def test_pointwise_scores_are_top_k_and_bottom_k(pool, key):
    lp, _, _ = pool
    for name, fn in SCORES.items():
        np.testing.assert_array_equal(acquire(name, key, lp, K), top_k(None, fn(lp), K))
        np.testing.assert_array_equal(acquire(name, key, lp, K, most_informative=False), bottom_k(None, fn(lp), K))


def test_metadata():
    assert get("bald").pointwise and not get("bald").needs_embeddings and not get("bald").stochastic
    assert get("random").pointwise and get("random").stochastic
    assert get("power_bald").pointwise and get("softmax_entropy").pointwise
    assert not get("softrank_bald").pointwise  # ranks need the whole pool
    assert not get("batchbald").pointwise and not get("batchbald").needs_embeddings
    assert get("badge").needs_embeddings and not get("badge").pointwise
    coreset = get("coreset")
    assert coreset.needs_embeddings and coreset.uses_labeled_embeddings
    s = get("stochastic(entropy)", coldness=3.0)
    assert isinstance(s, Strategy) and s.name == "power_entropy" and s.params == {"mode": "power", "coldness": 3.0}
    assert get("batchbald", num_configs=500).params["num_configs"] == 500
    assert get("Power-BALD").name == "power_bald"


def test_stochastic_wrapper_parses_inline_parameters():
    s = get("stochastic( margin , mode='softrank', coldness=0.5 )")
    assert s.name == "softrank_margin" and s.params == {"mode": "softrank", "coldness": 0.5}
    with pytest.raises(ValueError, match="given both in the name and as keywords"):
        get("stochastic(bald, coldness=1)", coldness=2.0)
    with pytest.raises(ValueError, match="unknown score 'foo'.*valid scores"):
        get("stochastic(foo)")
    with pytest.raises(ValueError, match="fixes mode"):
        get("softmax_bald", mode="power")


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown acquisition strategy 'bladd'; valid names: bald, entropy") as err:
        get("bladd")
    for name in ("batchbald", "badge", "coreset", "powerbald", "softmax_<score>", "stochastic(<score>"):
        assert name in str(err.value)
    assert "bald" in names() and "softrank_variation_ratios" in names(expand=True)


def test_unknown_parameter_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['temperature'\].*accepted: \['coldness', 'mode'\]"):
        get("powerbald", temperature=1.0)
    with pytest.raises(ValueError, match=r"accepted: none"):
        get("bald", coldness=1.0)


def test_missing_inputs_are_named(pool, key):
    lp, emb, _ = pool
    with pytest.raises(ValueError, match="needs embeddings"):
        acquire("badge", key, lp, K)
    with pytest.raises(ValueError, match="PRNG key"):
        acquire("random", None, lp, K)
    with pytest.raises(ValueError, match="no least-informative variant"):
        acquire("batchbald", key, lp, K, most_informative=False)
    with pytest.raises(ValueError, match="6 rows but log_probs has N = 24"):
        acquire("coreset", key, lp, K, embeddings=emb[:6])
    with pytest.raises(ValueError, match="not pointwise"):
        get("badge").score(lp)


def test_register_a_custom_strategy(pool, key):
    lp, _, _ = pool

    def factory(**params):
        return Strategy("neg_bald", params, pointwise=True,
                        _score=lambda x, *, key, offset, most_informative: -bald(x))

    register("neg_bald_test", factory)
    np.testing.assert_array_equal(acquire("neg_bald_test", key, lp, K), bottom_k(None, bald(lp), K))
    with pytest.raises(ValueError, match="already exists"):
        register("neg_bald_test", factory)
    assert "neg_bald_test" in names()
