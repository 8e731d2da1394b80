"""Cluster-Margin: batches of 10K-100K+ that are both uncertain and diverse.

Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh & Kumar 2021,
"Batch Active Learning at Scale" (NeurIPS).

Once, before the first acquisition: embed the pool with the current model and
cluster the embeddings by hierarchical agglomerative clustering with average
linkage (HAC). Every cycle, reusing those clusters:

1. candidates ``M``: the ``num_candidates`` items of smallest margin
   ``p̄₍₁₎ − p̄₍₂₎`` of the mean predictive ``p̄ = mean_s p_s`` (ties: lowest index);
2. group the candidates by cluster and sort the clusters by their number of
   candidates, smallest first (ties: lowest cluster id);
3. round-robin over the sorted clusters, taking from each, in turn, its
   lowest-margin candidate not yet taken (the paper draws at random within a
   cluster: pass a ``key``), skipping exhausted clusters, until ``k`` are chosen.

Small clusters are visited first and every cluster gives one item per round,
so the batch spreads over the clusters instead of piling into the densest
uncertain region.

At scale (:func:`fit_clusters`): HAC is quadratic in memory, so it runs on a
random sample of the pool (``sample_size``, default 4,096) and every pool item
is then assigned to the nearest cluster centroid (the mean embedding of the
cluster's sample members) in one streamed pass; ``method="kmeans"`` fits
k-means on the sample instead. The cluster id of every item (``int32 [N]``,
indexed by global pool index) is saved with :meth:`Clusters.save` and reused
every cycle. :func:`select_pool` runs one streamed margin pass (multi-process
when ``jax.distributed`` is initialised) for the candidates.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from bal.predict import Chunk, predict
from bal.pools.score import map_pool
from bal.pools.sources import PoolSource
from bal.pools.topk import ranking_keys_np

__all__ = ["margins", "cluster_margin", "hac", "kmeans", "nearest_centroid", "Clusters", "fit_clusters",
           "select_pool", "negative_margin"]


# ----------------------------------------------------------------------------- margins
def _gap(log_probs):
    """``p̄₍₁₎ − p̄₍₂₎`` of ``[S, n, C]`` per-sample log-probabilities, ``[n]``."""
    p = jnp.mean(jnp.exp(log_probs), axis=0)
    top2 = jax.lax.top_k(p, 2)[0]
    return top2[..., 0] - top2[..., 1]


_gap_jit = jax.jit(_gap)


def negative_margin(chunk: Chunk, key):
    """A streaming score (:func:`bal.pools.score.score_pool`): ``−(p̄₍₁₎ − p̄₍₂₎)``, highest for the
    smallest margin."""
    del key
    return -_gap(chunk.log_probs)


def margins(log_probs) -> np.ndarray:
    """Margins ``p̄₍₁₎ − p̄₍₂₎`` (``[N]``, low = uncertain) of ``[S, N, C]`` log-probabilities
    or an ``[N, C]`` log predictive."""
    lp = jnp.asarray(log_probs)
    if lp.ndim == 2:
        lp = lp[None]
    if lp.ndim != 3 or lp.shape[-1] < 2:
        raise ValueError(f"log_probs must be [S, N, C] or [N, C] with C >= 2; got shape {tuple(lp.shape)}")
    return np.asarray(_gap_jit(lp))


# ----------------------------------------------------------------------------- the selection
def cluster_margin(margin, cluster_ids, k: int, *, num_candidates: int | None = None, key=None) -> np.ndarray:
    """Cluster-Margin selection from margins and cluster ids (Citovsky et al. 2021).

    Args:
      margin: ``[N]`` margins ``p̄₍₁₎ − p̄₍₂₎`` (low = uncertain; NaN never preferred).
      cluster_ids: ``int [N]`` cluster of each item.
      k: batch size, ``1 <= k <= num_candidates``.
      num_candidates: ``k_m``, the lowest-margin items considered (default
        ``min(N, 10 k)``; ``k_m = k`` is plain margin sampling).
      key: None: within a cluster, lowest margin first (deterministic);
        a PRNG key: a uniformly random order within each cluster (as the paper).

    Returns:
      ``int64 [k]`` indices in acquisition (round-robin) order.
    """
    m = np.asarray(margin, np.float32)
    ids = np.asarray(cluster_ids)
    if m.ndim != 1 or ids.shape != m.shape or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"margin must be [N] and cluster_ids integers [N]; got {m.shape} and {ids.dtype} {ids.shape}")
    n = m.size
    num_candidates = min(n, 10 * int(k)) if num_candidates is None else num_candidates
    for name, v, hi in (("num_candidates", num_candidates, n), ("k", k, num_candidates)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= hi:
            raise ValueError(f"{name} must be an integer in [1, {hi}]; got {v!r}")
    keys = ranking_keys_np(-m)
    cand = np.lexsort((np.arange(n), -keys.astype(np.float64)))[:num_candidates]  # margin asc, index asc
    cid = ids[cand].astype(np.int64)
    if key is None:
        within = np.arange(cand.size)  # candidate rank = margin order
    else:
        within = np.asarray(jax.random.permutation(key, cand.size))
    # rank of each candidate inside its cluster
    by_cluster = np.lexsort((within, cid))
    sorted_cid = cid[by_cluster]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_cid)) + 1]
    counts = np.diff(np.r_[first, cid.size])
    rank = np.empty(cid.size, np.int64)
    rank[by_cluster] = np.arange(cid.size) - np.repeat(first, counts)
    # clusters ordered by (number of candidates asc, cluster id asc)
    clusters = sorted_cid[first]
    order = np.lexsort((clusters, counts))
    position = np.empty(clusters.size, np.int64)
    position[order] = np.arange(clusters.size)
    cluster_pos = position[np.searchsorted(clusters, cid)]
    pick = np.lexsort((cluster_pos, rank))[:k]  # round r = rank, within a round by cluster order
    return cand[pick].astype(np.int64)


# ----------------------------------------------------------------------------- clustering
def hac(embeddings, *, num_clusters: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Average-linkage agglomerative clustering (Euclidean): ``int32 [n]`` labels ``0..K-1``.

    Give ``num_clusters`` (cut into at most that many) or ``threshold`` (merge
    while the average distance is at most it, the paper's ``ε``). Memory ``O(n²)``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"embeddings must be [n, D] with n >= 1; got {x.shape}")
    if (num_clusters is None) == (threshold is None):
        raise ValueError("give exactly one of num_clusters and threshold")
    if x.shape[0] == 1:
        return np.zeros(1, np.int32)
    z = linkage(x, method="average", metric="euclidean")
    if num_clusters is not None:
        labels = fcluster(z, t=int(num_clusters), criterion="maxclust")
    else:
        labels = fcluster(z, t=float(threshold), criterion="distance")
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int32)


def nearest_centroid(embeddings, centroids, *, chunk: int = 4096) -> np.ndarray:
    """``int32 [n]`` index of the nearest centroid (Euclidean; ties: lowest index)."""
    x = np.asarray(embeddings, np.float32)
    c = np.asarray(centroids, np.float32)
    c_sq = np.sum(c * c, axis=1)
    out = np.empty(x.shape[0], np.int32)
    for a in range(0, x.shape[0], chunk):
        xb = x[a:a + chunk]
        out[a:a + chunk] = np.argmin(c_sq[None, :] - 2.0 * xb @ c.T, axis=1)
    return out


def kmeans(embeddings, num_clusters: int, *, seed: int = 0, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: ``(centroids [K, D], labels int32 [n])``."""
    x = np.asarray(embeddings, np.float32)
    n = x.shape[0]
    if not 1 <= num_clusters <= n:
        raise ValueError(f"num_clusters must be in [1, {n}]; got {num_clusters}")
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(n)]]
    d2 = np.sum((x - centers[0]) ** 2, axis=1)
    for _ in range(1, num_clusters):
        total = d2.sum()
        i = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centers.append(x[i])
        d2 = np.minimum(d2, np.sum((x - x[i]) ** 2, axis=1))
    c = np.stack(centers)
    labels = nearest_centroid(x, c)
    for _ in range(iterations):
        sums = np.zeros_like(c)
        np.add.at(sums, labels, x)
        counts = np.bincount(labels, minlength=num_clusters)
        c = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        new = nearest_centroid(x, c)
        if np.array_equal(new, labels):
            break
        labels = new
    return c.astype(np.float32), labels


