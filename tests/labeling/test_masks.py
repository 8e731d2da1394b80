"""Segmentation class maps: Label Studio's brush RLE against a brute-force bit-string coder, polygons
against a winding-number rasterizer, the label store's runs, mask files — no training."""

import itertools

import numpy as np
import pytest
from PIL import Image

from bal.labeling import masks


# ----------------------------------------------------------------------------- brute-force references
def brute_encode(values, literal_every: int = 0) -> list[int]:
    """The rle-pack bit stream built as a string, token by token. ``literal_every``: write every
    that many runs as literal tokens of up to 8 values instead (a valid stream the SDK never writes)."""
    bits = f"{len(values):032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))
    runs = [(int(v), len(list(g))) for v, g in itertools.groupby(values)]
    for n, (v, count) in enumerate(runs):
        if literal_every and n % literal_every == 0 and count <= 8:
            bits += "0" + "00" + f"{count - 1:03b}" + f"{v:08b}" * count
        elif count == 1:
            bits += "0" + "00" + "000" + f"{v:08b}"
        elif count <= 8:
            bits += "1" + "00" + f"{count - 1:03b}" + f"{v:08b}"
        elif count <= 16:
            bits += "1" + "01" + f"{count - 1:04b}" + f"{v:08b}"
        elif count <= 256:
            bits += "1" + "10" + f"{count - 1:08b}" + f"{v:08b}"
        else:
            while count > 65536:
                bits += "1" + "11" + f"{65535:016b}" + f"{v:08b}"
                count -= 65536
            bits += "1" + "11" + f"{count - 1:016b}" + f"{v:08b}"
    bits += "0" * (8 - len(bits) % 8)
    return [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]


def brute_decode(rle) -> list[int]:
    bits = "".join(f"{b:08b}" for b in rle)
    pos = 0

    def read(k):
        nonlocal pos
        pos += k
        return int(bits[pos - k:pos], 2)

    num, word = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = []
    while len(out) < num:
        repeat = read(1)
        count = 1 + read(sizes[read(2)])
        out += [read(word)] * count if repeat else [read(word) for _ in range(count)]
    return out


def winding_mask(points, height, width) -> np.ndarray:
    """Pixel centres inside a simple polygon (percent), by the winding number, pixel by pixel."""
    pts = [(x * width / 100, y * height / 100) for x, y in points]
    out = np.zeros((height, width), bool)
    for r in range(height):
        for c in range(width):
            px, py, wn = c + 0.5, r + 0.5, 0
            for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
                side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
                if y1 <= py < y2 and side > 0:
                    wn += 1
                elif y2 <= py < y1 and side < 0:
                    wn -= 1
            out[r, c] = wn != 0
    return out


def sample_values(rng):
    """Value streams with runs of every size class, including runs longer than 65,536."""
    yield np.array([7], np.uint8)
    for n in (2, 8, 9, 16, 17, 256, 257, 65536, 65537, 2 * 65536 + 3):
        yield np.full(n, 255, np.uint8)
    for _ in range(25):
        counts = rng.choice([1, 2, 5, 8, 9, 16, 17, 100, 256, 257, 3000], size=rng.integers(1, 12))
        yield np.repeat(rng.integers(0, 256, size=counts.size), counts).astype(np.uint8)
    yield rng.integers(0, 2, size=999).astype(np.uint8) * 255


# ----------------------------------------------------------------------------- brush RLE
def test_rle_encode_is_the_brute_force_stream_and_decodes_back():
    for values in sample_values(np.random.default_rng(0)):
        rle = masks.rle_encode(values)
        assert rle == brute_encode(values.tolist()), values.size
        assert np.array_equal(masks.rle_decode(rle), values)
        assert brute_decode(rle) == values.tolist()


def test_rle_decode_reads_literal_runs():
    for values in sample_values(np.random.default_rng(1)):
        stream = brute_encode(values.tolist(), literal_every=2)
        assert np.array_equal(masks.rle_decode(stream), values)


