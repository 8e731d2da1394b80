"""CenterNet targets, loss and decoding: Gaussian heatmaps, focal loss against numpy, encode/decode round trip."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.detection import centernet as cn

HW = (48, 64)  # input; maps 12 x 16 at stride 4


def reference_radius(height, width, min_overlap=0.7):
    """The authors' gaussian_radius (CenterNet src/lib/utils/image.py), scalar."""
    a1, b1 = 1, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def test_gaussian_radius_matches_the_reference():
    rng = np.random.default_rng(0)
    h, w = rng.integers(1, 60, 50).astype(float), rng.integers(1, 60, 50).astype(float)
    np.testing.assert_allclose(cn.gaussian_radius(h, w), [reference_radius(a, b) for a, b in zip(h, w)], rtol=1e-12)


def test_heatmap_peak_of_a_box_is_one_at_its_centre():
    box = np.array([[[13.0, 10.0, 45.0, 34.0]]])  # centre (29, 22) -> cell (x 7, y 5), offset (0.25, 0.5)
    t = cn.encode_targets(box, np.array([[2]]), np.array([[True]]), num_classes=3, input_hw=HW)
    assert t.heatmap.shape == (1, 12, 16, 3) and t.size.shape == t.offset.shape == (1, 12, 16, 2)
    assert t.heatmap.dtype == np.float32 and t.mask.shape == (1, 12, 16)
    hm = t.heatmap[0, :, :, 2]
    assert hm[5, 7] == 1.0 and np.unravel_index(hm.argmax(), hm.shape) == (5, 7) and (hm == 1).sum() == 1
    assert not t.heatmap[..., :2].any()  # other classes empty
    # a Gaussian: symmetric about the centre, decreasing away from it, zero beyond the radius
    r = int(cn.gaussian_radius(np.ceil(24 / 4), np.ceil(32 / 4)))
    assert r >= 1
    np.testing.assert_allclose(hm[5, 7 - r:7], hm[5, 8:8 + r][::-1])
    np.testing.assert_allclose(hm[5 - r:5, 7], hm[6:6 + r, 7][::-1])
    assert np.all(np.diff(hm[5, 7:8 + r]) < 0) and hm[5, 7 + r + 1:].sum() == 0
    sigma = (2 * r + 1) / 6
    np.testing.assert_allclose(hm[5, 8], np.exp(-1 / (2 * sigma**2)), rtol=1e-6)
    assert t.mask.sum() == 1 and t.mask[0, 5, 7] == 1
    np.testing.assert_allclose(t.size[0, 5, 7], [8.0, 6.0])
    np.testing.assert_allclose(t.offset[0, 5, 7], [0.25, 0.5])


def test_overlapping_gaussians_of_one_class_combine_by_maximum_and_padding_is_ignored():
    boxes = np.array([[[0, 0, 24, 24], [8, 0, 32, 24], [0, 0, 0, 0], [5, 5, 5, 9]]], float)  # padding, degenerate
    valid = np.array([[True, True, False, True]])
    t = cn.encode_targets(boxes, np.array([[1, 1, 0, 0]]), valid, num_classes=2, input_hw=HW)
    a = cn.encode_targets(boxes[:, :1], np.array([[1]]), valid[:, :1], num_classes=2, input_hw=HW).heatmap
    b = cn.encode_targets(boxes[:, 1:2], np.array([[1]]), valid[:, 1:2], num_classes=2, input_hw=HW).heatmap
    np.testing.assert_array_equal(t.heatmap, np.maximum(a, b))
    assert t.mask.sum() == 2 and not t.heatmap[..., 0].any()


