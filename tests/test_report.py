"""bal.report: labels to a threshold, savings against random, AUC and paired wins, on hand-computed records."""

import json
import math

import numpy as np
import pytest

from bal.cli import main
from bal.report import (default_metric, format_summary, label_key, label_unit, labels_to_reach, learning_curve_auc,
                        plot_learning_curves, record_task, summarize)


def _run(strategy, seed, values, labels=(20, 30, 40, 50), metric="accuracy", **extra):
    return [{"strategy": strategy, "seed": seed, "cycle": c, "num_labels": n, metric: v, "acquired": [],
             "final": c == len(values) - 1,
             **extra} for c, (n, v) in enumerate(zip(labels, values))]


# labels 20, 30, 40, 50 -- reached at 90 % / 95 %, and AUC over [20, 50] by hand (trapezoid / 30):
BALD = {0: [0.50, 0.80, 0.92, 0.96],  # 90 %: 40, 95 %: 50, AUC (6.5 + 8.6 + 9.4) / 30 = 0.816667
        1: [0.50, 0.85, 0.91, 0.94],  # 90 %: 40, 95 %: > 50, AUC (6.75 + 8.8 + 9.25) / 30 = 0.826667
        2: [0.40, 0.91, 0.93, 0.97]}  # 90 %: 30, 95 %: 50, AUC (6.55 + 9.2 + 9.5) / 30 = 0.841667
RANDOM = {0: [0.50, 0.70, 0.85, 0.91],  # 90 %: 50, 95 %: > 50, AUC (6 + 7.75 + 8.8) / 30 = 0.751667
          1: [0.50, 0.75, 0.90, 0.93],  # 90 %: 40, 95 %: > 50, AUC (6.25 + 8.25 + 9.15) / 30 = 0.788333
          2: [0.45, 0.70, 0.80, 0.96]}  # 90 %: 50, 95 %: 50, AUC (5.75 + 7.5 + 8.8) / 30 = 0.735
RECORDS = ([r for s, v in BALD.items() for r in _run("bald", s, v)]
           + [r for s, v in RANDOM.items() for r in _run("random", s, v)])


@pytest.fixture(scope="module")
def rows():
    return {r["strategy"]: r for r in summarize(RECORDS)}


def test_labels_to_reach_per_seed_and_the_mean_only_when_every_seed_reached(rows):
    bald, random = rows["bald"]["labels_to"], rows["random"]["labels_to"]
    assert bald[0.9]["per_seed"] == {0: 40, 1: 40, 2: 30}
    assert bald[0.9]["exact"] and bald[0.9]["reached"] == 3
    assert bald[0.9]["mean"] == pytest.approx(110 / 3)
    assert bald[0.9]["std"] == pytest.approx(np.std([40, 40, 30]))  # population std over seeds
    assert random[0.9]["per_seed"] == {0: 50, 1: 40, 2: 50}
    # 95 %: seed 1 never got there within its 50 labels -> a strict lower bound, no std
    assert bald[0.95]["per_seed"] == {0: 50, 1: None, 2: 50}
    assert bald[0.95]["most_labels"] == {0: 50, 1: 50, 2: 50}
    assert not bald[0.95]["exact"] and bald[0.95]["reached"] == 2
    assert bald[0.95]["mean"] == 50 and math.isnan(bald[0.95]["std"])
    assert random[0.95]["per_seed"] == {0: None, 1: None, 2: 50} and random[0.95]["reached"] == 1
    # the older field keeps its meaning: over the seeds that reached it
    assert rows["bald"]["reach"][0.9][0] == pytest.approx(110 / 3) and rows["bald"]["reach"][0.9][2] == 3
    assert rows["random"]["reach"][0.95][2] == 1


def test_lower_bound_uses_each_seeds_own_label_count():
    recs = (_run("bald", 0, [0.5, 0.95], labels=(10, 20)) + _run("bald", 1, [0.5, 0.6, 0.7], labels=(10, 20, 40))
            + _run("bald", 2, [0.5, 0.6], labels=(10, 30)))
    d = summarize(recs, thresholds=(0.9,))[0]["labels_to"][0.9]
    assert d["per_seed"] == {0: 20, 1: None, 2: None} and d["most_labels"] == {0: 20, 1: 40, 2: 30}
    assert d["mean"] == pytest.approx((20 + 40 + 30) / 3)
    text = format_summary(summarize(recs, thresholds=(0.9,)))
    assert "> 30 (1/3 reached)" in text  # floor of the bound 30.0
    assert "seed 0: 20, seed 1: > 40, seed 2: > 30" in text


