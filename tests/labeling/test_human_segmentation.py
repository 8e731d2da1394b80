"""People label a segmentation run's images and crops: class maps queued, received, trained on;
exported with crop images, brush pre-annotations and mask files; read back from Label Studio
brushes / polygons and mask files, every problem one line; with the true classes, a human run is the
dataset-oracle run."""

import dataclasses
import json
import re

import jax
import numpy as np
import pytest
from PIL import Image

from bal.active import kernel
from bal.active.results import read_records
from bal.active.run import run
from bal.active.segmentation import SegmentationConfig, parse_strategy, unit_grid
from bal.active.tasks.segmentation import SegmentationTask, load_segmentation_problem
from bal.cli import main
from bal.labeling import masks, pending_notice
from bal.labeling import state as lstate
from bal.labeling.export import export_queries
from bal.labeling.imports import import_labels
from bal.labeling.oracle import HumanTask, key_rect, rect_key, unit_rects

from .conftest import ROAD_CLASSES, SEGMENTATION, make_segmentation_run_dir, strip

CONFIG = SegmentationConfig(**SEGMENTATION)


@pytest.fixture(scope="module")
def problem():
    return load_segmentation_problem(CONFIG)


@pytest.fixture
def rbg_keys():
    """Keys from the "rbg" generator: XLA:CPU compiles the U-Net's initialisers faster (both runs)."""
    before = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    yield
    jax.config.update("jax_default_prng_impl", before)


def brushes(class_map, classes=ROAD_CLASSES) -> list[dict]:
    """Label Studio brushlabels results painting ``class_map`` (one per class present; 255 unpainted)."""
    height, width = class_map.shape
    return [{"from_name": "label", "to_name": "image", "type": "brushlabels", "original_width": width,
             "original_height": height, "image_rotation": 0,
             "value": {"format": "rle", "rle": masks.mask_to_brush(class_map == c), "brushlabels": [classes[c]]}}
            for c in np.unique(class_map[class_map != 255]).tolist()]


# ----------------------------------------------------------------------------- the oracle
def test_people_class_maps_are_queued_received_and_trained_on(problem, tmp_path, monkeypatch):
    inner = SegmentationTask(CONFIG, problem=problem)
    task = HumanTask(inner, tmp_path)
    assert task.classes == tuple(ROAD_CLASSES) and task.image_size == (16, 24)
    state = kernel.init(task, 0)
    first = state.labels.labels.copy()
    assert task.counts(state.labels) == {"num_labeled_pixels": 768, "num_labeled_images": 2,
                                         "annotation_seconds": 0.0}
    a, b = np.flatnonzero(~first.any(axis=(1, 2)))[:2].tolist()
    ids = [a * 6 + 0, a * 6 + 5, b * 6 + 2]  # crops (0, 0, 8, 8), (8, 16, 16, 24) of a; (0, 16, 8, 24) of b
    state = kernel.replay(task, "entropy_crops", state, ids)
    assert state.labels.queued.tolist() == [[a, 0, 0, 8, 8], [a, 8, 16, 16, 24], [b, 0, 16, 8, 24]]
    assert np.array_equal(state.labels.labels, first)  # queued, not labeled
    view = task._taken(state.labels)  # acquisition sees the queued pixels as taken (no unit twice)
    assert view.sum() == 768 + 3 * 64 and view[a, :8, :8].all() and not view[a, :8, 8:16].any()
    with pytest.raises(ValueError, match=rf"units \[{a * 6}\] are not unlabeled"):
        task.apply(state.labels, [a * 6], "entropy_crops")
    with pytest.raises(ValueError, match=rf"units \[{a}\] are not unlabeled"):  # image a: crops of it queued
        task.apply(state.labels, [a], "bald")

    mine = np.full((8, 8), 255, np.uint8)
    mine[2:6, 1:7] = 4  # people's classes, not the dataset's; the rest void
    truth = problem.train_masks[b, 0:8, 16:24]
    answers = {(a, 0, 0, 8, 8): lstate.Answer(masks.pack_map(mine), 4.0, 1),
               (b, 0, 16, 8, 24): lstate.Answer(masks.pack_map(truth), 2.5, 1)}
    state, new = kernel.receive(task, state, answers)
    assert new == 2 and state.labels.queued.tolist() == [[a, 8, 16, 16, 24]] and state.labels.batch_seen == 1
    labeled = state.labels.labels
    assert labeled.sum() == 768 + 128 and labeled[a, :8, :8].all() and labeled[b, :8, 16:].all()
    assert not labeled[a, 8:, 16:].any()
    assert task.counts(state.labels) == {"num_labeled_pixels": 896, "num_labeled_images": 4,
                                         "annotation_seconds": 6.5}
    trained = {}
    monkeypatch.setattr(inner, "train_and_evaluate", lambda *args, **kw: trained.update(kw) or (None, {}))
    task.train_and_evaluate(None, state.labels, None, seed=0, cycle=1)
    expected = problem.train_masks.copy()
    expected[a, :8, :8] = mine
    assert np.array_equal(trained["masks"], expected)  # people's classes where they labeled, else the dataset's

    wrong_size, unknown = masks.pack_map(np.zeros((4, 4), np.uint8)), masks.pack_map(np.full((8, 8), 6, np.uint8))
    for bad, message in [(wrong_size, "the class map is 4x4, but the queried region is 8x8"),
                         (unknown, r"pixel \(row 0, column 0\) has value 6, not a class index 0..5"),
                         (3, "not a class map")]:
        with pytest.raises(ValueError, match=rf"labels.jsonl: pool item {a} crop \[8, 16, 16, 24\]: {message}"):
            kernel.receive(task, state, {(a, 8, 16, 16, 24): bad})
    # a whole image (an image strategy's unit) keys on its pool index
    state = kernel.replay(task, "bald", kernel.init(task, 0), [b])
    assert task._keys(state.labels.queued) == [b] and key_rect(b, (16, 24)) == (b, 0, 0, 16, 24)
    state, new = kernel.receive(task, state, {b: masks.pack_map(problem.train_masks[b])})
    assert new == 1 and state.labels.labels[b].all() and not state.labels.queued.size


