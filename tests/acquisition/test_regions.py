"""Crops: the grid tiles every image size exactly; crop scores, costs, masks and flat ids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import dense, regions, top_k


@pytest.mark.parametrize("height,width,rows,cols", [
    (720, 1280, 3, 4), (1024, 2048, 3, 4), (7, 5, 3, 4), (3, 4, 3, 4), (13, 17, 5, 2), (1, 1, 1, 1),
    (9, 9, 1, 1), (5, 11, 5, 11), (100, 3, 7, 1), (2, 31, 2, 6),
])
def test_crops_tile_the_image_exactly(height, width, rows, cols):
    g = regions.grid(height, width, rows, cols)
    assert g.num_regions == rows * cols and (g.height, g.width) == (height, width)
    masks = regions.region_masks(g, height, width)
    assert masks.shape == (rows * cols, height, width)
    np.testing.assert_array_equal(masks.sum(axis=0), 1)  # every pixel in exactly one crop
    sizes = regions.region_pixels(g)
    np.testing.assert_array_equal(sizes, masks.sum(axis=(1, 2)))
    assert sizes.sum() == height * width and sizes.min() >= 1
    heights, widths = np.diff(g.row_edges), np.diff(g.col_edges)
    assert heights.max() - heights.min() <= 1 and widths.max() - widths.min() <= 1
    for r in range(g.num_regions):  # boxes are rectangles, row-major
        top, bottom, left, right = g.box(r)
        box = np.zeros((height, width), bool)
        box[top:bottom, left:right] = True
        np.testing.assert_array_equal(masks[r], box)
        assert (top, left) == (g.row_edges[r // cols], g.col_edges[r % cols])


def test_default_grid_is_four_across_three_down():
    g = regions.grid(720, 1280)
    assert (g.rows, g.cols, g.num_regions) == (3, 4, 12)
    assert g.box(0) == (0, 240, 0, 320) and g.box(3) == (0, 240, 960, 1280) and g.box(11) == (480, 720, 960, 1280)


def test_grid_errors():
    with pytest.raises(ValueError, match=r"rows=4 does not fit an image of height 3.*rows <= 3"):
        regions.grid(3, 10, rows=4, cols=2)
    with pytest.raises(ValueError, match=r"cols=4 does not fit an image of width 2.*cols <= 2"):
        regions.grid(10, 2)
    for bad in (dict(rows=0), dict(cols=-1), dict(rows=1.5)):
        with pytest.raises(ValueError, match=r"must be an integer >= 1"):
            regions.grid(10, 10, **bad)
    with pytest.raises(ValueError, match="height must be an integer >= 1"):
        regions.grid(0, 10)
    with pytest.raises(ValueError, match="built for 10x10"):
        regions.region_masks(regions.grid(10, 10), 10, 12)
    with pytest.raises(ValueError, match="region index"):
        regions.grid(10, 10).box(12)


def _reference_region_scores(u, g, how, q, mask):
    """An independent loop: crop r of image n reduces the pixels of region_masks(g)[r] (and mask)."""
    masks = regions.region_masks(g)
    out = np.full(u.shape[:1] + (g.num_regions,), np.nan)
    for n in range(u.shape[0]):
        for r in range(g.num_regions):
            v = u[n][masks[r] & mask[n]].astype(np.float64)
            if v.size == 0:
                continue
            if how == "quantile":
                out[n, r] = np.quantile(v, q)
            elif how == "top_mean":
                out[n, r] = np.sort(v)[::-1][: max(1, int(np.ceil(round((1 - q) * v.size, 6))))].mean()
            else:
                out[n, r] = getattr(np, how)(v)
    return out


@pytest.mark.parametrize("shape,rows,cols", [((2, 7, 10), 3, 4), ((2, 6, 8), 3, 4), ((1, 5, 3), 2, 3)])
def test_region_scores_match_an_explicit_loop(shape, rows, cols):
    rng = np.random.default_rng(sum(shape))
    u = rng.gamma(1.0, size=shape).astype(np.float32)
    mask = rng.uniform(size=shape) < 0.7
    mask[0, : shape[1] // 2] = False  # a crop with no pixel left to label
    g = regions.grid(shape[1], shape[2], rows, cols)
    for how in dense.REDUCTIONS:
        got = np.asarray(regions.region_scores(u, g, how, q=0.75, mask=mask))
        assert got.shape == (shape[0], g.num_regions)
        np.testing.assert_allclose(got, _reference_region_scores(u, g, how, 0.75, mask), rtol=1e-5, err_msg=how)
    unmasked = regions.region_scores(u, g, "sum")
    np.testing.assert_allclose(unmasked.sum(axis=1), u.sum(axis=(1, 2)), rtol=1e-5)  # crops partition the image


def test_a_1x1_grid_is_the_whole_image():
    u = np.random.default_rng(1).uniform(size=(3, 5, 6)).astype(np.float32)
    g = regions.grid(5, 6, 1, 1)
    for how in dense.REDUCTIONS:
        np.testing.assert_allclose(regions.region_scores(u, g, how)[:, 0], dense.reduce_pixels(u, how), rtol=1e-6)


def test_region_scores_errors_and_jit():
    g = regions.grid(6, 8)
    u = jnp.zeros((2, 6, 8))
    with pytest.raises(ValueError, match=r"pixel_scores are 6x9 but the grid was built for 6x8"):
        regions.region_scores(jnp.zeros((2, 6, 9)), g)
    with pytest.raises(ValueError, match="unknown pixel reduction 'avg'"):
        regions.region_scores(u, g, "avg")
    with pytest.raises(ValueError, match="Regions"):
        regions.region_scores(u, (3, 4))
    out = jax.jit(lambda u, m: regions.region_scores(u, g, "max", mask=m))(u + 1.0, jnp.ones((2, 6, 8), bool))
    np.testing.assert_array_equal(out, np.ones((2, 12)))


def test_flat_ids_select_crops_and_grow_the_label_mask():
    g = regions.grid(6, 8)  # 12 crops of 2 x 2
    u = np.zeros((3, 6, 8), np.float32)
    u[2, 4:6, 6:8] = 5.0  # the bottom-right crop (r = 11) of image 2
    u[0, 0:2, 2:4] = 3.0  # crop r = 1 of image 0
    labeled = np.zeros(u.shape, bool)
    scores = regions.region_scores(u, g, "mean", mask=~labeled)
    ids = np.asarray(top_k(None, scores.reshape(-1), 2))
    np.testing.assert_array_equal(ids, [regions.region_index(2, 11, g), regions.region_index(0, 1, g)])
    assert list(ids) == [35, 1]
    image, crop = regions.split_region_index(ids, g)
    np.testing.assert_array_equal(image, [2, 0])
    np.testing.assert_array_equal(crop, [11, 1])
    labeled |= regions.acquired_pixels(ids, g, num_images=3)
    assert labeled.sum() == 8 and labeled[2, 4:6, 6:8].all() and labeled[0, 0:2, 2:4].all()
    # acquired crops are now masked: they score NaN and are never selected again
    scores = np.asarray(regions.region_scores(u, g, "mean", mask=~labeled)).reshape(-1)
    assert np.isnan(scores[ids]).all() and not np.isnan(np.delete(scores, ids)).any()
    assert 35 not in np.asarray(top_k(None, jnp.asarray(scores), 34))
    with pytest.raises(ValueError, match=r"crop ids must be integers in \[0, 36\)"):
        regions.acquired_pixels([36], g, num_images=3)
    with pytest.raises(ValueError, match=r"region must lie in \[0, 12\)"):
        regions.region_index(0, 12, g)


def test_end_to_end_from_log_probs():
    from .acq_helpers import random_log_probs
    lp = random_log_probs(3, 2 * 7 * 9, 4, seed=5).reshape(3, 2, 7, 9, 4)
    g = regions.grid(7, 9)
    u = dense.pixel_scores(lp, "bald")
    s = regions.region_scores(dense.class_targeted(u, lp, [0, 3]), g, "quantile", q=0.9)
    assert s.shape == (2, 12) and np.isfinite(np.asarray(s)).all()
