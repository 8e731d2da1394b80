"""A procedural road-scene detection set: dash-cam views with boxed objects, no download.

Each image is a road seen from a car: sky with a skyline (buildings or trees)
above a random horizon; a road of 2 or 3 lanes that recedes to a vanishing
point and may curve, with solid edge lines and dashed lane lines; sidewalks
with a curb; terrain beyond.  The geometry is a pinhole camera over flat
ground: at image row ``y`` below the horizon ``y_h`` one metre spans
``m = (y - y_h) / camera_height`` pixels, so an object standing at depth
fraction ``t = (y_ground - y_h) / (H - y_h)`` is ``t (H - y_h) / camera_height``
pixels per metre tall and wide (far = small, and everything one camera-height
tall reaches the horizon).  Objects, five classes::

    0 car           wide (2.4-4.2 m x 1.35-1.7 m): body + narrower cabin with windows,
                    two wheels, lights, number plate; in a lane
    1 pedestrian    tall and thin (0.45-0.65 m x 1.55-1.9 m): head, torso, two legs;
                    on a sidewalk, or crossing the road (20 %)
    2 cyclist       tall with wheels (1.1-1.6 m x 1.65-1.95 m): two wheel rings, frame,
                    rider leaning forward; near the road edge
    3 traffic_sign  a small panel (0.6-0.9 m) on a pole, 1.6-2.3 m up: red-ringed or blue
                    disc, blue square, yellow diamond; beside the road.  The box is the
                    panel only (the pole is scenery)
    4 bus           the rare class (labelled in about 5 % of images by default): large
                    (6-9 m x 2.9-3.3 m), a row of 4-7 windows, lower stripe, wheels

Each image has 12 object slots (4 cars, 3 pedestrians, 2 cyclists, 2 signs,
1 bus), each present with a fixed probability, and 8 distractor slots that
are never labelled: bare poles, street lamps, traffic cones, crates (car
colours, no wheels), bushes and, at night, far-away headlight pairs.
Everything is drawn far to near (painter's order), so nearer objects occlude
farther ones.

**Boxes are the visible extent**: the tight box of the object's pixels that
remain visible after occlusion and clipping to the image, in pixel-edge
coordinates (a box over pixel columns ``a..b`` has ``x0 = a, x1 = b + 1``).
An object is labelled only when at least ``min_visible`` (default 0.5) of
its pixels (those beyond the image border counting as hidden) stay visible and its visible
box is at least ``min_size`` pixels wide and tall; a less visible object is
still drawn, unlabelled (as KITTI and COCO leave heavily hidden objects out).

Day and night: a ``night_fraction`` of the images (default 0.3) are night
scenes, recorded in ``attributes["night"]`` (bool [N]): the scene is lit by a
dim ambient light and the ego car's headlight cone (low contrast, bluish),
and emits light of its own: glowing car head / tail lights, lit bus windows,
retro-reflecting sign panels, street lamps and far headlight pairs; the pixel
noise is doubled.  Day images vary in brightness, contrast and colour cast.
Gaussian pixel noise (std up to ``noise``) is added everywhere.

Statistics (96x128, 2,000 train images, seed 0, defaults)::

    class          boxes per 100 images   images holding it   median box (w x h px)
    car            142                    92 %                35 x 17
    pedestrian      64                    50 %                 5 x 17
    cyclist         40                    35 %                15 x 21
    traffic_sign    56                    49 %                 6 x 6
    bus              4.8                   4.8 %              47 x 20

30 % of the images are night scenes (mean pixel 0.15 against 0.48 by day);
99 % hold at least one box, 3.1 on average.  The classes are told apart
easily from their pixels: an MLP (one hidden layer of 128) on the box crops
resized to 16x16 classifies 98.7 % of the test boxes right (98.1 % at night);
finding the small, far and partly hidden ones is the hard part.  Generating
1,000 images of 96x128 takes about 2.5 s of one CPU core.

Determinism: image ``i`` of ``split`` is a function of ``(seed, split, i)``,
the size and the options only — drawn from
``np.random.default_rng([seed, stream(split), i])`` — so the first ``n`` images
of a larger set are the ``n`` images of a smaller one, and the train, val and
test streams never share an image.
"""

from __future__ import annotations

import math

import numpy as np

from ..segmentation.resize import resize_images
from .dataset import PAD_CLASS, DetectionDataset

__all__ = [
    "ROAD_SCENE_CLASSES", "CAR", "PEDESTRIAN", "CYCLIST", "TRAFFIC_SIGN", "BUS", "MAX_BOXES", "load_road_scenes",
]

ROAD_SCENE_CLASSES = ("car", "pedestrian", "cyclist", "traffic_sign", "bus")
CAR, PEDESTRIAN, CYCLIST, TRAFFIC_SIGN, BUS = range(5)
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}

# One object slot per entry: its class and presence probability (the bus slot uses rare_fraction).
_SLOTS = (CAR,) * 4 + (PEDESTRIAN,) * 3 + (CYCLIST,) * 2 + (TRAFFIC_SIGN,) * 2 + (BUS,)
_PRESENT = {CAR: 0.5, PEDESTRIAN: 0.45, CYCLIST: 0.35, TRAFFIC_SIGN: 0.5}
MAX_BOXES = len(_SLOTS)
"""``K`` of every road-scene dataset: the number of object slots (12)."""

# class -> (depth t range, width range m, height range m); the far end is skewed to (depth draw ** 1.3)
_SIZES = {
    CAR: ((0.12, 0.55), (2.4, 4.2), (1.35, 1.7)),
    PEDESTRIAN: ((0.15, 0.6), (0.45, 0.65), (1.55, 1.9)),
    CYCLIST: ((0.15, 0.55), (1.1, 1.6), (1.65, 1.95)),
    TRAFFIC_SIGN: ((0.15, 0.5), (0.6, 0.9), (1.6, 2.3)),  # panel size, pole height
    BUS: ((0.12, 0.3), (6.0, 9.0), (2.9, 3.3)),
}
_DISTRACTORS = ("pole", "lamp", "lamp", "cone", "cone", "crate", "bush", "headlights")
_DISTRACTOR_P = {"pole": 0.35, "lamp": 0.35, "cone": 0.2, "crate": 0.3, "bush": 0.4, "headlights": 0.6}

