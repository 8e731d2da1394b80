"""With every query labeled before each resume, a human-oracle run is exactly the dataset-oracle
run of the same seed: the same records (minus timings), strategy by strategy."""

import csv
import json

import pytest

from bal.active.config import ExperimentConfig
from bal.active.results import read_records
from bal.active.run import run
from bal.cli import main
from bal.labeling import pending_notice
from bal.labeling import state as lstate

from .conftest import TINY, strip


def label_everything(run_dir, digits_labels, fmt, capsys):
    """A labeler who answers every exported query correctly, in Label Studio or the CSV."""
    assert main(["queries", "export", str(run_dir), "--format", fmt, "--out", str(run_dir / "q")]) == 0
    if fmt == "label-studio":
        tasks = json.loads((run_dir / "q" / "tasks.json").read_text())
        for n, task in enumerate(tasks):
            choice = str(digits_labels[task["data"]["pool_index"]])
            task.update(id=n, annotations=[{"result": [{"type": "choices", "from_name": "label",
                                                        "to_name": "image", "value": {"choices": [choice]}}],
                                            "was_cancelled": False}])
        path = run_dir / "q" / "export.json"
        path.write_text(json.dumps(tasks))
    else:
        path = run_dir / "q" / "queries.csv"
        with path.open() as f:
            rows = list(csv.reader(f))
        rows[1:] = [[*r[:4], str(digits_labels[int(r[0])])] for r in rows[1:]]
        with path.open("w") as f:
            csv.writer(f).writerows(rows)
    assert main(["labels", "import", str(run_dir), str(path)]) == 0
    assert "0 queries still await labels" in capsys.readouterr().out


@pytest.mark.parametrize("warm_start", [False, True], ids=["fresh", "warm_start"])
def test_fully_labeled_human_run_gives_the_dataset_run_records(tmp_path, digits_labels, capsys, warm_start):
    settings = {**TINY, "include_random": True, "warm_start": warm_start}
    straight = run(ExperimentConfig(**{**settings, "oracle": "dataset"}), tmp_path / "dataset")
    assert len(straight) == 2 * 3 and not (tmp_path / "dataset" / lstate.PENDING).exists()

    human = tmp_path / "human"
    config = ExperimentConfig(**settings)
    records = run(config, human)
    for cycle, fmt in ((1, "label-studio"), (2, "csv")):
        assert sorted((r["strategy"], r["cycle"]) for r in records) == sorted(
            (s, c) for s in ("bald", "random") for c in range(cycle))
        assert pending_notice(human).startswith("awaiting labels for")
        label_everything(human, digits_labels, fmt, capsys)
        records = run(config, human, resume=True)
    assert pending_notice(human) is None
    key = lambda r: (r["strategy"], r["cycle"])  # noqa: E731
    assert strip(sorted(read_records(human), key=key)) == strip(sorted(straight, key=key))
