"""A procedural road-marking segmentation set: perspective road scenes, no download.

Each image is a road seen from a car: sky (with a tree line) above a random
horizon, terrain (grass, dirt or pavement) beside a road that recedes to a
vanishing point and may curve, curbs along both road edges, 2 or 3 lanes
separated by solid or dashed lines (white, or a yellow solid centre line) that
are partly worn, and in a minority of images a zebra crosswalk.  Every pixel
has one of six classes::

    0 background   sky, tree line, terrain, and every distractor off the road
    1 road         asphalt, including the gaps of dashed lines and bright patches
    2 lane_solid   solid lane lines
    3 lane_dashed  the painted dashes of dashed lane lines
    4 road_edge    the curb strips bounding the road
    5 crosswalk    zebra stripes (the rare class)

    255 (IGNORE_LABEL)  the ego car's bonnet at the bottom of some images

What makes it not trivial: lines thin to one pixel and dashes alias with
distance; paint is worn (opacity 0.45..1); distractors look like markings but
keep their label — whitish rails/kerbs on the terrain (background), bright
patches and light "tar snake" cracks on the asphalt (road); shadow bands cross
the scene; global brightness / contrast / colour cast vary; Gaussian pixel
noise (sigma up to ``noise``).  Markings are only painted nearer than 15 % of
the way from the horizon to the bottom row, so far pixels are road or
background only.

Class pixel frequencies (64x96, 2,000 train images, seed 0, defaults; measured
with :func:`~bal.data.segmentation.class_frequencies` and
:func:`~bal.data.segmentation.class_presence`)::

    class        pixels   images holding it
    background   64.2 %   100 %
    road         32.2 %   100 %
    lane_solid    0.9 %    55 %
    lane_dashed   0.5 %    65 %
    road_edge     1.5 %   100 %
    crosswalk     0.8 %    24 %

plus 1.75 % of all pixels ignored (the bonnet, in 21 % of the images).
Learnable but not trivial: a small U-Net (16-32-64 channels, class-weighted
cross-entropy, 600 train images, 12 epochs) reaches a test mIoU of 0.71 —
IoU 0.98 background, 0.95 road, 0.78 crosswalk, 0.72 road_edge, 0.54
lane_solid, 0.30 lane_dashed.  Generating 1,000 images of 64x96 takes about
1.5 s of one CPU core.

Determinism: image ``i`` of ``split`` is a function of ``(seed, split, i)`` and
the size only — it is drawn from ``np.random.default_rng([seed, stream(split), i])`` —
so the first ``n`` images of a larger set are the ``n`` images of a smaller
one, and the train, val and test streams never share an image.
"""

from __future__ import annotations

import functools

import numpy as np

from .dataset import IGNORE_LABEL, SegmentationDataset
from .resize import check_size, resize_images

__all__ = [
    "ROAD_MARKING_CLASSES", "BACKGROUND", "ROAD", "LANE_SOLID", "LANE_DASHED", "ROAD_EDGE", "CROSSWALK",
    "road_markings", "load_road_markings",
]

ROAD_MARKING_CLASSES = ("background", "road", "lane_solid", "lane_dashed", "road_edge", "crosswalk")
BACKGROUND, ROAD, LANE_SOLID, LANE_DASHED, ROAD_EDGE, CROSSWALK = range(6)
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}

_T_MARK = 0.15  # markings and curbs exist where depth fraction t (0 horizon .. 1 bottom row) exceeds this
_CHUNK = 64  # images rendered together (bounds memory: a few MB per array)
_TEX = (5, 7)  # coarse grid of the low-frequency textures

