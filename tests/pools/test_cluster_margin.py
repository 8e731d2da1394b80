"""Cluster-Margin (Citovsky et al. 2021): the definition, brute force; spread over clusters; the pool wiring."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import pools
from bal.pools.cluster_margin import Clusters, cluster_margin, fit_clusters, hac, kmeans, margins, select_pool
from bal.predict import predict

from tests.pools.helpers import pool_array, tiny_posterior


def reference(margin, ids, k, num_candidates):
    """The definition, literally: the num_candidates lowest margins (ties: lowest index, NaN last); their
    clusters sorted by (number of candidates, id); round-robin, lowest margin first within a cluster."""
    key = [(np.inf if np.isnan(m) else m, i) for i, m in enumerate(margin)]
    candidates = [i for _, i in sorted(key)[:num_candidates]]
    clusters = {}
    for i in candidates:
        clusters.setdefault(int(ids[i]), []).append(i)
    queue = [items for _, items in sorted(clusters.items(), key=lambda kv: (len(kv[1]), kv[0]))]
    chosen = []
    while len(chosen) < k:
        for items in queue:
            if items and len(chosen) < k:
                chosen.append(items.pop(0))
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_cluster_margin_equals_the_brute_force_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    margin = np.round(rng.random(n), 1 + seed % 2).astype(np.float32)  # ties
    margin[rng.integers(0, n, 3)] = np.nan
    ids = rng.integers(0, int(rng.integers(1, 12)), n)
    m = int(rng.integers(1, n + 1))
    k = int(rng.integers(1, m + 1))
    np.testing.assert_array_equal(cluster_margin(margin, ids, k, num_candidates=m), reference(margin, ids, k, m))


def test_cluster_margin_spreads_the_batch_over_clusters():
    rng = np.random.default_rng(0)
    # 10 clusters; the 200 most uncertain items all sit in cluster 0
    ids = np.repeat(np.arange(10), 100)
    margin = rng.random(1000).astype(np.float32) + 0.5
    margin[:100] = rng.random(100).astype(np.float32) * 0.1
    plain = np.argsort(margin, kind="stable")[:20]
    assert len(set(ids[plain])) == 1  # margin sampling piles into one cluster
    chosen = cluster_margin(margin, ids, 20, num_candidates=400)
    counts = np.bincount(ids[chosen], minlength=10)
    assert (counts == 2).all()  # round-robin: every cluster of the candidates, evenly
    # smallest clusters first: the first round visits cluster 0 (100 candidates) last
    assert ids[chosen[9]] == 0 and 0 not in ids[chosen[:9]]
    assert len(set(chosen)) == 20
    # k_m = k is plain margin sampling
    np.testing.assert_array_equal(np.sort(cluster_margin(margin, ids, 20, num_candidates=20)), np.sort(plain))


def test_random_order_within_clusters_keeps_the_cluster_schedule():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 5, 300)
    margin = rng.random(300).astype(np.float32)
    det = cluster_margin(margin, ids, 30, num_candidates=90)
    rnd = cluster_margin(margin, ids, 30, num_candidates=90, key=jax.random.key(0))
    np.testing.assert_array_equal(ids[det], ids[rnd])  # same clusters in the same round-robin order
    assert set(rnd) <= set(np.argsort(margin, kind="stable")[:90])


def test_margins_and_errors():
    lp = jnp.log(jnp.array([[[0.6, 0.3, 0.1], [0.5, 0.5, 0.0]]]))
    np.testing.assert_allclose(margins(lp), [0.3, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="num_candidates"):
        cluster_margin(np.zeros(5), np.zeros(5, int), 2, num_candidates=6)
    with pytest.raises(ValueError, match="k must be"):
        cluster_margin(np.zeros(5), np.zeros(5, int), 4, num_candidates=3)


def test_hac_and_kmeans_separate_blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    x = np.concatenate([c + rng.normal(size=(30, 2)).astype(np.float32) for c in centers])
    truth = np.repeat(np.arange(3), 30)
    for labels in (hac(x, num_clusters=3), kmeans(x, 3, seed=0)[1], hac(x, threshold=5.0)):
        assert len(set(labels)) == 3
        assert all(len(set(labels[truth == t])) == 1 for t in range(3))


@pytest.fixture(scope="module")
def model():
    return tiny_posterior()


def test_fit_clusters_once_then_select_from_the_pool_equals_the_array_version(model, tmp_path):
    post, variables = model
    x = pool_array(600, seed=2)
    source = pools.ArraySource(x)
    key = jax.random.key(4)
    clusters = fit_clusters(post, variables, source, key, num_clusters=8, sample_size=200, chunk_size=64,
                            out=tmp_path / "clusters")
    assert clusters.ids.shape == (600,) and clusters.num_clusters <= 8 and clusters.ids.max() < clusters.num_clusters
    again = Clusters.load(tmp_path / "clusters")
    np.testing.assert_array_equal(np.asarray(again.ids), np.asarray(clusters.ids))
    # every item sits with its nearest centroid
    emb = predict(post, variables, x, key, chunk_size=64, reduce=lambda c: jnp.mean(c.embeddings, 0))
    d = ((emb[:, None, :] - clusters.centroids[None]) ** 2).sum(-1)
    assert (np.take_along_axis(d, np.asarray(clusters.ids)[:, None].astype(int), 1)[:, 0] <= d.min(1) + 1e-4).all()
    got = select_pool(post, variables, source, key, 30, again, num_candidates=120, chunk_size=64)
    pk, _ = jax.random.split(key)
    lp = predict(post, variables, x, pk, chunk_size=64)
    want = cluster_margin(margins(lp), np.asarray(clusters.ids), 30, num_candidates=120)
    np.testing.assert_array_equal(got, want)
    km = fit_clusters(post, variables, source, key, num_clusters=5, method="kmeans", sample_size=300, chunk_size=64)
    assert km.ids.shape == (600,) and km.num_clusters == 5
