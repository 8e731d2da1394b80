"""The detection active-learning loop: records, top-k of the strategies' image scores, exact resume, settings."""

import dataclasses
import functools
import json
import shutil

import jax
import numpy as np
import pytest

from bal.acquisition import boxes as box_acq
from bal.active import kernel
from bal.active.config import HELP as CLASSIFICATION_HELP
from bal.active.config import config_from_dict
from bal.active.detection_config import HELP, DetectionConfig, parse_strategy
from bal.active.run import run
from bal.active.tasks.detection import (
    DetectionTask,
    box_scores,
    encode,
    heatmap_scores,
    load_detection_problem,
    mirror,
)
from bal.detection import centernet
from bal.predict import predict
from tests.conftest import strip_timing

# 32 x 48 images (8 x 12 output cells), a tiny CenterNet, 2 cycles of 4 images after 8
TINY = DetectionConfig(
    num_train=24, num_test=8, image_size=(32, 48), model_kwargs={"widths": [4, 8], "head_width": 4, "norm": "none"},
    posterior="mc_dropout", num_samples=3, strategies=("random", "bald_heatmap", "box_bald", "disagreement"),
    score_threshold=0.05, max_detections=10, initial_images=8, acquisition_images=4, cycles=2, epochs=None,
    steps=20, min_steps=0, batch_size=8, learning_rate=5e-3, seeds=(0,), chunk_size=8, quiet=True)



pytestmark = pytest.mark.usefixtures("rbg_keys")


@pytest.fixture(scope="module")
def problem():
    return load_detection_problem(TINY)


