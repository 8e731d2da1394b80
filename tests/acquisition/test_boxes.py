"""Box-level acquisition against NumPy / brute-force references: clusters, BALD, disagreement, targeting."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import bald
from bal.acquisition import boxes as acq
from bal.detection import box_iou, greedy_match

S, D, C = 5, 6, 4


def posterior_detections(seed, s=S, d=D, c=C, objects=4, p_detect=0.75, jitter=0.06, disagreement=1.0,
                         spurious=0.4):
    """One image's detections by ``s`` samples: jittered boxes of ``objects`` objects, some missed,
    some spurious, shuffled slots; padding holds NaN (it must never leak into a score)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 120, (objects, 2))
    obj = np.concatenate([xy, xy + rng.uniform(15, 50, (objects, 2))], axis=1)
    logits = rng.normal(0, 2, (objects, c))
    boxes = np.full((s, d, 4), np.nan, np.float32)
    probs = np.full((s, d, c), np.nan, np.float32)
    valid = np.zeros((s, d), bool)
    for i in range(s):
        rows = []
        for o in range(objects):
            if rng.uniform() < p_detect:
                size = np.tile(obj[o, 2:] - obj[o, :2], 2)
                rows.append((obj[o] + rng.normal(0, jitter, 4) * size, logits[o]))
        if rng.uniform() < spurious:  # a spurious box
            xy = rng.uniform(0, 120, 2)
            rows.append((np.concatenate([xy, xy + 20]), rng.normal(0, 2, c)))
        slots = rng.permutation(d)[: len(rows)]
        for slot, (box, lg) in zip(slots, rows):
            z = lg + rng.normal(0, disagreement, c)
            boxes[i, slot] = box
            probs[i, slot] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            valid[i, slot] = True
    return boxes, probs, valid


