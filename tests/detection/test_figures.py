"""Training curves in the detection records (exact resume), the report of a real tiny run, and the
two-model disagreement figure (from synthetic detections and replayed from a run directory)."""

import dataclasses
import json
import shutil
import subprocess
import sys

import jax
import matplotlib.image
import numpy as np
import pytest

from bal.active.detection_config import DetectionConfig
from bal.active.run import run
from bal.active.tasks.detection import DetectionTask, curve_point, load_detection_problem, training_segments
from bal.detection.centernet import Detections
from bal.detection.figures import disagreement_figure, run_disagreement_figure, run_examples, select_examples
from bal.report import compare_detection, plot_learning_curves, training_curves
from tests.conftest import strip_timing

# 8 initial images, 2 cycles of 4; 3 epochs of ceil(8 / 4) = 2 steps at cycle 0, a curve point every epoch
TINY = DetectionConfig(
    num_train=24, num_test=8, image_size=(32, 48), model_kwargs={"widths": [4, 8], "head_width": 4, "norm": "none"},
    posterior="mc_dropout", num_samples=3, strategies=("random", "disagreement"), score_threshold=0.2,
    max_detections=6, initial_images=8, acquisition_images=4, cycles=2, epochs=3, min_steps=0, batch_size=4,
    learning_rate=5e-3, seeds=(0, 1), chunk_size=8, quiet=True, curve_every=1, curve_cycles=(0, -1))


pytestmark = pytest.mark.usefixtures("rbg_keys")


@pytest.fixture(scope="module")
def problem():
    return load_detection_problem(TINY)


