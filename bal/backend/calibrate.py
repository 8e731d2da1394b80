"""A one-off measurement per CPU model that picks the unpadded-convolution forward (issue 20).

The im2col forward of :func:`bal.backend.conv.forward_patches` beat XLA's
(padded) forward on the first AMD EPYC VM measured (Gal CNN conv2, batch 64:
9.2 against 12.5 ms) but loses on another AMD EPYC VM of the same fleet
(1 MB L2 and 32 MB L3 per socket: 16.8-17.9 against 11.7-12.1 ms; batch 128
32-35 against 23 ms), while the patch-matmul kernel gradient wins on both.
No rule over the cache sizes separates the two, so the choice is measured:
both forwards of the Gal CNN conv2 at batch 64, interleaved for
``rounds`` rounds, the medians compared; XLA's is chosen only when it is at
least :data:`MARGIN` faster (otherwise the patch forward, the outcome the rest
of the tuning was measured with). The result is cached in
``$XDG_CACHE_HOME/bal/cpu-tuning.json`` (else ``~/.cache/bal/``) under the CPU
model, its cache sizes and the JAX version, so one machine type measures once
(about 2 s) and every later process (and every process of a run) reads the same
choice.

``BAL_CONV_FORWARD=patches`` or ``=xla`` in the environment skips the
measurement and forces the choice (the test suite pins ``patches`` so its
numbers do not depend on the machine); ``=auto`` (or unset) measures.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from typing import Callable, Mapping

__all__ = ["CONV_FORWARDS", "MARGIN", "choose", "conv_forward", "machine_key", "measure_conv_forward",
           "tuning_path"]

#: the unpadded stride-1 convolution forwards: the im2col matmul, or XLA's padded-and-sliced conv
CONV_FORWARDS = ("patches", "xla")

#: XLA's forward must be this much faster (fraction of the patch time) to be chosen
MARGIN = 0.1

_ENV = "BAL_CONV_FORWARD"


def tuning_path() -> str:
    """Where per-machine measurements are cached."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bal", "cpu-tuning.json")


def machine_key(cpu: str, caches: Mapping[str, int], jax_version: str) -> str:
    """The cache key of a measurement: CPU model, cache sizes, JAX version."""
    sizes = ",".join(f"{k}={v}" for k, v in sorted(caches.items()))
    return f"{cpu}|{sizes}|jax {jax_version}"


def choose(patches_ms: float, xla_ms: float, margin: float = MARGIN) -> str:
    """``"xla"`` when XLA's forward is at least ``margin`` faster than the patch forward, else ``"patches"``."""
    return "xla" if xla_ms < (1.0 - margin) * patches_ms else "patches"


def measure_conv_forward(rounds: int = 3, repeats: int = 5, batch_size: int = 64) -> dict[str, float]:
    """Median milliseconds of both forwards of the Gal CNN conv2 (``[B, 25, 25, 32]`` through
    ``4x4x32x32``, unpadded) on this machine: ``{"patches_ms", "xla_ms"}``."""
    import jax
    from jax import lax

    from bal.backend import conv

    x = jax.random.normal(jax.random.key(0), (batch_size, 25, 25, 32))
    w = 0.1 * jax.random.normal(jax.random.key(1), (4, 4, 32, 32))
    dims = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    cfg = conv._ConvConfig((1, 1), ((0, 0), (0, 0)), (1, 1), dims, 1, None, None)
    # explicit chunk: the policy is being resolved, so it must not be read here
    fns = {"patches": jax.jit(lambda x, w: conv.forward_patches(x, w, cfg, chunk_bytes=4 << 20)),
           "xla": jax.jit(lambda x, w: conv._forward(x, w, cfg))}
    times: dict[str, list] = {name: [] for name in fns}
    for fn in fns.values():
        jax.block_until_ready(fn(x, w))
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(fn(x, w))
                times[name].append(1e3 * (time.perf_counter() - start))
    return {f"{name}_ms": round(statistics.median(t), 3) for name, t in times.items()}


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or corrupt: measure again and rewrite


def _write(path: str, data: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".cpu-tuning.")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: the choice still holds for this process


def _off_trace(fn: Callable[[], Mapping[str, float]]) -> Mapping[str, float]:
    """``fn()`` in a thread of its own: the policy is often first read while a function is being
    traced, and JAX's trace state is per thread, so there the measurement runs eagerly."""
    out: list = []
    errors: list = []

    def target():
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller's thread
            errors.append(e)

    thread = threading.Thread(target=target, name="bal-calibrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def conv_forward(key: str | None = None, measure: Callable[[], Mapping[str, float]] | None = None,
                 path: str | None = None) -> str:
    """The unpadded-conv forward for this machine: ``$BAL_CONV_FORWARD``, else the cached
    measurement under ``key`` (default :func:`machine_key` of this machine), else a new one."""
    forced = os.environ.get(_ENV, "auto")
    if forced in CONV_FORWARDS:
        return forced
    if forced != "auto":
        raise ValueError(f"{_ENV} must be one of {', '.join(CONV_FORWARDS)} or auto; got {forced!r}")
    if key is None:
        import jax

        from bal.backend.policy import cache_sizes, cpu_model

        key = machine_key(cpu_model(), cache_sizes(), jax.__version__)
    path = path or tuning_path()
    entry = _read(path).get(key, {})
    if entry.get("conv_forward") in CONV_FORWARDS:
        return entry["conv_forward"]
    timings = dict(_off_trace(measure or measure_conv_forward))
    choice = choose(timings["patches_ms"], timings["xla_ms"])
    data = _read(path)  # re-read: another process may have written meanwhile
    data[key] = {**timings, "conv_forward": choice, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write(path, data)
    return choice
