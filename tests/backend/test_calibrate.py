"""bal.backend.calibrate: the per-machine choice of the unpadded-conv forward, cached, forced by env."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from bal.backend import calibrate, cpu_policy, use
from bal.backend.conv import conv_general_dilated


@pytest.mark.parametrize("patches,xla,expected", [
    (17.0, 12.0, "xla"),        # the second AMD EPYC VM: XLA's forward clearly faster
    (9.2, 12.5, "patches"),     # the first AMD EPYC VM
    (10.0, 9.5, "patches"),     # within the margin: keep the patch forward
    (10.0, 8.9, "xla"),
])
def test_choose_needs_the_margin(patches, xla, expected):
    assert calibrate.choose(patches, xla) == expected


def test_measured_once_then_read_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BAL_CONV_FORWARD", "auto")
    path = str(tmp_path / "bal" / "cpu-tuning.json")
    calls = []

    def measure():
        calls.append(1)
        return {"patches_ms": 17.0, "xla_ms": 12.0}

    assert calibrate.conv_forward("cpu A", measure, path) == "xla"
    assert calibrate.conv_forward("cpu A", measure, path) == "xla"
    assert len(calls) == 1
    saved = json.loads(open(path).read())
    assert saved["cpu A"]["patches_ms"] == 17.0 and saved["cpu A"]["conv_forward"] == "xla"
    # another machine type measures for itself and keeps the first entry
    assert calibrate.conv_forward("cpu B", lambda: {"patches_ms": 9.0, "xla_ms": 12.0}, path) == "patches"
    assert set(json.loads(open(path).read())) == {"cpu A", "cpu B"}


def test_corrupt_cache_is_measured_again(monkeypatch, tmp_path):
    monkeypatch.setenv("BAL_CONV_FORWARD", "auto")
    path = tmp_path / "cpu-tuning.json"
    path.write_text("{not json")
    assert calibrate.conv_forward("k", lambda: {"patches_ms": 1.0, "xla_ms": 2.0}, str(path)) == "patches"
    assert json.loads(path.read_text())["k"]["conv_forward"] == "patches"


def test_environment_forces_or_rejects(monkeypatch, tmp_path):
    def never():
        raise AssertionError("must not measure when forced")

    for forced in calibrate.CONV_FORWARDS:
        monkeypatch.setenv("BAL_CONV_FORWARD", forced)
        assert calibrate.conv_forward("k", never, str(tmp_path / "t.json")) == forced
    monkeypatch.setenv("BAL_CONV_FORWARD", "fast")
    with pytest.raises(ValueError, match="BAL_CONV_FORWARD"):
        calibrate.conv_forward("k", never, str(tmp_path / "t.json"))


def test_measurement_runs_even_while_tracing(monkeypatch, tmp_path):
    # the policy is first read inside a trace; the measurement must still time real arrays
    monkeypatch.setenv("BAL_CONV_FORWARD", "auto")
    seen = {}

    @jax.jit
    def traced(x):
        seen["choice"] = calibrate.conv_forward(
            "k", lambda: calibrate.measure_conv_forward(rounds=1, repeats=1, batch_size=2), str(tmp_path / "t.json"))
        return x + 1

    traced(jnp.zeros(3))
    entry = json.loads((tmp_path / "t.json").read_text())["k"]
    assert entry["patches_ms"] > 0 and entry["xla_ms"] > 0 and seen["choice"] == entry["conv_forward"]


@pytest.mark.parametrize("forward", calibrate.CONV_FORWARDS)
def test_both_forwards_match_lax_with_gradients(forward):
    x = jax.random.normal(jax.random.key(0), (3, 12, 11, 9))
    w = 0.1 * jax.random.normal(jax.random.key(1), (4, 3, 9, 16))
    dims = ("NHWC", "HWIO", "NHWC")

    def loss(conv, x, w):
        return jnp.sum(jnp.sin(conv(x, w, (1, 1), "VALID", dimension_numbers=dims)))

    want = jax.value_and_grad(lambda x, w: loss(lax.conv_general_dilated, x, w), argnums=(0, 1))(x, w)
    with use(cpu_policy(conv_forward=forward)):
        got = jax.jit(jax.value_and_grad(lambda x, w: loss(conv_general_dilated, x, w), argnums=(0, 1)))(x, w)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
    for g, r in zip(got[1], want[1]):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)
