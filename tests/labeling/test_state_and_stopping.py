"""The label store, the pending queries, the human oracle's queue, exports of hand-made queries
(detection boxes, segmentation crops) and the stopping rules — no training."""

import json
import os

import numpy as np
import pytest

from bal.labeling import state as lstate
from bal.labeling.export import export_queries, label_config
from bal.labeling.imports import read_labels
from bal.report.stopping import gain_per_label, should_stop, stabilized_scores

from .conftest import TINY, fake_images, make_run_dir


# ----------------------------------------------------------------------------- the store
def test_store_batches_are_all_or_nothing_and_seen_from_their_record(tmp_path, monkeypatch):
    store = lstate.LabelStore(tmp_path)
    assert store.answers() == {} and store.num_batches() == 0
    assert store.append({3: 1, 4: 2}, records=1, source="a.json", fmt="label-studio") == 1
    assert store.append({9: 0}, records=3, source="b.csv", fmt="csv") == 2
    assert store.answers() == {3: 1, 4: 2, 9: 0}
    assert store.answers(upto=2) == {3: 1, 4: 2}  # the record at line 2 ran before batch 2
    assert store.answers(upto=0) == {}
    with pytest.raises(ValueError, match=r"pool items \[9\] are already"):
        store.append({9: 1}, records=3, source="c", fmt="csv")
    before = store.path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.append({11: 1, 12: 2}, records=4, source="d", fmt="csv")
    monkeypatch.undo()
    assert store.path.read_bytes() == before and list(tmp_path.glob(".labels*")) == []  # no half batch
    store.rebase()
    assert store.answers(upto=0) == {3: 1, 4: 2, 9: 0}
    store.path.write_bytes(before + b'{"index": 3, "label": 5, "batch": 3, "records": 0}\n')
    with pytest.raises(ValueError, match=r"labels.jsonl:4: pool item 3 is labeled twice"):
        store.answers()
    store.path.write_bytes(before + b"{torn\n")
    with pytest.raises(ValueError, match=r"labels.jsonl:4: corrupt label line"):
        store.entries()


def test_file_names_and_awaiting_queries(tmp_path):
    assert lstate.file_name(123) == "pool_000123.png" and lstate.file_name(1234567) == "pool_1234567.png"
    for name in ("pool_000123.png", "/data/upload/1/8f3a2b1c-pool_000123.png", "http://h/x/pool_123.png?v=2"):
        assert lstate.index_of_name(name) == 123
    assert lstate.index_of_name("cat.png") is None and lstate.index_of_name(None) is None
    assert lstate.parse_class("Seven", ("six", "seven")) == 1 and lstate.parse_class("1", ("a", "b")) == 1
    assert lstate.parse_class("2", ("a", "b")) is None and lstate.parse_class(True, ("a", "b")) is None
    run = make_run_dir(tmp_path / "run", indices=(5, 17, 42))
    pending = lstate.read_pending(run)
    # a second run asked about 42 too, ranked first there
    pending["queries"].append({**pending["queries"][2], "strategy": "random", "rank": 0, "score": 1.0})
    waiting = lstate.awaiting(pending, labeled={17})
    assert [q["index"] for q in waiting] == [5, 42]
    assert waiting[1]["strategy"] == "random" and waiting[1]["queried_by"] == ["bald-seed0-cycle0",
                                                                                 "random-seed0-cycle0"]
    assert lstate.query_score({"acquired": [1, 2, 3, 4], "scores": [0.9, 0.5, 0.2, 0.1]}, 1) == (0.5, "recorded")
    assert lstate.query_score({"acquired": [1, 2, 3, 4]}, 1) == (0.75, "rank")


