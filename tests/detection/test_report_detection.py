"""Detection reports from records alone: AP against labeled images and against training epochs
(base / random / active), and the issue's targets (savings at random's final mAP, per-cycle lead)."""

import json

import matplotlib.image
import numpy as np
import pytest

from bal.report import (compare_detection, detection_class, format_detection_comparison, plot_detection,
                        plot_learning_curves, training_curves, write_report)


def _run(strategy, seed, maps, *, person=0.5, curve_cycles=(0, -1), epochs=(5, 10, 15, 20)):
    """Records of one detection run: 100 initial images, +100 per cycle; curves whose points rise
    linearly to the cycle's mAP (and pedestrian AP), at ``curve_cycles``."""
    out, last = [], len(maps) - 1
    for c, m in enumerate(maps):
        n = 100 + 100 * c
        r = {"task": "detection", "strategy": strategy, "seed": seed, "cycle": c, "num_labeled_images": n,
             "num_labeled_boxes": 3 * n, "map": m, "ap50": 2 * m, "ap_car": 1.2 * m, "ap_pedestrian": person * m,
             "acquired": [] if c == last else list(range(10 * c, 10 * c + 3)), "final": c == last}
        if c in [last if k == -1 else k for k in curve_cycles]:
            r["curve"] = [{"epoch": e, "step": 7 * e, "map": m * e / epochs[-1], "ap_car": m,
                           "ap_pedestrian": person * m * e / epochs[-1]} for e in epochs]
        out.append(r)
    return out


RANDOM = [0.10, 0.15, 0.18, 0.20, 0.22]
ACTIVE = [0.10, 0.17, 0.21, 0.23, 0.25]


@pytest.fixture
def records():
    out = []
    for seed in range(3):
        out += _run("random", seed, [m + 0.01 * (seed - 1) for m in RANDOM])
        out += _run("box_bald", seed, [m + 0.01 * (seed - 1) for m in ACTIVE], person=0.6)
    return out


def test_training_curves_are_base_then_random_then_active_at_their_last_curve_cycle(records):
    curves = training_curves(records, "map")
    assert [c["name"] for c in curves] == ["base", "random", "box_bald"]
    base, random, active = curves
    assert base["cycle"] == 0 and base["images"] == 100 and base["seeds"] == 3
    assert random["cycle"] == active["cycle"] == 4 and random["images"] == 500
    np.testing.assert_allclose(base["epochs"], [5, 10, 15, 20])
    np.testing.assert_allclose(random["mean"], [0.22 * e / 20 for e in (5, 10, 15, 20)])
    np.testing.assert_allclose(active["mean"][-1], 0.25)
    # seeds differ by +-0.01 at the end: population std over 3 seeds
    assert active["std"][-1] == pytest.approx(np.std([0.24, 0.25, 0.26]))
    person = training_curves(records, "ap_pedestrian")
    assert person[2]["mean"][-1] == pytest.approx(0.6 * 0.25)


def test_a_curve_cycle_that_not_every_seed_recorded_is_not_used():
    recs = (_run("random", 0, RANDOM) + _run("random", 1, RANDOM, curve_cycles=(0, 2))
            + _run("bald_heatmap", 0, ACTIVE, curve_cycles=(0,)))
    curves = training_curves(recs)
    assert [(c["name"], c["cycle"]) for c in curves] == [("base", 0)]  # random's seeds share no later cycle
    recs = _run("random", 0, RANDOM, curve_cycles=(0, 2, 4)) + _run("random", 1, RANDOM, curve_cycles=(0, 2))
    assert [(c["name"], c["cycle"]) for c in training_curves(recs)] == [("base", 0), ("random", 2)]
    assert training_curves(_run("random", 0, RANDOM, curve_cycles=())) == []


def test_compare_detection_reports_savings_and_per_cycle_leads(records):
    (row,) = compare_detection(records)
    assert row["strategy"] == "box_bald" and row["seeds"] == 3
    assert row["baseline_final"] == pytest.approx(0.22) and row["baseline_reach"] == 500
    assert row["reach"] == 400 and row["savings"] == pytest.approx(0.2)  # 0.23 >= 0.22 at 400 images
    assert [x for x, _ in row["leads"]] == [200, 300, 400, 500]
    np.testing.assert_allclose([d for _, d in row["leads"]], [0.02, 0.03, 0.03, 0.03], atol=1e-12)
    assert row["cycles_leading"] == 3 and row["met"]  # >= 3 points in 3 of 4 cycles
    text = format_detection_comparison([row])
    assert "at 400 images (20 % fewer)" in text and "in 3/4" in text and "target met" in text
    # savings alone: 25 % needs reaching 22 at 375 images or fewer
    (row,) = compare_detection(records, lead=0.05)
    assert row["cycles_leading"] == 0 and not row["met"]
    (row,) = compare_detection(records, lead=0.05, savings=0.2)
    assert row["met"]


def test_compare_detection_counts_the_baseline_reach_when_random_plateaus_early():
    recs = _run("random", 0, [0.10, 0.20, 0.20, 0.19]) + _run("box_bald", 0, [0.10, 0.15, 0.20, 0.21])
    (row,) = compare_detection(recs)
    # random's final 0.19 was first reached at 200 images: box_bald needs 300 -> 50 % more, not fewer
    assert row["baseline_reach"] == 200 and row["reach"] == 300 and row["savings"] == pytest.approx(-0.5)
    assert not row["met"]
    with pytest.raises(ValueError, match="no 'random' runs"):
        compare_detection(_run("box_bald", 0, ACTIVE))


def test_person_class_is_person_or_pedestrian():
    assert detection_class(_run("random", 0, RANDOM)) == "pedestrian"
    coco = [{**r, "ap_person": r["ap_pedestrian"]} for r in _run("random", 0, RANDOM)]
    assert detection_class(coco) == "person"
    assert detection_class([{k: v for k, v in r.items() if k != "ap_pedestrian"} for r in _run("random", 0, RANDOM)]) \
        is None


def _png_shape(path):
    return matplotlib.image.imread(path).shape[:2]


def test_bal_plot_of_detection_records_draws_images_and_epochs_panels(records, tmp_path):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    png = plot_learning_curves(tmp_path)  # what `bal plot RUN_DIR` calls
    assert png == tmp_path / "learning_curves.png"
    assert _png_shape(png) == (round(2 * 4.2 * 110), round(2 * 6.0 * 110))  # 2 x 2 panels
    # no curves: the labeled-images row only; no person class: one column
    plain = [{k: v for k, v in r.items() if k not in ("curve", "ap_pedestrian")} for r in records]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in plain))
    assert _png_shape(plot_detection(tmp_path, tmp_path / "p.png")) == (round(4.2 * 110), round(6.0 * 110))
    # an explicit metric keeps the one-panel learning curve
    assert _png_shape(plot_learning_curves(tmp_path, tmp_path / "ap50.png", metric="ap50")) == (540, 840)
    with pytest.raises(ValueError, match="ap_cyclist"):
        plot_detection(tmp_path, person="cyclist")


def test_write_report_of_detection_runs_states_the_targets(records, tmp_path):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary, plot = write_report(tmp_path, thresholds=(0.2,))
    text = summary.read_text()
    assert "images to mAP 20 %" in text and "reaches random's final" in text and "box_bald (3 seeds)" in text
    assert plot.exists()
