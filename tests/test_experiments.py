"""Every research script runs in --smoke mode (tiny, offline, seconds)."""

import pathlib
import subprocess
import sys

import pytest

SCRIPTS = sorted(p for p in (pathlib.Path(__file__).parent.parent / "experiments").glob("*.py")
                 if not p.name.startswith("_"))


def test_every_script_is_found():
    names = {p.stem for p in SCRIPTS}
    assert {"mnist_gal2017", "fashion_mnist", "growth", "least_vs_most", "batch_acquisition",
            "cifar10"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_smoke(script, tmp_path):
    res = subprocess.run([sys.executable, str(script), "--smoke", "--quiet", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=script.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "plot:" in res.stdout
    assert list(tmp_path.glob("*/results.jsonl")), "each study writes its results"
    assert list(tmp_path.glob("*/learning_curves.png"))


def test_cifar10_without_data_says_how_to_get_it(tmp_path):
    script = next(p for p in SCRIPTS if p.stem == "cifar10")
    res = subprocess.run([sys.executable, str(script), "--quiet", "--cycles", "1", "--out", str(tmp_path),
                          "--data-dir", str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=300, cwd=script.parent)
    assert res.returncode == 2
    assert "cifar-10-python.tar.gz" in res.stderr and "download" in res.stderr
    assert "Traceback" not in res.stderr