def reference_uncertainty(boxes, probs, valid, ref, ref_valid, thr=0.5):
    """Per-cluster (bald, localisation, miss) by a loop: numpy greedy matching, bal.acquisition.bald."""
    s = boxes.shape[0]
    members = [[] for _ in range(len(ref))]
    for i in range(s):
        match = greedy_match(np.nan_to_num(boxes[i]).astype(np.float64), np.nan_to_num(ref).astype(np.float64),
                             thr, valid_a=valid[i], valid_b=ref_valid)
        for d_idx, r in enumerate(match):
            if r >= 0:
                members[r].append((boxes[i, d_idx].astype(np.float64), probs[i, d_idx]))
    out = np.zeros((3, len(ref)))
    for r, m in enumerate(members):
        if not ref_valid[r]:
            continue
        out[2, r] = 1 - len(m) / s
        if len(m) >= 1:
            p = np.stack([q for _, q in m])[:, None, :]  # [m, 1, C]
            out[0, r] = float(bald(jnp.log(jnp.asarray(p)))[0])
            b = np.stack([x for x, _ in m])
            mean = b.mean(axis=0)
            size = np.tile(mean[2:] - mean[:2], 2)
            out[1, r] = np.mean(b.var(axis=0) / size**2)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_box_uncertainty_matches_a_loop_over_clusters(seed):
    boxes, probs, valid = posterior_detections(seed)
    u = acq.box_uncertainty(boxes, probs, valid)  # reference: sample 0
    expected = reference_uncertainty(boxes, probs, valid, boxes[0], valid[0])
    np.testing.assert_allclose(u.bald, expected[0], atol=2e-5)
    np.testing.assert_allclose(u.localisation, expected[1], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(u.miss, expected[2], atol=1e-6)
    np.testing.assert_array_equal(u.valid, valid[0])
    assert np.all(np.isfinite(u.bald)) and np.all(np.isfinite(u.mean_probs))
    assert np.all(np.asarray(u.miss)[valid[0]] < 1)  # sample 0 detects its own boxes
    assert np.any(np.asarray(u.bald) > 1e-3) and np.any(np.asarray(u.localisation) > 0)


def test_box_uncertainty_with_an_external_reference():
    boxes, probs, valid = posterior_detections(7)
    ref = np.concatenate([boxes[1][valid[1]], [[300, 300, 340, 340]]]).astype(np.float32)  # + a box nobody finds
    ref = np.concatenate([ref, np.zeros((D + 1 - len(ref), 4), np.float32)])
    ref_valid = np.arange(len(ref)) < valid[1].sum() + 1
    u = acq.box_uncertainty(boxes, probs, valid, reference_boxes=ref, reference_valid=ref_valid)
    expected = reference_uncertainty(boxes, probs, valid, ref, ref_valid)
    np.testing.assert_allclose(np.stack([u.bald, u.localisation, u.miss]), expected, rtol=1e-4, atol=2e-5)
    lonely = valid[1].sum()
    assert u.miss[lonely] == 1 and u.bald[lonely] == 0 and u.localisation[lonely] == 0
    assert not np.asarray(u.matched)[:, lonely].any()


def test_bald_is_bal_acquisition_bald_when_every_sample_detects_every_object():
    boxes, probs, valid = posterior_detections(3, p_detect=1.0, jitter=0.01, spurious=0.0)
    u = acq.box_uncertainty(boxes, probs, valid)
    match = np.asarray(u.match)
    r_idx = np.flatnonzero(valid[0])
    assert np.all(np.asarray(u.matched)[:, r_idx])
    # the matched distributions as an ordinary [S, R, C] posterior
    p = np.stack([[probs[i, np.flatnonzero(match[i] == r)[0]] for r in r_idx] for i in range(S)])
    np.testing.assert_allclose(u.bald[r_idx], bald(jnp.log(jnp.asarray(p))), atol=1e-6)
    np.testing.assert_allclose(u.mean_probs[r_idx], p.mean(axis=0), atol=1e-6)
    assert np.all(np.asarray(u.miss) == 0)


def test_agreeing_samples_are_certain_and_disagreement_raises_each_score():
    boxes, probs, valid = posterior_detections(4, p_detect=1.0, jitter=0.0, spurious=0.0)
    same = (np.repeat(boxes[:1], S, 0), np.repeat(probs[:1], S, 0), np.repeat(valid[:1], S, 0))
    u = acq.box_uncertainty(*same)
    for score in ("bald", "localisation", "miss", "total"):
        assert abs(float(acq.image_scores(u, score))) < 1e-6
    jittered = posterior_detections(4, p_detect=1.0, jitter=0.1)
    assert acq.image_scores(acq.box_uncertainty(*jittered), "localisation") > 1e-4
    b, p, v = (x.copy() for x in same)
    v[1:3, np.flatnonzero(v[0])[0]] = False  # two samples miss one object
    assert float(acq.image_scores(acq.box_uncertainty(b, p, v), "miss")) == pytest.approx(2 / S)
    p[1, v[0]] = np.roll(p[1, v[0]], 1, axis=-1)  # one sample changes its mind about the classes
    assert acq.image_scores(acq.box_uncertainty(b, p, v), "bald") > 1e-3


def test_match_to_reference_is_greedy_match_without_scores():
    boxes, _, valid = posterior_detections(5)
    ref, ref_valid = boxes[2], valid[2]
    got = np.asarray(acq.match_to_reference(boxes, valid, ref, ref_valid, 0.5))
    for i in range(S):
        np.testing.assert_array_equal(got[i], greedy_match(np.nan_to_num(boxes[i]), np.nan_to_num(ref), 0.5,
                                                           valid_a=valid[i], valid_b=ref_valid))


def test_batch_equals_image_by_image_and_sample_axis_stays_first():
    cases = [posterior_detections(10 + n) for n in range(3)]
    boxes, probs, valid = (np.stack([c[k] for c in cases], axis=1) for k in range(3))  # [S, N, D, ...]
    ub = acq.box_uncertainty_batch(boxes, probs, valid, iou_threshold=0.4)
    assert ub.bald.shape == (3, D) and ub.matched.shape == (S, 3, D) and ub.match.shape == (S, 3, D)
    assert ub.mean_probs.shape == (3, D, C)
    for n, case in enumerate(cases):
        u = acq.box_uncertainty(*case, iou_threshold=0.4)
        for field in ("bald", "localisation", "miss", "valid", "mean_probs"):
            np.testing.assert_allclose(getattr(ub, field)[n], getattr(u, field), atol=1e-6)
        np.testing.assert_array_equal(ub.matched[:, n], u.matched)
        np.testing.assert_array_equal(ub.match[:, n], u.match)
    scores = acq.image_scores(ub, "total", "mean")
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores[1], acq.image_scores(acq.box_uncertainty(*cases[1], iou_threshold=0.4),
                                                           "total", "mean"), atol=1e-6)


