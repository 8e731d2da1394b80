"""bal labels import: Label Studio / COCO / CSV read back, joined on pool index or file name,
checked against the run's queries; every problem one line naming the file and the entry."""

import json

import pytest

from bal.cli import main
from bal.labeling import state as lstate
from bal.labeling.imports import import_labels, read_labels

from .conftest import make_run_dir

QUERIED = (5, 17, 42, 99)


def ls_task(index, choice=None, *, tid=None, cancelled=False, image=None, ground_truth=False, extra=()):
    annotations = []
    if choice is not None:
        annotations.append({"id": 1, "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                                 "value": {"choices": [choice]}}],
                            "was_cancelled": cancelled, "ground_truth": ground_truth})
    annotations += list(extra)
    return {"id": tid if tid is not None else index + 1000,
            "data": {"image": image or f"/data/upload/3/8f3a2b1c-{lstate.file_name(index)}"},
            "annotations": annotations, "predictions": []}


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def cli_import(run_dir, path, capsys, *extra):
    code = main(["labels", "import", str(run_dir), str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_label_studio_export_partial_import_counts_missing(run_dir, tmp_path, capsys):
    export = write(tmp_path / "export.json", [ls_task(5, "3"), ls_task(17, "7"), ls_task(42)])  # 42: no annotation
    code, out, err = cli_import(run_dir, export, capsys)
    assert code == 0, err
    assert "imported 2 labels" in out and "2 queries still await labels" in out
    assert "bal run" in out and "--resume" in out
    entries = lstate.LabelStore(run_dir).entries()
    assert [(e["index"], e["label"], e["batch"], e["records"]) for e in entries] == [(5, 3, 1, 1), (17, 7, 1, 1)]
    assert entries[0]["format"] == "label-studio"
    # the rest: a second batch
    code, out, _ = cli_import(run_dir, write(tmp_path / "more.json", [ls_task(42, "1"), ls_task(99, "0")]), capsys)
    assert code == 0 and "0 queries still await labels" in out
    assert lstate.LabelStore(run_dir).answers() == {5: 3, 17: 7, 42: 1, 99: 0}
    assert lstate.LabelStore(run_dir).num_batches() == 2


def test_csv_coco_json_min_and_joins(tmp_path):
    run = make_run_dir(tmp_path / "run")
    # CSV as exported, filled in part; joined on index (file_name must agree)
    csv_path = write(tmp_path / "q.csv", "index,file_name,rank,score,label\n5,pool_000005.png,0,1.0,4\n"
                                         "17,pool_000017.png,1,0.75,\n")
    r = import_labels(run, csv_path)
    assert (r.format, r.imported, r.missing, r.unlabeled_entries) == ("csv", 1, 3, 1)
    # COCO with renumbered image ids, joined on file names; categories by name
    coco = {"images": [{"id": 1, "file_name": "pool_000017.png"}, {"id": 2, "file_name": "x/pool_000042.png"},
                       {"id": 3, "file_name": "pool_000099.png"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 8, "bbox": [0, 0, 8, 8]},
                            {"id": 2, "image_id": 2, "category_id": 3},
                            {"id": 3, "image_id": 2, "category_id": 3}],
            "categories": [{"id": 3, "name": "2"}, {"id": 8, "name": "7"}]}
    r = import_labels(run, write(tmp_path / "c.json", coco))
    assert (r.format, r.imported, r.missing) == ("coco", 2, 1)  # image 3 has no annotation: unlabeled
    # Label Studio JSON-MIN (flat objects with the control's value)
    r = import_labels(run, write(tmp_path / "min.json", [{"image": "pool_000099.png", "id": 9, "label": "9"}]))
    assert (r.format, r.imported, r.missing) == ("label-studio", 1, 0)
    assert lstate.LabelStore(run).answers() == {5: 4, 17: 7, 42: 2, 99: 9}


def test_annotations_cancelled_ground_truth_and_class_names(tmp_path):
    run = make_run_dir(tmp_path / "run", classes=["zero", "one", "two", "three", "four", "five", "six", "seven",
                                                  "eight", "nine"])
    agree = {"result": [{"type": "choices", "value": {"choices": ["Seven"]}}], "was_cancelled": False}
    skipped = {"result": [{"type": "choices", "value": {"choices": ["one"]}}], "was_cancelled": True}
    truth = {"result": [{"type": "choices", "value": {"choices": ["two"]}}], "ground_truth": True}
    tasks = [ls_task(5, "seven", extra=[agree, skipped]),  # two agreeing, one cancelled
             ls_task(17, "six", extra=[truth]),  # disagreement resolved by the ground truth
             {"data": {"image": "http://x/img.png", "pool_index": 42},
              "annotations": [{"result": [{"type": "choices", "value": {"choices": ["3"]}}]}]}]  # index column
    r = import_labels(run, write(tmp_path / "e.json", tasks))
    assert r.imported == 3
    assert lstate.LabelStore(run).answers() == {5: 7, 17: 2, 42: 3}


ERRORS = [
    ("not queried", [ls_task(5, "3"), ls_task(6, "1")], "task 1006 (pool_000006.png): pool item 6 was not queried"),
    ("unknown class", [ls_task(5, "cat")], "task 1005 (pool_000005.png): unknown class 'cat'"),
    ("twice in the file", [ls_task(5, "3"), ls_task(5, "3", tid=7)], "pool item 5 is labeled twice in the file"),
    ("two classes", [{"data": {"image": "pool_000005.png"}, "annotations": [{"result": [
        {"type": "choices", "value": {"choices": ["1", "2"]}}]}]}], "2 classes ['1', '2'] in one annotation"),
    ("disagree", [ls_task(5, "3", extra=[{"result": [{"type": "choices", "value": {"choices": ["4"]}}]}])],
     "annotations disagree"),
    ("unjoinable", [{"data": {"image": "http://x/cat.jpg"}, "annotations": []}],
     "cannot tell the pool item of 'http://x/cat.jpg'"),
    ("not a list", {"tasks": []}, "cannot tell the format"),
    ("corrupt task", [{"data": {"image": "pool_000005.png"}, "annotations": [{"result": "7"}]}],
     "corrupt annotation"),
    ("nothing labeled", [ls_task(5)], "holds no labels"),
]


@pytest.mark.parametrize("name,content,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_label_studio_errors_are_one_line_naming_the_file(run_dir, tmp_path, capsys, name, content, message):
    path = write(tmp_path / "export.json", content)
    code, out, err = cli_import(run_dir, path, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in err and message in err, err
    assert not (run_dir / lstate.LABELS).exists()  # all or nothing


FILE_ERRORS = [
    ("corrupt json", "export.json", '[{"data": ', "not valid JSON"),
    ("not utf-8", "export.json", b"\xff\xfe\x00[", "not UTF-8"),
    ("empty", "labels.csv", "", "the file is empty"),
    ("csv header", "labels.csv", "idx,class\n5,3\n", "the header must name a label column"),
    ("csv unknown class", "labels.csv", "index,label\n5,3\n17,11\n", "line 3 (pool_000017.png): unknown class '11'"),
    ("csv index and name disagree", "labels.csv", "index,file_name,label\n5,pool_000006.png,3\n", "disagree"),
    ("csv ragged", "labels.csv", "index,label\n5,3,4\n", "line 2: 3 fields"),
    ("coco two categories", "c.json", {"images": [{"id": 1, "file_name": "pool_000005.png"}], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1}, {"id": 2, "image_id": 1, "category_id": 2}],
        "categories": [{"id": 1, "name": "1"}, {"id": 2, "name": "2"}]}, "annotations of 2 categories"),
    ("coco prediction", "c.json", {"images": [{"id": 1, "file_name": "pool_000005.png"}], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "score": 0.9}], "categories": [{"id": 1, "name": "1"}]},
     "it is a model prediction"),
    ("coco bad image id", "c.json", {"images": [{"id": 1, "file_name": "pool_000005.png"}], "annotations": [
        {"id": 4, "image_id": 2, "category_id": 1}], "categories": [{"id": 1, "name": "1"}]},
     "annotation 4: image_id 2 is not among the images"),
    ("coco corrupt", "c.json", {"images": {"id": 1}}, "'images' must be a list of objects"),
]