_CHUNK = 64  # images whose background is rendered together (bounds memory)
_TEX = (5, 7)  # coarse grid of the low-frequency textures
_T_MARK = 0.04  # lane markings are painted where the depth fraction exceeds this (farther they alias)

# Every image draws one uniform vector; entry i is scaled to [low, high) of row i.  The order is part of
# the data set's definition: appending rows is safe, reordering changes every image.
_RANGES = [
    ("horizon", 0.36, 0.48), ("vanish_x", 0.38, 0.62), ("curve", -0.2, 0.2), ("cam_h", 1.3, 1.7),
    ("offset", -2.2, 0.6), ("lanes", 0.0, 1.0), ("lane_w", 2.8, 3.6), ("sidewalk_w", 1.5, 3.0),
    ("dash_period", 0.25, 0.45), ("dash_duty", 0.35, 0.6), ("dash_phase", 0.0, 1.0), ("yellow", 0.0, 1.0),
    ("night", 0.0, 1.0), ("sky_mix", 0.0, 1.0), ("terrain", 0.0, 1.0), ("asphalt", 0.25, 0.42),
    ("sidewalk", 0.5, 0.68), ("tex_road", 0.02, 0.05), ("tex_terrain", 0.04, 0.1),
    ("skyline", 0.0, 1.0), ("skyline_h", 0.04, 0.2), ("building", 0.35, 0.6),
    ("brightness", -0.1, 0.1), ("contrast", 0.8, 1.2), ("noise", 0.5, 1.0),
    ("ambient", 0.2, 0.34), ("beam", 0.35, 0.6), ("beam_spread", 0.25, 0.45),
    *[(f"jitter{c}", -0.04, 0.04) for c in range(9)], *[(f"cast{c}", -0.03, 0.03) for c in range(3)],
]
_NAMES = [r[0] for r in _RANGES]
_LOW = np.array([r[1] for r in _RANGES])
_SPAN = np.array([r[2] - r[1] for r in _RANGES])
# per object / distractor slot: uniforms in [0, 1), interpreted by the class
_OBJ = ("present", "side", "lat", "depth", "w", "h", "col", "col2", "jr", "jg", "jb", "variant", "extra")
_O = {n: j for j, n in enumerate(_OBJ)}

_SKY_BLUE, _SKY_GREY = np.array([0.47, 0.64, 0.86]), np.array([0.72, 0.74, 0.78])
_TERRAIN = np.array([[0.3, 0.44, 0.2], [0.5, 0.43, 0.31], [0.36, 0.4, 0.26]])
_TREES = np.array([0.15, 0.25, 0.14])
_YELLOW = np.array([0.9, 0.76, 0.22])
_NIGHT_CAST = np.array([0.8, 0.9, 1.15])  # moonlight / sodium-free night: bluish
_f = np.float32
_CAR_COLOURS = np.array([[0.72, 0.1, 0.1], [0.15, 0.25, 0.62], [0.88, 0.88, 0.9], [0.65, 0.67, 0.7],
                         [0.1, 0.1, 0.12], [0.15, 0.36, 0.2], [0.42, 0.1, 0.16]], _f)
_BUS_COLOURS = np.array([[0.92, 0.76, 0.1], [0.92, 0.5, 0.1], [0.78, 0.14, 0.1], [0.1, 0.5, 0.46]], _f)
_SHIRTS = np.array([[0.85, 0.2, 0.2], [0.2, 0.5, 0.85], [0.95, 0.85, 0.2], [0.3, 0.7, 0.3], [0.9, 0.9, 0.9],
                    [0.6, 0.3, 0.7], [0.95, 0.55, 0.15]], _f)
_TROUSERS = np.array([[0.12, 0.14, 0.3], [0.1, 0.1, 0.1], [0.35, 0.25, 0.15], [0.4, 0.4, 0.42]], _f)
_SKIN = np.array([[0.95, 0.78, 0.65], [0.8, 0.6, 0.45], [0.55, 0.38, 0.26], [0.35, 0.24, 0.17]], _f)
_CRATES = np.concatenate([_CAR_COLOURS, np.array([[0.55, 0.4, 0.25], [0.2, 0.3, 0.5]], _f)])
_GLASS, _TYRE, _WHITE, _RED_LIGHT, _HEAD_LIGHT = (
    np.array(c, _f) for c in ([0.12, 0.15, 0.2], [0.05, 0.05, 0.06], [0.92, 0.92, 0.9],
                              [0.9, 0.12, 0.1], [1.0, 0.97, 0.85]))
_SIGNS = {  # variant -> (outer colour, inner colour)
    0: ([0.8, 0.1, 0.1], [0.93, 0.93, 0.93]),  # red ring, white disc
    1: ([0.1, 0.3, 0.75], [0.95, 0.95, 0.95]),  # blue disc, white arrow bar
    2: ([0.1, 0.3, 0.75], [0.95, 0.95, 0.95]),  # blue square, white inner square outline
    3: ([0.1, 0.1, 0.1], [0.95, 0.8, 0.1]),  # yellow diamond, black border
}


def _check_args(num_images, height, width, seed, split, night_fraction, rare_fraction, noise, min_visible,
                min_size):
    for name, v, lo in (("num_images", num_images, 0), ("height", height, 16), ("width", width, 16),
                        ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}; got {v!r}")
    if split not in SPLIT_STREAMS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_STREAMS)}")
    for name, v in (("night_fraction", night_fraction), ("rare_fraction", rare_fraction),
                    ("min_visible", min_visible)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1]; got {v!r}")
    if not 0.0 <= float(noise) <= 0.5:
        raise ValueError(f"noise (pixel noise std) must lie in [0, 0.5]; got {noise!r}")
    if not 1 <= float(min_size) <= min(height, width):
        raise ValueError(f"min_size (pixels) must lie in [1, {min(height, width)}]; got {min_size!r}")


