"""The small-labeled-set training protocol of ``fit``: epochs over every example,
a floor on steps, Keras-style L2 scaled by 1 / N, early stopping on a validation split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import posteriors
from bal.train import _l2_grad, fit, steps_per_epoch


@pytest.mark.parametrize("n, b, expected", [(20, 64, 1), (64, 64, 1), (65, 64, 2), (127, 64, 2),
                                            (128, 64, 2), (129, 64, 3), (500, 64, 8), (1, 1, 1)])
def test_an_epoch_sees_every_example(n, b, expected):
    assert steps_per_epoch(n, b) == expected


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32)


@pytest.fixture(scope="module")
def post():
    return posteriors.build("deterministic", "mlp", 2, model_kwargs={"hidden_sizes": (16,)})


@pytest.mark.parametrize("n, epochs, min_steps, steps", [(100, 3, 0, 6), (20, 3, 0, 3),
                                                         (20, 3, 10, 10), (100, 3, 7, 8)])
def test_step_count_per_cycle(post, n, epochs, min_steps, steps):
    x, y = _data(n)
    v = post.init(jax.random.key(0), x[:1])
    result = fit(post, v, x, y, jax.random.key(1), num_epochs=epochs, batch_size=64,
                 min_steps=min_steps)
    assert result.history[-1]["step"] == steps  # whole epochs of ceil(n / b) steps


def test_wrapped_last_batch_visits_every_example(post):
    # with a huge learning rate on a linear-separable set, an example never seen
    # cannot be fit; instead check directly: 65 examples, batch 64, one epoch = 2 steps
    # whose batches cover all 65 rows (the second wraps to the start of the permutation)
    from bal.train import _permutation
    perm = np.asarray(_permutation(jax.random.key(0), 65, 128))
    pos = [(o + np.arange(64)) % 65 for o in (0, 64)]
    seen = np.unique(np.concatenate([perm[p] for p in pos]))
    assert seen.tolist() == list(range(65))


def test_l2_gradient_is_keras_l2_on_kernels_only(post):
    x, _ = _data(4)
    params = post.init(jax.random.key(0), x[:1])["params"]
    c = 3.5 / 20

    def penalty(p):  # Keras l2(c): c * sum of squared kernel entries
        leaves = jax.tree_util.tree_leaves_with_path(p)
        return c * sum(jnp.sum(w ** 2) for path, w in leaves if path[-1].key == "kernel")

    expected = jax.grad(penalty)(params)
    got = _l2_grad(params, c)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    biases = [w for path, w in jax.tree_util.tree_leaves_with_path(got) if path[-1].key == "bias"]
    assert biases and all(float(jnp.abs(b).max()) == 0 for b in biases)


def test_l2_shrinks_the_kernels(post):
    x, y = _data(64)
    v = post.init(jax.random.key(0), x[:1])
    norm = lambda r: sum(float(jnp.sum(w ** 2)) for w in jax.tree.leaves(r.variables["params"]))
    plain = fit(post, v, x, y, jax.random.key(1), num_epochs=30, learning_rate=1e-2)
    decayed = fit(post, v, x, y, jax.random.key(1), num_epochs=30, learning_rate=1e-2, l2=1.0)
    assert norm(decayed) < 0.7 * norm(plain)


def test_early_stopping_returns_the_best_validation_epoch(post):
    x, y = _data(64)
    xv, yv = _data(200, seed=1)
    v = post.init(jax.random.key(0), x[:1])
    result = fit(post, v, x, y, jax.random.key(1), num_epochs=60, learning_rate=3e-2,
                 validation=(xv, yv), patience=3, monitor="accuracy")
    accs = [h["val_accuracy"] for h in result.history]
    assert result.best_epoch == int(np.argmax(accs))  # the first best epoch
    assert len(accs) <= result.best_epoch + 1 + 4  # stopped within patience + 1 epochs


@pytest.mark.parametrize("bad", [True, 0, -1, 2.5])
def test_bad_budgets_are_refused(post, bad):
    x, y = _data(8)
    v = post.init(jax.random.key(0), x[:1])
    with pytest.raises(ValueError, match="num_epochs"):
        fit(post, v, x, y, jax.random.key(1), num_epochs=bad)
    with pytest.raises(ValueError, match="min_steps|l2"):
        fit(post, v, x, y, jax.random.key(1), num_epochs=1, min_steps=-1)
    with pytest.raises(ValueError, match="l2"):
        fit(post, v, x, y, jax.random.key(1), num_epochs=1, l2=float("nan"))