@pytest.mark.parametrize("name,file,content,message", FILE_ERRORS, ids=[e[0] for e in FILE_ERRORS])
def test_csv_coco_and_corrupt_file_errors(run_dir, tmp_path, capsys, name, file, content, message):
    path = tmp_path / file
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(path, content)
    code, out, err = cli_import(run_dir, path, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and message in err, err
    assert not (run_dir / lstate.LABELS).exists()


def test_already_labeled_and_run_state_errors(run_dir, tmp_path, capsys):
    first = write(tmp_path / "a.csv", "index,label\n5,3\n")
    assert cli_import(run_dir, first, capsys)[0] == 0
    before = (run_dir / lstate.LABELS).read_bytes()
    again = write(tmp_path / "b.csv", "index,label\n17,1\n5,4\n")
    code, _, err = cli_import(run_dir, again, capsys)
    assert code == 2 and "line 3 (pool_000005.png): pool item 5 is already labeled (import batch 1" in err
    assert "label 3); this file says label 4" in err
    assert str(again) in err and len(err.strip().splitlines()) == 1
    assert (run_dir / lstate.LABELS).read_bytes() == before  # 17 was not added either: all or nothing
    # the same label again (a tool's export of the whole project) is skipped, the new one added
    code, out, err = cli_import(run_dir, write(tmp_path / "c.csv", "index,label,lead_time\n17,1,4.5\n5,3,\n"), capsys)
    assert code == 0, err
    assert "imported 1 labels" in out and "4.5 s of annotation time for 1 of them, 1 imported before skipped" in out
    assert lstate.LabelStore(run_dir).answers(timed=True) == {5: (3, None, 1), 17: (1, 4.5, 2)}
    code, _, err = cli_import(run_dir, tmp_path / "c.csv", capsys)
    assert code == 2 and "holds no new labels (its 2 labels were imported before" in err

    code, _, err = cli_import(run_dir, tmp_path / "nope.json", capsys)
    assert code == 2 and "nope.json" in err and "does not exist" in err

    plain = make_run_dir(tmp_path / "plain")
    (plain / lstate.PENDING).unlink()
    code, _, err = cli_import(plain, first, capsys)
    assert code == 2 and "no queries pending" in err

    from bal.active.config import ExperimentConfig

    (plain / "config.json").write_text(ExperimentConfig(dataset="digits").dumps())
    code, _, err = cli_import(plain, first, capsys)
    assert code == 2 and "oracle = 'dataset'" in err

    code, _, err = cli_import(run_dir, first, capsys, "--format", "coco")
    assert code == 2 and "a.csv" in err and "not valid JSON" in err


def test_detection_boxes_from_label_studio_and_coco(tmp_path):
    classes = ("car", "bus")
    rect = {"type": "rectanglelabels", "original_width": 200, "original_height": 100,
            "value": {"x": 10, "y": 20, "width": 25, "height": 50, "rotation": 0, "rectanglelabels": ["bus"]}}
    path = write(tmp_path / "ls.json", [{"data": {"image": "pool_000003.png"}, "annotations": [{"result": [rect]}]},
                                        {"data": {"image": "pool_000004.png"}, "annotations": [{"result": []}]}])
    entries, unlabeled, fmt = read_labels(path, task="detection", classes=classes)
    assert fmt == "label-studio" and unlabeled == 0
    assert entries[0].label == [{"bbox": [20.0, 20.0, 70.0, 70.0], "class": 1}]
    assert entries[1].label == []  # a submitted annotation without boxes: no objects
    coco = {"images": [{"id": 7, "file_name": "pool_000003.png"}, {"id": 8, "file_name": "pool_000004.png"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [20, 20, 50, 50]}],
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "bus"}]}
    entries, _, fmt = read_labels(write(tmp_path / "c.json", coco), task="detection", classes=classes)
    assert fmt == "coco" and [(e.index, e.label) for e in entries] == [
        (3, [{"bbox": [20.0, 20.0, 70.0, 70.0], "class": 1}]), (4, [])]
    with pytest.raises(ValueError, match="c.csv: a CSV holds one class per item"):
        read_labels(write(tmp_path / "c.csv", "index,label\n3,bus\n"), task="detection", classes=classes)
    rect["value"]["rotation"] = 30
    with pytest.raises(ValueError, match="ls.json: task 0 .*rotated boxes are not supported"):
        read_labels(write(tmp_path / "ls.json", [{"data": {"image": "pool_000003.png"},
                                                  "annotations": [{"result": [rect]}]}]),
                    task="detection", classes=classes)


