"""Timing, environment and JSON output shared by every benchmark case.

Rules every case follows: compile (or warm up) first and report that time
separately; block on results (``jax.block_until_ready``); take the median of
``repeats`` (>= 5 by default) timed calls; state the hardware in every record.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable

import jax

from bal.backend.policy import cache_sizes, cpu_model  # noqa: F401  (moved to bal.backend, issue 20)
from bal.runtime import huge_pages_enabled

#: Peak dense bf16 throughput (FLOP/s) of accelerators we know, for model-FLOPs utilisation.
PEAK_BF16_FLOPS = {
    "NVIDIA H100 80GB HBM3": 989e12,  # SXM, dense
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
}


_MATMUL_FLOPS: list = []


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large float32 ``jnp.dot`` measured now (cached for the process): the
    arithmetic limit every case's utilisation is reported against."""
    if not _MATMUL_FLOPS:
        a = jax.random.normal(jax.random.key(0), (n, n), jax.numpy.float32)
        dot = jax.jit(jax.numpy.dot)
        timing = measure(lambda: block(dot(a, a)), repeats=repeats)
        _MATMUL_FLOPS.append(2.0 * n ** 3 / timing["median_seconds"])
    return _MATMUL_FLOPS[0]


def utilisation(flops: float | None, seconds: float) -> dict[str, float]:
    """``{"gflops_per_second", "utilisation"}`` of a case that executes ``flops`` in ``seconds``,
    against :func:`matmul_flops` of this machine, this run."""
    if not flops:
        return {}
    rate = flops / seconds
    return {"gflops_per_second": rate / 1e9, "utilisation": rate / matmul_flops()}


def environment() -> dict[str, Any]:
    """The hardware and software a record was measured on, with the machine's measured
    matmul throughput (the limit utilisations are reported against)."""
    import flax

    dev = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "num_devices": jax.device_count(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_caches": cache_sizes(),
        "matmul_gflops_float32": round(matmul_flops() / 1e9, 1),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "python": sys.version.split()[0],
        "glibc_huge_pages": huge_pages_enabled(),
    }


def peak_bf16_flops() -> float | None:
    kind = jax.devices()[0].device_kind
    for name, peak in PEAK_BF16_FLOPS.items():
        if kind.startswith(name):
            return peak
    return None


def block(out):
    return jax.block_until_ready(out)


def measure(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1, time_first: bool = False
            ) -> dict[str, float]:
    """Seconds of ``fn()`` (which must block on its result): first call and timed repeats.

    Returns ``first_seconds`` (compilation included), ``median_seconds``,
    ``min_seconds``, ``max_seconds``, ``repeats`` and ``compile_seconds``
    (first call minus the median: what compilation and first-call set-up cost).
    ``time_first`` counts the first call as a repeat: only for code with nothing
    to compile (a PyTorch peer too slow to run more than once).
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        fn()
    times = [first] if time_first else []
    repeats = max(repeats, len(times))
    while len(times) < repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "median_seconds": med,
        "min_seconds": min(times),
        "max_seconds": max(times),
        "repeats": repeats,
        "first_seconds": first,
        "compile_seconds": max(0.0, first - med),
    }


def memory() -> dict[str, float]:
    """Peak memory so far: the device's (where the backend reports it) and the process's RSS."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        out["device_peak_mb"] = stats["peak_bytes_in_use"] / 2**20
    return out


def record(case: str, params: dict, timing: dict, **extra) -> dict:
    """One JSON-able result: the case, its parameters, the timing, memory, environment."""
    return {"case": case, "params": params, **timing, **extra, **memory(), "env": environment(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def emit(rec: dict, out_path: str | None = None) -> None:
    """Print ``rec`` as one JSON line on stdout (and append it to ``out_path``)."""
    line = json.dumps(rec, sort_keys=True)
    print(line, flush=True)
    if out_path:
        with open(out_path, "a") as f:
            f.write(line + "\n")