# Every image draws one uniform vector; entry i is scaled to [low, high) of row i.  The order is
# part of the data set's definition: appending rows is safe, reordering changes every image.
_RANGES = [
    ("horizon", 0.30, 0.45), ("vanish_x", 0.35, 0.65), ("curve", -0.25, 0.25), ("center", 0.35, 0.65),
    ("half_width", 0.45, 0.75), ("line_width", 0.03, 0.05), ("edge_width", 0.04, 0.08),
    ("dash_period", 0.45, 0.8), ("dash_duty", 0.35, 0.6), ("dash_phase", 0.0, 1.0),
    ("lanes", 0.0, 1.0), ("dashed0", 0.0, 1.0), ("dashed1", 0.0, 1.0), ("yellow", 0.0, 1.0),
    ("wear0", 0.45, 1.0), ("wear1", 0.45, 1.0), ("paint", 0.78, 0.95),
    ("cross", 0.0, 1.0), ("cross_z", 1.1, 2.0), ("cross_depth", 0.3, 0.6), ("cross_stripes", 0.0, 1.0),
    ("cross_wear", 0.6, 1.0),
    ("hood", 0.0, 1.0), ("hood_height", 0.06, 0.13), ("hood_width", 0.5, 0.9), ("hood_x", 0.4, 0.6),
    ("hood_shade", 0.05, 0.35),
    ("sky_mix", 0.0, 1.0), ("terrain", 0.0, 1.0), ("asphalt", 0.22, 0.45), ("curb", 0.55, 0.78),
    ("tex_road", 0.02, 0.06), ("tex_terrain", 0.04, 0.12), ("tree_height", 0.0, 0.12),
    ("brightness", -0.12, 0.12), ("contrast", 0.7, 1.25), ("noise", 0.5, 1.0),
    *[(f"jitter{c}", -0.04, 0.04) for c in range(9)], *[(f"cast{c}", -0.03, 0.03) for c in range(3)],
    *[r for k in range(2) for r in ((f"rail{k}", 0.0, 1.0), (f"rail{k}_u", 1.25, 2.2))],
    *[r for k in range(2) for r in (
        (f"patch{k}", 0.0, 1.0), (f"patch{k}_u", -1.0, 1.0), (f"patch{k}_z", 1.05, 3.0),
        (f"patch{k}_ru", 0.06, 0.25), (f"patch{k}_rz", 0.05, 0.35), (f"patch{k}_gain", 0.15, 0.45))],
    *[r for k in range(3) for r in (
        (f"crack{k}", 0.0, 1.0), (f"crack{k}_x", 0.0, 1.0), (f"crack{k}_y", 0.0, 1.0),
        (f"crack{k}_angle", 0.0, np.pi), (f"crack{k}_len", 0.05, 0.25), (f"crack{k}_tone", 0.0, 1.0))],
    *[r for k in range(2) for r in (
        (f"shadow{k}", 0.0, 1.0), (f"shadow{k}_angle", -1.2, 1.2), (f"shadow{k}_offset", 0.0, 1.0),
        (f"shadow{k}_width", 0.04, 0.15), (f"shadow{k}_gain", 0.4, 0.7))],
]
_NAMES = [r[0] for r in _RANGES]
_LOW = np.array([r[1] for r in _RANGES])
_SPAN = np.array([r[2] - r[1] for r in _RANGES])

_SKY_BLUE, _SKY_GREY = np.array([0.45, 0.62, 0.85]), np.array([0.74, 0.76, 0.8])
_TERRAIN = np.array([[0.28, 0.42, 0.18], [0.5, 0.42, 0.3], [0.52, 0.52, 0.5]])  # grass, dirt, pavement
_TREES = np.array([0.16, 0.24, 0.14])
_YELLOW = np.array([0.92, 0.78, 0.25])


def _check_args(num_images, height, width, seed, split, crosswalk_fraction, hood_fraction, noise):
    for name, v, lo in (("num_images", num_images, 0), ("height", height, 8), ("width", width, 8), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}; got {v!r}")
    if split not in SPLIT_STREAMS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_STREAMS)}")
    for name, v in (("crosswalk_fraction", crosswalk_fraction), ("hood_fraction", hood_fraction)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1]; got {v!r}")
    if not 0.0 <= float(noise) <= 0.5:
        raise ValueError(f"noise (pixel noise std) must lie in [0, 0.5]; got {noise!r}")