def _rect(x=10, y=20, w=25, h=50, names=("bus",), width=200, height=100):
    return {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": width,
            "original_height": height, "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
                                                 "rectanglelabels": list(names)}}


def _ls_boxes(*rects, lead_time=3.0):
    return [{"id": 7, "data": {"image": "/data/local-files/?d=q/pool_000005.png", "pool_index": 5},
             "annotations": [{"result": list(rects), "lead_time": lead_time}]}]


def _coco_boxes(*bboxes):
    return {"images": [{"id": 5, "file_name": "pool_000005.png", "width": 200, "height": 100}],
            "annotations": [{"id": n, "image_id": 5, "category_id": 2, "bbox": b} for n, b in enumerate(bboxes, 1)],
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "bus"}]}


DETECTION_ERRORS = [
    ("box outside the image", "e.json", _ls_boxes(_rect(x=90, w=20)),
     "task 7 (pool_000005.png): box [180.0, 20.0, 220.0, 70.0] is empty or outside the 200x100 image"),
    ("box on another image size", "e.json", _ls_boxes(_rect(width=400)),
     "task 7 (pool_000005.png): a box drawn on a 400x100 image, but the pool images are 200x100"),
    ("box with two labels", "e.json", _ls_boxes(_rect(names=("car", "bus"))), "a box needs exactly one label"),
    ("box without coordinates", "e.json", _ls_boxes(_rect(x="left")), "a box needs numbers x, y, width, height"),
    ("box of an unknown class", "e.json", _ls_boxes(_rect(names=("truck",))), "unknown class 'truck'"),
    ("negative lead time", "e.json", _ls_boxes(_rect(), lead_time=-3), "invalid lead_time -3"),
    ("lead time not a number", "e.json", _ls_boxes(_rect(), lead_time="fast"), "invalid lead_time 'fast'"),
    ("coco bbox of 3 numbers", "c.json", _coco_boxes([1, 2, 3]), "'bbox' must be 4 numbers [x, y, width, height]"),
    ("coco box outside the image", "c.json", _coco_boxes([150, 10, 60, 20]), "outside the 200x100 image"),
    ("coco empty box", "c.json", _coco_boxes([15, 10, 0, 20]), "annotation 1 (pool_000005.png): invalid box"),
    ("csv of classes", "l.csv", "index,label\n5,bus\n", "a CSV holds one class per item"),
]


