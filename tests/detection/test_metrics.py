"""COCO box AP against pycocotools on randomized cases, and closed-form cases."""

import contextlib
import io

import numpy as np
import pytest

from bal.detection import evaluate, keep_top_detections
from bal.detection.metrics import IOU_THRESHOLDS, RECALL_THRESHOLDS


# ----------------------------------------------------------------------------- random cases
def random_case(seed, n=14, c=7, k_max=6, d_max=14, integer=False):
    """Padded GT / detections with jittered true positives, confused classes, false positives, score ties.

    Validity masks are not prefixes (padding interleaved). ``integer`` puts
    boxes on the pixel grid (exact IoU ties, duplicated boxes).
    """
    rng = np.random.default_rng(seed)
    gt_boxes = np.zeros((n, k_max, 4))
    gt_classes = np.zeros((n, k_max), np.int64)
    gt_valid = np.zeros((n, k_max), bool)
    det_boxes = np.zeros((n, d_max, 4))
    det_classes = np.zeros((n, d_max), np.int64)
    det_scores = np.zeros((n, d_max))
    det_valid = np.zeros((n, d_max), bool)
    for i in range(n):
        kind = rng.integers(0, 5)  # 0: no GT, 1: no detections, else both
        num_gt = 0 if kind == 0 else int(rng.integers(1, k_max + 1))
        slots = rng.choice(k_max, num_gt, replace=False)
        for s in slots:
            x0, y0 = rng.uniform(0, 200, 2)
            w, h = rng.uniform(8, 80, 2)
            gt_boxes[i, s] = [x0, y0, x0 + w, y0 + h]
            gt_classes[i, s] = rng.integers(0, c)
        if integer:
            gt_boxes[i] = np.round(gt_boxes[i])
        if num_gt >= 2 and rng.uniform() < 0.3:  # a duplicated GT box: equal IoUs to both
            gt_boxes[i, slots[1]] = gt_boxes[i, slots[0]]
            gt_classes[i, slots[1]] = gt_classes[i, slots[0]]
        gt_valid[i, slots] = True
        dets = []
        if kind != 1:
            for s in slots:
                for _ in range(rng.integers(0, 3)):
                    x0, y0, x1, y1 = gt_boxes[i, s]
                    w, h = x1 - x0, y1 - y0
                    sigma = rng.choice([0.0, 0.03, 0.1, 0.2, 0.35])
                    jit = rng.normal(0, sigma, 4) * np.array([w, h, w, h])
                    box = np.array([x0, y0, x1, y1]) + jit
                    box[2:] = np.maximum(box[2:], box[:2] + 1)
                    cls = gt_classes[i, s] if rng.uniform() < 0.8 else rng.integers(0, c)
                    dets.append((box, cls))
            for _ in range(rng.integers(0, 4)):  # false positives anywhere (also on images without GT)
                x0, y0 = rng.uniform(0, 200, 2)
                w, h = rng.uniform(8, 80, 2)
                dets.append((np.array([x0, y0, x0 + w, y0 + h]), rng.integers(0, c)))
        dets = dets[:d_max]
        slots = rng.choice(d_max, len(dets), replace=False)
        for s, (box, cls) in zip(slots, dets):
            det_boxes[i, s] = np.round(box) if integer else box
            det_classes[i, s] = cls
            # few distinct values: many ties in score, within and across images
            det_scores[i, s] = np.round(rng.uniform(), 1)
        det_valid[i, slots] = True
    # garbage in the padding must be ignored
    det_boxes[~det_valid] = rng.uniform(-5, 5, (np.sum(~det_valid), 4))
    det_classes[~det_valid] = 99
    det_scores[~det_valid] = np.nan
    gt_classes[~gt_valid] = -3
    return dict(det_boxes=det_boxes, det_scores=det_scores, det_classes=det_classes, det_valid=det_valid,
                gt_boxes=gt_boxes, gt_classes=gt_classes, gt_valid=gt_valid)