def test_savings_against_random_only_when_both_reached_in_every_seed(rows):
    v = rows["bald"]["vs_baseline"]
    s90 = v["savings"][0.9]
    assert s90["relation"] == "=" and s90["fraction"] == pytest.approx(1 - (110 / 3) / (140 / 3))  # 21.4 %
    s95 = v["savings"][0.95]
    assert s95["fraction"] is None and s95["relation"] is None
    assert "bald reached it in 2/3 seeds" in s95["reason"] and "random reached it in 1/3 seeds" in s95["reason"]
    assert rows["random"]["vs_baseline"] is None
    text = format_summary(list(rows.values()))
    assert "bald: 90 % with 21 % fewer labels than random (37 vs 47 labels, means over 3 paired seeds)" in text
    assert "bald vs random at 95 %: savings cannot be computed" in text


def test_savings_bounds_when_only_one_side_reached_everywhere():
    fast = _run("bald", 0, [0.5, 0.95, 0.96, 0.97]) + _run("bald", 1, [0.5, 0.91, 0.96, 0.97])
    slow = _run("random", 0, [0.5, 0.6, 0.7, 0.8]) + _run("random", 1, [0.5, 0.6, 0.7, 0.95])
    rows = {r["strategy"]: r for r in summarize(fast + slow, thresholds=(0.9,))}
    s = rows["bald"]["vs_baseline"]["savings"][0.9]
    # bald: 30, 30 (mean 30); random: > 50, 50 (mean > 50): savings > 1 - 30/50 = 40 %
    assert s["relation"] == ">" and s["fraction"] == pytest.approx(0.4)
    assert "bald: 90 % with more than 40 % fewer labels than random (a bound: random reached it in 1/2 seeds)" \
        in format_summary(list(rows.values()))
    # the other way round: random reached it in every seed, "slow" did not -> needs more than 1 - 50/30 = 67 % more
    swapped = ([{**r, "strategy": "random"} for r in fast] + [{**r, "strategy": "slow"} for r in slow])
    rows = {r["strategy"]: r for r in summarize(swapped, thresholds=(0.9,))}
    s = rows["slow"]["vs_baseline"]["savings"][0.9]
    assert s["relation"] == "<" and s["fraction"] == pytest.approx(1 - 50 / 30)
    assert "slow: 90 % with more than 67 % more labels than random" in format_summary(list(rows.values()))


def test_auc_by_hand(rows):
    bald, random = rows["bald"]["auc"], rows["random"]["auc"]
    assert bald["range"] == (20, 50) and rows["bald"]["auc_range"] == (20, 50)
    expected = {0: 24.5 / 30, 1: 24.8 / 30, 2: 25.25 / 30}
    assert bald["per_seed"] == pytest.approx(expected)
    assert bald["mean"] == pytest.approx(np.mean(list(expected.values())))
    assert bald["std"] == pytest.approx(np.std(list(expected.values())))
    assert random["per_seed"] == pytest.approx({0: 22.55 / 30, 1: 23.65 / 30, 2: 22.05 / 30})


def test_auc_uses_the_label_range_common_to_all_runs_with_interpolated_ends():
    a = _run("bald", 0, [0.5, 0.7, 0.9], labels=(10, 20, 40))
    b = _run("random", 0, [0.6, 0.7, 0.95], labels=(20, 30, 50))
    rows = {r["strategy"]: r for r in summarize(a + b, thresholds=(0.9,))}
    assert rows["bald"]["auc"]["range"] == (20, 40)
    assert rows["bald"]["auc"]["per_seed"][0] == pytest.approx((0.7 + 0.9) / 2)  # 10 -> 20 is cut off
    # random at 40 interpolates 0.7 -> 0.95 over 30 -> 50: 0.825; (6.5 + 7.625) / 20
    assert rows["random"]["auc"]["per_seed"][0] == pytest.approx(0.70625)
    assert learning_curve_auc(b, 20, 40) == pytest.approx(0.70625)
    assert "AUC = mean accuracy over 20-40 labels" in format_summary(list(rows.values()))
    with pytest.raises(ValueError, match="not inside"):
        learning_curve_auc(a, 5, 40)