def road_markings(
    num_images: int,
    height: int = 64,
    width: int = 96,
    seed: int = 0,
    *,
    split: str = "train",
    crosswalk_fraction: float = 0.25,
    hood_fraction: float = 0.2,
    noise: float = 0.05,
    distractors: bool = True,
) -> SegmentationDataset:
    """Generate ``num_images`` road scenes with their pixel labels (see the module docstring).

    Args:
        num_images: number of images ``N``.
        height, width: image size ``H, W`` (any, >= 8; geometry scales with the size).
        seed: non-negative int; with ``split`` and the image index it fixes every image.
        split: ``"train"``, ``"val"`` or ``"test"``: independent streams of scenes.
        crosswalk_fraction: probability that an image holds a crosswalk (the rare class).
        hood_fraction: probability that the ego car's bonnet (ignored pixels) is visible.
        noise: maximum std of the Gaussian pixel noise (each image draws 0.5..1 times it).
        distractors: add rails, bright patches, cracks and shadows (default True).

    Returns:
        :class:`SegmentationDataset` named ``"road_markings"``: ``images float32 [N, H, W, 3]``,
        ``masks int32 [N, H, W]`` in 0..5 or 255, ``class_names`` :data:`ROAD_MARKING_CLASSES`,
        ``ids`` ``"{split}-{i}"``.
    """
    _check_args(num_images, height, width, seed, split, crosswalk_fraction, hood_fraction, noise)
    n, H, W = int(num_images), int(height), int(width)
    rngs = [np.random.default_rng([int(seed), SPLIT_STREAMS[split], i]) for i in range(n)]
    images = np.empty((n, H, W, 3), np.float32)
    masks = np.empty((n, H, W), np.int32)
    options = {"cross": float(crosswalk_fraction), "hood": float(hood_fraction), "noise": float(noise),
               "distractors": bool(distractors)}
    for lo in range(0, n, _CHUNK):
        chunk = rngs[lo:lo + _CHUNK]
        # per image, in this order: parameters, two texture grids, tree line, pixel noise
        v = np.empty((len(chunk), len(_RANGES)))
        tex = np.empty((len(chunk), 2, *_TEX, 1), np.float32)
        tree = np.empty((len(chunk), 1, 9, 1), np.float32)
        fine = np.empty((len(chunk), H, W, 3), np.float32)
        for j, rng in enumerate(chunk):
            v[j] = rng.random(len(_RANGES))
            tex[j] = rng.standard_normal((2, *_TEX, 1), dtype=np.float32)
            tree[j] = rng.random((1, 9, 1), dtype=np.float32)
            fine[j] = rng.standard_normal((H, W, 3), dtype=np.float32)
        params = dict(zip(_NAMES, (_LOW + _SPAN * v).T))
        images[lo:lo + len(chunk)], masks[lo:lo + len(chunk)] = _render(params, tex, tree, fine, H, W, **options)
    return SegmentationDataset(images, masks, ROAD_MARKING_CLASSES, "road_markings", split, IGNORE_LABEL,
                               tuple(f"{split}-{i}" for i in range(n)))