def test_brush_masks_round_trip_exactly_through_rgba():
    rng = np.random.default_rng(2)
    for height, width in ((1, 1), (8, 8), (16, 24), (37, 53)):
        mask = rng.random((height, width)) < 0.3
        mask[: height // 2, : width // 3] = True  # some long runs too
        rle = masks.mask_to_brush(mask)
        assert rle == brute_encode(np.repeat(mask.reshape(-1).astype(int) * 255, 4).tolist())
        assert np.array_equal(masks.brush_to_mask(rle, height, width), mask)
    # alpha decides, with 128 the threshold (drawn strokes may be anti-aliased)
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[1, 2, 3], rgba[1, 0, :3] = 128, 127, 255, 255
    assert masks.brush_to_mask(masks.rle_encode(rgba.reshape(-1)), 2, 3).tolist() == [[True, False, False],
                                                                                      [False, False, True]]


@pytest.mark.parametrize("rle, message", [
    ([], "non-empty list of bytes"),
    ([0, 1, 300], "non-empty list of bytes"),
    ("abc", "non-empty list of bytes"),
    ([0, 0, 0], "ends early"),
    (brute_encode([255] * 40)[:-2], "ends early"),
    ([0, 0, 0, 0, 14, 35, 127, 0, 0], "claims 0 values"),
    (brute_encode([1, 2, 3])[:4] + [0] * 4 + brute_encode([1, 2, 3])[8:], "ends early|a run ends"),
])
def test_corrupt_brush_rle_is_one_line_error(rle, message):
    with pytest.raises(ValueError, match=message) as err:
        masks.rle_decode(rle)
    assert "\n" not in str(err.value)


def test_a_run_past_the_end_and_a_brush_of_another_size_are_refused():
    stream = brute_encode([9] * 20)
    stream[3] = 10  # claims 10 values, the run holds 20
    with pytest.raises(ValueError, match="a run ends at value 20 of 10"):
        masks.rle_decode(stream)
    with pytest.raises(ValueError, match="holds 256 values, not the 384 of a 12x8 RGBA image"):
        masks.brush_to_mask(masks.mask_to_brush(np.ones((8, 8), bool)), 8, 12)
    with pytest.raises(ValueError, match="0..255"):
        masks.rle_encode(np.array([256]))


# ----------------------------------------------------------------------------- polygons, class maps, files
@pytest.mark.parametrize("points", [
    [[10, 10], [60, 10], [60, 70], [10, 70]],  # a rectangle
    [[0, 0], [100, 0], [100, 100], [0, 100]],  # the whole image
    [[5, 90], [50, 3], [97, 88]],  # a triangle
    [[10, 10], [90, 10], [90, 40], [40, 40], [40, 95], [10, 95]],  # an L (concave)
    [[12.5, 12.5], [37.5, 12.5], [37.5, 37.5], [12.5, 37.5]],  # edges through pixel centres
])
def test_polygons_rasterize_pixel_centres_as_the_winding_number(points):
    for height, width in ((8, 8), (16, 24)):
        assert np.array_equal(masks.polygon_to_mask(points, height, width), winding_mask(points, height, width))
    assert masks.polygon_to_mask([[0, 0], [100, 0], [100, 100], [0, 100]], 4, 6).all()
    with pytest.raises(ValueError, match="at least 3 points"):
        masks.polygon_to_mask([[0, 0], [50, 50]], 4, 4)


def test_class_maps_pack_canonically_and_are_checked():
    a = np.array([[0, 0, 255], [3, 3, 3]], np.uint8)
    packed = masks.pack_map(a)
    assert packed == {"shape": [2, 3], "runs": [0, 2, 255, 1, 3, 3]}
    assert np.array_equal(masks.unpack_map(packed, "x"), a) and masks.unpack_map(packed, "x").dtype == np.uint8
    assert masks.pack_map(a.astype(np.int64)) == packed
    for bad, message in [({"shape": [2, 3], "runs": [0, 5]}, "5 pixels in its runs"),
                         ({"shape": [2, 3], "runs": [0, 6, 1]}, "not a class map"),
                         ({"shape": [2, 3], "runs": [256, 6]}, "values must be 0..255"),
                         ({"shape": [2, 3], "runs": [0, 0, 1, 6]}, "counts >= 1"),
                         ([0, 6], "not a class map")]:
        with pytest.raises(ValueError, match=f"^where: .*{message}"):
            masks.unpack_map(bad, "where")
    masks.check_map(a, (2, 3), 4, "w")
    with pytest.raises(ValueError, match=r"^w: the class map is 3x2, but the queried region is 2x3"):
        masks.check_map(a, (3, 2), 4, "w")
    with pytest.raises(ValueError, match=r"^w: pixel \(row 1, column 0\) has value 3, not a class index 0..2"):
        masks.check_map(a, (2, 3), 3, "w")


def test_mask_files_png_palette_npy_and_errors(tmp_path):
    a = np.array([[0, 1, 255], [5, 5, 2]], np.uint8)
    masks.write_mask_png(tmp_path / "grey.png", a)
    assert np.array_equal(masks.read_mask_file(tmp_path / "grey.png"), a)
    image = Image.new("P", (3, 2))  # a palette image: its pixel values are the palette indices
    image.putpalette([v for i in range(256) for v in (i, (7 * i) % 256, 255 - i)])
    image.putdata(a.reshape(-1).tolist())
    image.save(tmp_path / "palette.png")
    assert np.array_equal(masks.read_mask_file(tmp_path / "palette.png"), a)
    np.save(tmp_path / "m.npy", a.astype(np.int32))
    assert np.array_equal(masks.read_mask_file(tmp_path / "m.npy"), a)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    np.save(tmp_path / "f.npy", a.astype(np.float32))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    for name, message in [("rgb.png", "a mask is a one-channel image .* got mode RGB"),
                          ("f.npy", "a mask is a 2-D integer array"),
                          ("junk.png", "cannot read it as a PNG")]:
        with pytest.raises(ValueError, match=f"{name}: {message}"):
            masks.read_mask_file(tmp_path / name)
