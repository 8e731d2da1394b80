"""Acquisition functions for Bayesian active learning: arrays in, pool indices out.

Inputs are per-sample log-probabilities ``log_probs [S, N, C]`` (posterior
samples, pool items, classes) — and, for BADGE / core-set, embeddings
``[N, D]``. This package imports jax and numpy only, never a model or a
posterior.

Modules (one concept each):

- :mod:`~bal.acquisition.scores` — pointwise scores ``[S, N, C] -> [N]``:
  BALD, entropy, variation ratios, mean std, margin, least confidence, random;
- :mod:`~bal.acquisition.selection` — top-k / bottom-k / random rules, lowest index wins ties;
- :mod:`~bal.acquisition.streaming` — chunked scoring with a mergeable top-k;
- :mod:`~bal.acquisition.batchbald` — BatchBALD (Kirsch et al. 2019);
- :mod:`~bal.acquisition.stochastic` — softmax / power / soft-rank sampling (Kirsch et al. 2023);
- :mod:`~bal.acquisition.badge` — BADGE (Ash et al. 2020);
- :mod:`~bal.acquisition.coreset` — greedy k-center core-set (Sener & Savarese 2018);
- :mod:`~bal.acquisition.registry` — names -> strategies with one calling convention;
- :mod:`~bal.acquisition.dense` — segmentation: per-pixel scores ``[S, N, H, W, C] -> [N, H, W]``,
  their reduction to image scores, class targeting;
- :mod:`~bal.acquisition.regions` — crops as the unit of acquisition: a grid, crop scores, flat ids.
"""

from bal.acquisition.badge import badge, gradient_embedding_factors, gradient_embeddings
from bal.acquisition.batchbald import BatchResult, batchbald, joint_entropy
from bal.acquisition.coreset import coreset, min_sq_distances
from bal.acquisition.dense import REDUCTIONS, class_targeted, pixel_scores, reduce_pixels, target_mass
from bal.acquisition.regions import (
    Regions,
    acquired_pixels,
    grid,
    region_index,
    region_masks,
    region_pixels,
    region_scores,
    split_region_index,
)
from bal.acquisition.registry import Strategy, acquire, acquire_streaming, get, names, register
from bal.acquisition.scores import (
    SCORES,
    bald,
    conditional_entropy,
    entropy,
    least_confidence,
    margin,
    mean_std,
    mutual_information,
    random_scores,
    variation_ratios,
)
from bal.acquisition.selection import RULES, bottom_k, random_k, ranking_keys, select, top_k
from bal.acquisition.stochastic import (
    perturbed_scores,
    power_select,
    softmax_select,
    softrank_select,
    stochastic_select,
)
from bal.acquisition.streaming import (
    TopK,
    chunk_top_k,
    merge_top_k,
    streaming_top_k,
    topk_init,
    topk_result,
    topk_update,
)

__all__ = [
    # scores
    "SCORES", "bald", "mutual_information", "entropy", "conditional_entropy", "variation_ratios", "mean_std",
    "margin", "least_confidence", "random_scores",
    # selection
    "RULES", "select", "top_k", "bottom_k", "random_k", "ranking_keys",
    # streaming
    "TopK", "topk_init", "topk_update", "topk_result", "chunk_top_k", "merge_top_k", "streaming_top_k",
    # batch-aware
    "BatchResult", "batchbald", "joint_entropy",
    "stochastic_select", "softmax_select", "power_select", "softrank_select", "perturbed_scores",
    "badge", "gradient_embeddings", "gradient_embedding_factors",
    "coreset", "min_sq_distances",
    # dense (segmentation) and regions
    "REDUCTIONS", "pixel_scores", "reduce_pixels", "target_mass", "class_targeted",
    "Regions", "grid", "region_scores", "region_masks", "region_pixels", "region_index", "split_region_index",
    "acquired_pixels",
    # registry
    "Strategy", "get", "acquire", "acquire_streaming", "names", "register",
]
