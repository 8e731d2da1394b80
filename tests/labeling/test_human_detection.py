"""People label a detection run's images: boxes received, encoded as the targets the detector trains
on, counted; a COCO round trip with the true boxes gives the dataset-oracle run's records."""

import dataclasses
import json

import numpy as np
import pytest

from bal.active import kernel
from bal.active.detection_config import DetectionConfig
from bal.active.results import read_records
from bal.active.run import run
from bal.active.tasks.detection import DetectionTask, load_detection_problem
from bal.cli import main
from bal.labeling import pending_notice
from bal.labeling import state as lstate
from bal.labeling.oracle import HumanTask, encode_boxes

from .conftest import strip

# 32 x 48 road scenes, a tiny CenterNet (tests/active/test_detection_loop.py)
TINY = DetectionConfig(
    num_train=24, num_test=8, image_size=(32, 48), model_kwargs={"widths": [4, 8], "head_width": 4, "norm": "none"},
    posterior="mc_dropout", num_samples=3, strategies=("disagreement",), score_threshold=0.05, max_detections=10,
    initial_images=8, acquisition_images=4, cycles=2, epochs=None, steps=20, min_steps=0, batch_size=8,
    learning_rate=5e-3, seeds=(0,), chunk_size=8, quiet=True, oracle="human")


pytestmark = pytest.mark.usefixtures("rbg_keys")


@pytest.fixture(scope="module")
def problem():
    return load_detection_problem(TINY)


def truth(problem, i) -> list[dict]:
    train = problem.train
    v = train.valid[i]
    return [{"bbox": b, "class": c} for b, c in zip(train.boxes[i][v].tolist(), train.classes[i][v].tolist())]


def test_people_boxes_are_received_encoded_and_counted(problem, tmp_path):
    task = HumanTask(DetectionTask(TINY, problem=problem), tmp_path)
    assert task.classes == problem.class_names and task.image_size == (32, 48)
    state = kernel.init(task, 0)
    first = state.labels.labels.labeled
    assert task.counts(state.labels) == {"num_labeled_images": 8, "annotation_seconds": 0.0,
                                         "num_labeled_boxes": int(problem.train.valid[first].sum())}
    free = state.labels.labels.unlabeled[:3].tolist()
    state = kernel.replay(task, "disagreement", state, free)
    view = task._taken(state.labels)  # acquisition: queued images neither labeled nor acquirable
    assert np.array_equal(view.labeled, first) and not set(free) & set(view.unlabeled.tolist())
    assert task._targets(state.labels) == {}  # nothing from people yet: the dataset's targets

    a, b = free[0], free[1]
    mine = [{"bbox": [2.0, 3.0, 20.5, 17.0], "class": 4}]
    answers = {a: lstate.Answer(mine, 6.0, 1), b: lstate.Answer(truth(problem, b), 9.5, 1)}
    state, new = kernel.receive(task, state, answers)
    assert new == 2 and state.labels.queued.tolist() == [free[2]] and state.labels.batch_seen == 1
    labeled = state.labels.labels.labeled
    others = np.setdiff1d(labeled, [a, b])
    assert task.counts(state.labels) == {
        "num_labeled_images": 10, "annotation_seconds": 15.5,
        "num_labeled_boxes": int(problem.train.valid[others].sum()) + 1 + len(truth(problem, b))}
    targets, flipped = task._targets(state.labels)["targets"]
    row = {i: j for j, i in enumerate(labeled.tolist())}
    assert np.array_equal(targets[row[a]], encode_boxes([mine], (32, 48), 5)[0])  # people's box, not the dataset's
    assert not np.array_equal(targets[row[a]], problem.train_targets[a])
    assert np.array_equal(flipped[row[a]], encode_boxes([mine], (32, 48), 5, flip=True)[0])
    assert np.array_equal(targets[row[b]], problem.train_targets[b])  # the true boxes encode as the dataset's
    assert np.array_equal(flipped[row[b]], problem.flipped_targets[b])
    assert np.array_equal(targets[row[int(others[0])]], problem.train_targets[others[0]])

    # an answer from an import already seen (another run's query) is received, but is not new
    state, new = kernel.receive(task, state, {**answers, free[2]: lstate.Answer([], None, 1)})
    assert new == 0 and not state.labels.queued.size and free[2] in state.labels.given
    for bad, message in [([{"bbox": [40.0, 3.0, 50.0, 9.0], "class": 0}], "outside the 48x32 image"),
                         ([{"bbox": [4.0, 3.0, 9.0, 9.0], "class": 5}], "class 5, not a class index 0..4"),
                         ({"bbox": [4.0, 3.0, 9.0, 9.0], "class": 1}, "boxes must be a list")]:
        again = kernel.replay(task, "disagreement", kernel.init(task, 0), free[:1])
        with pytest.raises(ValueError, match=f"labels.jsonl: pool item {free[0]}: .*{message}"):
            kernel.receive(task, again, {free[0]: bad})
    with pytest.raises(ValueError, match="supported for classification, detection, segmentation runs only"):
        HumanTask(type("T", (), {"name": "regression", "problem": None})(), tmp_path)


def test_coco_round_trip_with_the_true_boxes_gives_the_dataset_run(problem, tmp_path, capsys):
    straight = run(dataclasses.replace(TINY, oracle="dataset"), tmp_path / "dataset", problem=problem)
    human = tmp_path / "human"
    run(TINY, human, problem=problem)
    pending = lstate.read_pending(human)
    assert pending["task"] == "detection" and pending["image_size"] == [32, 48]
    assert pending["classes"] == list(problem.class_names) and all("boxes" in q for q in pending["queries"])
    # every format a detection label can come back in, and no CSV (one class per item holds no boxes)
    assert main(["queries", "export", str(human), "--out", str(tmp_path / "all")]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir() if p.suffix != ".png") == [
        "coco.json", "label_config.xml", "queries.jsonl", "tasks.json"]
    assert main(["queries", "export", str(human), "--format", "csv"]) == 2
    assert "export as jsonl, label-studio, coco, not csv" in capsys.readouterr().err
    for _ in range(TINY.cycles):
        assert main(["queries", "export", str(human), "--format", "coco"]) == 0
        doc = json.loads((human / "queries" / "coco.json").read_text())
        assert {a["image_id"] for a in doc["annotations"]} <= {im["id"] for im in doc["images"]}
        doc["annotations"] = [  # the labeler replaces the predicted boxes by the true ones (pixels, [x, y, w, h])
            {"id": n, "image_id": im["id"], "category_id": box["class"] + 1,
             "bbox": [box["bbox"][0], box["bbox"][1], box["bbox"][2] - box["bbox"][0], box["bbox"][3] - box["bbox"][1]]}
            for n, (im, box) in enumerate(((im, box) for im in doc["images"] for box in truth(problem, im["id"])), 1)]
        (human / "labeled.json").write_text(json.dumps(doc))
        assert main(["labels", "import", str(human), str(human / "labeled.json")]) == 0
        assert "0 queries still await labels" in capsys.readouterr().out
        run(TINY, human, resume=True, problem=problem)
    assert pending_notice(human) is None
    records = read_records(human)
    assert strip(records) == strip(straight) and records[-1]["final"]
    assert all(r["annotation_seconds"] == 0.0 for r in records)  # COCO carries no annotation time
