"""The real tool, tested for real: a local Label Studio server labels a human-oracle run.

Each test (classification, detection, segmentation) starts from a dataset-oracle run and the same
run with ``oracle = "human"``. Until the
human run ends, every round: ``bal queries export`` (images served by Label Studio's local-files
storage), the exported ``tasks.json`` with its predictions imported into a Label Studio project
made from the exported ``label_config.xml``, an annotator played through Label Studio's API
with the dataset's true labels (and a lead time; segmentation: brushes painting the true classes of
each exported image or crop), Label Studio's JSON export read back with
``bal labels import``, and ``bal run --resume``. The human run's records must equal the
dataset run's (same acquisitions, same metrics; ``annotation_seconds`` aside, which must be the
lead times of the labels each cycle trained on), and ``bal summary --write`` plots the metric
against annotation time.

Label Studio runs from its own virtual environment (``scripts/labelstudio-env``: its pins clash
with bal's), on a free 127.0.0.1 port with its own data folder (a copy of the environment's
migrated template), a preset user and legacy API token, signup disabled. Without a package index
to build that environment from, the tests skip, saying so (``BAL_REQUIRE_LABELSTUDIO=1``, as
``.ci/run`` sets, makes that a failure).
"""

import collections
import dataclasses
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import jax
import numpy as np
import pytest

from bal.active.config import ExperimentConfig
from bal.active.detection_config import DetectionConfig
from bal.active.results import read_records
from bal.active.run import run
from bal.cli import main
from bal.labeling import pending_notice
from bal.labeling import state as lstate
from bal.report import ANNOTATION_PLOT

from .conftest import SEGMENTATION, TINY, strip

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(3600)]

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "labelstudio-env"

# 32 x 48 road scenes, a tiny CenterNet, 2 cycles of 4 images after 8 (tests/active/test_detection_loop.py)
DETECTION = dict(
    num_train=24, num_test=8, image_size=(32, 48), model_kwargs={"widths": [4, 8], "head_width": 4, "norm": "none"},
    posterior="mc_dropout", num_samples=3, strategies=("box_bald", "disagreement"), score_threshold=0.05,
    max_detections=10, initial_images=8, acquisition_images=4, cycles=2, epochs=None, steps=20, min_steps=0,
    batch_size=8, learning_rate=5e-3, seeds=(0,), chunk_size=8, quiet=True)


# ----------------------------------------------------------------------------- Label Studio
def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("WARNING: Location")]
    return " | ".join(kept[-lines:])


def _index_reachable() -> bool:
    """Whether pip reaches a package index (what building Label Studio's environment needs)."""
    try:
        res = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "label-studio"],
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0 and "label-studio" in res.stdout


@pytest.fixture(scope="session")
def labelstudio_venv() -> pathlib.Path:
    """Label Studio's own virtual environment (built once by scripts/labelstudio-env)."""
    try:
        res = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=1800, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/labelstudio-env took over 30 minutes")
    if res.returncode == 0:
        return pathlib.Path(res.stdout.strip().splitlines()[-1])
    why = f"scripts/labelstudio-env failed ({res.returncode}): {_tail(res.stderr)}"
    if not os.environ.get("BAL_REQUIRE_LABELSTUDIO") and not _index_reachable():
        pytest.skip(f"Label Studio's environment cannot be created here: no package index reachable ({why})")
    pytest.fail(why)