def test_auc_cannot_be_computed_without_a_common_range():
    recs = _run("bald", 0, [0.5], labels=(20,)) + _run("random", 0, [0.4], labels=(20,))
    rows = summarize(recs)
    assert all(r["auc"] is None and r["auc_range"] is None for r in rows)
    assert rows[0]["vs_baseline"]["auc_paired"] == 0
    assert "AUC cannot be computed" in format_summary(rows)


def test_paired_wins_count_seeds_run_by_both():
    recs = ([r for s, v in RANDOM.items() for r in _run("random", s, v)]
            + _run("entropy", 0, [0.6, 0.90, 0.95, 0.96])   # AUC 0.8567 > 0.7517; 90 %: 30 < 50; 95 %: 40 < > 50
            + _run("entropy", 1, [0.4, 0.6, 0.80, 0.90])    # AUC 0.6833 < 0.7883; 90 %: 50 > 40 (loss)
            + _run("entropy", 2, [0.45, 0.70, 0.80, 0.96])  # identical to random: AUC tie, 90 %: 50 = 50 (tie)
            + _run("entropy", 7, [0.99, 0.99, 0.99, 0.99]))  # no random seed 7: not paired
    rows = {r["strategy"]: r for r in summarize(recs)}
    v = rows["entropy"]["vs_baseline"]
    assert (v["auc_wins"], v["auc_paired"]) == (1, 3)  # a tie is no win
    assert v["reach"][0.9] == {"wins": 1, "losses": 1, "ties": 1, "undecided": 0, "paired": 3}
    # savings over the paired seeds 0, 1, 2 only: (30 + 50 + 50) vs (50 + 40 + 50)
    assert v["savings"][0.9]["paired"] == 3 and v["savings"][0.9]["fraction"] == pytest.approx(1 - 130 / 140)
    # 95 %: seed 0 reached (40) where random did not within 50 -> win; seed 1 neither -> undecided;
    # seed 2 both at 50 -> tie
    assert v["reach"][0.95] == {"wins": 1, "losses": 0, "ties": 1, "undecided": 1, "paired": 3}
    text = format_summary(list(rows.values()))
    assert "fewer labels in 1/3 paired seeds (1 loss, 1 tie)" in text
    assert "fewer labels in 1/3 paired seeds (1 tie, 1 undecided)" in text
    assert "AUC larger than random's in 1/3 paired seeds" in text
    assert rows["entropy"]["seeds"] == 4 and rows["entropy"]["seed_ids"] == [0, 1, 2, 7]


def test_paired_reach_when_one_side_did_not_reach():
    # strategy needs more than 30 (it had 30), random reached at 40: undecided; at 20: a loss
    mine = _run("x", 0, [0.5, 0.6], labels=(20, 30)) + _run("x", 1, [0.5, 0.6], labels=(20, 30))
    base = _run("random", 0, [0.5, 0.6, 0.9], labels=(20, 30, 40)) + _run("random", 1, [0.95, 0.96], labels=(20, 30))
    w = {r["strategy"]: r for r in summarize(mine + base, thresholds=(0.9,))}["x"]["vs_baseline"]["reach"][0.9]
    assert w == {"wins": 0, "losses": 1, "ties": 0, "undecided": 1, "paired": 2}


def test_table_shows_bounds_not_numbers_that_look_like_results(rows):
    text = format_summary(list(rows.values()))
    lines = text.splitlines()
    bald_row = next(line for line in lines if line.startswith("bald "))
    random_row = next(line for line in lines if line.startswith("random "))
    assert "37 ± 5" in bald_row and "> 50 (2/3 reached)" in bald_row and "3/3 seeds" in bald_row
    assert "47 ± 5" in random_row and "> 50 (1/3 reached)" in random_row
    assert "labels to 90 %: 37 ± 5; seed 0: 40, seed 1: 40, seed 2: 30" in text
    assert "labels to 95 %: > 50 (2/3 reached); seed 0: 50, seed 1: > 50, seed 2: 50" in text
    assert "AUC: 0.8283 ± 0.0103; seed 0: 0.8167, seed 1: 0.8267, seed 2: 0.8417" in text
    assert "AUC larger than random's in 3/3 paired seeds" in text
    assert "labels to 90 %" in lines[4] and "AUC wins vs random" in lines[4]