@pytest.fixture(scope="module")
def tiny_run(problem, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "run"
    return out, run(TINY, out, problem=problem)


# ----------------------------------------------------------------------------- training curves
def test_training_segments():
    assert training_segments(70, 30) == [30, 30, 10]
    assert training_segments(60, 30) == [30, 30]
    assert training_segments(20, 0) == training_segments(20, 20) == training_segments(20, 50) == [20]
    with pytest.raises(ValueError, match="steps must be >= 1"):
        training_segments(0, 5)


def test_curve_point_keeps_the_ap_metrics():
    m = {"map": 0.2, "ap50": 0.4, "ap75": 0.1, "per_class_ap": [0.3, -1.0], "ap_car": 0.3, "ap_bus": -1.0,
         "train_loss": 1.0}
    assert curve_point(m, 21, 7) == {"epoch": 3.0, "step": 21, "map": 0.2, "ap50": 0.4, "ap75": 0.1,
                                     "per_class_ap": [0.3, -1.0], "ap_car": 0.3, "ap_bus": -1.0}


def test_curves_are_recorded_in_the_chosen_cycles_and_end_at_the_cycle_metrics(tiny_run):
    _, records = tiny_run
    assert len(records) == 2 * 2 * 3
    for r in records:
        if r["cycle"] == 1:
            assert "curve" not in r
            continue
        per_epoch = -(-r["num_labeled_images"] // 4)
        assert [p["epoch"] for p in r["curve"]] == [1.0, 2.0, 3.0]
        assert [p["step"] for p in r["curve"]] == [per_epoch, 2 * per_epoch, 3 * per_epoch] \
            and r["train_steps"] == 3 * per_epoch
        last = r["curve"][-1]
        assert {k: last[k] for k in ("map", "ap50", "ap75", "per_class_ap", "ap_pedestrian")} == \
            {k: r[k] for k in ("map", "ap50", "ap75", "per_class_ap", "ap_pedestrian")}
        assert all(0 <= p["map"] <= 1 for p in r["curve"])
    # cycle 0 is shared by the strategies of a seed, its curve too
    for seed in (0, 1):
        c0 = [r["curve"] for r in records if r["seed"] == seed and r["cycle"] == 0]
        assert len(c0) == 2 and c0[0] == c0[1]


def test_resume_with_curves_gives_identical_records(problem, tiny_run, tmp_path):
    out, records = tiny_run
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    lines = (partial / "results.jsonl").read_text().splitlines(keepends=True)
    (partial / "results.jsonl").write_text("".join(lines[:4]))  # seed 0 done; seed 1 not started
    resumed = run(TINY, partial, resume=True, problem=problem)
    assert strip_timing(resumed) == strip_timing(records)


def test_segmented_training_differs_from_one_fit_only_by_its_keys(problem):
    """The curve's segments carry the Adam state: the model is trained as long, from other keys."""
    task = DetectionTask(TINY, problem=problem)
    labeled = task.initial_labels(0).labeled
    keys = jax.random.split(jax.random.key(3), 3)
    _, plain = task.train(keys[0], keys[1], labeled)
    _, curved = task.train(keys[0], keys[1], labeled, curve_key=keys[2])
    assert plain["train_steps"] == curved["train_steps"] == 6 and "curve" not in plain
    assert [p["step"] for p in curved["curve"]] == [2, 4]  # the last point is the caller's evaluation
    one = dataclasses.replace(TINY, curve_every=5)  # a segment longer than training: one fit, same keys
    _, single = DetectionTask(one, problem=problem).train(keys[0], keys[1], labeled, curve_key=keys[2])
    assert single["curve"] == [] and single["train_loss"] == plain["train_loss"]


@pytest.mark.parametrize("changes,message", [
    (dict(curve_cycles=(0, 3)), "curve_cycles must be distinct cycles in \\[0, cycles=2\\]"),
    (dict(curve_cycles=(-4,)), "curve_cycles must be distinct cycles"),
    (dict(curve_cycles=(2, -1)), "curve_cycles must be distinct"),
    (dict(curve_every=-1), "curve_every must be >= 0"),
])
def test_bad_curve_settings(changes, message):
    assert TINY.curve_cycle_numbers == (0, 2) and dataclasses.replace(TINY, curve_cycles=(-3, 1)).curve_cycle_numbers \
        == (0, 1)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **changes)


def test_report_of_the_run_plots_images_and_epochs(tiny_run):
    out, records = tiny_run
    curves = training_curves(records)
    assert [(c["name"], c["cycle"], c["images"]) for c in curves] == [("base", 0, 8), ("random", 2, 16),
                                                                         ("disagreement", 2, 16)]
    png = plot_learning_curves(out)
    assert matplotlib.image.imread(png).shape[:2] == (round(2 * 4.2 * 110), round(2 * 6.0 * 110))
    (row,) = compare_detection(records)
    assert row["strategy"] == "disagreement" and [x for x, _ in row["leads"]] == [12, 16]


# ----------------------------------------------------------------------------- the disagreement figure
def test_select_examples_high_and_low():
    scores = np.array([0.5, 0.9, 0.0, 0.9, 0.0, 0.2, 0.0])
    boxes = np.array([1, 1, 0, 3, 2, 1, 5])
    high, low = select_examples(scores, boxes, 2)
    assert high.tolist() == [3, 1] and low.tolist() == [6, 4]  # among equal scores, most boxes first
    high, low = select_examples(scores, boxes, 10)  # capped at N // 2, rows disjoint
    assert len(high) == len(low) == 3 and not set(high) & set(low)
    with pytest.raises(ValueError, match="finite"):
        select_examples(np.array([np.nan, 1.0]), np.array([0, 0]), 1)
    with pytest.raises(ValueError, match="at least 2 images"):
        select_examples(np.array([1.0]), np.array([0]), 1)


def _dets(n, d, rng):
    x0, y0 = rng.uniform(0, 30, (n, d)), rng.uniform(0, 20, (n, d))
    boxes = np.stack([x0, y0, x0 + 10, y0 + 8], -1).astype(np.float32)
    scores = rng.uniform(0, 1, (n, d)).astype(np.float32)
    return Detections(boxes, scores, rng.integers(0, 5, (n, d)).astype(np.int32), np.zeros((n, d, 5), np.float32),
                      np.zeros((n, d), np.int32))


def test_disagreement_figure_renders_both_models_at_its_size(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (9, 32, 48, 3)).astype(np.float32)
    path = disagreement_figure(images, _dets(9, 4, rng), _dets(9, 4, rng), rng.uniform(0, 1, 9), tmp_path / "f.png",
                               k=3, class_names=("car", "pedestrian", "cyclist", "sign", "bus"), dpi=50)
    assert path.exists()
    assert matplotlib.image.imread(path).shape[:2] == (round((2 * 2.5 + 0.7) * 50), round(3 * 3.2 * 50))
    with pytest.raises(ValueError, match="scores must have shape"):
        disagreement_figure(images, _dets(9, 4, rng), _dets(9, 4, rng), np.zeros(8), tmp_path / "g.png")


def test_figure_of_a_run_replays_the_cycle_models(problem, tiny_run, tmp_path):
    out, records = tiny_run
    task = DetectionTask(TINY, problem=problem)
    for cycle in (0, 1):  # cycle 0 trained in curve segments, cycle 1 in one fit
        record = next(r for r in records if r["strategy"] == "disagreement" and r["seed"] == 1 and r["cycle"] == cycle)
        path, ex = run_disagreement_figure(out, tmp_path / f"c{cycle}.png", seed=1, cycle=cycle, k=2, task=task)
        assert ex["strategy"] == "disagreement" and ex["train_loss"] == record["train_loss"]
        assert len(ex["ids"]) == 24 - 8 - 4 * cycle and ex["scores"].shape == ex["ids"].shape
        # the run acquired the top 4 of these very scores (ties to the lower index, as bal.acquisition.top_k)
        top = ex["ids"][np.argsort(-ex["scores"], kind="stable")[:4]]
        assert sorted(top.tolist()) == sorted(record["acquired"])
        assert matplotlib.image.imread(path).shape[:2] == (570, 640)  # k = 2 panels of 3.2 x 2.5 inches at 100 dpi
    with pytest.raises(ValueError, match="no cycle 5"):
        run_examples(out, seed=0, cycle=5, task=task)
    with pytest.raises(ValueError, match="strategy 'box_bald' is not one of"):
        run_examples(out, strategy="box_bald", task=task)


def test_figure_command_errors_are_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "bal.detection.figures", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no run config" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    (tmp_path / "config.json").write_text(json.dumps({"task": "classification", "dataset": "digits"}))
    res = subprocess.run([sys.executable, "-m", "bal.detection.figures", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "needs a detection run" in res.stderr