@pytest.mark.parametrize("name,file,content,message", DETECTION_ERRORS, ids=[e[0] for e in DETECTION_ERRORS])
def test_detection_and_lead_time_errors_are_one_line(tmp_path, capsys, name, file, content, message):
    run = make_run_dir(tmp_path / "run", task="detection", classes=["car", "bus"])
    pending = lstate.read_pending(run)
    lstate.write_pending(run, {**pending, "image_size": [100, 200]})
    path = write(tmp_path / file, content)
    code, out, err = cli_import(run, path, capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and message in err, err
    assert not (run / lstate.LABELS).exists()


def test_detection_boxes_and_lead_times_are_stored_exactly(tmp_path, capsys):
    run = make_run_dir(tmp_path / "run", task="detection", classes=["car", "bus"])
    lstate.write_pending(run, {**lstate.read_pending(run), "image_size": [96, 128]})
    # percent of a 128 x 96 image, as Label Studio stores it, back to the integer pixels
    rect = _rect(x=100 * 37 / 128, y=100 * 13 / 96, w=100 * 41 / 128, h=100 * 83 / 96, width=128, height=96)
    tasks = _ls_boxes(rect, lead_time=12.25)
    tasks[0]["annotations"].append({"result": [], "was_cancelled": True, "lead_time": 2.0})  # skipped: time spent
    code, out, err = cli_import(run, write(tmp_path / "e.json", tasks), capsys)
    assert code == 0 and "14.25 s of annotation time for 1 of them" in out, err
    (entry,) = lstate.LabelStore(run).entries()
    assert entry["label"] == [{"bbox": [37.0, 13.0, 78.0, 96.0], "class": 1}] and entry["seconds"] == 14.25


def test_a_corrupt_annotation_time_in_the_store_is_one_line(run_dir, tmp_path, capsys):
    (run_dir / lstate.LABELS).write_text(json.dumps({"index": 5, "label": 3, "batch": 1, "records": 1,
                                                     "seconds": "slow"}) + "\n")
    code, _, err = cli_import(run_dir, write(tmp_path / "a.csv", "index,label,lead_time\n17,3,2\n"), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{run_dir / lstate.LABELS}:1: corrupt label line (seconds must be a number >= 0)" in err
    (run_dir / lstate.LABELS).unlink()
    code, _, err = cli_import(run_dir, write(tmp_path / "b.csv", "index,label,lead_time\n17,3,-2\n"), capsys)
    assert code == 2 and "b.csv: line 2 (pool_000017.png): invalid lead_time '-2'" in err