def test_one_seed_has_no_std():
    recs = _run("bald", 0, [0.5, 0.95]) + _run("random", 0, [0.5, 0.8])
    rows = {r["strategy"]: r for r in summarize(recs, thresholds=(0.9,))}
    assert math.isnan(rows["bald"]["labels_to"][0.9]["std"]) and rows["bald"]["labels_to"][0.9]["exact"]
    assert math.isnan(rows["bald"]["auc"]["std"]) and math.isnan(rows["bald"]["final_accuracy"][1])
    assert rows["bald"]["final_accuracy"][0] == 0.95
    text = format_summary(list(rows.values()))
    assert "±" not in text.split("\n", 1)[1].replace("mean ± std", "")
    assert "labels to 90 %: 30; seed 0: 30" in text
    assert "> 30 (0/1 reached)" in text  # random had 30 labels


def test_no_random_runs():
    rows = summarize(_run("bald", 0, [0.5, 0.95]) + _run("bald", 1, [0.5, 0.9]))
    assert rows[0]["vs_baseline"] is None
    text = format_summary(rows)
    assert "no 'random' runs in these records" in text and "vs random" not in text
    other = summarize(_run("bald", 0, [0.5, 0.95]) + _run("entropy", 0, [0.5, 0.9]), baseline="entropy")
    assert other[0]["vs_baseline"]["baseline"] == "entropy"


def test_segmentation_records_count_pixels_and_use_mean_iou():
    recs = [{**r, "num_labeled_pixels": r["num_labels"], "num_labeled_images": 3, "unit": "crop"}
            for s in ("entropy", "random") for r in
            _run(s, 0, [0.3, 0.5] if s == "random" else [0.4, 0.6], labels=(1000, 2000), metric="mean_iou")]
    assert record_task(recs) == "segmentation" and default_metric(recs) == "mean_iou" and label_unit(recs) == "pixels"
    rows = {r["strategy"]: r for r in summarize(recs, thresholds=(0.35, 0.55))}
    assert rows["entropy"]["unit"] == "pixels" and rows["entropy"]["metric"] == "mean_iou"
    assert rows["entropy"]["labels_to"][0.35]["per_seed"] == {0: 1000}
    assert rows["entropy"]["vs_baseline"]["savings"][0.35]["fraction"] == pytest.approx(0.5)
    assert rows["entropy"]["auc"]["per_seed"][0] == pytest.approx(0.5)
    text = format_summary(list(rows.values()))
    assert "segmentation: mIoU vs pixels" in text
    assert "pixels to mIoU 35 %" in text and "final pixels" in text and "final mean_iou" in text
    assert "entropy: mIoU 35 % with 50 % fewer pixels than random (1,000 vs 2,000 pixels" in text
    assert "> 2,000 (0/1 reached)" in text  # random never reached 55 % within its 2,000 pixels
    assert "labels" not in text


def test_task_key_names_the_task_and_its_metric():
    seg = [{**r, "task": "segmentation", "num_labeled_pixels": r["num_labels"]}
           for r in _run("bald", 0, [0.2, 0.4], metric="miou") + _run("random", 0, [0.1, 0.3], metric="miou")]
    assert record_task(seg) == "segmentation" and default_metric(seg) == "miou"
    rows = summarize(seg, thresholds=(0.3,))
    assert rows[0]["task"] == "segmentation" and rows[0]["metric"] == "miou" and rows[0]["unit"] == "pixels"
    det = [{**r, "task": "detection", "num_labeled_images": r["num_labels"]}
           for r in _run("bald", 0, [0.2, 0.4], metric="map") + _run("random", 0, [0.1, 0.3], metric="map")]
    assert record_task(det) == "detection" and default_metric(det) == "map" and label_unit(det) == "images"
    text = format_summary(summarize(det, thresholds=(0.3,)))
    assert "detection: mAP vs images" in text and "images to mAP 30 %" in text
    cls = [{**r, "task": "classification"} for r in RECORDS]
    assert record_task(cls) == "classification" and default_metric(cls) == "accuracy" and label_unit(cls) == "labels"
    # without the key, the record keys decide (today's records)
    assert record_task(RECORDS) == "classification"
    assert record_task([{k: v for k, v in r.items() if k != "task"} for r in det]) == "detection"