def _centroids(x, labels) -> np.ndarray:
    k = int(labels.max()) + 1
    sums = np.zeros((k, x.shape[1]), np.float64)
    np.add.at(sums, labels, x)
    return (sums / np.bincount(labels, minlength=k)[:, None]).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Clusters:
    """Cluster ids of a whole pool: ``ids int32 [N]`` (by global index), ``centroids float32 [K, D]``."""

    ids: np.ndarray
    centroids: np.ndarray
    method: str = "hac"
    sample_size: int = 0

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.shape[0])

    def save(self, folder) -> pathlib.Path:
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = (folder / "ids.npy").resolve()
        mapped = getattr(self.ids, "filename", None)
        if mapped is not None and pathlib.Path(mapped).resolve() == target:
            self.ids.flush()  # already written in place (fit_clusters(out=...)); rewriting would truncate it
        else:
            tmp = folder / "ids.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(self.ids, np.int32))
            tmp.replace(target)
        np.save(folder / "centroids.npy", np.asarray(self.centroids, np.float32))
        (folder / "clusters.json").write_text(json.dumps(
            {"method": self.method, "sample_size": self.sample_size, "num_items": int(len(self.ids)),
             "num_clusters": self.num_clusters}))
        return folder

    @classmethod
    def load(cls, folder) -> "Clusters":
        folder = pathlib.Path(folder)
        meta_path = folder / "clusters.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: {folder} holds no saved clusters")
        try:
            meta = json.loads(meta_path.read_text())
            ids = np.load(folder / "ids.npy", mmap_mode="r")
            centroids = np.load(folder / "centroids.npy")
        except (json.JSONDecodeError, ValueError, OSError) as e:
            raise ValueError(f"{folder}: unreadable clusters ({e})") from None
        if ids.shape != (meta.get("num_items"),):
            raise ValueError(f"{folder / 'ids.npy'}: {ids.shape[0]} ids, clusters.json says {meta.get('num_items')}")
        return cls(ids, centroids, meta.get("method", "hac"), int(meta.get("sample_size", 0)))