class LabelStudio:
    """A running Label Studio server and its HTTP API (legacy token authentication)."""

    def __init__(self, url: str, token: str, files: pathlib.Path):
        self.url, self.token, self.files = url, token, files  # files: LOCAL_FILES_DOCUMENT_ROOT

    def request(self, method: str, path: str, body=None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Token {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as res:
                return res.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"Label Studio: {method} {path} -> {err.code}: {err.read()[:500]!r}") from None

    def call(self, method: str, path: str, body=None):
        return json.loads(self.request(method, path, body))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def labelstudio(labelstudio_venv, tmp_path_factory):
    """A Label Studio server on a free 127.0.0.1 port, with its own data folder, for this module."""
    root = tmp_path_factory.mktemp("labelstudio")
    data, files = root / "data", root / "files"
    shutil.copytree(labelstudio_venv / "template-data", data)
    files.mkdir()
    port, token = _free_port(), secrets.token_hex(20)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")}
    env.update(LABEL_STUDIO_BASE_DATA_DIR=str(data), LOCAL_FILES_SERVING_ENABLED="true",
               LOCAL_FILES_DOCUMENT_ROOT=str(files), LATEST_VERSION_CHECK="false", SECRET_KEY=secrets.token_hex(32),
               LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true", LOG_LEVEL="WARNING")
    cmd = [str(labelstudio_venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
           "--port", str(port), "--username", "annotator@bal.invalid", "--password", secrets.token_urlsafe(16),
           "--user-token", token, "--enable-legacy-api-token", "--log-level", "WARNING"]
    log_path = root / "label-studio.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        try:
            url, t0 = f"http://127.0.0.1:{port}", time.monotonic()
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=5) as res:
                        if res.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() - t0 > 300:
                    pytest.fail(f"Label Studio did not come up on {url} (exit {proc.poll()}): "
                                f"{_tail(log_path.read_text(errors='replace'))}")
                time.sleep(0.5)
            print(f"Label Studio up on {url} after {time.monotonic() - t0:.1f} s")
            yield LabelStudio(url, token, files)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ----------------------------------------------------------------------------- the round trip
def _unit(task: dict):
    """The unit a Label Studio task labels: its pool index, or ``(index, y0, x0, y1, x1)`` of a crop."""
    return lstate.unit_key(task["data"]["pool_index"], task["data"].get("crop"))


def label_in_labelstudio(ls: LabelStudio, run_dir: pathlib.Path, annotate, title: str) -> dict:
    """Label ``run_dir``'s human run in Label Studio until it ends; returns the lead time of
    every label given, ``{unit: seconds}`` (:func:`_unit`). ``annotate(task) -> (result, lead_time)``."""
    queries = run_dir / "queries"
    image_root = f"/data/local-files/?d={queries.relative_to(ls.files)}/"
    project, lead_times = None, {}
    for round_ in range(1, 10):
        if pending_notice(run_dir) is None:
            return lead_times
        assert main(["queries", "export", str(run_dir), "--image-root", image_root]) == 0
        exported = json.loads((queries / "tasks.json").read_text())
        if project is None:  # the labeling interface bal wrote, and Label Studio serving the images
            project = ls.call("POST", "/api/projects", {"title": title,
                                                        "label_config": (queries / "label_config.xml").read_text()})
            ls.call("POST", "/api/storages/localfiles", {"project": project["id"], "path": str(queries),
                                                         "use_blob_urls": True, "title": "bal queries"})
        done = ls.call("POST", f"/api/projects/{project['id']}/import", exported)
        assert done["task_count"] == len(exported) and done["prediction_count"] == len(exported), done
        everything = ls.call("GET", f"/api/projects/{project['id']}/export?exportType=JSON&download_all_tasks=true")
        new = [t for t in everything if not t["annotations"]]
        assert collections.Counter(map(_unit, new)) == collections.Counter(map(_unit, exported))
        first = new[0]["data"]
        assert ls.request("GET", first["image"]) == (queries / first["file_name"]).read_bytes()
        for task in new:  # the annotator: the dataset's answer, in Label Studio's result format
            result, lead_time = annotate(task)
            ls.call("POST", f"/api/tasks/{task['id']}/annotations",
                    {"result": result, "lead_time": lead_time, "was_cancelled": False, "ground_truth": False})
            lead_times[_unit(task)] = lead_time
        export = run_dir / f"label-studio-export-{round_}.json"  # the whole project: earlier labels again
        export.write_bytes(ls.request("GET", f"/api/projects/{project['id']}/export?exportType=JSON"))
        assert all(a["lead_time"] == lead_times[_unit(t)]
                   for t in json.loads(export.read_text()) for a in t["annotations"])
        assert main(["labels", "import", str(run_dir), str(export)]) == 0
        assert main(["run", str(run_dir / "config.json"), "--out", str(run_dir), "--resume"]) == 0
    raise AssertionError(f"{run_dir}: still awaiting labels after 9 rounds")


def check_records(human_dir, straight: list[dict], lead_times: dict, units=lambda r: r["acquired"]) -> list[dict]:
    """The human run's records are the dataset run's; each cycle's ``annotation_seconds`` is the
    lead time of the labels it trained on (those acquired by earlier cycles; ``units(record)``: the
    keys of a record's acquired units)."""
    key = lambda r: (r["strategy"], r["seed"], r["cycle"])  # noqa: E731
    records = sorted(read_records(human_dir), key=key)
    assert strip(records) == strip(sorted(straight, key=key))
    assert [r["acquired"] for r in records] == [r["acquired"] for r in sorted(straight, key=key)]
    for r in records:
        earlier = [i for q in records if q["strategy"] == r["strategy"] and q["seed"] == r["seed"]
                   and q["cycle"] < r["cycle"] for i in units(q)]
        assert r["annotation_seconds"] == round(sum(lead_times[i] for i in earlier), 3), r
    assert records[-1]["annotation_seconds"] > 0 and records[-1]["final"]
    return records


def check_summary(human_dir, capsys, threshold: str):
    capsys.readouterr()
    assert main(["summary", str(human_dir), "--write", "--thresholds", threshold]) == 0
    assert str(human_dir / ANNOTATION_PLOT) in capsys.readouterr().out
    assert (human_dir / ANNOTATION_PLOT).stat().st_size > 0
    assert f"]({ANNOTATION_PLOT})" in (human_dir / "summary.md").read_text()


@pytest.fixture
def rbg_keys():
    """Every key from the "rbg" generator: XLA:CPU compiles it in a fraction of threefry's time
    (tests/active/test_detection_loop.py); both runs of a test use it."""
    before = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    yield
    jax.config.update("jax_default_prng_impl", before)


def _start(config, ls: LabelStudio, name: str):
    """The dataset-oracle run and the human run's first cycle (paused), under ``ls.files``."""
    base = ls.files / name
    straight = run(dataclasses.replace(config, oracle="dataset"), base / "dataset")
    human = base / "human"
    (base / "human.json").write_text(config.dumps())
    assert main(["run", str(base / "human.json"), "--out", str(human)]) == 0
    assert pending_notice(human).startswith("awaiting labels for")
    return straight, human


def test_label_studio_round_trip_classification(labelstudio, digits_labels, rbg_keys, capsys):
    config = ExperimentConfig(**{**TINY, "strategies": ("bald",), "cycles": 2})
    straight, human = _start(config, labelstudio, "classification")
    classes = lstate.read_pending(human)["classes"]

    def annotate(task):  # the true class; accepting a right pre-annotation is quicker
        truth = classes[int(digits_labels[task["data"]["pool_index"]])]
        lead_time = 1.5 if task["data"]["predicted_class"] == truth else 4.25
        return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [truth]}}], lead_time

    lead_times = label_in_labelstudio(labelstudio, human, annotate, "bal classification")
    assert len(lead_times) == config.cycles * config.acquisition_size
    check_records(human, straight, lead_times)
    check_summary(human, capsys, "0.5")