def test_box_uncertainty_jits_and_vmaps_without_validation():
    boxes, probs, valid = posterior_detections(6)
    fn = jax.jit(lambda b, p, v: acq.image_scores(acq.box_uncertainty(b, p, v, validate=False)))
    assert float(fn(boxes, probs, valid)) == pytest.approx(float(acq.image_scores(
        acq.box_uncertainty(boxes, probs, valid))), abs=1e-6)


def test_reductions_and_an_image_without_boxes():
    values = jnp.array([[0.2, 0.9, 0.4], [0.5, 0.1, 0.0], [0.3, 0.3, 0.3]])
    valid = jnp.array([[True, False, True], [False, False, False], [True, True, True]])
    np.testing.assert_allclose(acq.reduce_boxes(values, valid, "max"), [0.4, 0, 0.3])
    np.testing.assert_allclose(acq.reduce_boxes(values, valid, "mean"), [0.3, 0, 0.3])
    np.testing.assert_allclose(acq.reduce_boxes(values, valid, "sum"), [0.6, 0, 0.9])
    boxes, probs, valid = posterior_detections(8)
    valid[0] = False  # the reference (sample 0) found nothing
    u = acq.box_uncertainty(boxes, probs, valid)
    for score in acq.BOX_SCORES:
        for how in acq.BOX_REDUCTIONS:
            assert float(acq.image_scores(u, score, how)) == 0.0


# ----------------------------------------------------------------------------- disagreement
CAR, PED, TRUCK = 0, 1, 2


def pad(sets, k=4):
    """Pack per-image lists of (box, class) into padded [N, k, 4], [N, k], [N, k]."""
    n = len(sets)
    boxes, classes, valid = np.zeros((n, k, 4), np.float32), np.zeros((n, k), np.int32), np.zeros((n, k), bool)
    for i, items in enumerate(sets):
        for j, (box, cls) in enumerate(items):
            boxes[i, j], classes[i, j], valid[i, j] = box, cls, True
    return boxes, classes, valid


A, A2, B, FAR = [0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 40, 30], [100, 100, 110, 110]


def test_disagreement_hand_computed():
    img_a = [[(A, CAR), (B, PED)], [], [(A, CAR)], [], [(A, CAR), (B, PED)]]
    img_b = [[(A2, CAR), (B, TRUCK), (FAR, PED)], [], [], [(B, PED)], [(B, PED), (A, CAR)]]
    a, b = pad(img_a), pad(img_b)
    # image 0: one agreeing pair (A~A2, IoU 9/11, car), ped vs truck on B and FAR unmatched: 1 - 1/(2+3-1)
    expected = [0.75, 0.0, 1.0, 1.0, 0.0]
    for matching in acq.DISAGREEMENT_MATCHINGS:
        got = acq.disagreement(*a, *b, matching=matching)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        np.testing.assert_allclose(acq.disagreement(*b, *a, matching=matching), expected, atol=1e-6)
    # a stricter threshold breaks the A~A2 pair (IoU 0.82)
    assert float(acq.disagreement(*a, *b, iou_threshold=0.9)[0]) == 1.0


def brute_force_agreement(ba, ca, bb, cb, thr):
    ok = (box_iou(ba.astype(np.float64), bb.astype(np.float64)) >= thr) & (ca[:, None] == cb[None, :])
    best = 0
    for k in range(min(len(ba), len(bb)) + 1):
        for rows in itertools.combinations(range(len(ba)), k):
            for cols in itertools.permutations(range(len(bb)), k):
                if all(ok[i, j] for i, j in zip(rows, cols)):
                    best = max(best, k)
    return best