def test_bad_records_and_arguments_name_the_problem():
    with pytest.raises(ValueError, match="mix tasks"):
        record_task([{"task": "segmentation"}, {"task": "detection"}])
    with pytest.raises(ValueError, match="unknown task 'regression'"):
        default_metric([{"task": "regression", "rmse": 1.0}])
    with pytest.raises(ValueError, match="segmentation records carry none of the metrics"):
        default_metric([{"task": "segmentation", "pixel_accuracy": 0.9}])
    with pytest.raises(ValueError, match="no metric 'brier'.*accuracy"):
        summarize(RECORDS, metric="brier")
    with pytest.raises(ValueError, match=r"fractions \(0.9 = 90 %\)"):
        summarize(RECORDS, thresholds=(90, 95))
    assert format_summary([]) == "(no results)"


def test_lower_is_better_metrics_reach_downwards_and_win_with_a_smaller_auc():
    recs = (_run("bald", 0, [1.0, 0.5, 0.3, 0.2], metric="nll") + _run("random", 0, [1.0, 0.8, 0.6, 0.4], metric="nll"))
    assert labels_to_reach(recs[:4], 0.4, "nll") == 40
    assert labels_to_reach(recs[:4], 0.4, "nll", higher_is_better=True) == 20
    rows = {r["strategy"]: r for r in summarize(recs, thresholds=(0.4,), metric="nll")}
    assert rows["bald"]["labels_to"][0.4]["per_seed"] == {0: 40}
    assert rows["random"]["labels_to"][0.4]["per_seed"] == {0: 50}
    assert rows["bald"]["vs_baseline"]["auc_wins"] == 1
    text = format_summary(list(rows.values()))
    assert "labels to nll ≤ 0.4" in text and "AUC smaller than random's in 1/1 paired seeds" in text


def test_nan_metric_never_reaches_a_threshold():
    run = _run("bald", 0, [0.5, float("nan"), 0.95])
    assert labels_to_reach(run, 0.9) == 40
    assert labels_to_reach(run[:2], 0.9) is None