def test_label_studio_round_trip_detection(labelstudio, rbg_keys, capsys):
    from bal.active.tasks.detection import load_detection_problem

    config = DetectionConfig(**DETECTION, oracle="human")
    straight, human = _start(config, labelstudio, "detection")
    pending = lstate.read_pending(human)
    assert pending["image_size"] == [32, 48] and any("boxes" in q for q in pending["queries"])
    train = load_detection_problem(config).train
    height, width = config.image_size

    def annotate(task):  # the true boxes in the dataset's order, in percent of the image
        i = task["data"]["pool_index"]
        result = []
        for j, ((x0, y0, x1, y1), c) in enumerate(zip(train.boxes[i][train.valid[i]].tolist(),
                                                     train.classes[i][train.valid[i]].tolist())):
            result.append({"id": f"t{i}b{j}", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
                           "original_width": width, "original_height": height, "image_rotation": 0,
                           "value": {"x": 100 * x0 / width, "y": 100 * y0 / height, "width": 100 * (x1 - x0) / width,
                                     "height": 100 * (y1 - y0) / height, "rotation": 0,
                                     "rectanglelabels": [train.class_names[c]]}})
        return result, 3.0 + 2.5 * len(result)

    lead_times = label_in_labelstudio(labelstudio, human, annotate, "bal detection")
    records = check_records(human, straight, lead_times)
    store = lstate.LabelStore(human).answers()
    for i, boxes in store.items():  # the boxes read back are the dataset's, exactly, in pixels
        v = train.valid[i]
        assert [b["bbox"] for b in boxes] == train.boxes[i][v].tolist()
        assert [b["class"] for b in boxes] == train.classes[i][v].tolist()
    assert all(r["num_labeled_boxes"] == q["num_labeled_boxes"]
               for r, q in zip(records, sorted(straight, key=lambda r: (r["strategy"], r["seed"], r["cycle"]))))
    check_summary(human, capsys, "0.05")