def random_scene(rng, n, k, num_classes):
    """Boxes with distinct centre cells (so every object gets its own peak) and some padding slots."""
    boxes = np.zeros((n, k, 4))
    for i in range(n):
        cells = rng.choice(12 * 16, size=k, replace=False)
        centre = np.stack([cells % 16, cells // 16], -1) * 4 + rng.uniform(0, 4, (k, 2))
        size = rng.uniform(3, 30, (k, 2))
        boxes[i] = np.concatenate([centre - size / 2, centre + size / 2], -1)
    classes = rng.integers(0, num_classes, (n, k))
    valid = rng.uniform(size=(n, k)) < 0.75
    return boxes, classes, valid


def test_encode_decode_round_trip():
    rng = np.random.default_rng(1)
    boxes, classes, valid = random_scene(rng, 4, 6, 3)
    t = cn.encode_targets(boxes, classes, valid, num_classes=3, input_hw=HW)
    dets = jax.jit(lambda t: cn.decode(*t[:3], k=20))(t)
    assert dets.boxes.shape == (4, 20, 4) and dets.scores.shape == dets.classes.shape == (4, 20)
    assert dets.class_probs.shape == (4, 20, 3) and dets.classes.dtype == jnp.int32
    for i in range(4):
        found = np.asarray(dets.scores[i]) == 1.0  # perfect heatmaps: every object peaks at exactly 1
        assert found.sum() == valid[i].sum()
        got = sorted(zip(np.asarray(dets.classes[i])[found], map(tuple, np.asarray(dets.boxes[i])[found])))
        want = sorted(zip(classes[i][valid[i]], map(tuple, boxes[i][valid[i]])))
        for (gc, gb), (wc, wb) in zip(got, want):
            assert gc == wc
            np.testing.assert_allclose(gb, wb, atol=1.0)  # within a pixel (float32 round trip: far closer)
        probs = np.asarray(dets.class_probs[i])[found]
        np.testing.assert_array_equal(probs[np.arange(len(probs)), np.asarray(dets.classes[i])[found]], 1.0)
    # the cells index the peaks: gathering the heatmap there gives the class probabilities
    np.testing.assert_array_equal(cn.gather_cells(jnp.asarray(t.heatmap), dets.cells), dets.class_probs)
    # with a leading sample axis too
    stacked = cn.gather_cells(jnp.stack([jnp.asarray(t.heatmap)] * 2), dets.cells)
    assert stacked.shape == (2, 4, 20, 3)
    np.testing.assert_array_equal(stacked[1], dets.class_probs)


def test_decode_suppresses_non_peaks_and_scales_boxes():
    hm = np.zeros((1, 6, 8, 2), np.float32)
    hm[0, 2, 3, 0], hm[0, 2, 4, 0] = 0.9, 0.8  # neighbours: only the larger is a peak
    hm[0, 2, 4, 1] = 0.7  # another class at the same cell: its own peak
    hm[0, 5, 7, 0] = 0.6  # a corner peak
    size = np.zeros((1, 6, 8, 2), np.float32)
    offset = np.zeros((1, 6, 8, 2), np.float32)
    size[0, 2, 3], offset[0, 2, 3] = (2.0, 1.0), (0.5, 0.25)
    dets = cn.decode(hm, size, offset, k=4, stride=4)
    np.testing.assert_allclose(dets.scores[0], [0.9, 0.7, 0.6, 0.0])
    np.testing.assert_array_equal(dets.classes[0, :3], [0, 1, 0])
    np.testing.assert_array_equal(dets.cells[0, :3], [2 * 8 + 3, 2 * 8 + 4, 5 * 8 + 7])
    # centre ((3 + 0.5) * 4, (2 + 0.25) * 4) = (14, 9), size (8, 4)
    np.testing.assert_allclose(dets.boxes[0, 0], [10.0, 7.0, 18.0, 11.0])
    np.testing.assert_allclose(dets.class_probs[0, 1], [0.8, 0.7])
    assert cn.decode(hm, size, offset, k=1000).scores.shape == (1, 6 * 8 * 2)  # k capped at H' W' C


def reference_focal(logits, target, alpha=2.0, beta=4.0):
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    pos = target == 1
    pos_loss = (np.log(p) * (1 - p) ** alpha)[pos].sum()
    neg_loss = (np.log(1 - p) * p**alpha * (1 - target) ** beta)[~pos].sum()
    num_pos = pos.sum()
    return -neg_loss if num_pos == 0 else -(pos_loss + neg_loss) / num_pos


def test_focal_loss_matches_a_numpy_reference():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (2, 5, 6, 3)).astype(np.float32)
    target = rng.uniform(0, 1, (2, 5, 6, 3)).astype(np.float32) ** 3
    target[0, 1, 2, 0] = target[1, 4, 5, 2] = target[1, 0, 0, 1] = 1.0
    np.testing.assert_allclose(cn.focal_loss(logits, target), reference_focal(logits, target), rtol=1e-5)
    target[target == 1] = 0.5  # no objects: the plain sum
    np.testing.assert_allclose(cn.focal_loss(logits, target), reference_focal(logits, target), rtol=1e-5)
    # stable for saturated logits (log-sigmoid, no clamping)
    assert np.isfinite(cn.focal_loss(np.full((1, 2, 2, 1), 100.0, np.float32), np.zeros((1, 2, 2, 1))))


def test_loss_terms_packed_targets_jit_and_gradient():
    rng = np.random.default_rng(3)
    boxes, classes, valid = random_scene(rng, 2, 4, 3)
    t = cn.encode_targets(boxes, classes, valid, num_classes=3, input_hw=HW)
    outputs = jnp.asarray(rng.normal(size=(2, 12, 16, 7)).astype(np.float32))
    terms = cn.loss_terms(outputs, t)
    mask = t.mask[..., None].astype(bool)
    out = np.asarray(outputs)
    np.testing.assert_allclose(terms["heatmap"], reference_focal(out[..., :3], t.heatmap), rtol=1e-5)
    size_l1 = np.abs(out[..., 3:5] - t.size)[np.broadcast_to(mask, t.size.shape)].mean()
    offset_l1 = np.abs(out[..., 5:] - t.offset)[np.broadcast_to(mask, t.size.shape)].mean()
    np.testing.assert_allclose(terms["size"], size_l1, rtol=1e-4)
    np.testing.assert_allclose(terms["offset"], offset_l1, rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], terms["heatmap"] + 0.1 * size_l1 + offset_l1, rtol=1e-5)
    packed = t.packed()
    assert packed.shape == (2, 12, 16, 3 + 5)
    value, grad = jax.jit(jax.value_and_grad(cn.loss))(outputs, jnp.asarray(packed))
    np.testing.assert_allclose(value, terms["loss"], rtol=1e-5)
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    with pytest.raises(ValueError, match="do not match"):
        cn.loss(outputs[..., :6], t)


