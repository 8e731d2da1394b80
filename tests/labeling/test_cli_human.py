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
