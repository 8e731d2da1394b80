"""The CenterNet detector: output layout for every kind and mode, Bayesian heads only, and a short training run."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bal.models as bm
from bal.detection import centernet as cn
from bal.models import centernet as model_lib

from .model_testing import fast_key, random_variables

C = 3
MODES = (dict(train=True), dict(train=False, sample=True), dict(train=False, sample=False))


def shapes(model, x_shape, **mode):
    def run(k):
        x = jnp.zeros(x_shape)
        variables = model.init({"params": k, "noise": k, "dropout": k}, x)
        return model.apply(variables, x, rngs={"noise": k, "dropout": k}, return_embedding=True,
                           mutable=["batch_stats", "kl"], **mode)

    return jax.tree.map(lambda a: a.shape, jax.eval_shape(run, jax.random.key(0)))


@pytest.mark.parametrize("kind", bm.KINDS)
def test_outputs_at_stride_4_for_every_kind_and_mode(kind):
    model = bm.build("centernet", C, kind=kind, widths=(4, 8, 8), head_width=4)
    assert isinstance(model, model_lib.CenterNet) and bm.MODELS["centernet"] is model_lib.CenterNet
    for hw, out_hw in [((96, 128), (24, 32)), ((48, 64), (12, 16)), ((50, 66), (13, 17)), ((5, 3), (2, 1))]:
        for mode in MODES:
            (outputs, kl) = shapes(model, (2, *hw, 3), **mode)
            assert outputs == ((2, *out_hw, C + 4), (2, *out_hw, 8)), (hw, mode)
            # only the six head convolutions are Bayesian: KL of the heads, nothing from the backbone
            expected = {f"{h}_{p}" for h in ("heatmap", "size", "offset") for p in ("conv", "out")}
            assert set(kl.get("kl", {})) == (expected if kind == "variational" else set())


def test_parameter_layout_bias_init_and_output_helpers():
    model = bm.build("centernet", C, kind="variational")
    x = jnp.zeros((1, 96, 128, 3))
    params = jax.eval_shape(lambda k: model.init(k, x), jax.random.key(0))["params"]
    assert params["stage1_conv1"] == {"kernel": jax.ShapeDtypeStruct((3, 3, 3, 16), jnp.float32)}  # deterministic
    assert params["up2_conv"]["kernel"].shape == (3, 3, 64 + 32, 32)
    assert set(params["heatmap_out"]) == {"kernel_mean", "kernel_logvar", "bias"}
    assert params["heatmap_out"]["kernel_mean"].shape == (1, 1, 32, C)
    assert params["size_out"]["kernel_mean"].shape == params["offset_out"]["kernel_mean"].shape == (1, 1, 32, 2)
    det = bm.build("centernet", C, widths=(4, 8), head_width=4, norm="none")
    variables = jax.jit(det.init)(fast_key(0), jnp.zeros((1, 16, 16, 3)))  # rbg: threefry inits compile slowly
    np.testing.assert_allclose(variables["params"]["heatmap_out"]["bias"], -2.19)  # sigmoid ~ 0.1
    np.testing.assert_array_equal(variables["params"]["size_out"]["bias"], 0.0)
    out = jnp.arange(2 * 3 * (C + 4), dtype=jnp.float32).reshape(2, 1, 3, C + 4)
    hm, size, offset = model_lib.split_outputs(out)
    assert hm.shape == (2, 1, 3, C) and size.shape == offset.shape == (2, 1, 3, 2)
    np.testing.assert_array_equal(model_lib.merge_outputs(hm, size, offset), out)
    assert model_lib.split_outputs(jnp.stack([out] * 5))[0].shape == (5, 2, 1, 3, C)  # posterior samples
    np.testing.assert_allclose(model_lib.heatmap_probs(out), jax.nn.sigmoid(hm))
    assert model_lib.num_output_channels(C) == C + 4 and model_lib.output_hw((50, 66)) == (13, 17)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['width'\]"):
        bm.build("centernet", C, width=8)
    with pytest.raises(ValueError, match="widths must be"):
        shapes(bm.build("centernet", C, widths=(8,)), (1, 16, 16, 3))
    with pytest.raises(ValueError, match="unknown norm"):
        shapes(bm.build("centernet", C, norm="layer"), (1, 16, 16, 3))
    with pytest.raises(ValueError, match="dropout rate"):
        shapes(bm.build("centernet", C, dropout_rate=1.0), (1, 16, 16, 3))
    with pytest.raises(ValueError, match=r"images \[N, H, W, C\]"):
        shapes(bm.build("centernet", C), (16, 16, 3))


@pytest.mark.parametrize("kind", ["mc_dropout", "variational"])
def test_posterior_samples_differ_share_one_draw_and_mean_mode_is_deterministic(kind):
    model = bm.build("centernet", C, kind=kind, widths=(4, 8), head_width=4, norm="none", dropout_rate=0.3)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    x[1] = x[0]  # identical images: one posterior sample is one network for the whole batch
    variables = random_variables(model, jnp.asarray(x))

    @jax.jit
    def run(variables):
        def apply(key, **kw):
            return model.apply(variables, x, rngs={"noise": key, "dropout": jax.random.fold_in(key, 1)}, **kw)

        k1, k2 = fast_key(1), fast_key(2)
        return [apply(k1), apply(k2), apply(k1, sample=True), apply(k1, sample=True), apply(k2, sample=True)]

    mean, mean2, a, b, c = run(variables)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-6) and not np.allclose(a, mean, atol=1e-6)
    np.testing.assert_allclose(a[0], a[1], rtol=1e-5, atol=1e-6)


# --- a short training run on synthetic rectangles -------------------------------------------------

COLOURS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]], np.float32)


def rectangles(n, seed, hw=(48, 64), max_objects=3):
    """``n`` noisy images with 1-3 non-overlapping filled rectangles of 3 colours (= classes)."""
    rng = np.random.default_rng(seed)
    height, width = hw
    x = (0.2 + rng.normal(0.0, 0.1, size=(n, height, width, 3))).astype(np.float32)
    boxes = np.zeros((n, max_objects, 4))
    classes = np.zeros((n, max_objects), np.int64)
    valid = np.zeros((n, max_objects), bool)
    for i in range(n):
        for j in range(rng.integers(1, max_objects + 1)):
            for _ in range(20):  # rejection-sample a rectangle that overlaps none placed so far
                w, h = rng.integers(8, 25), rng.integers(8, 21)
                x0, y0 = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
                box = np.array([x0, y0, x0 + w, y0 + h])
                placed = boxes[i][valid[i]]
                if not ((np.minimum(box[2], placed[:, 2]) > np.maximum(box[0], placed[:, 0]))
                        & (np.minimum(box[3], placed[:, 3]) > np.maximum(box[1], placed[:, 1]))).any():
                    break
            else:
                continue
            classes[i, j] = rng.integers(0, len(COLOURS))
            x[i, box[1]:box[3], box[0]:box[2]] = COLOURS[classes[i, j]]
            boxes[i, j], valid[i, j] = box, True
    return x, boxes, classes, valid


def iou(a, b):
    """IoU of boxes ``[..., 4]`` with one box ``[4]`` (x0, y0, x1, y1)."""
    iw = np.clip(np.minimum(a[..., 2], b[2]) - np.maximum(a[..., 0], b[0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[3]) - np.maximum(a[..., 1], b[1]), 0, None)
    inter = iw * ih
    return inter / ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_a_short_training_run_detects_the_rectangles():
    x, boxes, classes, valid = rectangles(256, seed=0)
    targets = cn.encode_targets(boxes, classes, valid, num_classes=3, input_hw=x.shape[1:3]).packed()
    model = bm.build("centernet", 3, widths=(8, 16, 32), head_width=16, norm="none")
    variables = jax.jit(model.init)(fast_key(0), x[:1])  # rbg keys: threefry initialisers compile slowly
    optimizer = optax.adam(2e-3)

    @jax.jit
    def step(state, xb, yb, key):
        variables, opt_state = state

        def objective(params):
            outputs = model.apply({"params": params}, xb, train=True, rngs={"dropout": key})
            return cn.loss(outputs, yb)

        value, grads = jax.value_and_grad(objective)(variables["params"])
        updates, opt_state = optimizer.update(grads, opt_state, variables["params"])
        return ({"params": optax.apply_updates(variables["params"], updates)}, opt_state), value

    state = (variables, optimizer.init(variables["params"]))
    rng = np.random.default_rng(1)
    losses = []
    for t in range(200):
        batch = rng.integers(0, len(x), 16)
        state, value = step(state, x[batch], targets[batch], fast_key(t))
        losses.append(float(value))
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5])

    x_test, boxes_test, classes_test, valid_test = rectangles(32, seed=3)
    dets = jax.jit(lambda v, x: cn.decode_outputs(model.apply(v, x), k=10))(state[0], x_test)
    found, total = 0, int(valid_test.sum())
    for i, j in zip(*np.nonzero(valid_test)):
        keep = (np.asarray(dets.scores[i]) > 0.3) & (np.asarray(dets.classes[i]) == classes_test[i, j])
        found += bool(keep.any() and iou(np.asarray(dets.boxes[i])[keep], boxes_test[i, j]).max() > 0.5)
    assert found / total > 0.7, (found, total)  # measured: ~0.95 after 150-250 steps