# ----------------------------------------------------------------------------- export
def test_export_writes_crops_brush_predictions_and_masks(tmp_path, capsys):
    run_dir = make_segmentation_run_dir(tmp_path / "run")
    rng = np.random.default_rng(0)
    pending = lstate.read_pending(run_dir)
    predicted = {}
    for q in pending["queries"]:
        y0, x0, y1, x1 = q.get("crop", [0, 0, 16, 24])
        predicted[q["file_name"]] = rng.integers(0, 6, size=(y1 - y0, x1 - x0)).astype(np.uint8)
        predicted[q["file_name"]][0, 0] = 2
        q["prediction"] = {"mask": masks.pack_map(predicted[q["file_name"]]), "confidence": 0.5,
                           "model_version": "entropy_crops-seed0-cycle0"}
    lstate.write_pending(run_dir, pending)
    images = rng.random((8, 16, 24, 3), dtype=np.float32)
    result = export_queries(run_dir, images=images, image_root="/data/local-files/?d=q/")
    out = result.out
    assert result.count == 3 and not (out / "coco.json").exists() and not (out / "queries.csv").exists()
    crop = np.asarray(Image.open(out / "pool_000005_crop_8_16_16_24.png"))
    assert np.array_equal(crop, np.rint(images[5, 8:16, 16:24] * 255).astype(np.uint8))
    assert np.asarray(Image.open(out / "pool_000003.png")).shape == (16, 24, 3)
    rows = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert [(r["index"], r.get("crop")) for r in rows] == [(3, None), (5, [0, 0, 8, 8]), (5, [8, 16, 16, 24])]
    tasks = json.loads((out / "tasks.json").read_text())
    for t in tasks:
        name = t["data"]["file_name"]
        assert t["data"]["image"] == "/data/local-files/?d=q/" + name
        painted = np.full(predicted[name].shape, 255)
        for r in t["predictions"][0]["result"]:
            assert r["type"] == "brushlabels" and (r["original_height"], r["original_width"]) == painted.shape
            painted[masks.brush_to_mask(r["value"]["rle"], *painted.shape)] = ROAD_CLASSES.index(
                r["value"]["brushlabels"][0])
        assert np.array_equal(painted, predicted[name])
        assert np.array_equal(masks.read_mask_file(out / "masks" / name), predicted[name])
    config = (out / "label_config.xml").read_text()
    assert '<BrushLabels name="label" toName="image">' in config and '<PolygonLabels name="polygon"' in config
    assert all(f'<Label value="{c}"' in config for c in ROAD_CLASSES)
    assert main(["queries", "export", str(run_dir), "--format", "coco"]) == 2
    assert "a segmentation run's queries export as jsonl, label-studio, masks, not coco" in capsys.readouterr().err
    # the exported masks, imported unchanged, are the predictions as labels
    assert main(["labels", "import", str(run_dir), str(out / "masks")]) == 0
    assert "imported 3 labels" in capsys.readouterr().out
    answers = lstate.LabelStore(run_dir).answers()
    assert set(answers) == {3, (5, 0, 0, 8, 8), (5, 8, 16, 16, 24)}
    assert answers[(5, 0, 0, 8, 8)] == masks.pack_map(predicted["pool_000005_crop_0_0_8_8.png"])