def coco_reference(case, num_classes, max_dets=100):
    """pycocotools' precision ``[T, R, C]`` (area all, maxDets[-1] = max_dets) and AP summaries."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    n = case["gt_boxes"].shape[0]

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    anns = []
    for i in range(n):
        for k in np.flatnonzero(case["gt_valid"][i]):
            b = xywh(case["gt_boxes"][i, k])
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(case["gt_classes"][i, k]) + 1,
                         "bbox": b, "area": b[2] * b[3], "iscrowd": 0})
    dets = []
    for i in range(n):
        for d in np.flatnonzero(case["det_valid"][i]):
            dets.append({"image_id": i + 1, "category_id": int(case["det_classes"][i, d]) + 1,
                         "bbox": xywh(case["det_boxes"][i, d]), "score": float(case["det_scores"][i, d])})
    assert dets, "loadRes cannot take an empty result list"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i + 1} for i in range(n)], "annotations": anns,
                      "categories": [{"id": c + 1} for c in range(num_classes)]}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, max_dets] if max_dets > 10 else [1, max(1, max_dets - 1), max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, 2]
    per_class = np.array([p[p > -1].mean() if (p > -1).any() else -1.0
                          for p in np.moveaxis(precision, 2, 0)])
    # summarize's AP@[.50:.95] line reads maxDets=100 literally; with another cap average the array as it does
    ap = ev.stats[0] if max_dets == 100 else (precision[precision > -1].mean() if (precision > -1).any() else -1.0)
    return {"map": ap, "ap50": ev.stats[1], "ap75": ev.stats[2], "per_class": per_class,
            "precision": precision, "recall": ev.eval["recall"][:, :, 0, 2]}


def deviation(ours, ref):
    return max(abs(ours.map - ref["map"]), abs(ours.ap50 - ref["ap50"]), abs(ours.ap75 - ref["ap75"]),
               float(np.max(np.abs(ours.per_class - ref["per_class"]))))


@pytest.mark.parametrize("seed,integer", [(s, s % 3 == 2) for s in range(9)])
def test_matches_pycocotools_on_random_cases(seed, integer):
    case = random_case(seed, integer=integer)
    ours = evaluate(**case, num_classes=7)
    ref = coco_reference(case, 7)
    assert deviation(ours, ref) <= 1e-3
    # the whole precision / recall arrays, not just the summaries
    np.testing.assert_allclose(ours.precision, ref["precision"], atol=1e-9)
    np.testing.assert_allclose(ours.recall, ref["recall"], atol=1e-9)
    assert 0 < ours.map < 1 and ours.ap50 >= ours.map >= 0


def test_matches_pycocotools_with_a_small_max_dets():
    case = random_case(11, n=8, c=3, d_max=20)
    ours = evaluate(**case, num_classes=3, max_dets=2)
    ref = coco_reference(case, 3, max_dets=2)
    assert deviation(ours, ref) <= 1e-3
    np.testing.assert_allclose(ours.precision, ref["precision"], atol=1e-9)
    assert ours.map < evaluate(**case, num_classes=3).map  # the cap removed true positives


def test_matches_pycocotools_with_classes_without_ground_truth():
    case = random_case(5, n=6, c=3)
    case["det_classes"][case["det_valid"]] = 5  # every detection of a class without GT ...
    case["det_classes"][0, np.flatnonzero(case["det_valid"][0])[:1]] = 6  # ... and of another one
    case["gt_classes"][case["gt_valid"]] %= 3
    ours = evaluate(**case, num_classes=9)
    ref = coco_reference(case, 9)
    assert deviation(ours, ref) <= 1e-3
    assert ours.per_class[5] == -1 and ours.per_class[6] == -1 and ours.per_class[8] == -1
    assert ours.map == 0.0  # the classes with GT have no detection


# ----------------------------------------------------------------------------- closed form
def one_class(gt, dets, scores, images=None, gt_image=0):
    """Arrays for one class; ``images`` puts detection ``d`` in image ``images[d]``, the GT in ``gt_image``."""
    images = np.zeros(len(dets), int) if images is None else np.asarray(images)
    n = images.max() + 1
    d_max = max(np.bincount(images))
    det_boxes = np.zeros((n, d_max, 4))
    det_scores = np.zeros((n, d_max))
    det_valid = np.zeros((n, d_max), bool)
    fill = np.zeros(n, int)
    for box, s, i in zip(dets, scores, images):
        det_boxes[i, fill[i]], det_scores[i, fill[i]], det_valid[i, fill[i]] = box, s, True
        fill[i] += 1
    gt_boxes = np.zeros((n, len(gt), 4))
    gt_boxes[gt_image] = gt
    gt_valid = np.zeros((n, len(gt)), bool)
    gt_valid[gt_image] = True
    return dict(det_boxes=det_boxes, det_scores=det_scores, det_classes=np.zeros((n, d_max), int),
                det_valid=det_valid, gt_boxes=gt_boxes, gt_classes=np.zeros((n, len(gt)), int), gt_valid=gt_valid)


A, B, FAR = [0, 0, 10, 10], [20, 20, 40, 30], [100, 100, 110, 110]


def test_perfect_detections_score_one():
    case = random_case(3)
    perfect = dict(case, det_boxes=case["gt_boxes"], det_classes=case["gt_classes"],
                   det_valid=case["gt_valid"], det_scores=np.ones(case["gt_valid"].shape))
    m = evaluate(**perfect, num_classes=9)
    assert m.map == pytest.approx(1) and m.ap50 == pytest.approx(1) and m.ap75 == pytest.approx(1)
    present = np.isin(np.arange(9), case["gt_classes"][case["gt_valid"]])
    np.testing.assert_allclose(m.per_class[present], 1)
    np.testing.assert_array_equal(m.per_class[~present], -1)
    assert m.to_dict()["per_class"][8] == -1.0


def test_a_false_positive_ranked_first_halves_ap():
    # ranking [FP, TP] with 1 GT: precision [0, 1/2] -> monotone [1/2, 1/2] at recall 0 and 1
    m = evaluate(**one_class([A], [FAR, A], [0.9, 0.8]), num_classes=1)
    assert m.map == pytest.approx(0.5) and m.ap50 == pytest.approx(0.5) and m.ap75 == pytest.approx(0.5)
    # ranking [TP, FP, TP] with 2 GT: precision 1 up to recall 0.5 (51 thresholds), 2/3 after (50)
    m = evaluate(**one_class([A, B], [A, FAR, B], [0.9, 0.8, 0.7]), num_classes=1)
    assert m.map == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)


def test_iou_thresholds_split_ap50_and_ap75():
    # a detection of IoU 0.6 with the only GT: a TP at 0.50, 0.55, 0.60 (3 of 10 thresholds)
    det = [0, 0, 6, 10]  # IoU with A = 60 / 100
    m = evaluate(**one_class([A], [det], [0.5]), num_classes=1)
    assert m.ap50 == pytest.approx(1) and m.ap75 == 0 and m.map == pytest.approx(0.3)
    np.testing.assert_array_equal(m.recall[:, 0], [1, 1, 1] + [0] * 7)


def test_equal_scores_rank_by_image_then_index():
    # a TP and an FP of equal score: the one in the earlier image is ranked first
    assert evaluate(**one_class([A], [A, FAR], [0.5, 0.5], images=[0, 1]), num_classes=1).map == pytest.approx(1)
    assert evaluate(**one_class([A], [FAR, A], [0.5, 0.5], images=[0, 1], gt_image=1), num_classes=1).map == \
        pytest.approx(0.5)
    # within an image, equal scores keep the detection order
    assert evaluate(**one_class([A], [FAR, A], [0.5, 0.5]), num_classes=1).map == pytest.approx(0.5)
    assert evaluate(**one_class([A], [A, FAR], [0.5, 0.5]), num_classes=1).map == pytest.approx(1)


def test_no_detections_and_no_ground_truth():
    case = random_case(4, n=5)
    none = dict(case, det_valid=np.zeros_like(case["det_valid"]))
    m = evaluate(**none, num_classes=7)
    assert m.map == 0 and m.ap50 == 0
    empty = dict(case, gt_valid=np.zeros_like(case["gt_valid"]))
    m = evaluate(**empty, num_classes=7)
    assert m.map == -1 and np.all(m.per_class == -1)
    assert m.precision.shape == (len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), 7)


def test_keep_top_detections_caps_per_image():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.7], [0.3, 0.2, 0.1, 0.0, 0.0]])
    valid = np.array([[True, True, True, True, True], [True, False, True, False, False]])
    keep = keep_top_detections(scores, valid, 2)
    np.testing.assert_array_equal(keep, [[False, True, False, True, False], [True, False, True, False, False]])


def test_rejects_bad_input():
    case = random_case(0, n=3)
    with pytest.raises(ValueError, match="outside"):
        evaluate(**case, num_classes=2)
    bad = dict(case, gt_boxes=case["gt_boxes"][..., [2, 1, 0, 3]])
    with pytest.raises(ValueError, match="x1 < x0"):
        evaluate(**bad, num_classes=7)
    with pytest.raises(ValueError, match="images"):
        evaluate(**dict(case, gt_boxes=case["gt_boxes"][:2], gt_classes=case["gt_classes"][:2],
                        gt_valid=case["gt_valid"][:2]), num_classes=7)
    with pytest.raises(ValueError, match="det_scores"):
        evaluate(**dict(case, det_scores=np.where(case["det_valid"], np.nan, 0)), num_classes=7)


@pytest.mark.parametrize("gt_order,ap50", [((0, 1), 1.0), ((1, 0), 51 / 101)])
def test_equal_ious_go_to_the_later_ground_truth_box(gt_order, ap50):
    # det 1 overlaps both GT boxes with IoU 0.6 exactly; det 2 (lower score) is GT box 0.
    # pycocotools gives det 1 the *later* GT box: det 2 is then a TP only if that was GT box 1.
    gts = np.array([[0, 0, 10, 10], [5, 0, 15, 10]])[list(gt_order)]
    case = one_class(gts, [[2.5, 0, 12.5, 10], [0, 0, 10, 10]], [0.9, 0.8])
    m = evaluate(**case, num_classes=1)
    assert m.ap50 == pytest.approx(ap50)
    ref = coco_reference(case, 1)
    assert deviation(m, ref) <= 1e-12