# ----------------------------------------------------------------------------- the human oracle's queue
def test_human_task_queues_receives_and_counts_queued_against_the_budget(tmp_path):
    from bal.active import kernel
    from bal.active.config import ExperimentConfig
    from bal.active.tasks.classification import ClassificationTask, load_problem
    from bal.labeling.oracle import HumanTask

    config = ExperimentConfig(**{**TINY, "cycles": None, "label_budget": 30, "acquisition_size": 10})
    task = HumanTask(ClassificationTask(config, problem=load_problem(config)), tmp_path)
    state = kernel.init(task, 0)
    start = state.labels.labels.pool
    state = kernel.replay(task, "bald", state, [7, 8, 9])  # acquired: queued, not labeled
    assert task.counts(state.labels) == {"num_labels": 20, "annotation_seconds": 0.0}
    assert state.labels.queued.tolist() == [7, 8, 9]
    assert 8 in state.labels.labels.pool.unlabeled  # training and validation never see it as held out
    view = task._taken(state.labels)
    assert 8 not in view.pool.unlabeled and view.pool.num_labeled == 23  # acquisition never picks it again
    with pytest.raises(ValueError, match="not in the unlabeled pool"):
        task.apply(state.labels, [8], "bald")
    state, n = kernel.receive(task, state, {8: lstate.Answer(4, 7.5), 500: 1})  # 500 was not queued: ignored
    assert n == 1 and state.labels.queued.tolist() == [7, 9]
    assert task.counts(state.labels) == {"num_labels": 21, "annotation_seconds": 7.5} and state.labels.labels.y[8] == 4
    assert np.array_equal(state.labels.labels.pool.labeled, np.union1d(start.labeled, [8]))
    assert kernel.receive(task, state, {})[1] == 0
    with pytest.raises(ValueError, match="has label 11, not a class index"):
        kernel.receive(task, state, {7: 11})
    # budget 30: 21 labeled + 2 queued spend 23, so the next cycle may acquire 7 (not 9, nor its 10)
    assert config.acquisition_count(task._taken(state.labels).pool.num_labeled) == 7
    assert not task.finished(state.labels, 1, {"accuracy": 0.1})


# ----------------------------------------------------------------------------- exports of other tasks' queries
def test_detection_and_crop_queries_export_to_label_studio_and_coco(tmp_path):
    run = make_run_dir(tmp_path / "run", indices=(3, 4), task="detection", classes=["car", "bus"])
    pending = lstate.read_pending(run)
    pending["queries"][0]["boxes"] = [{"bbox": [20.0, 10.0, 70.0, 60.0], "class": 1, "score": 0.8}]
    pending["queries"][1]["crop"] = [0, 32, 50, 64]
    lstate.write_pending(run, pending)
    images = fake_images(8, (100, 200, 3))
    result = export_queries(run, images=images, image_root="http://localhost:8081")
    assert result.count == 2 and result.out == run / "queries"
    tasks = json.loads((result.out / "tasks.json").read_text())
    assert tasks[0]["data"]["image"] == "http://localhost:8081/pool_000003.png"
    (region,) = tasks[0]["predictions"][0]["result"]
    assert region["type"] == "rectanglelabels" and region["value"]["rectanglelabels"] == ["bus"]
    assert region["value"]["x"] == pytest.approx(10) and region["value"]["width"] == pytest.approx(25)
    assert region["value"]["y"] == pytest.approx(10) and region["value"]["height"] == pytest.approx(50)
    assert tasks[1]["data"]["crop"] == [0, 32, 50, 64]
    assert "<RectangleLabels" in (result.out / "label_config.xml").read_text()
    doc = json.loads((result.out / "coco.json").read_text())
    (ann,) = doc["annotations"]
    assert (ann["image_id"], ann["bbox"], ann["category_id"], ann["score"]) == (3, [20.0, 10.0, 50.0, 50.0], 2, 0.8)
    assert doc["images"][1]["crop"] == [0, 32, 50, 64]
    try:
        from pycocotools.coco import COCO
    except ImportError:  # a dev extra
        COCO = None
    if COCO is not None:
        coco = COCO(str(result.out / "coco.json"))
        (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=[3]))
        assert ann["bbox"] == [20.0, 10.0, 50.0, 50.0] and coco.loadCats(ann["category_id"])[0]["name"] == "bus"
        assert coco.loadImgs(4)[0]["crop"] == [0, 32, 50, 64]
        assert len(coco.loadRes(doc["annotations"]).getAnnIds()) == 1  # valid as a COCO results list too
    # the predicted boxes read back as labels once a labeler confirmed them (scores removed)
    for a in doc["annotations"]:
        del a["score"]
    (result.out / "labeled.json").write_text(json.dumps(doc))
    entries, _, _ = read_labels(result.out / "labeled.json", task="detection", classes=("car", "bus"))
    assert [(e.index, e.label) for e in entries] == [(3, [{"bbox": [20.0, 10.0, 70.0, 60.0], "class": 1}]),
                                                     (4, [])]
    # the Label Studio export of the same boxes (pre-annotation accepted as is)
    ls = [{"data": t["data"], "annotations": [{"result": t["predictions"][0]["result"]}]} for t in tasks]
    (result.out / "ls.json").write_text(json.dumps(ls))
    entries, _, _ = read_labels(result.out / "ls.json", task="detection", classes=("car", "bus"))
    assert entries[0].label == [{"bbox": [20.0, 10.0, 70.0, 60.0], "class": 1}]