def _mean_embedding(chunk: Chunk):
    return jnp.mean(chunk.embeddings, axis=0)


def _nearest(chunk: Chunk, centroids):
    e = jnp.mean(chunk.embeddings, axis=0)
    d = jnp.sum(centroids * centroids, axis=1)[None, :] - 2.0 * jnp.dot(e, centroids.T,
                                                                        precision=jax.lax.Precision.HIGHEST)
    return jnp.argmin(d, axis=1).astype(jnp.int32)


def fit_clusters(posterior, variables, source: PoolSource, key, *, num_clusters: int | None = None,
                 threshold: float | None = None, method: str = "hac", sample_size: int = 4096, seed: int = 0,
                 num_samples: int | None = None, chunk_size: int | None = None, out=None) -> Clusters:
    """Cluster the pool once (see the module docstring): a sample clustered, every item assigned.

    Args:
      posterior, variables, key: the model whose mean embeddings ``[D]`` are clustered.
      num_clusters / threshold: HAC's cut (one of them; k-means needs ``num_clusters``).
      method: ``"hac"`` (average linkage) or ``"kmeans"``.
      sample_size: items clustered (HAC memory ``O(sample_size²)``).
      out: optional folder: ids are written there as a memory-mapped ``ids.npy``
        (for pools too big for memory) and the clusters saved.
    """
    if method not in ("hac", "kmeans"):
        raise ValueError(f"method must be 'hac' or 'kmeans'; got {method!r}")
    if method == "kmeans" and num_clusters is None:
        raise ValueError("k-means needs num_clusters")
    n = len(source)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(int(sample_size), n), replace=False))
    emb = predict(posterior, variables, source.take(sample), key, num_samples=num_samples,
                  chunk_size=chunk_size, reduce=_mean_embedding)
    if method == "hac":
        labels = hac(emb, num_clusters=num_clusters, threshold=threshold)
        centroids = _centroids(np.asarray(emb, np.float64), labels)
    else:
        centroids, _ = kmeans(emb, min(int(num_clusters), emb.shape[0]), seed=seed)
    ids = None
    if out is not None:
        folder = pathlib.Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        ids = np.lib.format.open_memmap(folder / "ids.npy", mode="w+", dtype=np.int32, shape=(n,))
    ids = map_pool(posterior, variables, source, key, _nearest, reduce_args=(jnp.asarray(centroids),), out=ids,
                   num_samples=num_samples, chunk_size=chunk_size)
    clusters = Clusters(ids, centroids, method, int(sample.size))
    if out is not None:
        ids.flush()
        clusters.save(out)
        clusters = Clusters.load(out)
    return clusters


def select_pool(posterior, variables, source: PoolSource, key, k: int, clusters: Clusters, *,
                num_candidates: int | None = None, within_key=None, **options) -> np.ndarray:
    """Cluster-Margin over a pool source: ``int64 [k]`` global indices, in acquisition order.

    One streamed pass keeps the ``num_candidates`` (default ``10 k``) smallest
    margins (:func:`bal.pools.distributed.score`: all processes when
    ``jax.distributed`` runs); their clusters come from ``clusters.ids`` (by
    global index). ``options`` go to :func:`bal.pools.score.score_pool`
    (``num_samples``, ``chunk_size``, ``state_path`` ...).
    """
    from bal.pools.distributed import score

    m = min(len(source), 10 * int(k)) if num_candidates is None else int(num_candidates)
    result = score(posterior, variables, source, key, m, strategy=negative_margin, **options)
    if result.indices.size and result.indices.max() >= len(clusters.ids):
        raise ValueError(f"the clusters cover {len(clusters.ids)} items but the pool has index "
                         f"{int(result.indices.max())}; fit them on the whole pool")
    ids = np.asarray(clusters.ids[result.indices])
    picked = cluster_margin(-result.scores, ids, k, num_candidates=result.indices.size, key=within_key)
    return result.indices[picked]
