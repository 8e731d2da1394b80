"""Crops (regions) of an image as the unit of acquisition: a grid, crop scores, masks, flat ids.

Labeling a whole segmentation image is expensive and much of it is easy
(sky, road); acquiring rectangular *regions* instead spends the budget where
the model is uncertain (Mackowiak, Lenz, Ghori, Diego, Lange & Rother 2018,
"CEREALS — Cost-Effective REgion-based Active Learning for Semantic
Segmentation"; Kasarla, Nagendar, Hegde, Balasubramanian & Jawahar 2019,
"Region-based Active Learning for Efficient Labeling in Semantic
Segmentation"; Casanova, Pinheiro, Rostamzadeh & Pal 2020, "Reinforced
active learning for image segmentation").

:func:`grid` cuts an ``H x W`` image into ``rows x cols`` crops that tile it
exactly — every pixel lies in exactly one crop — for any size: the row
boundaries are ``⌊i·H / rows⌋`` for ``i = 0..rows`` (likewise for columns),
so crop heights (widths) differ by at most one pixel when ``H`` (``W``) is not
divisible. The default ``rows=3, cols=4`` gives 12 crops, 4 across by 3
down, which suits landscape driving images (BDD100k 1280x720 -> crops of
320x240; Cityscapes 2048x1024 -> 512x341/342).

Crops are numbered row-major: crop ``r = i·cols + j`` is row band ``i``
(top to bottom) and column band ``j`` (left to right). A crop of the pool is
the flat id ``image·R + r`` into ``[N·R]`` — the order of
``region_scores(...).reshape(-1)`` — so the ordinary selection rules apply::

    u = dense.pixel_scores(log_probs, "bald")                       # [N, H, W]
    s = regions.region_scores(u, g, "mean", mask=~labeled)          # [N, R]
    ids = bal.acquisition.top_k(None, s.reshape(-1), k)             # flat ids into [N * R]
    image, crop = regions.split_region_index(ids, g)
    labeled |= regions.acquired_pixels(ids, g, num_images=N)        # [N, H, W]

Crops already labeled (every pixel masked) score NaN and are never selected.
:func:`region_pixels` gives each crop's labeling cost in pixels (for cost-
aware rules, e.g. score per pixel).
"""

from __future__ import annotations

import dataclasses
import numbers

import jax.numpy as jnp
import numpy as np

from bal.acquisition._validation import is_tracer
from bal.acquisition.dense import _broadcast_mask, _reduce, check_q, check_reduction

__all__ = ["Regions", "grid", "region_pixels", "region_masks", "region_scores", "region_index",
           "split_region_index", "acquired_pixels"]


