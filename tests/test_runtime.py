"""bal.runtime: glibc's huge-page tunable for child processes and relaunches."""

import os
import platform
import subprocess
import sys

import pytest

from bal import runtime

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="a glibc tunable")


@glibc
def test_cpu_environ_adds_the_tunable_once_and_keeps_others(monkeypatch):
    monkeypatch.delenv("BAL_TUNE_ALLOCATOR", raising=False)
    env = runtime.cpu_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4", "X": "1"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1" and env["X"] == "1"
    assert runtime.huge_pages_enabled(env)
    assert runtime.cpu_environ(env) == env  # idempotent
    assert runtime.cpu_environ({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"


def test_opt_out_leaves_the_environment_alone(monkeypatch):
    monkeypatch.setenv("BAL_TUNE_ALLOCATOR", "0")
    assert runtime.cpu_environ({"X": "1"}) == {"X": "1"}


RELAUNCH = """
import os, sys
print("start", os.environ.get("GLIBC_TUNABLES", ""), sys.argv[1:], flush=True)
from bal.runtime import relaunch_with_huge_pages
relaunch_with_huge_pages()
print("ran", os.environ.get("GLIBC_TUNABLES", ""), sys.argv[1:])
"""


def _relaunch(tmp_path, **env):
    script = tmp_path / "prog.py"
    script.write_text(RELAUNCH)
    base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "BAL_RELAUNCHED", "BAL_TUNE_ALLOCATOR")}
    out = subprocess.run([sys.executable, str(script), "a", "--b"], capture_output=True, text=True, timeout=120,
                         env={**base, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@glibc
def test_relaunch_restarts_the_program_once_with_the_tunable(tmp_path):
    lines = _relaunch(tmp_path)
    # the first start execs itself: same arguments, the tunable set, and no second relaunch
    assert lines == ["start  ['a', '--b']", "start glibc.malloc.hugetlb=1 ['a', '--b']",
                     "ran glibc.malloc.hugetlb=1 ['a', '--b']"]


def test_relaunch_opt_out_and_already_set(tmp_path):
    assert _relaunch(tmp_path, BAL_TUNE_ALLOCATOR="0") == ["start  ['a', '--b']", "ran  ['a', '--b']"]
    set_ = _relaunch(tmp_path, GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
    assert set_ == ["start glibc.malloc.hugetlb=1 ['a', '--b']", "ran glibc.malloc.hugetlb=1 ['a', '--b']"]
