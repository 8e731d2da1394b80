"""Box IoU and matching against brute-force references (pycocotools' IoU where installed)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.detection import box_iou, greedy_match, optimal_match


def random_boxes(rng, k, integer=False, spread=60.0):
    xy = rng.uniform(0, spread, (k, 2))
    wh = rng.uniform(5, 40, (k, 2))
    b = np.concatenate([xy, xy + wh], axis=1)
    return np.round(b) if integer else b


def iou_scalar(a, b):
    """IoU of two boxes by the textbook formula (no +1)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ----------------------------------------------------------------------------- IoU
def test_iou_matches_the_scalar_formula_and_pycocotools():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 9), random_boxes(rng, 7)
    got = box_iou(a, b)
    assert got.shape == (9, 7) and got.dtype == np.float64
    expected = np.array([[iou_scalar(x, y) for y in b] for x in a])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert 0 < (got > 0).mean() < 1  # both overlapping and disjoint pairs
    mask_utils = pytest.importorskip("pycocotools.mask")
    xywh = lambda x: np.concatenate([x[:, :2], x[:, 2:] - x[:, :2]], axis=1)  # noqa: E731
    coco = mask_utils.iou(xywh(a).tolist(), xywh(b).tolist(), [0] * len(b))
    np.testing.assert_allclose(got, coco, rtol=1e-12, atol=1e-15)


def test_iou_edge_cases():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 10], [5, 5, 5, 5]])
    b = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [0, 0, 0, 10], [0, 0, 5, 10]])
    got = box_iou(a, b)
    assert got.dtype == np.float64  # integers promoted
    assert got[0, 0] == 1 and got[1, 1] == 0  # identical; touching along an edge
    assert got[2, 2] == 0 and got[3, 3] == 0  # degenerate boxes, even identical ones
    assert got[0, 3] == 0.5
    np.testing.assert_array_equal(box_iou(b, a), got.T)
    assert box_iou(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32


def test_iou_jax_agrees_and_jits_and_broadcasts():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 5), random_boxes(rng, 6)
    got = jax.jit(box_iou)(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    assert isinstance(got, jax.Array) and got.shape == (5, 6)
    np.testing.assert_allclose(got, box_iou(a, b), atol=1e-5)
    batch = np.stack([a, a[::-1]])  # [2, 5, 4] against [6, 4] broadcast
    np.testing.assert_allclose(box_iou(batch, b[None])[1], box_iou(a[::-1], b))
    vm = jax.vmap(box_iou, in_axes=(0, None))(jnp.asarray(batch), jnp.asarray(b))
    np.testing.assert_allclose(vm, box_iou(batch, b[None]), atol=1e-5)
    assert np.all(np.isfinite(jax.grad(lambda x: box_iou(x, jnp.asarray(b)).sum())(jnp.asarray(a))))


# ----------------------------------------------------------------------------- greedy
def coco_greedy_reference(a, b, scores, thr):
    """pycocotools' evaluateImg loop for one threshold (no crowd, no ignore)."""
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    ious = np.array([[iou_scalar(x, y) for y in b] for x in a]).reshape(len(a), len(b))
    gtm = np.zeros(len(b))
    match = -np.ones(len(a), int)
    for d in order:
        iou, m = min(thr, 1 - 1e-10), -1
        for g in range(len(b)):
            if gtm[g] > 0:
                continue
            if ious[d, g] < iou:
                continue
            iou, m = ious[d, g], g
        if m > -1:
            gtm[m] = 1
            match[d] = m
    return match


def iou_order_reference(iou, ok):
    """All candidate pairs sorted by (−IoU, a, b), taken when both boxes are still free."""
    pairs = sorted((-iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1]) if ok[i, j])
    match, used = -np.ones(iou.shape[0], int), set()
    for _, i, j in pairs:
        if match[i] < 0 and j not in used:
            match[i] = j
            used.add(j)
    return match


@pytest.mark.parametrize("seed", range(6))
def test_greedy_with_scores_is_cocos_rule(seed):
    rng = np.random.default_rng(seed)
    integer = seed % 2 == 0
    b = random_boxes(rng, 6, integer, spread=30)
    a = np.concatenate([b[rng.integers(0, 6, 5)] + rng.normal(0, 4, (5, 4)), random_boxes(rng, 3, integer, 30)])
    if integer:
        a = np.round(a)
        b[1] = b[0]  # duplicated target box: equal IoUs
    a[:, 2:] = np.maximum(a[:, 2:], a[:, :2] + 1)
    scores = np.round(rng.uniform(size=len(a)), 1)  # ties
    for thr in (0.3, 0.5, 0.75):
        got = greedy_match(a, b, thr, scores_a=scores)
        np.testing.assert_array_equal(got, coco_greedy_reference(a, b, scores, thr))


def test_greedy_ties_in_iou_go_to_the_later_box():
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10]])
    a = np.array([[2.5, 0, 12.5, 10]])  # IoU 0.6 with both
    assert greedy_match(a, b, 0.5, scores_a=[1.0])[0] == 1
    assert greedy_match(a, b[::-1], 0.5, scores_a=[1.0])[0] == 1


