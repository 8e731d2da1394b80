"""Dense (segmentation) outputs through the core: posterior losses, fit, predict."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import posteriors
from bal.posteriors.base import cross_entropy, data_nll
from bal.predict import predict
from bal.train import check_labeled, fit

N, H, W, C = 4, 6, 8, 3


class LogitsAsParams(nn.Module):
    """A 'model' whose logits are a parameter ``[N, H, W, C]``: gradients wrt params are wrt logits."""

    num_classes: int = C

    @nn.compact
    def __call__(self, x, train=False, sample=False, return_embedding=False):
        z = self.param("logits", nn.initializers.normal(1.0), (N, H, W, self.num_classes))
        logits = z[: x.shape[0]] + 0.0 * x[..., :1]
        return (logits, logits) if return_embedding else logits


def _labels(key):
    y = np.array(jax.random.randint(key, (N, H, W), 0, C), np.int32)
    y[:, :3, :] = 255  # the top three rows of every image are unlabeled
    y[1] = 255  # and one image has no label at all
    return y


@pytest.mark.parametrize("family", ["mc_dropout", "variational", "ensemble"])
def test_posterior_loss_has_zero_gradient_at_unlabeled_pixels(family):
    model = LogitsAsParams()
    if family == "mc_dropout":
        post = posteriors.MCDropout(model, C)
    elif family == "variational":
        post = posteriors.Variational(model, C)
    else:
        post = posteriors.deep_ensemble(posteriors.Deterministic(model, C), num_members=2)
    x = jnp.zeros((N, H, W, 1))
    key = jax.random.key(0)
    variables = post.init(key, x)
    y = _labels(jax.random.key(1))
    if family == "ensemble":
        xs, ys, keys = jnp.stack([x, x]), jnp.stack([y, y]), post.member_keys(key)
    else:
        xs, ys, keys = x, y, key

    def loss(params):
        return post.loss({**variables, "params": params}, xs, ys, keys, num_train=N)[0]

    value, grads = jax.value_and_grad(loss)(variables["params"])
    g = np.asarray(grads["logits"])
    if family == "ensemble":
        g = g[0]
    unlabeled = y == 255
    assert np.isfinite(float(value)) and float(value) > 0
    assert np.all(g[unlabeled] == 0.0)  # exactly zero, not just small
    assert np.all(np.abs(g[~unlabeled]).sum(-1) > 0)


def test_unlabeled_pixels_do_not_change_the_loss_value():
    post = posteriors.MCDropout(LogitsAsParams(), C)
    x = jnp.zeros((N, H, W, 1))
    variables = post.init(jax.random.key(0), x)
    y = _labels(jax.random.key(1))
    other = jax.tree.map(lambda a: a.at[:, :3].set(1e4), variables)  # huge logits where unlabeled
    a = post.loss(variables, x, y, jax.random.key(2), num_train=N)[0]
    b = post.loss(other, x, y, jax.random.key(2), num_train=N)[0]
    assert float(a) == float(b)


def test_classification_loss_is_unchanged():
    logits = jax.random.normal(jax.random.key(0), (16, 5))
    y = jax.random.randint(jax.random.key(1), (16,), 0, 5)
    assert float(data_nll(logits, y)) == float(cross_entropy(logits, y))


def test_class_weights_weight_the_pixel_loss():
    logits = jax.random.normal(jax.random.key(0), (2, 3, 3, 2))
    y = jnp.array(np.tile([[0, 1, 255]], (2, 3, 1)), jnp.int32)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), jnp.where(y == 255, 0, y)[..., None], -1)[..., 0]
    expect = (jnp.sum(jnp.where(y == 0, ce, 0)) + 3 * jnp.sum(jnp.where(y == 1, ce, 0))) / (6 + 3 * 6)
    np.testing.assert_allclose(data_nll(logits, y, (1.0, 3.0)), expect, rtol=1e-6)
    with pytest.raises(ValueError, match="class_weights"):
        posteriors.MCDropout(LogitsAsParams(), C, class_weights=(1.0, 2.0))


def test_check_labeled_accepts_pixel_labels_and_rejects_bad_ones():
    x = np.zeros((2, 4, 5, 3), np.float32)
    y = np.zeros((2, 4, 5), np.int64)
    y[0, 0, 0] = 255
    _, out = check_labeled(x, y, 6)
    assert out.dtype == np.int32 and out.shape == (2, 4, 5)
    y[1, 1, 1] = 6
    with pytest.raises(ValueError, match=r"\[0, 6\) or be the ignore label 255"):
        check_labeled(x, y, 6)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        check_labeled(x, np.zeros((2, 4, 4), np.int32), 6)
    with pytest.raises(ValueError, match="integers"):
        check_labeled(x, np.zeros((2, 4, 5), np.float32), 6)


@pytest.fixture(scope="module")
def tiny_unet_data():
    from bal.data.segmentation import load_road_markings

    ds = load_road_markings("train", num_train=8, size=(16, 24))
    return ds.images, ds.masks


def test_dense_fit_trains_on_partial_labels(tiny_unet_data):
    x, masks = tiny_unet_data
    y = masks.copy()
    y[:, :8] = 255  # only the bottom half of every image is labeled
    post = posteriors.build("mc_dropout", "unet", 6, num_samples=2, model_kwargs={"width": 4, "depth": 1})
    variables = post.init(jax.random.key(0), x[:1])
    result = fit(post, variables, x, y, jax.random.key(1), num_epochs=12, batch_size=4, learning_rate=1e-2)
    losses = [h["loss"] for h in result.history]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    with pytest.raises(ValueError, match="classification labels"):
        fit(post, variables, x, y, jax.random.key(1), num_steps=1, validation=(x, y), patience=1)


@pytest.mark.parametrize("family", ["mc_dropout", "variational", "ensemble"])
def test_predict_returns_dense_samples(family, tiny_unet_data):
    x = tiny_unet_data[0][:5]
    post = posteriors.build(family, "unet", 6, num_samples=2, num_members=2,
                            model_kwargs={"width": 2, "depth": 0})
    variables = post.init(jax.random.key(0), x[:1])
    s = 2  # an ensemble of 2 members: one sample each
    lp = predict(post, variables, x, jax.random.key(1), num_samples=s, chunk_size=8)
    assert lp.shape == (s, 5, 16, 24, 6)
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, rtol=1e-5)
    # chunking does not change the samples: chunk of 8 (one padded chunk) vs the whole at once
    whole = post.predict(variables, jnp.asarray(x), jax.random.key(1), num_samples=s)
    np.testing.assert_allclose(lp, whole, atol=1e-5)
