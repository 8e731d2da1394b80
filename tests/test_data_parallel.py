"""Data-parallel training (bal.parallel, fit(mesh=...)): 8 devices, and 2 processes on 127.0.0.1, equal one device.

The subprocesses (tests/data_parallel_worker.py) set their own device counts;
the reference is the plain one-device ``fit`` in this process (on the CPU a
single process trains on one device unless given a mesh).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from bal import parallel
from bal.train import fit
from tests.data_parallel_worker import DISTRIBUTED, cases, flatten

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# float32 sums split over devices add in another order: differences of a few ulps per step, grown by Adam
ATOL, RTOL = 2e-5, 1e-4


@pytest.fixture(scope="module")
def reference():
    """Every case of the worker trained here on one device (the default on the CPU)."""
    assert parallel.default_mesh() is None  # one CPU process: the plain path
    out = {}
    for name, (post, variables, x, y, key, kwargs) in cases().items():
        result = fit(post, variables, x, y, key, **kwargs)
        out[name] = (flatten(result), result.best_epoch)
    return out


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the worker sets its own device count
    return env


def _compare(got, reference, names=None):
    for name, (want, best_epoch) in reference.items():
        if names is not None and name not in names:
            continue
        for leaf, value in want.items():
            np.testing.assert_allclose(got[f"{name}/{leaf}"], value, atol=ATOL, rtol=RTOL, err_msg=f"{name} {leaf}")
        assert int(got[f"{name}/best_epoch"]) == (-1 if best_epoch is None else best_epoch), name
        assert bool(got[f"{name}/local"]), f"{name}: the variables should come back as local arrays"


def test_eight_devices_train_like_one(tmp_path, reference):
    out = tmp_path / "eight.npz"
    proc = subprocess.run([sys.executable, "-m", "tests.data_parallel_worker", str(out)], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    assert int(got["mesh_devices"]) == 8
    _compare(got, reference)
    # each device computes the loss and gradients of its slice of the batch: ~1/8 of the step's FLOPs
    assert float(got["flops_ratio"]) < 0.3


def test_two_processes_train_like_one(tmp_path, reference):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tests.data_parallel_worker"]
    procs = [subprocess.Popen(cmd + [str(tmp_path / f"p{i}.npz"), str(port), "2", str(i)], cwd=REPO, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=300))
        finally:
            p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    got = [np.load(tmp_path / f"p{i}.npz") for i in range(2)]
    for g in got:
        assert int(g["mesh_devices"]) == 4  # fit's default under jax.distributed: 2 processes x 2 devices
        _compare(g, reference, DISTRIBUTED)
    # each process holds only the rows of its own two devices (64 rows per device), one half each
    halves = sorted((g["local_rows"] for g in got), key=lambda rows: rows[0])
    np.testing.assert_array_equal(halves[0], np.arange(128))
    np.testing.assert_array_equal(halves[1], np.arange(128, 256))
    for key in set(got[0].files) - {"local_rows"}:  # both processes return the same variables
        np.testing.assert_array_equal(got[0][key], got[1][key], err_msg=key)


def test_a_mesh_of_one_device_is_the_plain_path(reference):
    post, variables, x, y, key, kwargs = cases()["mc_dropout"]
    device = jax.devices()[-1]
    result = fit(post, variables, x, y, key, mesh=parallel.data_mesh([device]), **kwargs)
    got = flatten(result)
    for leaf, value in reference["mc_dropout"][0].items():
        np.testing.assert_array_equal(got[leaf], value, err_msg=leaf)
    assert all(leaf.devices() == {device} for leaf in jax.tree.leaves(result.variables))


def test_a_mesh_must_be_one_dimensional_over_data():
    post, variables, x, y, key, kwargs = cases()["mc_dropout"]
    bad = jax.sharding.Mesh(np.asarray(jax.devices()[:2]), ("pool",))
    with pytest.raises(ValueError, match="mesh must be a 1-D jax.sharding.Mesh with the axis 'data'"):
        fit(post, variables, x, y, key, mesh=bad, **kwargs)