@pytest.mark.parametrize("seed", range(4))
def test_greedy_without_scores_takes_pairs_in_iou_order(seed):
    rng = np.random.default_rng(10 + seed)
    b = random_boxes(rng, 7, spread=30)
    a = b[rng.permutation(7)[:6]] + rng.normal(0, 5, (6, 4))
    a[:, 2:] = np.maximum(a[:, 2:], a[:, :2] + 1)
    iou = box_iou(a, b)
    got = greedy_match(a, b, 0.3)
    np.testing.assert_array_equal(got, iou_order_reference(iou, iou >= 0.3))
    # no ties here: the same pairs whichever set is called a
    back = greedy_match(b, a, 0.3)
    assert {(i, j) for i, j in enumerate(got) if j >= 0} == {(j, i) for i, j in enumerate(back) if j >= 0}


def test_masks_and_classes_restrict_the_candidates():
    rng = np.random.default_rng(3)
    b = random_boxes(rng, 6, spread=30)
    a = b + rng.normal(0, 2, (6, 4))
    ca, cb = rng.integers(0, 2, 6), rng.integers(0, 2, 6)
    va, vb = rng.uniform(size=6) < 0.7, rng.uniform(size=6) < 0.7
    ia, ib = np.flatnonzero(va), np.flatnonzero(vb)
    for match in (greedy_match, optimal_match):
        got = match(a, b, 0.5, valid_a=va, valid_b=vb, classes_a=ca, classes_b=cb)
        assert np.all(got[~va] == -1) and np.all(vb[got[got >= 0]]) and np.all(ca[got >= 0] == cb[got[got >= 0]])
        for c in (0, 1):  # the same as matching each class's valid boxes alone
            sa, sb = ia[ca[ia] == c], ib[cb[ib] == c]
            sub = match(a[sa], b[sb], 0.5)
            np.testing.assert_array_equal(got[sa], np.append(sb, -1)[sub])  # sub = -1 picks the -1


# ----------------------------------------------------------------------------- optimal
def brute_force_best(iou, thr):
    """(max total IoU, (max pairs, then max total IoU)) over all one-to-one matchings with IoU >= thr."""
    a_n, b_n = iou.shape
    best_iou, best_count = 0.0, (0, 0.0)
    for k in range(min(a_n, b_n) + 1):
        for rows in itertools.combinations(range(a_n), k):
            for cols in itertools.permutations(range(b_n), k):
                vals = [iou[i, j] for i, j in zip(rows, cols)]
                if all(v >= thr for v in vals):
                    best_iou = max(best_iou, sum(vals))
                    best_count = max(best_count, (k, sum(vals)))
    return best_iou, best_count


def matching_value(match, iou, thr):
    pairs = [(i, j) for i, j in enumerate(match) if j >= 0]
    assert len({j for _, j in pairs}) == len(pairs)  # one to one
    assert all(iou[i, j] >= thr for i, j in pairs)
    return len(pairs), sum(iou[i, j] for i, j in pairs)


@pytest.mark.parametrize("seed", range(12))
def test_optimal_match_is_optimal_by_enumeration(seed):
    rng = np.random.default_rng(100 + seed)
    a_n, b_n = rng.integers(1, 5, 2)
    # crowded boxes: many overlapping candidates, where greedy can lose
    b = random_boxes(rng, b_n, spread=12)
    a = random_boxes(rng, a_n, spread=12)
    thr = 0.2
    iou = box_iou(a, b)
    best_iou, best_count = brute_force_best(iou, thr)
    count, total = matching_value(optimal_match(a, b, thr), iou, thr)
    assert total == pytest.approx(best_iou, abs=1e-12)
    count, total = matching_value(optimal_match(a, b, thr, objective="count"), iou, thr)
    assert count == best_count[0] and total == pytest.approx(best_count[1], abs=1e-12)
    g_count, g_total = matching_value(greedy_match(a, b, thr), iou, thr)
    assert g_count <= count and g_total <= best_iou + 1e-12


def test_optimal_beats_greedy_on_a_known_case():
    # greedy takes the best pair (a0, b0) and strands a1; the optimum pairs a0-b1, a1-b0
    b = np.array([[0, 0, 10, 10], [3, 0, 13, 10]])
    a = np.array([[1, 0, 11, 10], [-2, 0, 8, 10]])
    iou = box_iou(a, b)
    assert iou[0, 0] > iou[0, 1] >= 0.5 and iou[1, 0] >= 0.5 > iou[1, 1]
    np.testing.assert_array_equal(greedy_match(a, b, 0.5), [0, -1])
    np.testing.assert_array_equal(optimal_match(a, b, 0.5, objective="count"), [1, 0])
    np.testing.assert_array_equal(optimal_match(a, b, 0.5), [1, 0])  # also the larger total IoU here
    assert np.all(optimal_match(a, b[:0], 0.5) == -1) and optimal_match(a[:0], b, 0.5).shape == (0,)


def test_matching_rejects_bad_input():
    a = np.zeros((2, 4))
    with pytest.raises(ValueError, match="iou_threshold"):
        greedy_match(a, a, 0.0)
    with pytest.raises(ValueError, match="objective"):
        optimal_match(a, a, objective="area")
    with pytest.raises(ValueError, match="both classes"):
        greedy_match(a, a, classes_a=[0, 1])
    with pytest.raises(ValueError, match=r"\[A, 4\]"):
        greedy_match(np.zeros((2, 3)), a)
    with pytest.raises(ValueError, match="NaN"):
        greedy_match(np.full((2, 4), np.nan), a)
    assert np.all(greedy_match(np.full((2, 4), np.nan), a, valid_a=np.zeros(2, bool)) == -1)