# ----------------------------------------------------------------------------- import
def test_mask_files_and_label_studio_brushes_and_polygons_import(tmp_path):
    run_dir = make_segmentation_run_dir(tmp_path / "run")
    rng = np.random.default_rng(1)
    whole = rng.integers(0, 6, size=(16, 24)).astype(np.uint8)
    whole[0, :5] = 255  # void pixels are labels too (paid, not trained on)
    folder = tmp_path / "masks"
    folder.mkdir()
    masks.write_mask_png(folder / "pool_000003.png", whole)
    five = np.full((16, 24), 255, np.uint8)  # a whole-image mask answering a queried crop of image 5
    five[1:7, 2:8] = 3
    np.save(folder / "pool_000005.npy", five)
    (folder / "notes.txt").write_text("ignored")
    r = import_labels(run_dir, folder)
    assert (r.format, r.imported, r.missing, r.unlabeled_entries) == ("masks", 2, 1, 1)  # crop 2: nothing drawn
    entries = lstate.LabelStore(run_dir).entries()
    assert [(e["index"], e.get("crop")) for e in entries] == [(3, None), (5, [0, 0, 8, 8])]
    assert np.array_equal(masks.unpack_map(entries[0]["label"], "x"), whole)
    assert np.array_equal(masks.unpack_map(entries[1]["label"], "x"), five[:8, :8])

    # the last crop in Label Studio: a brush, then a polygon painted over it, on the exported crop
    crop = np.full((8, 8), 255, np.uint8)
    crop[:, :4] = 1
    polygon = {"from_name": "polygon", "to_name": "image", "type": "polygonlabels", "original_width": 8,
               "original_height": 8, "value": {"points": [[0, 0], [25, 0], [25, 100], [0, 100]], "closed": True,
                                               "polygonlabels": ["crosswalk"]}}
    export = [{"id": 11, "data": {"image": "/data/upload/1/5e1f-pool_000005_crop_8_16_16_24.png", "pool_index": 5,
                                  "crop": [8, 16, 16, 24]},
               "annotations": [{"result": brushes(crop) + [polygon], "lead_time": 7.25, "was_cancelled": False}]},
              {"id": 12, "data": {"image": "pool_000003.png", "pool_index": 3},  # labeled before, the same: skipped
               "annotations": [{"result": brushes(whole), "lead_time": 3.0, "was_cancelled": False}]}]
    (tmp_path / "ls.json").write_text(json.dumps(export))
    r = import_labels(run_dir, tmp_path / "ls.json")
    assert (r.format, r.imported, r.missing, r.again, r.seconds) == ("label-studio", 1, 0, 1, 7.25)
    expected = crop.copy()
    expected[:, :2] = 5  # pixel centres 0.5 and 1.5 lie inside x < 2
    assert lstate.LabelStore(run_dir).answers()[(5, 8, 16, 16, 24)] == masks.pack_map(expected)
    assert pending_notice(run_dir).startswith("every query of")

    # an image queried whole (one strategy) and by crops (another): one whole-image mask answers both
    both = make_segmentation_run_dir(tmp_path / "both", units=((3, None), (3, (0, 0, 8, 8)), (3, (8, 0, 16, 8))))
    whole[8:, :8] = 255
    masks.write_mask_png(tmp_path / "pool_000003.png", whole)
    r = import_labels(both, tmp_path / "pool_000003.png")
    assert (r.imported, r.missing, r.unlabeled_entries) == (2, 1, 1)
    assert lstate.LabelStore(both).answers() == {3: masks.pack_map(whole),
                                                 (3, 0, 0, 8, 8): masks.pack_map(whole[:8, :8])}


def _seg_case(tmp_path, kind, build):
    """A labels file of ``kind`` ("masks": a folder, else a Label Studio export) written by ``build``."""
    if kind == "masks":
        path = tmp_path / "masks"
        path.mkdir()
        build(path)
        return path
    path = tmp_path / "export.json"
    path.write_text(json.dumps(build()))
    return path


def _ls(name, result, index=5, crop=(0, 0, 8, 8)):
    data = {"image": f"/data/upload/2/ab12-{name}", "pool_index": index, **({"crop": list(crop)} if crop else {})}
    return [{"id": 7, "data": data, "annotations": [{"result": result, "was_cancelled": False}]}]


