"""How much of the stabilizing-predictions kappa is retraining noise? (issue 19)

For every recorded cycle of one run with a stop set (``stop_set_size > 0``), train a second
model on exactly the labels that cycle's model was trained on (the labeled sets are replayed
from the recorded acquisitions), from other keys, and compare the two models' predictions on
the stop set: Cohen's kappa of two models that differ only by their random init, dropout and
batch order. Written beside the recorded consecutive-cycle kappa, one JSON line per cycle:

    python experiments/analysis/retrain_kappa.py results/mnist_gal2017/stopping --seed 1 \
        --out results/mnist_gal2017/stopping/retrain_kappa_seed1.jsonl

Resumes: cycles already in ``--out`` are skipped (the replay is exact, so a resumed file is
the same as an uninterrupted one up to timings).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax

from bal.active import kernel, stopping
from bal.active.results import RunDirectory, runs
from bal.active.tasks import build_task

#: the second model's keys: the cycle's own keys folded with this constant
SECOND_MODEL = 7919


def retrain_kappa(run_dir, strategy: str, seed: int, out_path) -> list[dict]:
    run_dir, out_path = RunDirectory(run_dir), pathlib.Path(out_path)
    config = run_dir.read_config()
    if not getattr(config, "stop_set_size", 0):
        raise ValueError(f"{run_dir.path} has no stop set (stop_set_size = 0)")
    records = runs(run_dir.records()).get((strategy, seed))
    if not records:
        raise ValueError(f"{run_dir.path} holds no run of {strategy!r} with seed {seed}")
    done = [json.loads(line) for line in out_path.read_text().splitlines()] if out_path.exists() else []
    task = build_task(config)
    state = kernel.init(task, seed)
    with open(out_path, "a") as out:
        for record in records:
            if record["cycle"] >= len(done):
                t0 = time.perf_counter()
                keys = jax.random.split(jax.random.fold_in(kernel.cycle_key(seed, record["cycle"]), SECOND_MODEL), 3)
                _, metrics = task.train_and_evaluate(tuple(keys), state.labels, None, seed=seed, cycle=record["cycle"])
                kappa = stopping.cohen_kappa(stopping.decode_predictions(metrics["stop_predictions"]),
                                             stopping.decode_predictions(record["stop_predictions"]))
                row = {"cycle": record["cycle"], "num_labels": record["num_labels"],
                       "retrain_kappa": round(kappa, 6), "consecutive_kappa": record.get("stop_kappa"),
                       "accuracy": record["accuracy"], "second_accuracy": round(metrics["accuracy"], 6),
                       "seconds": round(time.perf_counter() - t0, 1)}
                out.write(json.dumps(row) + "\n")
                out.flush()
                done.append(row)
                print(json.dumps(row), flush=True)
            state = kernel.replay(task, strategy, state, record.get("acquired") or [])
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--strategy", default="bald")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    retrain_kappa(args.run_dir, args.strategy, args.seed, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