def test_export_of_nothing_and_bad_formats(tmp_path):
    run = make_run_dir(tmp_path / "run", indices=(3,))
    lstate.LabelStore(run).append({3: 1}, records=1, source="x", fmt="csv")
    assert export_queries(run, images=fake_images()).count == 0
    with pytest.raises(ValueError, match="unknown export format"):
        export_queries(run, formats="xml", images=fake_images())
    (run / lstate.PENDING).unlink()
    with pytest.raises(ValueError, match="no queries pending"):
        export_queries(run)
    xml = label_config(['a "b"', "c<d"])
    assert "&lt;" in xml and 'value=\'a "b"\'' in xml


# ----------------------------------------------------------------------------- stopping
def records(accuracies, labels=None, scores=None):
    labels = labels or [20 + 10 * c for c in range(len(accuracies))]
    out = []
    for c, (a, n) in enumerate(zip(accuracies, labels)):
        r = {"strategy": "bald", "seed": 0, "cycle": c, "num_labels": n, "accuracy": a, "nll": 1 - a}
        if scores is not None:
            r["scores"] = scores[c]
        out.append(r)
    return out[::-1]  # any order


def test_gain_per_label_stops_when_the_learning_curve_flattens():
    rising = records([0.5, 0.6, 0.7, 0.8, 0.9])
    v = gain_per_label(rising, window=3, min_gain=1e-3)
    assert not v.stop and v.value == pytest.approx(0.01)
    flat = records([0.5, 0.7, 0.80, 0.801, 0.80, 0.802])
    v = gain_per_label(flat, window=3, min_gain=1e-3)
    assert v.stop and v.value < 1e-3 and "below" in v.reason
    assert not gain_per_label(flat, window=5, min_gain=1e-3).stop  # the long window still sees the rise
    assert gain_per_label(flat, window=3, min_gain=1e-3, metric="nll").stop  # nll falls as accuracy rises
    noisy = records([0.5, 0.7, 0.75, 0.74, 0.80])  # one dip does not stop a rising curve
    assert not gain_per_label(noisy, window=3, min_gain=1e-3).stop
    short = gain_per_label(records([0.5, 0.6]), window=3)
    assert not short.stop and "too few cycles" in short.reason
    with pytest.raises(ValueError):
        gain_per_label(rising, window=0)


def test_gain_per_label_counts_what_labeling_is_paid_by():
    """Detection pays per image (not per box), segmentation per pixel, measured per image's worth."""
    det = [{"strategy": "random", "seed": 0, "cycle": c, "num_labeled_images": 100 * (c + 1),
            "num_labeled_boxes": 330 * (c + 1), "map": 0.05 + 0.02 * c} for c in range(4)]
    v = gain_per_label(det, metric="map", window=3, min_gain=1e-4)
    assert v.value == pytest.approx(0.02 / 100) and not v.stop and "per image" in v.reason  # per box: 6e-5, stop
    area = 48 * 64
    seg = [{"task": "segmentation", "strategy": "bald", "seed": 0, "cycle": c, "num_labeled_pixels": 10 * area * (c + 1),
            "num_labeled_images": 10 + 7 * c, "mean_iou": 0.3 + 0.1 * c} for c in range(4)]
    v = gain_per_label(seg, metric="mean_iou", window=3, min_gain=1e-4, unit_size=area)
    assert v.value == pytest.approx(0.01) and not v.stop and f"per {area} pixels" in v.reason
    assert gain_per_label(seg, metric="mean_iou", window=3, min_gain=1e-4).stop  # per pixel it always "stops"
    with pytest.raises(ValueError, match="unit_size"):
        gain_per_label(seg, metric="mean_iou", unit_size=0)


def test_stabilized_scores_and_the_combined_verdict():
    falling = records([0.5] * 5, scores=[[1.0, 0.5], [0.8], [0.6], [0.4], [0.3]])
    v = stabilized_scores(falling, window=3)
    assert not v.stop and v.value == pytest.approx(0.625)
    plateau = records([0.5] * 5, scores=[[1.0], [0.6], [0.41], [0.40], [0.40]])
    assert stabilized_scores(plateau, window=2).stop
    none = stabilized_scores(records([0.5] * 5))
    assert not none.stop and "no opinion" in none.reason
    stop, verdicts = should_stop(records([0.5, 0.6, 0.7, 0.8, 0.9], scores=[[1.0], [0.6], [0.41], [0.40], [0.40]]),
                                 window=2)
    assert stop and [v.stop for v in verdicts] == [False, True]