def load_road_scenes(
    split: str = "train",
    num_images: int = 1000,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
    night_fraction: float = 0.3,
    *,
    rare_fraction: float = 0.06,
    noise: float = 0.03,
    distractors: bool = True,
    min_visible: float = 0.5,
    min_size: float = 3,
) -> DetectionDataset:
    """Generate ``num_images`` road scenes with their object boxes (see the module docstring).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``: independent streams of scenes.
        num_images: number of images ``N``.
        height, width: image size ``H, W`` (any, >= 16; the geometry scales with the size,
            objects too small for ``min_size`` are not labelled).
        seed: non-negative int; with ``split`` and the image index it fixes every image.
        night_fraction: probability that an image is a night scene.
        rare_fraction: probability that a bus (the rare class) is placed in an image; about 80 %
            of those stay visible enough to be labelled, so the default 0.06 labels a bus in
            about 5 % of the images.
        noise: maximum std of the Gaussian pixel noise (each image draws 0.5..1 times it,
            doubled at night).
        distractors: draw the unlabelled distractors (default True).
        min_visible: fraction of an object's pixels that must stay visible for it to be labelled.
        min_size: smallest labelled visible box side, in pixels.

    Returns:
        :class:`DetectionDataset` named ``"road_scenes"``: ``images float32 [N, H, W, 3]``,
        ``boxes float32 [N, 12, 4]`` (visible extents, pixel edges), ``classes int32 [N, 12]``,
        ``valid bool [N, 12]``, ``class_names`` :data:`ROAD_SCENE_CLASSES`, ``file_names``
        ``"{split}-{i}"`` and ``attributes["night"]`` ``bool [N]``.  Box slots keep the slot order
        (cars, pedestrians, cyclists, signs, bus); dropped objects leave padding.
    """
    _check_args(num_images, height, width, seed, split, night_fraction, rare_fraction, noise, min_visible, min_size)
    n, H, W = int(num_images), int(height), int(width)
    images = np.empty((n, H, W, 3), np.float32)
    boxes = np.zeros((n, MAX_BOXES, 4), np.float32)
    classes = np.full((n, MAX_BOXES), PAD_CLASS, np.int32)
    valid = np.zeros((n, MAX_BOXES), bool)
    night = np.zeros(n, bool)
    opts = {"night_fraction": float(night_fraction), "rare": float(rare_fraction), "noise": float(noise),
            "distractors": bool(distractors), "min_visible": float(min_visible), "min_size": float(min_size)}
    stream = SPLIT_STREAMS[split]
    for lo in range(0, n, _CHUNK):
        m = min(_CHUNK, n - lo)
        # per image, in this order: scene vector, object slots, distractor slots, textures, skyline, noise
        v = np.empty((m, len(_RANGES)))
        obj = np.empty((m, MAX_BOXES, len(_OBJ)))
        dis = np.empty((m, len(_DISTRACTORS), len(_OBJ)))
        tex = np.empty((m, 2, *_TEX, 1), np.float32)
        sky = np.empty((m, 1, 12, 1), np.float32)
        fine = np.empty((m, 3, H, W), np.float32)
        for j in range(m):
            rng = np.random.default_rng([int(seed), stream, lo + j])
            v[j] = rng.random(len(_RANGES))
            obj[j] = rng.random((MAX_BOXES, len(_OBJ)))
            dis[j] = rng.random((len(_DISTRACTORS), len(_OBJ)))
            tex[j] = rng.standard_normal((2, *_TEX, 1), dtype=np.float32)
            sky[j] = rng.random((1, 12, 1), dtype=np.float32)
            fine[j] = rng.standard_normal((3, H, W), dtype=np.float32)
        params = dict(zip(_NAMES, (_LOW + _SPAN * v).T))
        sl = slice(lo, lo + m)
        images[sl], boxes[sl], classes[sl], valid[sl], night[sl] = _render(params, obj, dis, tex, sky, fine, H, W,
                                                                           **opts)
    return DetectionDataset(images, boxes, classes, valid, ROAD_SCENE_CLASSES, "road_scenes", split,
                            tuple(f"{split}-{i}" for i in range(n)), {"night": night})


# ---------------------------------------------------------------------------------------- background
def _col(p, name):
    return p[name][:, None, None, None].astype(np.float32)  # [n] -> [n, 1, 1, 1]


def _rgb(a):
    return np.asarray(a)[:, :, None, None].astype(np.float32)  # [n, 3] -> [n, 3, 1, 1]


class _Scene:
    """Per-chunk geometry: horizon ``yh [n]``, pixels per metre and road centre as functions of depth."""

    def __init__(self, p, H, W):
        self.p, self.H, self.W = p, H, W
        self.yh = p["horizon"] * H
        self.lanes = np.where(p["lanes"] < 0.35, 3, 2)
        self.half = self.lanes * p["lane_w"] / 2  # road half width, m

    def ppm(self, i, t):
        """Pixels per metre of image ``i`` at depth fraction ``t``."""
        return t * (self.H - self.yh[i]) / self.p["cam_h"][i]

    def x(self, i, t, X):
        """Pixel column of lateral position ``X`` (m from the road centre) at depth ``t`` in image ``i``."""
        p = self.p
        return (self.W * (p["vanish_x"][i] + p["curve"][i] * (1 - t) ** 2)
                + (p["offset"][i] + X) * self.ppm(i, t))

    def y(self, i, t):
        return self.yh[i] + t * (self.H - self.yh[i])


