"""A run with people as the oracle: pause after a cycle, export the queries, import part of the
labels, resume on exactly those labels with the rest still queued (digits, MLP, tiny budgets)."""

import csv
import json
import shutil

import numpy as np
import pytest

from bal.active.config import ExperimentConfig
from bal.active.results import read_records
from bal.active.run import run
from bal.cli import main
from bal.labeling import pending_notice
from bal.labeling import state as lstate

from .conftest import TINY

K = TINY["acquisition_size"]


@pytest.fixture(scope="module")
def paused(tmp_path_factory):
    """A human-oracle run paused after cycle 0 (trained once for the module)."""
    out = tmp_path_factory.mktemp("paused") / "run"
    records = run(ExperimentConfig(**TINY), out)
    return out, records


@pytest.fixture
def copy(paused, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(paused[0], out)
    return out


def _spy_task(config):
    """The classification task, remembering what every cycle trained on."""
    from bal.active.tasks.classification import ClassificationTask

    class Spy(ClassificationTask):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.trained = {}

        def train_and_evaluate(self, keys, labels, variables, *, seed, cycle):
            idx = labels.pool.labeled
            self.trained[cycle] = dict(zip(idx.tolist(), labels.y[idx].tolist()))
            return super().train_and_evaluate(keys, labels, variables, seed=seed, cycle=cycle)

    return Spy(config)


def test_run_pauses_after_cycle_zero_with_k_queries_pending(paused):
    out, records = paused
    assert len(records) == 1 and records[0]["cycle"] == 0 and not records[0]["final"]
    assert records[0]["num_labels"] == 20 and len(records[0]["acquired"]) == K
    assert read_records(out) == records
    pending = lstate.read_pending(out)
    assert pending["runs"] == [{"strategy": "bald", "seed": 0, "next_cycle": 1, "num_labels": 20}]
    assert pending["classes"] == [str(c) for c in range(10)] and pending["task"] == "classification"
    queries = pending["queries"]
    assert [q["index"] for q in queries] == records[0]["acquired"]
    assert [q["rank"] for q in queries] == list(range(K))
    for q in queries:
        assert q["file_name"] == lstate.file_name(q["index"]) and q["model_version"] == "bald-seed0-cycle0"
        # BALD is pointwise: the record holds each acquired item's score, best first
        assert q["score"] == records[0]["scores"][q["rank"]] and q["score_source"] == "recorded"
        p = q["prediction"]
        assert 0 <= p["label"] < 10 and p["class"] == str(p["label"]) and 0 < p["probability"] <= 1
    notice = pending_notice(out)
    assert notice.startswith(f"awaiting labels for {K} queries (bald seed 0 before cycle 1)")
    assert f"bal queries export {out}" in notice and f"bal run {out}/config.json --out {out} --resume" in notice


def test_resume_without_new_labels_stays_paused(copy):
    before = (copy / "results.jsonl").read_bytes(), (copy / lstate.PENDING).read_bytes()
    records = run(ExperimentConfig(**TINY), copy, resume=True)
    assert len(records) == 1
    assert ((copy / "results.jsonl").read_bytes(), (copy / lstate.PENDING).read_bytes()) == before


def test_export_writes_every_format(copy, digits_labels, capsys):
    from PIL import Image

    out = copy / "export"
    assert main(["queries", "export", str(copy), "--out", str(out), "--image-root", "/data/local-files/?d="]) == 0
    text = capsys.readouterr().out
    assert f"exported {K} queries to {out}" in text and "bal labels import" in text
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    acquired = read_records(copy)[0]["acquired"]
    assert [q["index"] for q in queries] == acquired  # most informative first
    for q in queries:
        assert set(q) >= {"index", "file_name", "rank", "score", "strategy", "seed", "cycle", "model_version"}
        image = np.asarray(Image.open(out / q["file_name"]))
        assert image.shape == (8, 8) and image.dtype == np.uint8

    # Label Studio: a list of tasks {data: {image, ...}, predictions: [{model_version, score, result}]}
    tasks = json.loads((out / "tasks.json").read_text())
    config = (out / "label_config.xml").read_text()
    assert '<Image name="image" value="$image"/>' in config and '<Choices name="label" toName="image"' in config
    assert isinstance(tasks, list) and len(tasks) == K
    scores = []
    for task, q in zip(tasks, queries):
        assert set(task) == {"data", "predictions"}
        assert task["data"]["image"] == "/data/local-files/?d=" + q["file_name"]
        assert task["data"]["pool_index"] == q["index"]
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "bald-seed0-cycle0"
        assert isinstance(prediction["score"], float)
        scores.append(prediction["score"])
        (result,) = prediction["result"]
        assert (result["from_name"], result["to_name"], result["type"]) == ("label", "image", "choices")
        assert result["value"]["choices"] == [q["prediction"]["class"]]
        assert f'<Choice value="{result["value"]["choices"][0]}"/>' in config
    assert scores == sorted(scores) and scores[0] == 0.0  # lowest first in Label Studio: most informative

    doc = json.loads((out / "coco.json").read_text())
    assert [i["id"] for i in doc["images"]] == acquired and doc["annotations"] == []  # nothing predicted as boxes
    assert [(c["id"], c["name"]) for c in doc["categories"]] == [(c + 1, str(c)) for c in range(10)]
    try:
        from pycocotools.coco import COCO
    except ImportError:  # a dev extra
        COCO = None
    if COCO is not None:
        coco = COCO(str(out / "coco.json"))
        assert sorted(coco.getImgIds()) == sorted(acquired)
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [str(c) for c in range(10)]
        assert coco.loadImgs(acquired[0])[0]["file_name"] == lstate.file_name(acquired[0])
        assert coco.getAnnIds() == []

    with (out / "queries.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "file_name", "rank", "score", "label"]
    assert [int(r[0]) for r in rows[1:]] == acquired and all(r[4] == "" for r in rows[1:])

    # one format, default directory
    assert main(["queries", "export", str(copy), "--format", "csv"]) == 0
    assert sorted(p.name for p in (copy / "queries").iterdir() if p.suffix != ".png") == ["queries.csv"]


def test_partial_import_resumes_on_exactly_those_labels_and_keeps_the_rest_queued(copy, digits_labels, capsys):
    config = ExperimentConfig(**TINY)
    first = read_records(copy)[0]
    acquired = first["acquired"]
    assert main(["queries", "export", str(copy)]) == 0
    tasks = json.loads((copy / "queries" / "tasks.json").read_text())
    # a labeler answers the first three in Label Studio; the export holds every task
    export = []
    for n, task in enumerate(tasks):
        i = task["data"]["pool_index"]
        annotations = [] if n >= 3 else [{"id": n, "result": [{"from_name": "label", "to_name": "image",
                                                               "type": "choices",
                                                               "value": {"choices": [str(digits_labels[i])]}}],
                                          "was_cancelled": False, "ground_truth": False}]
        export.append({"id": n + 1, "data": task["data"], "annotations": annotations,
                       "predictions": task["predictions"]})
    (copy / "export.json").write_text(json.dumps(export))
    capsys.readouterr()
    assert main(["labels", "import", str(copy), str(copy / "export.json")]) == 0
    assert "imported 3 labels" in capsys.readouterr().out
    labeled_now, rest = acquired[:3], acquired[3:]

    task = _spy_task(config)
    records = run(config, copy, resume=True, task=task)
    assert [r["cycle"] for r in records] == [0, 1]
    assert records[1]["num_labels"] == 20 + 3
    trained = task.trained[1]
    assert set(labeled_now) <= set(trained) and not set(rest) & set(trained)
    assert len(trained) == 23 and all(trained[i] == digits_labels[i] for i in labeled_now)
    assert not set(records[1]["acquired"]) & set(acquired)  # queued items are out of the pool
    pending = lstate.read_pending(copy)
    assert sorted(q["index"] for q in pending["queries"]) == sorted(rest + records[1]["acquired"])
    assert pending["runs"][0]["next_cycle"] == 2 and pending["runs"][0]["num_labels"] == 23
    assert pending_notice(copy).startswith(f"awaiting labels for {len(rest) + K} queries")

    # the rest of cycle 0's queries arrive later, through the CSV; cycle 2 (the last) trains on them
    with (copy / "labels.csv").open("w") as f:
        f.write("index,file_name,rank,score,label\n")
        f.writelines(f"{i},{lstate.file_name(i)},0,0,{digits_labels[i]}\n" for i in rest)
    assert main(["labels", "import", str(copy), str(copy / "labels.csv")]) == 0
    task = _spy_task(config)
    records = run(config, copy, resume=True, task=task)  # the replay gives cycle 1 its 3 labels only
    assert [r["cycle"] for r in records] == [0, 1, 2] and records[2]["final"]
    assert records[2]["num_labels"] == 20 + K  # cycle 1's queries were never labeled
    assert set(acquired) <= set(task.trained[2]) and not set(records[1]["acquired"]) & set(task.trained[2])
    assert pending_notice(copy) is None and lstate.read_pending(copy)["queries"] == []
    assert [e["batch"] for e in lstate.LabelStore(copy).entries()] == [1] * 3 + [2] * len(rest)
    assert [e["records"] for e in lstate.LabelStore(copy).entries()] == [1] * 3 + [2] * len(rest)

    # status: labels, pending, the stopping verdict
    capsys.readouterr()
    assert main(["labels", "status", str(copy), "--window", "1"]) == 0
    text = capsys.readouterr().out
    assert f"labels: {K} given in 2 imports" in text and "pending: 0 queries await labels" in text
    assert "bald seed 0: 3 cycles, 26 labels" in text and "finished" in text
    assert "stop paying for labels? " in text and "gain per label over the last 1 cycles" in text

    # --overwrite starts again; the labels people gave are kept, seen from the first cycle: cycle 0
    # queries the same items (same seed), already labeled, so the run goes on to cycle 1 at once
    again = run(config, copy, overwrite=True)
    assert all(e["records"] == 0 for e in lstate.LabelStore(copy).entries())
    assert [r["cycle"] for r in again] == [0, 1] and again[0]["acquired"] == acquired
    assert again[1]["num_labels"] == 20 + K and lstate.read_pending(copy)["runs"][0]["next_cycle"] == 2