def _png(path, name, shape, value=1, at=None, mark=9):
    a = np.full(shape, value, np.uint8)
    if at is not None:
        a[at] = mark
    masks.write_mask_png(path / name, a)


RGBA16 = masks.rle_encode(np.zeros(4 * 4 * 4, np.uint8))
MALFORMED = [
    ("masks", lambda p: _png(p, "pool_000003.png", (10, 12)),
     r"pool_000003.png: the class map is 12x10, but the queried region is 24x16"),
    ("masks", lambda p: np.save(p / "pool_000005_crop_0_0_8_8.npy", np.zeros((8, 9), np.int64)),
     r"pool_000005_crop_0_0_8_8.npy: the class map is 9x8, but the queried region is 8x8"),
    ("masks", lambda p: _png(p, "pool_000003.png", (16, 24), at=(2, 3)),
     r"pool_000003.png: pixel \(row 2, column 3\) has value 9, not a class index 0..5 or 255"),
    ("masks", lambda p: _png(p, "pool_000005.png", (16, 24), value=255, at=(0, 12), mark=2),
     r"pool_000005.png: labeled pixels outside the queried crops of pool item 5 .*row 0, column 12"),
    ("masks", lambda p: _png(p, "pool_000004.png", (16, 24)), r"pool_000004.png: pool item 4 was not queried"),
    ("masks", lambda p: _png(p, "pool_000005_crop_0_8_8_16.png", (8, 8)),
     r"pool_000005_crop_0_8_8_16.png: pool item 5 crop \[0, 8, 8, 16\] was not queried"),
    ("masks", lambda p: _png(p, "pool_000005_crop_8_16_24_24.png", (16, 8)),
     r"pool_000005_crop_8_16_24_24.png: crop \[8, 16, 24, 24\] is outside the 24x16 pool image"),
    ("masks", lambda p: _png(p, "labels.png", (16, 24)), r"labels.png: cannot tell the query"),
    ("masks", lambda p: Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(p / "pool_000003.png"),
     r"pool_000003.png: a mask is a one-channel image"),
    ("masks", lambda p: np.save(p / "pool_000003.npy", np.zeros((16, 24), np.float32)),
     r"pool_000003.npy: a mask is a 2-D integer array"),
    ("masks", lambda p: None, r"masks: no .png or .npy mask files in the folder"),
    ("ls", lambda: _ls("pool_000005_crop_0_0_8_8.png", brushes(np.zeros((16, 24), np.uint8))),
     r"task 7 \(pool_000005_crop_0_0_8_8.png\): a brushlabels result drawn on a 24x16 image, but the queried "
     r"crop is 8x8"),
    ("ls", lambda: _ls("pool_000005_crop_0_0_8_8.png", brushes(np.zeros((8, 8), np.uint8), ["tree"] * 6)),
     r"task 7 \(pool_000005_crop_0_0_8_8.png\): unknown class 'tree'"),
    ("ls", lambda: _ls("pool_000005_crop_0_0_8_8.png", [{**brushes(np.zeros((8, 8), np.uint8))[0],
                                                         "value": {"format": "rle", "rle": [0, 0, 1],
                                                                   "brushlabels": ["road"]}}]),
     r"task 7 \(pool_000005_crop_0_0_8_8.png\): corrupt brush RLE: the stream ends early"),
    ("ls", lambda: _ls("pool_000005_crop_0_0_8_8.png", [{**brushes(np.zeros((8, 8), np.uint8))[0],
                                                         "value": {"format": "rle", "rle": RGBA16,
                                                                   "brushlabels": ["road"]}}]),
     r"task 7 \(pool_000005_crop_0_0_8_8.png\): the brush RLE holds 64 values, not the 256 of a 8x8 RGBA image"),
    ("ls", lambda: _ls("pool_000005_crop_0_0_8_8.png", [
        {"type": "polygonlabels", "original_width": 8, "original_height": 8,
         "value": {"points": [[0, 0], [50, 50]], "polygonlabels": ["road"]}}]),
     r"task 7 \(pool_000005_crop_0_0_8_8.png\): a polygon needs at least 3 points"),
    ("ls", lambda: _ls("pool_000005_crop_0_0_8_8.png", [{**brushes(np.zeros((8, 8), np.uint8))[0],
                                                         "value": {"format": "rle", "rle": RGBA16,
                                                                   "brushlabels": ["road", "lane_solid"]}}]),
     r"task 7 \(pool_000005_crop_0_0_8_8.png\): a brush needs exactly one label"),
    ("ls", lambda: _ls("pool_000005_crop_0_8_8_16.png", [], crop=(0, 0, 8, 8)),
     r"task 7: crop \[0, 0, 8, 8\] and file name .*pool_000005_crop_0_8_8_16.png' disagree"),
    ("ls", lambda: _ls("pool_000003.png", brushes(np.zeros((16, 24), np.uint8)), index=3, crop=None)
     + _ls("pool_000003.png", brushes(np.ones((16, 24), np.uint8)), index=3, crop=None),
     r"task 7 \(pool_000003.png\): pool item 3 is labeled twice in the file"),
    ("ls", lambda: {"images": [{"id": 1, "file_name": "pool_000003.png"}], "annotations": []},
     r"a COCO import holds classes or boxes; segmentation labels are class maps"),
]