def test_class_distribution_sums_to_one_with_background_last():
    p = jnp.asarray([[0.9, 0.3, 0.0], [0.1, 0.1, 0.1], [0.0, 0.0, 0.0]])
    d = cn.class_distribution(p)
    np.testing.assert_allclose(d.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(d[:, -1], [0.1, 0.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(d[0, :3], [0.9 * 0.75, 0.9 * 0.25, 0.0], rtol=1e-6)


def test_encode_rejects_bad_inputs():
    boxes, classes, valid = np.zeros((1, 2, 4)), np.zeros((1, 2), int), np.ones((1, 2), bool)
    with pytest.raises(ValueError, match=r"boxes must be \[N, K, 4\]"):
        cn.encode_targets(boxes[0], classes, valid, num_classes=2, input_hw=HW)
    with pytest.raises(ValueError, match="classes and valid"):
        cn.encode_targets(boxes, classes[:, :1], valid, num_classes=2, input_hw=HW)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        cn.encode_targets(boxes, classes + 2, valid, num_classes=2, input_hw=HW)
    with pytest.raises(ValueError, match="integers"):
        cn.encode_targets(boxes, classes.astype(float), valid, num_classes=2, input_hw=HW)
    with pytest.raises(ValueError, match="stride"):
        cn.encode_targets(boxes, classes, valid, num_classes=2, input_hw=HW, stride=0)
    # invalid slots may hold anything
    t = cn.encode_targets(boxes, classes + 7, ~valid, num_classes=2, input_hw=HW)
    assert not t.heatmap.any() and not t.mask.any()
