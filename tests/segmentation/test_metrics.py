"""Confusion matrix, IoU, mean IoU, pixel accuracy against scikit-learn and hand cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.metrics import confusion_matrix as sk_confusion

from bal import segmentation as seg


def labels(shape, c, seed, ignore_fraction=0.2):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, c, size=shape)
    target = rng.integers(0, c, size=shape)
    target[rng.uniform(size=shape) < ignore_fraction] = 255
    return pred.astype(np.int32), target.astype(np.int32)


def reference_iou(pred, target, c, ignore=255):
    """IoU per class by a Python loop over classes (NaN when the union is empty)."""
    keep = target != ignore
    p, t = pred[keep], target[keep]
    out = []
    for k in range(c):
        inter = np.sum((p == k) & (t == k))
        union = np.sum((p == k) | (t == k))
        out.append(inter / union if union else np.nan)
    return np.array(out)


def test_confusion_matrix_matches_sklearn_and_honours_the_ignore_label():
    c = 5
    pred, target = labels((3, 6, 7), c, seed=0)
    cm = np.asarray(seg.confusion_matrix(pred, target, c))
    keep = target != 255
    expected = sk_confusion(target[keep], pred[keep], labels=list(range(c)))
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int32 and cm.sum() == keep.sum()
    # ignore_label=None counts every pixel; another ignore value works too
    t2 = np.where(target == 255, 0, target)
    np.testing.assert_array_equal(seg.confusion_matrix(pred, t2, c, ignore_label=None),
                                  sk_confusion(t2.ravel(), pred.ravel(), labels=list(range(c))))
    t3 = np.where(target == 255, -1, target)
    np.testing.assert_array_equal(seg.confusion_matrix(pred, t3, c, ignore_label=-1), expected)


def test_iou_miou_and_accuracy_match_references():
    c = 6
    pred, target = labels((2, 8, 9), c, seed=1)
    pred[pred == 5] = 4          # class 5 never predicted ...
    target[target == 5] = 255    # ... nor present: its IoU is NaN
    cm = seg.confusion_matrix(pred, target, c)
    iou = np.asarray(seg.iou_per_class(cm))
    ref = reference_iou(pred, target, c)
    assert np.isnan(iou[5]) and np.isnan(ref[5])
    np.testing.assert_allclose(iou, ref, rtol=1e-6)
    np.testing.assert_allclose(seg.mean_iou(cm), np.nanmean(ref), rtol=1e-6)
    keep = target != 255
    np.testing.assert_allclose(seg.pixel_accuracy(cm), np.mean(pred[keep] == target[keep]), rtol=1e-6)
    # numpy int64 accumulation (large datasets) gives the same values
    np.testing.assert_allclose(seg.iou_per_class(np.asarray(cm, np.int64)), iou, rtol=1e-6)
    np.testing.assert_allclose(seg.mean_iou(np.asarray(cm, np.int64)), np.nanmean(ref), rtol=1e-6)


def test_hand_case_and_empty_cases():
    pred = np.array([[0, 0, 1, 1]])
    target = np.array([[0, 1, 1, 255]])
    cm = np.asarray(seg.confusion_matrix(pred, target, 3))
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    # class 0: TP 1, FP 1, FN 0 -> 1/2; class 1: TP 1, FP 0, FN 1 -> 1/2; class 2 absent -> NaN
    np.testing.assert_allclose(seg.iou_per_class(cm), [0.5, 0.5, np.nan])
    np.testing.assert_allclose(seg.mean_iou(cm), 0.5)
    np.testing.assert_allclose(seg.pixel_accuracy(cm), 2 / 3)
    empty = seg.confusion_matrix(pred, np.full_like(target, 255), 3)
    assert int(np.sum(empty)) == 0
    assert np.isnan(seg.mean_iou(empty)) and np.isnan(seg.pixel_accuracy(empty))


def test_confusion_is_jittable_and_sums_over_chunks():
    c = 4
    pred, target = labels((4, 5, 6), c, seed=2)
    f = jax.jit(lambda p, t: seg.mean_iou(seg.confusion_matrix(p, t, c)))
    whole = seg.confusion_matrix(pred, target, c)
    chunks = seg.confusion_matrix(pred[:2], target[:2], c) + seg.confusion_matrix(pred[2:], target[2:], c)
    np.testing.assert_array_equal(whole, chunks)
    np.testing.assert_allclose(f(jnp.asarray(pred), jnp.asarray(target)), seg.mean_iou(whole), rtol=1e-6)


def test_predictive_version_takes_the_argmax_of_the_mean_probability():
    rng = np.random.default_rng(3)
    s, n, h, w, c = 3, 2, 4, 5, 3
    lp = log_softmax(rng.normal(size=(s, n, h, w, c)) * 2, axis=-1).astype(np.float32)
    _, target = labels((n, h, w), c, seed=4)
    expected_pred = np.exp(lp.astype(np.float64)).mean(axis=0).argmax(axis=-1)
    np.testing.assert_array_equal(seg.predict_labels(lp), expected_pred)
    np.testing.assert_array_equal(seg.predict_labels(lp[0]), lp[0].argmax(-1))  # [N, H, W, C]
    cm = seg.predictive_confusion_matrix(lp, target)
    keep = target != 255
    np.testing.assert_array_equal(cm, sk_confusion(target[keep], expected_pred[keep], labels=list(range(c))))
    result = seg.evaluate(lp, target)
    np.testing.assert_allclose(result["mean_iou"], np.nanmean(reference_iou(expected_pred, target, c)), rtol=1e-6)
    assert len(result["iou"]) == c and 0 <= result["pixel_accuracy"] <= 1


def test_errors_name_the_bad_value():
    pred, target = labels((1, 3, 3), 3, seed=5)
    with pytest.raises(ValueError, match=r"target holds 7, outside \[0, 3\) or ignore_label=255"):
        seg.confusion_matrix(pred, np.where(np.arange(9).reshape(1, 3, 3) == 4, 7, target), 3)
    with pytest.raises(ValueError, match=r"pred holds 3"):
        seg.confusion_matrix(pred + 1, target, 3)
    with pytest.raises(ValueError, match="same shape"):
        seg.confusion_matrix(pred[:, :2], target, 3)
    with pytest.raises(ValueError, match="integer"):
        seg.confusion_matrix(pred.astype(np.float32), target, 3)
    with pytest.raises(ValueError, match="ignore_label=1 is a valid class id"):
        seg.confusion_matrix(pred, target, 3, ignore_label=1)
    with pytest.raises(ValueError, match=r"square \[C, C\]"):
        seg.iou_per_class(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[S, N, H, W, C\]"):
        seg.predict_labels(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"target must have shape \[N, H, W\]"):
        seg.predictive_confusion_matrix(np.zeros((2, 1, 3, 3, 3)), target[:, :2])
