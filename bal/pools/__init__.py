"""Pools of millions: sources, streamed scoring with flat memory, many processes, batch-aware selection at scale.

::

    from bal import pools

    pools.pack_dataset("mnist", "pools/mnist")              # .npy shards (+ ArrayRecord) and pool.json
    source = pools.open_pool("pools/mnist")                 # NpyShards (memory-mapped)
    top = pools.score_pool(posterior, variables, source, key, k=1000, strategy="bald",
                           state_path="bald.state")         # resumable; flat host memory
    top.indices, source.names(top.indices)

    # many processes (jax.distributed): local top-k, one all-gather, the exact global top-k
    pools.initialize()                                      # e.g. under srun
    top = pools.score_distributed(posterior, variables, source, key, k=1000)

    # batch-aware at scale
    pools.prefilter_pool(posterior, variables, source, key, 100, method="batchbald", factor=10)
    clusters = pools.fit_clusters(posterior, variables, source, key, num_clusters=500)   # once
    pools.cluster_margin_pool(posterior, variables, source, key, 10_000, clusters)       # every cycle

    # the active-learning loop on a packed dataset: bal run with dataset = "pool:pools/mnist"
    ds = pools.open_labeled("pools/mnist")                  # train_x / test_x: lazy PoolArray views

Modules: :mod:`~bal.pools.sources` (the pool interface, arrays, subsets),
:mod:`~bal.pools.shards` (``.npy`` shards memory-mapped, ArrayRecord through
Grain), :mod:`~bal.pools.images` (image folders, threaded decoding),
:mod:`~bal.pools.pack` (writing shards), :mod:`~bal.pools.topk` (exact
mergeable running top-k), :mod:`~bal.pools.score` (streamed, resumable
scoring), :mod:`~bal.pools.distributed` (``jax.distributed``; how to launch
under Slurm and on multi-GPU machines), :mod:`~bal.pools.cluster_margin`
(Citovsky et al. 2021), :mod:`~bal.pools.prefilter` (top-M, then BatchBALD /
BADGE / core-set), :mod:`~bal.pools.view` (a pool as a lazy array; packed
datasets for the loop). Data-parallel training is :mod:`bal.parallel`.
Command line: ``bal pool pack`` / ``bal pool score`` (or ``python -m
bal.pools ...``).
"""

from bal.pools.cluster_margin import Clusters, cluster_margin, fit_clusters, hac, kmeans, margins
from bal.pools.cluster_margin import select_pool as cluster_margin_pool
from bal.pools.distributed import gather_top_k, initialize, process_range, score, score_distributed
from bal.pools.pack import pack, pack_dataset, pack_images
from bal.pools.prefilter import prefilter, prefilter_pool
from bal.pools.score import PAYLOADS, ScoreResult, map_pool, score_pool
from bal.pools.images import ImageFolder
from bal.pools.shards import ArrayRecordShards, NpyShards, array_record_available
from bal.pools.sources import ArraySource, PoolSource, Subset, open_pool
from bal.pools.topk import RunningTopK, TopKResult, merge_results
from bal.pools.view import LabeledPool, PoolArray, open_labeled

__all__ = [
    "PoolSource", "ArraySource", "NpyShards", "ArrayRecordShards", "ImageFolder", "Subset", "open_pool",
    "array_record_available",
    "pack", "pack_dataset", "pack_images",
    "RunningTopK", "TopKResult", "merge_results",
    "ScoreResult", "PAYLOADS", "score_pool", "map_pool",
    "initialize", "process_range", "gather_top_k", "score_distributed", "score",
    "Clusters", "fit_clusters", "hac", "kmeans", "margins", "cluster_margin", "cluster_margin_pool",
    "prefilter", "prefilter_pool",
    "PoolArray", "LabeledPool", "open_labeled",
]
