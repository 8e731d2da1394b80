"""Scoring the images or crops of a segmentation pool, and selecting them under a pixel budget.

State is the labeled-pixel mask ``labeled bool [N, H, W]``. A *unit* is a
whole image (``R = 1``) or a crop of the grid (``R = rows · cols``); unit
``(i, r)`` has flat id ``i · R + r`` (:mod:`bal.acquisition.regions`).

Scoring streams: :func:`unit_scores` runs :func:`bal.predict.predict` over
the images that still have an unlabeled pixel, and its ``reduce`` turns each
chunk's ``log_probs [S, n, H, W, C]`` into pixel scores
(:func:`bal.acquisition.dense.pixel_scores`, optionally
:func:`~bal.acquisition.dense.class_targeted`) and then into unit scores
``[n, R]`` (:func:`~bal.acquisition.regions.region_scores` or
:func:`~bal.acquisition.dense.reduce_pixels`) on the device, counting only
unlabeled pixels. A unit without an unlabeled pixel scores NaN and is never
selected, so no crop is acquired twice.

:func:`select_within_budget` takes units best first while their cost (their
unlabeled pixels) fits in the cycle's pixel budget, and stops at the first
that does not: the spend is at most the budget and, unless the pool runs out,
within one unit of it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from bal.acquisition import dense, regions as bregions
from bal.active.segmentation.config import Strategy
from bal.predict import Chunk, predict

__all__ = ["unit_grid", "unit_scores", "unit_costs", "select_within_budget", "mark_acquired"]


def unit_grid(strategy: Strategy, height: int, width: int, rows: int, cols: int) -> bregions.Regions:
    """The crops a strategy acquires: the ``rows x cols`` grid, or one region (the whole image)."""
    if strategy.unit == "crop":
        return bregions.grid(height, width, rows, cols)
    return bregions.grid(height, width, 1, 1)


@functools.lru_cache(maxsize=None)
def _reducer(score: str, grid: bregions.Regions, how: str, q: float, classes: tuple[int, ...],
             strength: float):
    """A stable (cached) ``reduce(chunk, labeled_padded) -> [n, R]`` for :func:`bal.predict.predict`."""

    def reduce(chunk: Chunk, labeled_padded):
        n = chunk.log_probs.shape[1]
        # the mask is padded past the pool, so the padded last chunk slices without clamping
        labeled = jax.lax.dynamic_slice_in_dim(labeled_padded, chunk.start, n, axis=0)
        u = dense.pixel_scores(chunk.log_probs, score, validate=False)
        if classes:
            u = dense.class_targeted(u, chunk.log_probs, classes, strength=strength, validate=False)
        return bregions.region_scores(u, grid, how, q=q, mask=~labeled)

    return reduce


def unit_scores(strategy: Strategy, grid: bregions.Regions, posterior, variables, images, labeled, key, *,
                reduction: str = "mean", q: float = 0.9, target_classes=(), target_strength: float = 1.0,
                num_samples: int | None = None, chunk_size: int = 16) -> np.ndarray:
    """Scores ``float32 [N, R]`` of every unit (NaN: nothing left to label there).

    Args:
      strategy: parsed strategy; grid: from :func:`unit_grid`.
      posterior, variables: the trained posterior (unused by random).
      images: ``float32 [N, H, W, C_in]`` the pool; labeled: ``bool [N, H, W]``.
      key: PRNG key (prediction noise, or the random scores).
    """
    labeled = np.asarray(labeled, bool)
    n = labeled.shape[0]
    left = bregions.region_scores(jnp.asarray(~labeled, jnp.float32), grid, "max")  # 1 where unlabeled left
    has_left = np.asarray(left) > 0
    if strategy.score is None:  # random: uniform scores, the same draw for every unit kind of this key
        u = np.asarray(jax.random.uniform(key, (n, grid.num_regions)), np.float32)
        return np.where(has_left, u, np.nan).astype(np.float32)
    out = np.full((n, grid.num_regions), np.nan, np.float32)
    candidates = np.flatnonzero(has_left.any(axis=1))
    if candidates.size == 0:
        return out
    classes = tuple(int(c) for c in target_classes) if strategy.targeted else ()
    reduce = _reducer(strategy.score, grid, reduction, float(q), classes, float(target_strength))
    extra = chunk_size + jax.device_count()  # >= the padding of predict's last chunk
    padded = np.concatenate([labeled[candidates], np.ones((extra,) + labeled.shape[1:], bool)])
    scores = predict(posterior, variables, images[candidates], key, num_samples=num_samples,
                     chunk_size=chunk_size, reduce=reduce, reduce_args=(jnp.asarray(padded),))
    out[candidates] = np.asarray(scores, np.float32)
    return np.where(has_left, out, np.nan)


def unit_costs(labeled, grid: bregions.Regions) -> np.ndarray:
    """Unlabeled pixels of every unit, ``int64 [N, R]`` (its labeling cost)."""
    unl = jnp.asarray(~np.asarray(labeled, bool), jnp.float32)
    return np.rint(np.asarray(bregions.region_scores(unl, grid, "sum"))).astype(np.int64)


def select_within_budget(scores, costs, budget: int) -> tuple[np.ndarray, int]:
    """Flat unit ids (best first) whose summed cost fits in ``budget``, and that sum.

    Units are ranked by decreasing score (ties: lowest id); NaN scores and
    units of zero cost are never taken. Units are taken in rank order while
    they fit; the first that does not fit ends the selection.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    costs = np.asarray(costs, np.int64).reshape(-1)
    valid = ~np.isnan(scores) & (costs > 0)
    order = np.flatnonzero(valid)[np.argsort(-scores[valid], kind="stable")]
    chosen, spent = [], 0
    for i in order.tolist():
        if spent + costs[i] > budget:
            break
        chosen.append(i)
        spent += int(costs[i])
    return np.asarray(chosen, np.int64), spent


def mark_acquired(labeled, ids, grid: bregions.Regions) -> np.ndarray:
    """``labeled`` with the pixels of units ``ids`` set (a new array)."""
    labeled = np.asarray(labeled, bool)
    if len(ids) == 0:
        return labeled.copy()
    return labeled | bregions.acquired_pixels(np.asarray(ids, np.int64), grid, num_images=labeled.shape[0])