SDK_DECODE = """
import json, sys
import numpy as np
from label_studio_sdk.converter.brush import decode_rle
classes, out = sys.argv[2:], {}
for task in json.load(open(sys.argv[1])):
    for r in task["predictions"][0]["result"]:
        h, w = r["original_height"], r["original_width"]
        painted = out.setdefault(task["data"]["file_name"], np.full((h, w), 255))
        alpha = decode_rle(bytes(r["value"]["rle"])).reshape(h, w, 4)[:, :, 3]
        painted[alpha > 0] = classes.index(r["value"]["brushlabels"][0])
print(json.dumps({name: m.tolist() for name, m in out.items()}))
"""


def sdk_brush_layers(venv: pathlib.Path, tasks_json: pathlib.Path, classes) -> dict[str, np.ndarray]:
    """``{file name: class map}`` of the brush predictions of ``tasks.json`` as Label Studio's own
    converter decodes them (``label_studio_sdk.converter.brush.decode_rle``, the alpha channel;
    255: no brush), run in Label Studio's environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(venv / "bin" / "python"), "-c", SDK_DECODE, str(tasks_json), *classes],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, _tail(res.stderr)
    return {name: np.asarray(m) for name, m in json.loads(res.stdout).items()}


def test_label_studio_round_trip_segmentation(labelstudio, labelstudio_venv, rbg_keys, capsys):
    from bal.active.segmentation import SegmentationConfig, parse_strategy, unit_grid
    from bal.active.tasks.segmentation import load_segmentation_problem
    from bal.labeling import masks
    from bal.labeling.oracle import key_rect, rect_key, unit_rects

    config = SegmentationConfig(**SEGMENTATION)
    straight, human = _start(config, labelstudio, "segmentation")
    classes, size = lstate.read_pending(human)["classes"], tuple(config.image_size)
    truth = load_segmentation_problem(config).train_masks
    # Label Studio's converter reads bal's brush pre-annotations as the predicted class maps bal exported
    assert main(["queries", "export", str(human), "--out", str(human / "first")]) == 0
    decoded = sdk_brush_layers(labelstudio_venv, human / "first" / "tasks.json", classes)
    assert decoded and all(np.array_equal(m, masks.read_mask_file(human / "first" / "masks" / name))
                           for name, m in decoded.items())

    def annotate(task):  # the true classes of the exported image or crop, a brush per class
        d = task["data"]
        y0, x0, y1, x1 = d.get("crop", [0, 0, *size])
        region = truth[d["pool_index"], y0:y1, x0:x1]
        result = [{"id": f"t{task['id']}c{c}", "from_name": "label", "to_name": "image", "type": "brushlabels",
                   "original_width": x1 - x0, "original_height": y1 - y0, "image_rotation": 0,
                   "value": {"format": "rle", "rle": masks.mask_to_brush(region == c), "brushlabels": [classes[c]]}}
                  for c in np.unique(region[region != 255]).tolist()]
        return result, 2.0 + 0.5 * len(result)

    lead_times = label_in_labelstudio(labelstudio, human, annotate, "bal segmentation")
    assert any(isinstance(k, tuple) for k in lead_times) and any(isinstance(k, int) for k in lead_times)
    grids = {s: unit_grid(parse_strategy(s), *size, config.grid_rows, config.grid_cols) for s in config.strategies}
    check_records(human, straight, lead_times,
                  units=lambda r: [rect_key(row, size) for row in unit_rects(r["acquired"], grids[r["strategy"]])])
    for key, label in lstate.LabelStore(human).answers().items():  # read back from Label Studio: the truth, exactly
        i, y0, x0, y1, x1 = key_rect(key, size)
        assert np.array_equal(masks.unpack_map(label, str(key)), truth[i, y0:y1, x0:x1])
    check_summary(human, capsys, "0.05")
