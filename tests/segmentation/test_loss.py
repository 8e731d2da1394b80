"""Masked pixel cross-entropy: equals optax over labeled pixels, exactly zero gradient elsewhere."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bal.segmentation import masked_cross_entropy, masked_cross_entropy_sum

N, H, W, C = 2, 4, 5, 3


def batch(seed=0):
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(rng.normal(size=(N, H, W, C)) * 3, jnp.float32)
    labels = rng.integers(0, C, size=(N, H, W))
    labels[rng.uniform(size=labels.shape) < 0.25] = 255
    mask = rng.uniform(size=labels.shape) < 0.6
    return logits, jnp.asarray(labels, jnp.int32), jnp.asarray(mask)


def reference(logits, labels, valid):
    """optax's integer-label cross-entropy averaged over the labeled pixels."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits[valid], labels[valid])
    return jnp.mean(ce)


def test_value_and_gradient_match_optax_on_labeled_pixels_and_vanish_elsewhere():
    logits, labels, mask = batch()
    valid = np.asarray((labels != 255) & mask)
    assert 0 < valid.sum() < valid.size
    loss, grad = jax.value_and_grad(masked_cross_entropy)(logits, labels, mask)
    ref_loss, ref_grad_valid = jax.value_and_grad(reference)(logits, labels, valid)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    grad = np.asarray(grad)
    assert (grad[~valid] == 0).all()  # exactly zero at unlabeled and ignored pixels
    np.testing.assert_allclose(grad[valid], np.asarray(ref_grad_valid)[valid], rtol=1e-5, atol=1e-7)
    total, count = masked_cross_entropy_sum(logits, labels, mask)
    assert float(count) == valid.sum()
    np.testing.assert_allclose(total / count, ref_loss, rtol=1e-6)


def test_garbage_logits_at_unlabeled_pixels_do_not_leak():
    logits, labels, mask = batch(1)
    valid = np.asarray((labels != 255) & mask)
    poisoned = jnp.where(jnp.asarray(valid)[..., None], logits, jnp.nan)
    loss, grad = jax.value_and_grad(masked_cross_entropy)(poisoned, labels, mask)
    np.testing.assert_allclose(loss, masked_cross_entropy(logits, labels, mask), rtol=1e-6)
    assert np.isfinite(np.asarray(grad)).all() and (np.asarray(grad)[~valid] == 0).all()


def test_no_labeled_pixel_gives_zero_loss_and_finite_zero_gradient():
    logits, labels, _ = batch(2)
    for kwargs in (dict(mask=jnp.zeros((N, H, W), bool)), dict(labels=jnp.full((N, H, W), 255, jnp.int32))):
        args = dict(labels=labels, mask=None) | kwargs
        loss, grad = jax.value_and_grad(lambda z, args=args: masked_cross_entropy(z, **args))(logits)
        assert float(loss) == 0.0 and np.isfinite(np.asarray(grad)).all() and not np.asarray(grad).any()
        assert float(masked_cross_entropy_sum(logits, **args)[1]) == 0.0


def test_sums_normalise_across_batches_and_jit():
    logits, labels, mask = batch(3)
    f = jax.jit(masked_cross_entropy_sum)
    parts = [f(logits[i:i + 1], labels[i:i + 1], mask[i:i + 1]) for i in range(N)]
    total, count = f(logits, labels, mask)
    np.testing.assert_allclose(sum(p[0] for p in parts), total, rtol=1e-6)
    assert float(sum(p[1] for p in parts)) == float(count)
    # a shared [H, W] mask broadcasts over the batch; ignore_label=None counts every pixel
    np.testing.assert_allclose(masked_cross_entropy(logits, labels, mask[0]),
                               reference(logits, labels, np.asarray((labels != 255) & mask[0])), rtol=1e-6)
    clean = jnp.where(labels == 255, 0, labels)
    np.testing.assert_allclose(masked_cross_entropy(logits, clean, ignore_label=None),
                               jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, clean)), rtol=1e-6)


def test_class_weights_follow_the_weighted_mean_convention():
    logits, labels, mask = batch(4)
    weights = jnp.asarray([0.5, 2.0, 1.0])
    valid = np.asarray((labels != 255) & mask)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits[valid], labels[valid])
    w = weights[labels[valid]]
    np.testing.assert_allclose(masked_cross_entropy(logits, labels, mask, class_weights=weights),
                               jnp.sum(w * ce) / jnp.sum(w), rtol=1e-6)


def test_errors():
    logits, labels, mask = batch(5)
    with pytest.raises(ValueError, match=r"labels hold 3, outside \[0, 3\) and not the ignore label 255"):
        masked_cross_entropy(logits, jnp.where(labels == 255, 3, labels))
    with pytest.raises(ValueError, match=r"labels must have shape logits.shape\[:-1\]"):
        masked_cross_entropy(logits, labels[:, :2])
    with pytest.raises(ValueError, match="integers"):
        masked_cross_entropy(logits, labels.astype(jnp.float32))
    with pytest.raises(ValueError, match="boolean"):
        masked_cross_entropy(logits, labels, mask.astype(jnp.int32))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_cross_entropy(logits, labels, mask[:, :2])
    with pytest.raises(ValueError, match=r"class_weights must have shape \[C\]"):
        masked_cross_entropy(logits, labels, class_weights=jnp.ones(4))
