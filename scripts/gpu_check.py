"""The accelerator branches on a real accelerator: seeds side by side against one after another.

Run on a drawn GPU (see scripts/gpu-check). The test suite forces every backend policy on the
CPU; this runs the accelerator policy where it is meant to run (``vmap`` over samples, members
and the seeds of a strategy, chunks of 2,048, XLA's own convolutions), once with the seeds side
by side (``run_map = "vmap"``) and once one after another, and compares the records: the same
acquisitions, metrics within float tolerance. Prints one JSON object (and writes it to
``$OUT/gpu_check.json`` when ``OUT`` is set).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import tempfile
import time

import jax

from bal import backend
from bal.active.config import ExperimentConfig
from bal.active.run import run

CONFIGS = {
    "mlp_digits_bald": ExperimentConfig(dataset="digits", model="mlp", strategies=("bald",), seeds=(0, 1, 2),
                                        initial_labels=20, acquisition_size=10, cycles=3, epochs=30,
                                        num_samples=8, quiet=True),
    "gal_cnn_digits_entropy": ExperimentConfig(dataset="digits", model="gal_cnn", strategies=("entropy",),
                                               seeds=(0, 1, 2), initial_labels=20, acquisition_size=10,
                                               cycles=2, epochs=20, num_samples=8, quiet=True),
}


def _compare(a: list[dict], b: list[dict]) -> dict:
    key = lambda r: (r["strategy"], r["seed"], r["cycle"])
    a, b = sorted(a, key=key), sorted(b, key=key)
    same_acquired = [r["acquired"] for r in a] == [r["acquired"] for r in b]
    gap = max(abs(x["accuracy"] - y["accuracy"]) for x, y in zip(a, b))
    return {"records": len(a), "same_keys": [key(r) for r in a] == [key(r) for r in b],
            "same_acquired": same_acquired, "max_accuracy_gap": gap}


def main() -> int:
    out = {"devices": [str(d) for d in jax.devices()], "backend": jax.default_backend(),
           "policy": dataclasses.asdict(backend.policy())}
    for name, config in CONFIGS.items():
        records, seconds = {}, {}
        for run_map in ("vmap", "sequential"):
            with backend.use(dataclasses.replace(backend.policy(), run_map=run_map)):
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    records[run_map] = run(config, pathlib.Path(tmp) / "run")
                    seconds[run_map] = round(time.perf_counter() - t0, 2)
        out[name] = {**_compare(records["vmap"], records["sequential"]), "seconds": seconds}
    text = json.dumps(out, indent=1)
    print(text)
    if os.environ.get("OUT"):
        pathlib.Path(os.environ["OUT"], "gpu_check.json").write_text(text)
    ok = all(v["same_keys"] and v["same_acquired"] and v["max_accuracy_gap"] < 0.02
             for k, v in out.items() if k in CONFIGS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