def test_disagreement_optimal_is_brute_force_and_never_above_greedy():
    rng = np.random.default_rng(0)
    n, k = 6, 4
    sets_a, sets_b = [], []
    for _ in range(n):
        xy = rng.uniform(0, 15, (k, 2))  # crowded: greedy can strand a box
        base = np.concatenate([xy, xy + 10], axis=1)
        sets_a.append([(base[j], rng.integers(0, 2)) for j in range(rng.integers(0, k + 1))])
        sets_b.append([(base[j] + rng.normal(0, 1.5, 4), rng.integers(0, 2)) for j in range(rng.integers(0, k + 1))])
    a, b = pad(sets_a, k), pad(sets_b, k)
    optimal = np.asarray(acq.disagreement(*a, *b, 0.4, matching="optimal"))
    greedy = np.asarray(acq.disagreement(*a, *b, 0.4))
    assert np.all(optimal <= greedy + 1e-6)
    for i in range(n):
        va, vb = a[2][i], b[2][i]
        m = brute_force_agreement(a[0][i][va], a[1][i][va], b[0][i][vb], b[1][i][vb], 0.4)
        union = va.sum() + vb.sum() - m
        assert optimal[i] == pytest.approx(1 - m / union if union else 0.0, abs=1e-6)
    jitted = jax.jit(lambda *x: acq.disagreement(*x, 0.4))(*a, *b)
    np.testing.assert_allclose(jitted, greedy)


# ----------------------------------------------------------------------------- targeting
def test_target_weight_and_class_targeted():
    probs = np.array([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]],
                      [[0.2, 0.5, 0.3], [np.nan, np.nan, np.nan]],
                      [[0.3, 0.3, 0.4], [0.3, 0.3, 0.4]]], np.float32)
    valid = np.array([[True, True], [True, False], [False, False]])
    np.testing.assert_allclose(acq.target_weight(probs, valid, [1]), [0.2, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(acq.target_weight(probs, valid, [1, 2], how="mean"), [0.6, 0.8, 0.0], atol=1e-6)
    scores = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(acq.class_targeted(scores, probs, valid, [1]), [0.2, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(acq.class_targeted(scores, probs, valid, [1], strength=0.5), [0.6, 1.5, 1.5],
                               atol=1e-6)
    np.testing.assert_allclose(acq.class_targeted(scores, probs, valid, 1, strength=0.0), scores)
    # with the cluster means of box_uncertainty
    boxes, p, v = posterior_detections(9)
    u = acq.box_uncertainty(boxes, p, v)
    w = acq.target_weight(u.mean_probs[None], u.valid[None], [0, 3])
    assert w.shape == (1,) and 0 < float(w[0]) <= 1


def test_rejects_bad_input():
    boxes, probs, valid = posterior_detections(1)
    with pytest.raises(ValueError, match="normalise"):
        acq.box_uncertainty(boxes, np.where(valid[..., None], probs * 2, probs), valid)
    with pytest.raises(ValueError, match=r"\[S, D, 4\]"):
        acq.box_uncertainty(boxes[0], probs[0], valid[0])
    with pytest.raises(ValueError, match="boolean"):
        acq.box_uncertainty(boxes, probs, valid.astype(int))
    with pytest.raises(ValueError, match="NaN"):
        acq.box_uncertainty(boxes, probs, np.ones_like(valid))
    with pytest.raises(ValueError, match="iou_threshold"):
        acq.box_uncertainty(boxes, probs, valid, iou_threshold=1.5)
    with pytest.raises(ValueError, match="reference_boxes"):
        acq.box_uncertainty(boxes, probs, valid, reference_boxes=np.zeros((3, 5), np.float32))
    u = acq.box_uncertainty(boxes, probs, valid)
    with pytest.raises(ValueError, match="unknown box score"):
        acq.image_scores(u, "variance")
    with pytest.raises(ValueError, match="unknown box reduction"):
        acq.image_scores(u, "bald", "median")
    a = pad([[(A, CAR)]])
    with pytest.raises(ValueError, match="matching"):
        acq.disagreement(*a, *a, matching="hungarian")
    with pytest.raises(ValueError, match="integer class ids"):
        acq.disagreement(a[0], a[1].astype(np.float32), a[2], *a)
    with pytest.raises(ValueError, match="out of range"):
        acq.target_weight(probs[0][None], valid[0][None], [C])
    with pytest.raises(ValueError, match="strength"):
        acq.class_targeted(jnp.ones(1), probs[0][None], valid[0][None], [0], strength=2)