@dataclasses.dataclass(frozen=True)
class Regions:
    """A grid of crops tiling an ``H x W`` image (hashable, static).

    Attributes:
      row_edges: ``rows + 1`` increasing ints from 0 to ``H``; row band ``i``
        is ``[row_edges[i], row_edges[i + 1])``.
      col_edges: ``cols + 1`` increasing ints from 0 to ``W``.
    """

    row_edges: tuple[int, ...]
    col_edges: tuple[int, ...]

    @property
    def rows(self) -> int:
        return len(self.row_edges) - 1

    @property
    def cols(self) -> int:
        return len(self.col_edges) - 1

    @property
    def num_regions(self) -> int:
        """``R = rows · cols``."""
        return self.rows * self.cols

    @property
    def height(self) -> int:
        return self.row_edges[-1]

    @property
    def width(self) -> int:
        return self.col_edges[-1]

    def box(self, r: int) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` of crop ``r`` (half-open): pixels ``[top:bottom, left:right]``."""
        r = _check_region(r, self.num_regions)
        i, j = divmod(r, self.cols)
        return self.row_edges[i], self.row_edges[i + 1], self.col_edges[j], self.col_edges[j + 1]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _check_region(r, num_regions: int) -> int:
    if isinstance(r, bool) or not isinstance(r, (numbers.Integral, np.integer)) or not 0 <= r < num_regions:
        raise ValueError(f"region index must be an integer in [0, {num_regions}); got {r!r}")
    return int(r)


def grid(height: int, width: int, rows: int = 3, cols: int = 4) -> Regions:
    """``rows x cols`` crops tiling an ``height x width`` image (default 3 x 4 = 12: 4 across, 3 down).

    Boundaries ``⌊i·height / rows⌋`` and ``⌊j·width / cols⌋``: every pixel is in
    exactly one crop, sizes differ by at most one pixel.

    Raises:
      ValueError: a non-positive size or grid, or a grid finer than the image
        (``rows > height`` or ``cols > width``: a crop would be empty).
    """
    height, width = _positive_int(height, "height"), _positive_int(width, "width")
    rows, cols = _positive_int(rows, "rows"), _positive_int(cols, "cols")
    if rows > height:
        raise ValueError(f"a grid of rows={rows} does not fit an image of height {height} (a crop needs at "
                         f"least one pixel row); use rows <= {height}")
    if cols > width:
        raise ValueError(f"a grid of cols={cols} does not fit an image of width {width} (a crop needs at "
                         f"least one pixel column); use cols <= {width}")
    return Regions(tuple(i * height // rows for i in range(rows + 1)),
                   tuple(j * width // cols for j in range(cols + 1)))


def _check_regions(regions) -> Regions:
    if not isinstance(regions, Regions):
        raise ValueError(f"regions must be a Regions (from bal.acquisition.regions.grid); got {regions!r}")
    return regions


def region_pixels(regions: Regions) -> np.ndarray:
    """The labeling cost of each crop in pixels, ``int64 [R]`` (row-major); sums to ``H·W``."""
    regions = _check_regions(regions)
    return np.outer(np.diff(regions.row_edges), np.diff(regions.col_edges)).ravel().astype(np.int64)


def region_masks(regions: Regions, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Boolean masks ``[R, H, W]`` (numpy, static geometry): ``masks[r]`` is True on crop ``r``.

    ``height`` / ``width``, when given, must be the size the grid was built for.
    """
    regions = _check_size(_check_regions(regions), height, width)
    rows = np.searchsorted(regions.row_edges, np.arange(regions.height), side="right") - 1
    cols = np.searchsorted(regions.col_edges, np.arange(regions.width), side="right") - 1
    ids = rows[:, None] * regions.cols + cols[None, :]  # [H, W] crop id of every pixel
    return ids[None] == np.arange(regions.num_regions)[:, None, None]


def _check_size(regions: Regions, height, width) -> Regions:
    for name, given, built in (("height", height, regions.height), ("width", width, regions.width)):
        if given is not None and given != built:
            raise ValueError(f"the grid was built for {regions.height}x{regions.width} images but {name} is "
                             f"{given}; build it with grid(height, width, ...) for this size")
    return regions


def _band_index(edges) -> tuple[np.ndarray, np.ndarray]:
    """(index ``[bands, size_max]`` into the axis, validity ``[bands, size_max]``): each band padded to the largest."""
    edges = np.asarray(edges)
    sizes = np.diff(edges)
    offsets = np.arange(sizes.max())
    idx = np.minimum(edges[:-1, None] + offsets, edges[-1] - 1)
    return idx, offsets < sizes[:, None]


def _gather(x, regions: Regions):
    """``x [..., H, W] -> [..., R, hmax·wmax]``: each crop's pixels, padded (see ``_band_index``)."""
    ri, _ = _band_index(regions.row_edges)
    ci, _ = _band_index(regions.col_edges)
    lead = x.shape[:-2]
    x = jnp.take(x, jnp.asarray(ri.reshape(-1)), axis=-2).reshape(lead + ri.shape + (x.shape[-1],))
    x = jnp.take(x, jnp.asarray(ci.reshape(-1)), axis=-1).reshape(lead + ri.shape + ci.shape)
    nd = len(lead)
    x = jnp.moveaxis(x, nd + 2, nd + 1)  # [..., rows, cols, hmax, wmax]
    return x.reshape(lead + (regions.num_regions, ri.shape[1] * ci.shape[1]))


def region_scores(pixel_scores, regions: Regions, how: str = "mean", *, q=0.9, mask=None):
    """Reduce pixel scores per crop: ``[N, H, W] -> [N, R]`` (any ``[..., H, W] -> [..., R]``).

    Each crop is reduced exactly as :func:`bal.acquisition.dense.reduce_pixels`
    reduces a whole image (same ``how``, ``q``, mask and NaN conventions).

    Args:
      pixel_scores: ``[N, H, W]`` pixel scores.
      regions: from :func:`grid` for this ``H x W``.
      how: ``"mean"``, ``"sum"``, ``"max"``, ``"quantile"`` or ``"top_mean"``.
      q: level of ``"quantile"`` / ``"top_mean"``.
      mask: optional boolean ``[N, H, W]`` (or broadcastable): True = the pixel
        counts (e.g. ``~labeled``). A crop with no counted pixel scores NaN.

    Returns:
      ``[N, R]`` crop scores, crops row-major; ``.reshape(-1)`` indexes flat ids.
    """
    regions = _check_regions(regions)
    check_reduction(how)
    check_q(q, how)
    u = jnp.asarray(pixel_scores)
    if u.ndim < 2:
        raise ValueError(f"pixel_scores must have shape [..., H, W] (e.g. [N, H, W]); got shape {tuple(u.shape)}")
    if tuple(u.shape[-2:]) != (regions.height, regions.width):
        raise ValueError(f"pixel_scores are {u.shape[-2]}x{u.shape[-1]} but the grid was built for "
                         f"{regions.height}x{regions.width}; build it with grid({u.shape[-2]}, {u.shape[-1]}, ...)")
    if not jnp.issubdtype(u.dtype, jnp.floating):
        u = u.astype(jnp.float32)
    mask = _broadcast_mask(mask, u.shape)
    _, rv = _band_index(regions.row_edges)
    _, cv = _band_index(regions.col_edges)
    geometry = (rv[:, None, :, None] & cv[None, :, None, :]).reshape(regions.num_regions, -1)  # [R, hmax·wmax]
    valid = jnp.asarray(geometry) if mask is None else _gather(mask, regions) & geometry
    valid = jnp.broadcast_to(valid, u.shape[:-2] + geometry.shape)
    return _reduce(_gather(u, regions), valid, jnp.asarray(q, jnp.float32), how)


def _num_regions(num_regions) -> int:
    if isinstance(num_regions, Regions):
        return num_regions.num_regions
    return _positive_int(num_regions, "num_regions")


def region_index(image, region, num_regions):
    """Flat id ``image · R + region`` of a crop in ``[N·R]`` (ints or integer arrays).

    ``num_regions`` is ``R`` or the :class:`Regions`.
    """
    r = _num_regions(num_regions)
    if not is_tracer(region):
        region_np = np.asarray(region)
        if region_np.size and (region_np.min() < 0 or region_np.max() >= r):
            raise ValueError(f"region must lie in [0, {r}); got values in [{region_np.min()}, {region_np.max()}]")
    return image * r + region


def split_region_index(flat, num_regions):
    """``(image, region)`` of flat crop ids (inverse of :func:`region_index`)."""
    r = _num_regions(num_regions)
    return flat // r, flat % r


def acquired_pixels(flat_ids, regions: Regions, num_images: int) -> np.ndarray:
    """The pixels covered by crops ``flat_ids``: boolean ``[N, H, W]`` (numpy), e.g. to grow a label mask.

    Raises:
      ValueError: an id outside ``[0, num_images · R)``.
    """
    regions = _check_regions(regions)
    n = _positive_int(num_images, "num_images")
    ids = np.asarray(flat_ids).reshape(-1)
    total = n * regions.num_regions
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= total):
        raise ValueError(f"crop ids must be integers in [0, {total}) (num_images={n} x R={regions.num_regions}); "
                         f"got {ids.min()}..{ids.max()} (dtype {ids.dtype})")
    out = np.zeros((n, regions.height, regions.width), bool)
    image, region = split_region_index(ids, regions.num_regions)
    for i, r in zip(image.tolist(), region.tolist()):
        top, bottom, left, right = regions.box(r)
        out[i, top:bottom, left:right] = True
    return out
