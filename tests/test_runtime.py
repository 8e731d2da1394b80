"""bal.runtime: the process-wide allocator setting (run in subprocesses: it is global)."""

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
from bal.runtime import cpu_allocator_tuned, tune_cpu_allocator
before = cpu_allocator_tuned()
first, second = tune_cpu_allocator(), tune_cpu_allocator()
for _ in range(3):  # big blocks are still allocated, freed and reused correctly
    a = np.ones((64 << 20) // 8); assert a.sum() == a.size; del a
print(before, first, second, cpu_allocator_tuned())
"""


def _run(**env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tune_cpu_allocator_applies_once_on_glibc_cpu():
    assert _run(JAX_PLATFORMS="cpu") == ["False", "True", "True", "True"]


def test_tune_cpu_allocator_opt_out():
    assert _run(JAX_PLATFORMS="cpu", BAL_TUNE_ALLOCATOR="0") == ["False", "False", "False", "False"]