@pytest.mark.parametrize("kind, build, message", MALFORMED, ids=[f"{n}-{m[0]}" for n, m in
                                                                   enumerate(MALFORMED)])
def test_malformed_segmentation_labels_are_one_line_errors(tmp_path, capsys, kind, build, message):
    run_dir = make_segmentation_run_dir(tmp_path / "run")
    path = _seg_case(tmp_path, kind, build)
    assert main(["labels", "import", str(run_dir), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err, err
    assert re.search(message, err), err
    assert not (run_dir / lstate.LABELS).exists()  # all or nothing


# ----------------------------------------------------------------------------- the whole loop
def test_true_class_maps_from_label_studio_and_mask_files_give_the_dataset_run(problem, tmp_path, capsys, rbg_keys):
    straight = run(dataclasses.replace(CONFIG, oracle="dataset"), tmp_path / "dataset", problem=problem)
    human = tmp_path / "human"
    run(CONFIG, human, problem=problem)
    truth, lead = problem.train_masks, {}
    for cycle in (1, 2):
        assert pending_notice(human).startswith("awaiting labels for")
        assert main(["queries", "export", str(human), "--out", str(human / f"q{cycle}")]) == 0
        out = human / f"q{cycle}"
        if cycle == 1:  # Label Studio: the true classes as brushes over each exported image or crop
            tasks = json.loads((out / "tasks.json").read_text())
            for n, t in enumerate(tasks):
                i, (y0, x0, y1, x1) = t["data"]["pool_index"], t["data"].get("crop", [0, 0, 16, 24])
                key = lstate.unit_key(i, t["data"].get("crop"))
                lead[key] = 1.25 + n
                t.update(id=n, annotations=[{"result": brushes(truth[i, y0:y1, x0:x1]), "lead_time": lead[key],
                                             "was_cancelled": False}])
            (out / "export.json").write_text(json.dumps(tasks))
            path = out / "export.json"
        else:  # mask files: whole-image masks, crops' classes inside the queried crops, 255 elsewhere
            path = out / "labeled"
            path.mkdir()
            rows = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
            maps = {}
            for q in rows:
                i, (y0, x0, y1, x1) = q["index"], q.get("crop", [0, 0, 16, 24])
                maps.setdefault(i, np.full((16, 24), 255, np.uint8))[y0:y1, x0:x1] = truth[i, y0:y1, x0:x1]
            for i, m in maps.items():
                masks.write_mask_png(path / lstate.file_name(i), m)
        assert main(["labels", "import", str(human), str(path)]) == 0
        assert "0 queries still await labels" in capsys.readouterr().out
        run(CONFIG, human, resume=True, problem=problem)
    assert pending_notice(human) is None
    key = lambda r: (r["strategy"], r["cycle"])  # noqa: E731
    records, straight = sorted(read_records(human), key=key), sorted(straight, key=key)
    assert strip(records) == strip(straight) and len(records) == 6
    assert [r["acquired"] for r in records] == [r["acquired"] for r in straight]
    assert any(isinstance(k, tuple) for k in lead) and any(isinstance(k, int) for k in lead)
    for strategy in CONFIG.strategies:  # cycles 1 and 2 trained on the Label Studio labels of cycle 0's units
        units = next(r["acquired"] for r in records if r["strategy"] == strategy and r["cycle"] == 0)
        grid = unit_grid(parse_strategy(strategy), 16, 24, CONFIG.grid_rows, CONFIG.grid_cols)
        spent = sum(lead[rect_key(row, (16, 24))] for row in unit_rects(units, grid))
        assert [r["annotation_seconds"] for r in records if r["strategy"] == strategy] == [0.0, spent, spent]