def test_cli_summary_prints_the_report(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert main(["summary", str(tmp_path), "--thresholds", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "bald: 90 % with 21 % fewer labels than random" in out
    assert "AUC larger than random's in 3/3 paired seeds" in out


def test_summary_of_a_results_file_reads_its_directory(tmp_path, capsys):
    """``bal summary DIR/results.jsonl`` is ``bal summary DIR``: the run's own config (stopping
    settings) and ``--write`` into DIR."""
    from bal.active.config import ExperimentConfig
    from bal.active.results import RunDirectory

    RunDirectory(tmp_path).prepare(ExperimentConfig(strategies=("bald",), stop_set_size=10, kappa_threshold=0.5),
                                   resume=False, overwrite=False)
    recs = [{**r, "stop_entropy": 0.5, "stop_kappa": 0.9 if r["cycle"] else None} for r in RECORDS]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    outs = []
    for source in (tmp_path, tmp_path / "results.jsonl"):
        assert main(["summary", str(source), "--write"]) == 0
        outs.append(capsys.readouterr().out)
    assert "kappa >= 0.5 over 3 cycles" in outs[1] and outs[0].split("wrote")[0] == outs[1].split("wrote")[0]
    assert (tmp_path / "summary.md").exists() and (tmp_path / "learning_curves.png").exists()


def test_plot_labels_the_axis_with_the_unit_from_the_records(tmp_path):
    recs = [{**r, "task": "segmentation", "num_labeled_pixels": r["num_labels"]}
            for r in _run("bald", 0, [0.2, 0.4], metric="miou") + _run("random", 0, [0.1, 0.3], metric="miou")]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    png = plot_learning_curves(tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_records_without_num_labels_count_with_the_tasks_own_key(tmp_path):
    # segmentation records of the task loop: the label count is num_labeled_pixels alone
    seg = [{k: v for k, v in r.items() if k != "num_labels"} | {"task": "segmentation", "num_labeled_pixels": n,
                                                                  "num_labeled_images": 2}
           for r, n in zip(_run("bald", 0, [0.3, 0.6], labels=(100, 300), metric="mean_iou")
                           + _run("random", 0, [0.3, 0.4], labels=(100, 300), metric="mean_iou"), (100, 300) * 2)]
    assert label_key(seg) == "num_labeled_pixels" and label_unit(seg) == "pixels"
    rows = {r["strategy"]: r for r in summarize(seg, thresholds=(0.5,))}
    assert rows["bald"]["labels_to"][0.5]["per_seed"] == {0: 300} and rows["bald"]["final_labels"] == 300
    assert rows["bald"]["auc"]["per_seed"][0] == pytest.approx(0.45) and rows["bald"]["auc"]["range"] == (100, 300)
    assert "> 300 (0/1 reached)" in format_summary(list(rows.values()))
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in seg))
    assert plot_learning_curves(tmp_path).exists()
    # detection records counting boxes
    det = [{k: v for k, v in r.items() if k != "num_labels"}
           | {"task": "detection", "num_labeled_boxes": r["num_labels"]}
           for r in _run("bald", 0, [0.1, 0.2], metric="map")]
    assert label_key(det) == "num_labeled_boxes" and label_unit(det) == "boxes"
    with pytest.raises(ValueError, match="no label count"):
        label_key([{"strategy": "bald", "seed": 0, "cycle": 0, "accuracy": 0.5}])


def test_default_thresholds_follow_the_metric():
    from bal.report import default_thresholds

    def rec(strategy, seed, cycle, **metrics):
        return {"task": "detection", "strategy": strategy, "seed": seed, "cycle": cycle,
                "num_labeled_images": 100 * (cycle + 1), **metrics}

    detection = [rec("random", s, c, map=0.1 * (c + 1) + 0.01 * s) for s in (0, 1) for c in range(3)]
    detection += [rec("box_bald", 0, c, map=0.12 * (c + 1)) for c in range(3)]
    # random's final mAP: mean of 0.30 and 0.31
    assert default_thresholds(detection) == (round(0.9 * 0.305, 4), 0.305)
    rows = summarize(detection)
    assert list(rows[0]["labels_to"]) == [round(0.9 * 0.305, 4), 0.305]
    assert default_thresholds([{**r, "task": "classification", "accuracy": 0.5} for r in detection]) == (0.9, 0.95)
    assert default_thresholds(detection, "map", baseline="none") == (round(0.9 * 0.36, 4), 0.36)
    # rounded toward the reachable side: a single baseline run reaches its own final value
    one = [rec("random", 0, c, map=v) for c, v in enumerate((0.02, 0.05, 0.064083))]
    low, full = default_thresholds(one)
    assert (low, full) == (0.0576, 0.064) and summarize(one, (low, full))[0]["labels_to"][full] is not None
    nll = [{**r, "nll": 1.234567} for r in one]
    assert default_thresholds(nll, "nll") == (math.ceil(1.234567 / 0.9 * 1e4) / 1e4, 1.2346)


def test_a_baseline_that_ended_at_zero_still_summarises():
    """Default thresholds of a tiny run whose random baseline ended at mAP 0 are (0, 0), not an error;
    only thresholds a user gives must be > 0."""
    recs = [{"task": "detection", "strategy": s, "seed": 0, "cycle": c, "num_labeled_images": 4 + 2 * c,
             "map": 0.0 if s == "random" else 0.01 * c} for s in ("random", "box_bald") for c in range(2)]
    rows = summarize(recs)
    assert list(rows[0]["labels_to"]) == [0.0]  # (0, 0): one column
    with pytest.raises(ValueError, match="finite numbers > 0"):
        summarize(recs, (0.0,))