@pytest.fixture(scope="module")
def full_run(problem, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "run"
    return out, run(TINY, out, problem=problem)


def _by_strategy(records):
    by = {}
    for r in records:
        by.setdefault(r["strategy"], []).append(r)
    return by


def test_records_hold_ap_and_labeled_images_and_boxes(problem, full_run):
    _, records = full_run
    by = _by_strategy(records)
    assert sorted(by) == sorted(TINY.strategies)
    valid = problem.train.valid
    for strategy, recs in by.items():
        assert [r["cycle"] for r in recs] == [0, 1, 2] and recs[-1]["final"]
        labeled = set(DetectionTask(TINY, problem=problem).initial_labels(0).labeled.tolist())
        for r in recs:
            assert r["task"] == "detection" and "num_labels" not in r
            assert r["num_labeled_images"] == len(labeled) == 8 + 4 * r["cycle"]
            assert r["num_labeled_boxes"] == int(valid[sorted(labeled)].sum())
            for m in ("map", "ap50", "ap75"):
                assert 0.0 <= r[m] <= 1.0
            assert len(r["per_class_ap"]) == 5
            assert r["ap_car"] == r["per_class_ap"][0] and "ap_bus" in r
            assert r["train_steps"] == 20 and r["train_epochs"] == pytest.approx(20 * 8 / len(labeled), abs=1e-4)
            acquired = r["acquired"]
            assert len(acquired) == (0 if r["final"] else 4) and not labeled & set(acquired)
            labeled |= set(acquired)
    # cycle 0 is shared: every strategy starts from the same labeled images and model
    first = {json.dumps({k: v for k, v in by[s][0].items() if k in ("map", "ap50", "num_labeled_boxes")})
             for s in by}
    assert len(first) == 1


def _top_k(scores, k):
    """Highest first, NaN never, ties to the lowest index (as bal.acquisition.top_k)."""
    keys = np.where(np.isnan(scores), -np.inf, scores)
    return np.argsort(-keys, kind="stable")[:k]


_decode = jax.jit(functools.partial(centernet.decode, k=10))


def _bernoulli_bald_max(outputs):
    """Location BALD computed here in float64: per cell and class over the samples, summed over
    classes, max over cells."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(outputs[..., :5], np.float64)))  # [S, n, H', W', C]

    def h(q):
        q = np.clip(q, 1e-12, 1 - 1e-12)
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    bald = h(p.mean(0)) - h(p).mean(0)  # [n, H', W', C]
    return bald.sum(-1).max(axis=(1, 2))


@pytest.mark.parametrize("strategy", TINY.strategies)
def test_acquired_images_are_the_top_k_of_independently_computed_scores(problem, full_run, strategy):
    _, records = full_run
    task = DetectionTask(TINY, problem=problem)
    pool = task.initial_labels(0)
    for r in _by_strategy(records)[strategy][:2]:  # the two cycles that acquire
        init_key, fit_key, _, acq_key = jax.random.split(kernel.cycle_key(0, r["cycle"]), 4)
        variables, _ = task.train(init_key, fit_key, pool.labeled)
        cand = pool.unlabeled
        x = problem.train.images[cand]
        if strategy == "random":
            scores = np.asarray(jax.random.uniform(acq_key, (TINY.num_train,)))[cand]
        elif strategy == "bald_heatmap":
            outputs = predict(task.posterior, variables, x, acq_key, chunk_size=8)  # [S, n, 8, 12, 9]
            scores = _bernoulli_bald_max(outputs)
        elif strategy == "box_bald":
            outputs = predict(task.posterior, variables, x, acq_key, chunk_size=8)
            logits, size, offset = centernet.split_outputs(outputs)
            probs, size = jax.nn.sigmoid(logits), np.maximum(size, 0)
            per = [_decode(probs[s], size[s], offset[s]) for s in range(3)]
            ref = _decode(probs.mean(0), size.mean(0), offset.mean(0))
            unc = box_acq.box_uncertainty_batch(
                np.stack([d.boxes for d in per]), np.stack([centernet.class_distribution(d.class_probs) for d in per]),
                np.stack([d.scores >= 0.05 for d in per]), reference_boxes=ref.boxes,
                reference_valid=ref.scores >= 0.05, iou_threshold=0.5)
            scores = np.asarray(box_acq.image_scores(unc, "bald", "max"))
        else:  # disagreement: a second detector from the acquisition key
            k_init, k_fit = jax.random.split(jax.random.fold_in(acq_key, 1))
            other, _ = task.train(k_init, k_fit, pool.labeled)
            dets = []
            for v in (variables, other):
                out = predict(task.posterior, v, x, acq_key, chunk_size=8)
                logits, size, offset = centernet.split_outputs(out)
                dets.append(_decode(jax.nn.sigmoid(logits).mean(0), np.maximum(size, 0).mean(0), offset.mean(0)))
            a, b = dets
            scores = np.asarray(box_acq.disagreement(a.boxes, a.classes, a.scores >= 0.05, b.boxes, b.classes,
                                                     b.scores >= 0.05, 0.5))
        assert np.isfinite(scores).all()
        if strategy not in ("random", "disagreement"):
            assert np.ptp(scores) > 0  # the scores rank the images
        expected = cand[_top_k(np.asarray(scores, np.float64), 4)]
        assert r["acquired"] == expected.tolist()
        pool = task.apply(pool, np.asarray(r["acquired"]), strategy)


def test_resume_from_a_truncated_results_file_gives_identical_records(problem, full_run, tmp_path):
    out, reference = full_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    lines = (copy / "results.jsonl").read_text().splitlines(keepends=True)
    # the run "died" after disagreement's cycle 0 (records go random, bald_heatmap, box_bald, disagreement)
    (copy / "results.jsonl").write_text("".join(lines[:10]))
    with pytest.raises(ValueError, match="--resume"):
        run(TINY, copy, problem=problem)
    resumed = run(TINY, copy, problem=problem, resume=True)
    assert strip_timing(resumed) == strip_timing(reference)
    with pytest.raises(ValueError, match="differs in cycles"):
        run(dataclasses.replace(TINY, cycles=1), copy, problem=problem, resume=True)


def test_targeted_scores_weight_by_the_target_classes():
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(3, 2, 8, 12, 9)).astype(np.float32)
    outputs[..., 5:7] = np.abs(outputs[..., 5:7]) * 3  # sizes in cells
    heat = jax.jit(lambda o, strength: [heatmap_scores(o, "entropy", "top_mean", 0.9),
                                        heatmap_scores(o, "entropy", "top_mean", 0.9, (1,), strength)])
    plain, none = heat(outputs, 0.0)
    np.testing.assert_allclose(none, plain, rtol=1e-6)
    assert plain.shape == (2,) and np.isfinite(plain).all()
    some = heat(outputs, 1.0)[1]
    assert (some < plain).all()  # the target share of a cell's objectness is below 1
    box = jax.jit(lambda o, strength: [
        box_scores(o, "total", "sum", k=10, score_threshold=0.2, iou_threshold=0.3),
        box_scores(o, "total", "sum", k=10, score_threshold=0.2, iou_threshold=0.3, classes=(1, 2),
                   strength=strength)])
    b_plain, b_none = box(outputs, 0.0)
    np.testing.assert_allclose(b_none, b_plain, rtol=1e-6)
    b_some = box(outputs, 1.0)[1]
    assert (b_plain >= 0).all() and b_plain.sum() > 0 and (b_some <= b_plain + 1e-6).all()
    assert (b_some < b_plain).any()


def test_strategy_names():
    assert parse_strategy("random").kind == "random"
    assert parse_strategy("bald_heatmap") == ("bald_heatmap", "heatmap", "bald", False)
    assert parse_strategy("entropy_heatmap_targeted") == ("entropy_heatmap_targeted", "heatmap", "entropy", True)
    assert parse_strategy("box_localisation") == ("box_localisation", "box", "localisation", False)
    assert parse_strategy("box_total_targeted").targeted
    assert parse_strategy("disagreement_targeted") == ("disagreement_targeted", "disagreement", None, True)
    for bad in ("bald", "box_entropy", "heatmap", "random_targeted", "", "disagreement_heatmap"):
        with pytest.raises(ValueError) as err:
            parse_strategy(bad)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("changes, message", [
    ({"strategies": ("bald",)}, "unknown detection strategy 'bald'"),
    ({"strategies": ("box_bald_targeted",)}, "needs target_classes"),
    ({"strategies": ("box_bald",), "reduction": "top_mean"}, "does not apply to box strategies"),
    ({"reduction": "median"}, "unknown reduction"),
    ({"strategies": ("random", "random")}, "twice"),
    ({"epochs": 3}, "exactly one of epochs and steps"),
    ({"cycles": 5}, "need 28 images but num_train is 24"),
    ({"iou_threshold": 0.0}, "iou_threshold"),
    ({"score_threshold": 1.5}, "score_threshold"),
    ({"image_size": (8, 48)}, "image_size"),
    ({"model": "unet"}, "unknown detection model"),
    ({"posterior": "laplace"}, "unknown posterior family 'laplace'"),
    ({"posterior": "deterministic"}, r"strategies \['bald_heatmap', 'box_bald'\] measure disagreement"),
    ({"posterior": "ensemble", "num_members": 1}, "has 1; use"),
    ({"acquisition_images": 2.5}, "acquisition_images must be an integer"),
])
def test_bad_settings_raise_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as err:
        dataclasses.replace(TINY, **changes)
    assert "\n" not in str(err.value)


def test_target_class_out_of_range_is_refused_before_training(problem, tmp_path):
    config = dataclasses.replace(TINY, strategies=("box_bald_targeted",), target_classes=(7,))
    with pytest.raises(ValueError, match="target class 7 is out of range"):
        run(config, tmp_path / "run", problem=problem)
    assert not (tmp_path / "run").exists()


def test_config_from_settings_and_help():
    config = config_from_dict({"task": "detection", "steps": 50, "acquisition_images": 10.0, "num_train": 200,
                               "strategies": ["random", "box_miss"]})
    assert isinstance(config, DetectionConfig)
    assert config.epochs is None and config.steps == 50 and config.acquisition_images == 10
    assert config.strategies == ("random", "box_miss")
    assert DetectionConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown setting"):
        config_from_dict({"task": "detection", "grid_rows": 3})
    fields = {f.name for f in dataclasses.fields(DetectionConfig)}
    assert set(HELP) == fields  # one line per setting
    assert all(HELP[k] for k in fields) and set(CLASSIFICATION_HELP) != fields


def test_mirror_images_and_their_targets(problem):
    train = problem.train
    flipped = mirror(train)
    np.testing.assert_array_equal(flipped.images[:, :, ::-1], train.images)
    np.testing.assert_array_equal(mirror(flipped).boxes[train.valid], train.boxes[train.valid])
    np.testing.assert_array_equal(problem.flipped_targets, encode(flipped))
    # a mirrored box's width and height are kept; its heatmap peak moves to the mirrored column
    t, f = problem.train_targets, problem.flipped_targets
    sizes = [np.sort(a[..., 5:7][a[..., -1] == 1], axis=0) for a in (t, f)]
    np.testing.assert_allclose(*sizes)
    assert (t[..., -1].sum((1, 2)) == f[..., -1].sum((1, 2))).all()


def test_without_hflip_the_problem_holds_no_mirror_targets(problem):
    config = dataclasses.replace(TINY, hflip=False, num_train=12, initial_images=4, cycles=1)
    small = load_detection_problem(config)
    assert small.flipped_targets is None
    task = DetectionTask(config, problem=small)
    with pytest.raises(ValueError, match="hflip needs the problem's flipped_targets"):
        DetectionTask(dataclasses.replace(config, hflip=True), problem=small)
    pool = task.initial_labels(0)
    _, fields = task.train(jax.random.key(0), jax.random.key(1), pool.labeled)
    assert fields["train_steps"] == 20 and fields["train_epochs"] == 20 * 4 / 4
