"""``bal run`` with people as the oracle: exit 0 and say what to do; the labeling commands' edges."""

import os
import subprocess
import sys

import pytest

from bal.cli import main
from bal.labeling import state as lstate

from .conftest import make_run_dir


def test_bal_run_with_the_human_oracle_exits_0_awaiting_labels(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bal.cli", "run", "--dataset", "digits", "--oracle", "human", "--strategies", "bald",
           "--no-include-random", "--seeds", "0", "--cycles", "1", "--epochs", "2", "--initial-labels", "20",
           "--acquisition-size", "4", "--num-samples", "3", "--pool-subset", "200", "--quiet", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("awaiting labels for 4 queries (bald seed 0 before cycle 1)"), res.stdout
    assert f"bal queries export {out}" in last and f"bal labels import {out} FILE" in last
    assert f"bal run {out / 'config.json'} --out {out} --resume" in last
    assert len(lstate.read_pending(out)["queries"]) == 4

    # the suggested resume, with nothing labeled yet: no cycle runs, the same message
    res = subprocess.run([sys.executable, "-m", "bal.cli", "run", str(out / "config.json"), "--out", str(out),
                          "--resume"], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == last
    assert (out / "results.jsonl").read_text().count("\n") == 1


@pytest.mark.parametrize("argv,message", [
    (["run", "--dataset", "digits", "--oracle", "people"], "oracle must be one of dataset, human; got 'people'"),
    (["queries", "export", "{missing}"], "is not a bal run directory"),
    (["queries", "export", "{plain}"], "no queries pending"),
    (["labels", "status", "{missing}"], "is not a bal run directory"),
    (["labels", "import", "{plain}", "{plain}/x.csv"], "no queries pending"),
])
def test_labeling_command_errors_are_one_line(tmp_path, capsys, argv, message):
    plain = make_run_dir(tmp_path / "plain")
    (plain / lstate.PENDING).unlink()
    (plain / "x.csv").write_text("index,label\n5,3\n")
    argv = [a.format(missing=tmp_path / "missing", plain=plain) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_status_of_a_paused_run(run_dir, capsys):
    lstate.LabelStore(run_dir).append({5: 3}, records=1, source="a.csv", fmt="csv")
    assert main(["labels", "status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "oracle human" in text and "labels: 1 given in 1 imports (1 not used yet)" in text
    assert "pending: 3 queries await labels" in text
    assert "bald seed 0: 1 cycles, 20 labels, accuracy 0.5000; paused before cycle 1" in text
    assert "stop paying for labels? no" in text and "too few cycles" in text


def test_status_reports_the_annotation_time(run_dir, capsys):
    lstate.LabelStore(run_dir).append({5: 3, 17: 1}, records=1, source="ls.json", fmt="label-studio",
                                      seconds={5: 4.5, 17: 1.5})
    lstate.LabelStore(run_dir).append({42: 2}, records=1, source="a.csv", fmt="csv")
    assert main(["labels", "status", str(run_dir)]) == 0
    assert "annotation time: 6.0 s for 2 labels (3.0 s per label)" in capsys.readouterr().out


def _records(seconds_per_label):
    """Two seeds x three cycles of a human run, 6 labels a cycle, ``annotation_seconds`` as a run records it."""
    out = []
    for seed in (0, 1):
        for cycle in range(3):
            r = {"task": "classification", "strategy": "bald", "seed": seed, "cycle": cycle,
                 "num_labels": 20 + 6 * cycle, "accuracy": 0.5 + 0.1 * cycle + 0.01 * seed,
                 "acquired": [] if cycle == 2 else [cycle], "final": cycle == 2}
            if seconds_per_label is not None:
                r["annotation_seconds"] = 6 * cycle * seconds_per_label
            out.append(r)
    return out


@pytest.mark.parametrize("seconds_per_label,plotted", [(2.5, True), (0.0, False), (None, False)],
                         ids=["timed", "imported-without-times", "dataset-oracle"])
def test_summary_plots_accuracy_against_annotation_time(tmp_path, capsys, seconds_per_label, plotted):
    import json

    from bal.report import ANNOTATION_PLOT, annotation_timed, plot_annotation_curves

    records = _records(seconds_per_label)
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert annotation_timed(records) is plotted
    assert main(["summary", str(tmp_path), "--write", "--thresholds", "0.6"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "learning_curves.png").exists() and (tmp_path / ANNOTATION_PLOT).exists() is plotted
    assert (str(tmp_path / ANNOTATION_PLOT) in out) is plotted
    summary = (tmp_path / "summary.md").read_text()
    assert (f"]({ANNOTATION_PLOT})" in summary) is plotted
    if plotted:
        assert "annotation time of people's labels: 30.0 s per run (mean over 2 runs" in summary
    else:
        with pytest.raises(ValueError, match="results.jsonl: the records carry no annotation time"):
            plot_annotation_curves(tmp_path / "results.jsonl")
