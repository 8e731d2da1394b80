"""Chunked and sharded prediction equal the in-memory computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import metrics
from bal import posteriors as P
from bal.predict import default_chunk_size, pool_mesh, predict

from .tinynet import TinyNet, blobs

C = 3


def _mutual_information(log_probs):  # [S, n, C] -> [n], a reduction computed per chunk
    if hasattr(log_probs, "log_probs"):  # a bal.predict.Chunk
        log_probs = log_probs.log_probs
    mean = metrics.predictive_log_probs(log_probs)
    h_mean = -jnp.sum(jnp.exp(mean) * mean, -1)
    h_each = -jnp.sum(jnp.exp(log_probs) * log_probs, -1).mean(0)
    return h_mean - h_each


@pytest.fixture(params=["mc_dropout", "ensemble"])
def posterior_and_vars(request):
    if request.param == "mc_dropout":
        post = P.MCDropout(TinyNet(C, dropout=0.5), C, default_num_samples=6)
    else:
        post = P.deep_ensemble(P.MCDropout(TinyNet(C, dropout=0.3), C, default_num_samples=2), 3)
    x, _ = blobs(4)
    return post, post.init(jax.random.key(0), x)


def test_chunked_equals_unchunked(posterior_and_vars):
    post, v = posterior_and_vars
    x, _ = blobs(37)
    key = jax.random.key(9)
    full = np.asarray(post.predict(v, x, key))
    chunked = predict(post, v, x, key, chunk_size=8, mesh=pool_mesh(jax.devices()[:1]))
    np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)
    lp, emb = predict(post, v, x, key, chunk_size=16, with_embeddings=True)
    np.testing.assert_allclose(lp, full, rtol=1e-5, atol=1e-6)
    assert emb.shape[:2] == full.shape[:2]
    scores = predict(post, v, x, key, chunk_size=8, reduce=_mutual_information)
    np.testing.assert_allclose(scores, _mutual_information(full), rtol=1e-4, atol=1e-6)


def test_default_chunk_size_follows_the_backend(posterior_and_vars):
    assert default_chunk_size() == (128 if jax.default_backend() == "cpu" else 2048)
    post, v = posterior_and_vars
    x, _ = blobs(300)  # more than one default CPU chunk
    key = jax.random.key(2)
    np.testing.assert_allclose(predict(post, v, x, key), predict(post, v, x, key, chunk_size=512),
                               rtol=1e-5, atol=1e-6)


def test_sharded_over_8_devices_equals_single_device(posterior_and_vars):
    assert jax.device_count() == 8, "conftest simulates 8 CPU devices"
    post, v = posterior_and_vars
    x, _ = blobs(45)
    key = jax.random.key(4)
    single = predict(post, v, x, key, chunk_size=16, mesh=pool_mesh(jax.devices()[:1]))
    sharded = predict(post, v, x, key, chunk_size=16, mesh=pool_mesh())
    np.testing.assert_allclose(sharded, single, rtol=1e-5, atol=1e-6)


def test_predict_rejects_bad_input():
    post = P.Deterministic(TinyNet(C), C)
    x, _ = blobs(5)
    v = post.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="empty"):
        predict(post, v, x[:0], jax.random.key(0))
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match="chunk_size"):
            predict(post, v, x, jax.random.key(0), chunk_size=bad)
    with pytest.raises(ValueError, match="exactly one sample"):
        predict(post, v, x, jax.random.key(0), num_samples=5)