def _background(p, sc: _Scene, tex, sky, H, W):
    """``float32 [n, 3, H, W]`` (channels first: every operation runs along contiguous rows) sky, skyline,
    terrain, sidewalks, curbs, road and lane markings."""
    n = len(tex)
    f, rgb = (lambda name: _col(p, name)), _rgb
    y = (np.arange(H, dtype=np.float32) + 0.5)[None, None, :, None]
    x = (np.arange(W, dtype=np.float32) + 0.5)[None, None, None, :]
    yh = sc.yh[:, None, None, None].astype(np.float32)
    t = (y - yh) / (H - yh)  # [n, 1, H, 1] depth fraction
    ground = t > 0
    tt = np.maximum(t, 1e-3)
    m = tt * (H - yh) / f("cam_h")  # pixels per metre
    xc = W * (f("vanish_x") + f("curve") * (1 - tt) ** 2) + f("offset") * m
    X = (x - xc) / m  # [n, 1, H, W] lateral metres from the road centre
    aX = np.abs(X)
    half = sc.half[:, None, None, None].astype(np.float32)
    road = ground & (aX <= half)
    walk = ground & (aX > half) & (aX <= half + f("sidewalk_w"))
    curb = walk & (aX <= half + 0.2)

    jit = np.stack([p[f"jitter{c}"] for c in range(9)], 1)
    sky_col = (1 - p["sky_mix"][:, None]) * _SKY_BLUE + p["sky_mix"][:, None] * _SKY_GREY + jit[:, 0:3]
    terrain_col = _TERRAIN[np.minimum((p["terrain"] * 3).astype(int), 2)] + jit[:, 3:6]
    textures = resize_images(tex.reshape(n * 2, *_TEX, 1), (H, W), "bilinear").reshape(n, 2, H, W)
    tex_road, tex_land = textures[:, 0:1], textures[:, 1:2]  # [n, 1, H, W]
    # colour = a base colour per region (constant, or per row: sky gradient, haze) + one grey texture plane;
    # building the base from [n, 3, H, 1] / [n, 3, 1, 1] operands keeps the full-size passes few
    sky_rows = rgb(sky_col) * (0.85 + 0.2 * np.clip(y / yh, 0, 1))  # [n, 3, H, 1]
    # skyline: buildings (grey blocks, flat tops) or trees (smooth), above the horizon only
    buildings = p["skyline"] < 0.5
    level = resize_images(sky, (1, W), "bilinear")[:, 0, :, 0]  # [n, W] in [0, 1]
    blocks = sky[:, 0, np.minimum((np.arange(W) * 12) // W, 11), 0]  # piecewise-constant skyline
    top = sc.yh[:, None] - p["skyline_h"][:, None] * H * np.where(buildings[:, None], 0.3 + 0.7 * blocks, level)
    skyline = (~ground) & (y >= top[:, None, None, :].astype(np.float32))
    tone = np.where(buildings[:, None], p["building"][:, None] * np.array([1.0, 0.97, 0.92]), _TREES) + jit[:, 6:9]
    haze = np.clip(1 - tt, 0, 1) ** 4 * 0.5  # [n, 1, H, 1]: far asphalt fades towards the sky colour
    asphalt_rows = rgb(p["asphalt"][:, None] + jit[:, 6:9] / 2) * (1 - haze) + rgb(sky_col) * haze
    texture = np.where(road, f("tex_road") * (1 - haze) * tex_road,
                       np.where(walk, np.where(curb, np.float32(0.15), np.float32(0)),
                                np.where(ground | skyline, f("tex_terrain") * tex_land, np.float32(0))))
    base = np.where(road, asphalt_rows, np.where(walk, rgb(p["sidewalk"][:, None] + jit[:, 0:3] / 2), np.where(
        ground, rgb(terrain_col), np.where(skyline, rgb(tone), sky_rows))))
    img = np.add(base, texture, dtype=np.float32)

    # markings: solid edge lines, dashed lane lines (the centre one of a 2-lane road yellow and solid at times)
    near = t > _T_MARK
    line_hw = np.maximum(0.08, 0.5 / m)  # m; at least one pixel wide
    np.copyto(img, np.float32(0.85), where=near & (np.abs(aX - (half - 0.25)) <= line_hw))
    dash_on = ((1 / tt) / f("dash_period") + f("dash_phase")) % 1.0 < f("dash_duty")  # [n, 1, H, 1]
    yellow = ((p["yellow"] < 0.3) & (sc.lanes == 2))[:, None, None, None]
    lanes, lane_w = sc.lanes[:, None, None, None], f("lane_w")
    yellow_rgb = _YELLOW.astype(np.float32)[None, :, None, None]
    for k in (1, 2):
        line = (k < lanes) & near & (np.abs(X - (-half + k * lane_w)) <= line_hw)
        np.copyto(img, np.float32(0.88), where=line & ~yellow & dash_on)
        np.copyto(img, yellow_rgb, where=line & yellow)
    return img


# ---------------------------------------------------------------------------------------- object shapes
def _disc(px, py, cx, cy, r):
    return (px - cx) ** 2 + (py - cy) ** 2 <= r * r


def _segment(px, py, a, b, half):
    """Pixels within ``half`` of the segment ``a -> b`` (pixel coordinates)."""
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    s = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return (px - ax - s * dx) ** 2 + (py - ay - s * dy) ** 2 <= half * half


def _pick(palette, u, jitter):
    return np.clip(palette[min(int(u * len(palette)), len(palette) - 1)] + jitter, 0, 1).astype(np.float32)


def _car(px, py, bw, bh, o, jit, night):
    """Parts ``[(mask, colour, emission or None)]`` of a car filling a ``bw x bh`` box; glows ``[(x, y, r, rgb)]``."""
    u, v = px / bw, py / bh
    left = 0.12 + 0.14 * np.clip(1 - v / 0.4, 0, 1)
    cabin = (v < 0.4) & (u >= left) & (u <= 1 - left)
    body = (v >= 0.38) & (v < 0.86) & ~(((u < 0.03) | (u > 0.97)) & (v < 0.44))  # rounded shoulders
    r = 0.16 * bh
    wheels = _disc(px, py, 0.2 * bw, 0.84 * bh, r) | _disc(px, py, 0.8 * bw, 0.84 * bh, r)
    windows = (v >= 0.07) & (v < 0.36) & (u >= left + 0.05) & (u <= 0.95 - left) & (np.abs(u - 0.5) > 0.025)
    lights = (v >= 0.44) & (v < 0.55) & ((u < 0.1) | (u > 0.9))
    plate = (v >= 0.62) & (v < 0.72) & (np.abs(u - 0.5) < 0.09)
    light = _HEAD_LIGHT if o[_O["variant"]] < 0.3 else _RED_LIGHT  # oncoming / driving away
    body_col = _pick(_CAR_COLOURS, o[_O["col"]], jit)
    parts = [(cabin | body, body_col, None), (windows, _GLASS, None), (plate, _WHITE, None),
             (lights, light, light * 0.9 if night else None), (wheels, _TYRE, None)]
    glows = [(0.05 * bw, 0.495 * bh, 0.18 * bh, light), (0.95 * bw, 0.495 * bh, 0.18 * bh, light)] if night else []
    return parts, glows


def _pedestrian(px, py, bw, bh, o, jit, night):
    u, v = px / bw, py / bh
    head = _disc(px, py, 0.5 * bw, 0.085 * bh, max(0.075 * bh, 0.5))
    torso = (v >= 0.15) & (v < 0.57) & (np.abs(u - 0.5) <= 0.5 - 0.16 * (v - 0.15) / 0.42)
    stride = 0.12 * o[_O["variant"]] * np.clip((v - 0.57) / 0.43, 0, 1)
    leg_hw = max(0.14, 0.5 / bw)
    legs = (v >= 0.55) & ((np.abs(u - (0.31 - stride)) <= leg_hw) | (np.abs(u - (0.69 + stride)) <= leg_hw))
    shoes = legs & (v >= 0.95)
    return [(head, _pick(_SKIN, o[_O["extra"]], 0), None), (torso, _pick(_SHIRTS, o[_O["col"]], jit), None),
            (legs, _pick(_TROUSERS, o[_O["col2"]], jit / 2), None), (shoes, _TYRE, None)], []


def _cyclist(px, py, bw, bh, o, jit, night):
    if o[_O["extra"]] < 0.5:  # facing left: mirror
        px = bw - px
    r = min(0.2 * bh, 0.25 * bw)
    th = max(0.7, 0.3 * r)
    rear, front = (r, bh - r), (bw - r, bh - r)
    d_rear = np.sqrt((px - rear[0]) ** 2 + (py - rear[1]) ** 2)
    d_front = np.sqrt((px - front[0]) ** 2 + (py - front[1]) ** 2)
    wheels = ((d_rear <= r) & (d_rear >= r - th)) | ((d_front <= r) & (d_front >= r - th))
    fw = max(0.5, 0.035 * bh)
    seat, handle, pedal = (0.42 * bw, 0.58 * bh), (0.76 * bw, 0.5 * bh), (0.5 * bw, bh - r)
    frame = (_segment(px, py, rear, seat, fw) | _segment(px, py, seat, front, fw)
             | _segment(px, py, pedal, handle, fw) | _segment(px, py, handle, front, fw))
    hip, shoulder = (0.42 * bw, 0.52 * bh), (0.6 * bw, 0.2 * bh)
    torso = _segment(px, py, hip, shoulder, max(0.6, 0.075 * bh))
    arm = _segment(px, py, shoulder, handle, max(0.5, 0.03 * bh))
    leg = _segment(px, py, hip, pedal, max(0.5, 0.04 * bh))
    head = _disc(px, py, 0.64 * bw, 0.085 * bh, max(0.075 * bh, 0.5))
    shirt = _pick(_SHIRTS, o[_O["col"]], jit)
    parts = [(wheels, _TYRE, None), (frame, _pick(_BUS_COLOURS[::-1], o[_O["col2"]], jit), None),
             (leg, _pick(_TROUSERS, o[_O["col2"]], 0), None), (torso | arm, shirt, None),
             (head, _pick(_SKIN, o[_O["jr"]], 0), None)]
    glows = []
    if night:  # a small front lamp on the handlebar
        hx = handle[0] if o[_O["extra"]] >= 0.5 else bw - handle[0]
        glows = [(hx, handle[1], max(0.06 * bh, 0.7), _HEAD_LIGHT)]
    return parts, glows


def _sign(px, py, bw, bh, o, jit, night):
    variant = min(int(o[_O["variant"]] * 4), 3)
    outer, inner = (np.array(c, _f) for c in _SIGNS[variant])
    cx, cy, R = bw / 2, bh / 2, min(bw, bh) / 2
    dx, dy = px - cx, py - cy
    if variant in (0, 1):
        panel = dx * dx + dy * dy <= R * R
        mark = (dx * dx + dy * dy <= (0.68 * R) ** 2) if variant == 0 else (
            (np.abs(dx) <= 0.18 * R) & (np.abs(dy) <= 0.6 * R))
    elif variant == 2:
        panel = (np.abs(dx) <= R) & (np.abs(dy) <= R)
        ring = np.maximum(np.abs(dx), np.abs(dy))
        mark = (ring <= 0.75 * R) & (ring >= 0.5 * R)
    else:
        panel = np.abs(dx) + np.abs(dy) <= R
        mark = np.abs(dx) + np.abs(dy) <= 0.75 * R  # black edge, yellow face
    # retro-reflective: a sign returns the headlights, so it stays bright at night
    emit = 0.35 if night else None
    return [(panel, outer, None if emit is None else outer * emit),
            (panel & mark, inner, None if emit is None else inner * emit)], []


def _bus(px, py, bw, bh, o, jit, night):
    u, v = px / bw, py / bh
    body = (v >= 0.02) & (v < 0.9) & ~(((u < 0.02) | (u > 0.98)) & (v < 0.08))
    nwin = 4 + min(int(o[_O["extra"]] * 4), 3)
    cell = ((u - 0.04) / 0.92 * nwin) % 1.0
    windows = (v >= 0.13) & (v < 0.46) & (u >= 0.04) & (u <= 0.96) & (cell >= 0.12) & (cell <= 0.9)
    stripe = (v >= 0.58) & (v < 0.65)
    r = 0.12 * bh
    wheels = _disc(px, py, 0.17 * bw, 0.88 * bh, r) | _disc(px, py, 0.8 * bw, 0.88 * bh, r)
    lights = (v >= 0.7) & (v < 0.8) & ((u < 0.04) | (u > 0.96))
    lit = np.array([0.95, 0.85, 0.55], _f)
    light = _HEAD_LIGHT if o[_O["variant"]] < 0.3 else _RED_LIGHT
    parts = [(body, _pick(_BUS_COLOURS, o[_O["col"]], jit), None),
             (windows, lit * 0.5 if night else _GLASS, lit * 0.5 if night else None),
             (stripe, _WHITE if o[_O["col2"]] < 0.5 else _TYRE, None),
             (lights, light, light * 0.9 if night else None), (wheels, _TYRE, None)]
    glows = [(0.02 * bw, 0.75 * bh, 0.12 * bh, light), (0.98 * bw, 0.75 * bh, 0.12 * bh, light)] if night else []
    return parts, glows


_SHAPES = {CAR: _car, PEDESTRIAN: _pedestrian, CYCLIST: _cyclist, TRAFFIC_SIGN: _sign, BUS: _bus}


# ---------------------------------------------------------------------------------------- placement
def _place_object(sc: _Scene, i, cls, o):
    """``(t, (x0, y0, x1, y1) full extent, pole or None)`` of an object slot in image ``i``."""
    (t_lo, t_hi), (w_lo, w_hi), (h_lo, h_hi) = _SIZES[cls]
    t = t_lo + (t_hi - t_lo) * o[_O["depth"]] ** 1.3  # skewed towards far: more small objects
    w_m = w_lo + (w_hi - w_lo) * o[_O["w"]]
    h_m = h_lo + (h_hi - h_lo) * o[_O["h"]]
    half, lanes, lane_w = sc.half[i], sc.lanes[i], sc.p["lane_w"][i]
    side = 1.0 if o[_O["side"]] < 0.5 else -1.0
    lat = o[_O["lat"]]
    sidewalk = sc.p["sidewalk_w"][i]
    if cls in (CAR, BUS):
        k = min(int(lat * lanes), lanes - 1)
        X = -half + lane_w * (k + 0.5) + (o[_O["extra"]] - 0.5) * 0.25 * lane_w
    elif cls == PEDESTRIAN:
        crossing = o[_O["jb"]] < 0.2
        X = (-half + 2 * half * lat) if crossing else side * (half + 0.4 + lat * (sidewalk - 0.5))
    elif cls == CYCLIST:
        X = side * (half - 0.5 - 0.8 * lat)
    else:  # sign beside the road
        X = side * (half + sidewalk * (0.4 + 0.6 * lat))
    m = sc.ppm(i, t)
    xc, yg = sc.x(i, t, X), sc.y(i, t)
    pole = None
    if cls == TRAFFIC_SIGN:
        size = w_m * m
        y1 = yg - h_m * m
        box = (xc - size / 2, y1 - size, xc + size / 2, y1)
        pole = (xc, y1, yg, max(0.06 * m, 0.5))
    else:
        box = (xc - w_m * m / 2, yg - h_m * m, xc + w_m * m / 2, yg)
    return t, box, pole


def _place_distractor(sc: _Scene, i, kind, o):
    """``(t, drawer)``: ``drawer(px, py, bw, bh)`` parts over a full-extent box, for one distractor slot."""
    side = 1.0 if o[_O["side"]] < 0.5 else -1.0
    half, sidewalk = sc.half[i], sc.p["sidewalk_w"][i]
    lat, jit = o[_O["lat"]], (np.array([o[_O["jr"]], o[_O["jg"]], o[_O["jb"]]]) - 0.5) * 0.1
    t = 0.1 + 0.5 * o[_O["depth"]] ** 1.3
    if kind == "headlights":
        t = 0.02 + 0.06 * o[_O["depth"]]
    if kind in ("pole", "lamp"):
        X = side * (half + sidewalk * (0.3 + 0.7 * lat))
        w_m, h_m = (0.14 if kind == "pole" else 1.4), 3.0 + 3.0 * o[_O["h"]]
    elif kind == "cone":
        X = side * (half - 0.3 - 1.5 * lat)
        w_m, h_m = 0.35 + 0.15 * o[_O["w"]], 0.5 + 0.3 * o[_O["h"]]
    elif kind == "crate":
        X = side * (half + 0.5 + lat * (sidewalk + 2.0))
        w_m, h_m = 0.6 + 1.2 * o[_O["w"]], 0.5 + 0.8 * o[_O["h"]]
    elif kind == "bush":
        X = side * (half + sidewalk + 0.5 + 3.0 * lat)
        w_m, h_m = 1.0 + 2.0 * o[_O["w"]], 0.8 + 1.0 * o[_O["h"]]
    else:  # a far car's headlight pair, on the road
        X = -sc.half[i] + 2 * sc.half[i] * lat
        w_m, h_m = 1.6, 0.6
    m = sc.ppm(i, t)
    xc, yg = sc.x(i, t, X), sc.y(i, t)
    half_w = max(w_m * m, 1.0) / 2  # at least one pixel wide
    box = (xc - half_w, yg - h_m * m, xc + half_w, yg)
    pole_hw = max(0.07 * m, 0.5)  # pixels
    grey = np.array([0.45, 0.46, 0.48], _f) + _f(jit[0])

    def draw(px, py, bw, bh, night):
        u, v = px / bw, py / bh
        if kind == "pole":
            return [(np.ones_like(u + v, bool), grey, None)], []
        if kind == "lamp":  # a pole on the road side of the box, an arm over the road, a lamp head at its end
            near, far = (0.1, 0.9) if side < 0 else (0.9, 0.1)
            hx, hy = far * bw, max(0.04 * bh, 0.7)
            post = np.abs(px - near * bw) <= pole_hw
            arm = (py <= 2 * pole_hw) & (np.abs(u - 0.5) <= 0.4)
            head = _disc(px, py, hx, hy, max(0.04 * bh, 0.8))
            lamp = np.array([1.0, 0.9, 0.6], _f)
            glows = [(hx, hy, max(0.06 * bh, 1.0), lamp)] if night else []
            return [(post | arm, grey, None), (head, lamp if night else grey, lamp * 0.8 if night else None)], glows
        if kind == "cone":
            body = (np.abs(u - 0.5) <= 0.5 * v) & (v > 0.05)
            band = body & (v > 0.45) & (v < 0.6)
            return [(body, np.array([0.95, 0.45, 0.1], _f), None), (band, _WHITE, None)], []
        if kind == "crate":
            return [(np.ones_like(u + v, bool), _pick(_CRATES, o[_O["col"]], jit), None),
                    ((np.abs(u - 0.5) < 0.45) & (np.abs(v - 0.5) < 0.4) & (o[_O["variant"]] < 0.5),
                     _pick(_CRATES, o[_O["col2"]], jit), None)], []
        if kind == "bush":
            e = ((u - 0.5) / 0.5) ** 2 + ((v - 0.55) / 0.45) ** 2 <= 1
            return [(e, np.clip(_TREES + jit + 0.05 * o[_O["col"]], 0, 1).astype(_f), None)], []
        if not night:  # far headlights only show at night
            return [], []
        lamp = _HEAD_LIGHT if o[_O["variant"]] < 0.5 else _RED_LIGHT
        return [], [(0.15 * bw, 0.5 * bh, max(0.3 * bh, 0.8), lamp), (0.85 * bw, 0.5 * bh, max(0.3 * bh, 0.8), lamp)]

    return t, box, draw


# ---------------------------------------------------------------------------------------- rendering
def _crop(box):
    """Pixel grid of a full-extent box: rows / cols whose centres it covers, and local pixel coordinates."""
    x0, y0, x1, y1 = box
    r0, r1 = math.ceil(y0 - 0.5), math.floor(y1 - 0.5) + 1
    c0, c1 = math.ceil(x0 - 0.5), math.floor(x1 - 0.5) + 1
    py = (np.arange(r0, r1, dtype=np.float32) + 0.5 - y0)[:, None]
    px = (np.arange(c0, c1, dtype=np.float32) + 0.5 - x0)[None, :]
    return r0, r1, c0, c1, px, py


def _paint(img, emit, ids, ident, box, parts, H, W):
    """Draw ``parts`` of a box into one image ``[3, H, W]``, its emission (or ``None`` by day) and id map.

    Clipped to the image; returns the object's full pixel count (including any part outside).
    """
    if not parts:
        return 0
    r0, r1, c0, c1 = box
    # which part covers each crop pixel (0: none; later parts win), then one colour lookup per channel
    part = np.zeros((r1 - r0, c1 - c0), np.uint8)
    for k, (mask, _, _) in enumerate(parts, start=1):
        part[np.broadcast_to(mask, part.shape)] = k
    drawn = part > 0
    total = int(np.count_nonzero(drawn))
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, H), max(c0, 0), min(c1, W)
    if rr0 >= rr1 or cc0 >= cc1 or not total:
        return total
    local = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    part, drawn = part[local], drawn[local]
    window = (slice(None), slice(rr0, rr1), slice(cc0, cc1))
    lut = np.zeros((3, len(parts) + 1), np.float32)
    for k, (_, colour, _) in enumerate(parts, start=1):
        lut[:, k] = colour
    np.copyto(img[window], lut[:, part], where=drawn)
    if emit is not None:
        for k, (_, _, emission) in enumerate(parts, start=1):
            lut[:, k] = 0.0 if emission is None else emission
        np.copyto(emit[window], lut[:, part], where=drawn)
    ids[window[1:]][drawn] = ident
    return total


def _glow(out, x, y, r, colour, strength, H, W):
    """Add to ``out [3, H, W]`` a Gaussian glow of radius ``r`` centred at pixel coordinates ``(x, y)``."""
    ext = 3 * r
    r0, r1 = max(int(y - ext), 0), min(int(y + ext) + 1, H)
    c0, c1 = max(int(x - ext), 0), min(int(x + ext) + 1, W)
    if r0 >= r1 or c0 >= c1:
        return
    yy = (np.arange(r0, r1, dtype=np.float32) + 0.5 - y)[:, None]
    xx = (np.arange(c0, c1, dtype=np.float32) + 0.5 - x)[None, :]
    g = np.exp(-(xx * xx + yy * yy) / np.float32(2 * r * r)) * _f(strength)
    out[:, r0:r1, c0:c1] += g[None] * colour[:, None, None]


def _render(p, obj, dis, tex, sky, fine, H, W, *, night_fraction, rare, noise, distractors, min_visible, min_size):
    """Images ``float32 [n, H, W, 3]``, boxes, classes, valid and night flags of one chunk.

    ``fine`` is the unit pixel noise ``[n, 3, H, W]``; everything is drawn channels-first.
    """
    n = len(fine)
    sc = _Scene(p, H, W)
    img = _background(p, sc, tex, sky, H, W)  # [n, 3, H, W]
    night = p["night"] < night_fraction
    emit = np.zeros((n, 3, H, W), np.float32) if night.any() else None  # light the scene emits itself (night)
    boxes = np.zeros((n, MAX_BOXES, 4), np.float32)
    classes = np.full((n, MAX_BOXES), PAD_CLASS, np.int32)
    valid = np.zeros((n, MAX_BOXES), bool)
    glows = [[] for _ in range(n)]
    pole_grey = np.array([0.5, 0.5, 0.52], _f)
    for i in range(n):
        ids = np.full((H, W), -1, np.int32)  # which object slot each pixel shows (-1: scenery)
        emit_i = emit[i] if night[i] else None
        items = []  # (depth t, slot, class or distractor kind, full box, pole / drawer, slot uniforms)
        for s, cls in enumerate(_SLOTS):
            o = obj[i, s]
            if o[_O["present"]] < (rare if cls == BUS else _PRESENT[cls]):
                t, box, pole = _place_object(sc, i, cls, o)
                items.append((t, s, cls, box, pole, o))
        if distractors:
            for s, kind in enumerate(_DISTRACTORS):
                o = dis[i, s]
                if o[_O["present"]] < _DISTRACTOR_P[kind]:
                    t, box, draw = _place_distractor(sc, i, kind, o)
                    items.append((t, MAX_BOXES + s, kind, box, draw, o))
        items.sort(key=lambda it: (it[0], it[1]))  # far to near: nearer objects occlude
        full_count, crops = {}, {}
        jit_base = np.array([p[f"jitter{c}"][i] for c in range(3)])
        for t, s, kind, box, extra, o in items:
            if s >= MAX_BOXES:  # a distractor
                r0, r1, c0, c1, px, py = _crop(box)
                if r1 > r0 and c1 > c0:
                    parts, gl = extra(px, py, box[2] - box[0], box[3] - box[1], night[i])
                    _paint(img[i], emit_i, ids, -1, (r0, r1, c0, c1), parts, H, W)
                    glows[i] += [(box[0] + gx, box[1] + gy, gr, gc, -1) for gx, gy, gr, gc in gl]
                continue
            if extra is not None:  # the sign's pole: scenery, occluding what is behind it
                xp, ytop, ybot, hw = extra
                r0, r1, c0, c1, _, _ = _crop((xp - hw, ytop, xp + hw, ybot))
                if r1 > r0 and c1 > c0:
                    _paint(img[i], emit_i, ids, -1, (r0, r1, c0, c1),
                           [(np.ones((r1 - r0, c1 - c0), bool), pole_grey, None)], H, W)
            r0, r1, c0, c1, px, py = _crop(box)
            if r1 <= r0 or c1 <= c0:
                continue
            jit = ((np.array([o[_O["jr"]], o[_O["jg"]], o[_O["jb"]]]) - 0.5) * 0.12 + jit_base).astype(_f)
            parts, gl = _SHAPES[kind](px, py, box[2] - box[0], box[3] - box[1], o, jit, night[i])
            full_count[s] = _paint(img[i], emit_i, ids, s, (r0, r1, c0, c1), parts, H, W)
            crops[s] = (max(r0, 0), min(r1, H), max(c0, 0), min(c1, W), kind)
            glows[i] += [(box[0] + gx, box[1] + gy, gr, gc, s) for gx, gy, gr, gc in gl]
        # labels: the visible extent of each object that stays visible enough
        for s, (r0, r1, c0, c1, kind) in crops.items():
            if r0 >= r1 or c0 >= c1 or not full_count[s]:
                continue
            vis = ids[r0:r1, c0:c1] == s
            count = int(np.count_nonzero(vis))
            if count == 0 or count < min_visible * full_count[s]:
                continue
            rows, cols = np.flatnonzero(vis.any(1)), np.flatnonzero(vis.any(0))
            b = (c0 + cols[0], r0 + rows[0], c0 + cols[-1] + 1, r0 + rows[-1] + 1)
            if b[2] - b[0] >= min_size and b[3] - b[1] >= min_size:
                boxes[i, s], classes[i, s], valid[i, s] = b, kind, True
        # a light glows only when its own object is visible where it sits
        glows[i] = [g for g in glows[i] if g[4] < 0 or (0 <= g[1] < H and 0 <= g[0] < W
                                                         and ids[int(g[1]), int(g[0])] == g[4])]

    # lighting, in place: day = contrast / brightness / colour cast; night = (dim ambient + the ego car's
    # headlight beam) x a bluish cast, plus the light the scene emits and the glows around lamps
    cast = np.stack([p[f"cast{c}"] for c in range(3)], 1)
    contrast = np.where(night, 1.0, p["contrast"])
    offset = np.where(night[:, None], 0.0, (0.5 * (1 - contrast) + p["brightness"])[:, None] + cast)
    img *= contrast[:, None, None, None].astype(np.float32)
    img += _rgb(offset)
    nights = np.flatnonzero(night)
    if len(nights):
        q = {k: v[nights] for k, v in p.items()}
        y = (np.arange(H, dtype=np.float32) + 0.5)[None, None, :, None]
        x = (np.arange(W, dtype=np.float32) + 0.5)[None, None, None, :]
        yh = sc.yh[nights][:, None, None, None].astype(np.float32)
        depth = np.clip((y - yh) / (H - yh), 0, 1)
        beam = _col(q, "beam") * np.exp(-(((x - W / 2) / (_col(q, "beam_spread") * W)) ** 2)) * depth ** 1.5
        illum = (_col(q, "ambient") + beam) * _NIGHT_CAST.astype(np.float32)[None, :, None, None]
        lit = img[nights] * illum + emit[nights]
        for j, i in enumerate(nights):
            for gx, gy, gr, gc, _ in glows[i]:
                _glow(lit[j], gx, gy, max(gr, 0.8), gc, 0.7, H, W)
        img[nights] = lit
    sigma = (noise * p["noise"] * np.where(night, 2.0, 1.0)).astype(np.float32)
    fine *= sigma[:, None, None, None]
    img += fine
    np.clip(img, 0.0, 1.0, out=img)
    return img.transpose(0, 2, 3, 1), boxes, classes, valid, night