def load_road_markings(
    split: str = "train",
    num_train: int = 1000,
    num_test: int = 500,
    seed: int = 0,
    size: tuple[int, int] = (64, 96),
    **options,
) -> SegmentationDataset:
    """The ``"train"`` (``num_train`` images) or ``"test"`` (``num_test``) split of :func:`road_markings`.

    The two splits come from independent streams, so they are disjoint and each
    is the same whatever the other's size.  ``size = (H, W)``; ``options`` are
    passed to :func:`road_markings` (e.g. ``crosswalk_fraction``, ``noise``).
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test' (or call road_markings(split='val'))")
    h, w = check_size(size)
    return road_markings(num_train if split == "train" else num_test, h, w, seed, split=split, **options)


def _blend(img, where, color, alpha=1.0):
    """In place: ``img = img + a * (color - img)`` with ``a = alpha * where``, on the pixels where ``where != 0``.

    ``where`` (bool or weights) and ``alpha`` broadcast to ``[n, H, W]``, ``color`` to ``[n, H, W, 3]``;
    only the selected pixels are touched, so thin markings cost little.
    """
    shape = img.shape[:3]
    where = np.broadcast_to(where, shape)
    idx = np.nonzero(where)  # fastest on a bool array
    a = np.float32(1.0) if where.dtype == bool else where[idx].astype(np.float32)
    a = a * (np.float32(alpha) if np.isscalar(alpha) else np.broadcast_to(alpha, shape)[idx])
    c = np.broadcast_to(color, img.shape)[idx]
    img[idx] += np.reshape(a, (-1, 1)) * (c - img[idx]) if np.ndim(a) else a * (c - img[idx])


def _col(p, name):
    return p[name][:, None, None].astype(np.float32)  # [n] -> [n, 1, 1]


def _rgb(a):
    return a[:, None, None, :].astype(np.float32)  # [n, 3] -> [n, 1, 1, 3]


def _render(p, tex, tree, fine, H, W, *, cross, hood, noise, distractors):
    """``images float32 [n, H, W, 3]`` and ``masks int32 [n, H, W]`` for parameter arrays ``p[name] [n]``."""
    n = len(fine)
    f, rgb = functools.partial(_col, p), _rgb
    y = (np.arange(H, dtype=np.float32) + 0.5)[None, :, None]
    x = (np.arange(W, dtype=np.float32) + 0.5)[None, None, :]
    yh = f("horizon") * H
    t = (y - yh) / (H - yh)  # [n, H, 1] depth fraction: <= 0 sky, 1 bottom row
    ground, near = t > 0, t > _T_MARK
    tt = np.maximum(t, 1e-3)
    z = 1.0 / tt  # ground depth, 1 at the bottom row
    xc = W * (f("vanish_x") + (f("center") - f("vanish_x")) * tt + f("curve") * (1 - tt) ** 2)
    s = W * f("half_width") * tt  # pixels per unit of the lateral road coordinate u
    u = (x - xc) / s  # [n, H, W]; the road is |u| <= 1
    au = np.abs(u)

    # ---- labels
    mask = np.zeros((n, H, W), np.int32)
    road = ground & (au <= 1)
    mask[road] = ROAD
    edge_w = np.maximum(f("edge_width"), 1.0 / s)
    edge = near & (au > 1) & (au <= 1 + edge_w)
    mask[edge] = ROAD_EDGE
    has_cross = (p["cross"] < cross)[:, None, None]
    band = has_cross & near & (z >= f("cross_z")) & (z <= f("cross_z") + f("cross_depth"))  # [n, H, 1]
    stripes = 6 + np.floor(f("cross_stripes") * 5)
    crosswalk = band & (au <= 0.9) & (((u + 1) * stripes / 2) % 1.0 < 0.5)
    lanes = np.where(p["lanes"] < 0.4, 3, 2)
    line_hw = np.maximum(f("line_width"), 0.5 / s)
    dash_on = (z / f("dash_period") + f("dash_phase")) % 1.0 < f("dash_duty")  # [n, H, 1]
    lines = []  # (pixels, colour [n,1,1,3], wear [n,1,1])
    for k in range(2):
        active = (k < lanes - 1)[:, None, None]
        uk = (-1 + 2 * (k + 1) / lanes)[:, None, None].astype(np.float32)
        dashed = (p[f"dashed{k}"] < 0.55)[:, None, None]
        on = active & near & ~band & (np.abs(u - uk) <= line_hw)
        solid_px, dashed_px = on & ~dashed, on & dashed & dash_on
        mask[solid_px], mask[dashed_px] = LANE_SOLID, LANE_DASHED
        white = np.repeat(p["paint"][:, None], 3, axis=1)
        yellow = ((p["yellow"] < 0.3) & (lanes == 2))[:, None]
        lines.append((solid_px | dashed_px, rgb(np.where(yellow, _YELLOW, white)), f(f"wear{k}")))
    mask[crosswalk] = CROSSWALK

    # ---- appearance: sky, tree line, terrain, road, curb
    jit = np.stack([p[f"jitter{c}"] for c in range(9)], 1)
    sky_col = (1 - p["sky_mix"][:, None]) * _SKY_BLUE + p["sky_mix"][:, None] * _SKY_GREY + jit[:, 0:3]
    terrain_col = _TERRAIN[np.minimum((p["terrain"] * 3).astype(int), 2)] + jit[:, 3:6]
    road_col = p["asphalt"][:, None] + jit[:, 6:9] / 2
    textures = resize_images(tex.reshape(n * 2, *_TEX, 1), (H, W), "bilinear").reshape(n, 2, H, W)
    sky = rgb(sky_col) * (0.85 + 0.25 * np.clip(y / yh, 0, 1))[..., None]  # [n, H, 1, 3]
    tree_h = f("tree_height") * H * resize_images(tree, (1, W), "bilinear")[:, 0, :, 0][:, None, :]
    img = np.where(((~ground) & (y >= yh - tree_h))[..., None], rgb(_TREES + jit[:, 3:6] / 2), sky)
    haze = (np.clip(1 - tt, 0, 1) ** 4 * 0.5)[..., None]  # far asphalt fades towards the sky colour
    surface = np.where(
        road[..., None],
        (rgb(road_col) + (f("tex_road") * textures[:, 0])[..., None]) * (1 - haze) + rgb(sky_col) * haze,
        rgb(terrain_col) + (f("tex_terrain") * textures[:, 1])[..., None],
    )
    img = np.where(ground[..., None], surface, img).astype(np.float32)
    _blend(img, edge, f("curb")[..., None] + rgb(jit[:, 0:3] / 2))
    for px, color, wear in lines:
        _blend(img, px, color, wear)
    _blend(img, crosswalk, rgb(np.repeat(p["paint"][:, None], 3, 1)), f("cross_wear"))

    if distractors:
        _distractors(img, p, f, x, y, u, z, ground, near, road, edge_w, line_hw, yh, H, W)

    # ---- ego car bonnet (ignored), lighting, noise
    has_hood = (p["hood"] < hood)[:, None, None]
    hx = (x - f("hood_x") * W) / (f("hood_width") * W)
    top = H * (1 - f("hood_height") * np.sqrt(np.clip(1 - hx**2, 0, None)))
    bonnet = has_hood & (np.abs(hx) < 1) & (y >= top)
    shade = f("hood_shade")[..., None] * (1 + 0.6 * np.clip(1 - np.abs(hx), 0, 1))[..., None]
    _blend(img, bonnet, shade)
    mask[bonnet] = IGNORE_LABEL
    cast = np.stack([p[f"cast{c}"] for c in range(3)], 1)
    contrast = f("contrast")[..., None]
    img *= contrast  # (img - 0.5) * contrast + 0.5 + brightness + cast, in place
    img += 0.5 * (1 - contrast) + f("brightness")[..., None] + rgb(cast)
    fine *= (noise * f("noise"))[..., None]
    img += fine
    return np.clip(img, 0.0, 1.0, out=img), mask


def _distractors(img, p, f, x, y, u, z, ground, near, road, edge_w, line_hw, yh, H, W):
    """In place: rails beside the road, bright patches and cracks on it, shadow bands across it."""
    for k in range(2):  # whitish rails / kerbs on the terrain, converging like lane lines (background)
        side = 1.0 if k == 0 else -1.0
        on = (p[f"rail{k}"] < 0.5)[:, None, None] & near & (np.abs(u - side * f(f"rail{k}_u")) <= line_hw)
        _blend(img, on & (np.abs(u) > 1 + edge_w), f("paint")[..., None] * 0.9, 0.8)
    for k in range(2):  # bright patches (glare, puddles, patched asphalt) on the road (road)
        r2 = ((u - f(f"patch{k}_u")) / f(f"patch{k}_ru")) ** 2 + ((z - f(f"patch{k}_z")) / f(f"patch{k}_rz")) ** 2
        w = (p[f"patch{k}"] < 0.5)[:, None, None] * road * np.clip(1 - r2, 0, 1)
        _blend(img, w, np.float32(0.9), f(f"patch{k}_gain"))
    for k in range(3):  # light tar snakes / dark cracks: thin segments on the road (road)
        x0, y0 = f(f"crack{k}_x") * W, yh + f(f"crack{k}_y") * (H - yh)
        c, s = np.cos(f(f"crack{k}_angle")), np.sin(f(f"crack{k}_angle"))
        along = np.clip((x - x0) * c + (y - y0) * s, 0, f(f"crack{k}_len") * W)
        d2 = (x - x0 - along * c) ** 2 + (y - y0 - along * s) ** 2
        on = (p[f"crack{k}"] < 0.5)[:, None, None] & road & (d2 <= 0.36)
        tone = np.where(f(f"crack{k}_tone") < 0.6, np.float32(0.7), np.float32(0.08))[..., None]
        _blend(img, on, tone, 0.8)
    for k in range(2):  # shadow bands across the ground (poles, trees, buildings)
        y0 = yh / H + f(f"shadow{k}_offset") * (1 - yh / H)  # the band crosses the centre below the horizon
        d = (y / H - y0) - np.tan(f(f"shadow{k}_angle")) * (x / W - 0.5)
        on = (p[f"shadow{k}"] < 0.4)[:, None, None] & ground & (np.abs(d) <= f(f"shadow{k}_width") / 2)
        _blend(img, on, np.float32(0.0), 1 - f(f"shadow{k}_gain"))  # = img * gain on the band
