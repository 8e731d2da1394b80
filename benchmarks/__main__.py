"""Run the benchmark suite: one JSON object per case on stdout, a table on stderr.

    python -m benchmarks                 # default grid (< 15 min on 2 CPU cores)
    python -m benchmarks --quick         # one small instance of every case (< 2 min)
    python -m benchmarks --full          # the whole grid (for accelerators)
    python -m benchmarks --only train batchbald --out benchmarks/results/mine.jsonl

Each case runs in a fresh Python process (``--no-isolate`` to run in this one),
so its peak RSS is its own and one case's compiled programs and buffers do not
slow the next. A failing case prints a record with an ``error`` and the suite
goes on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bal.runtime import cpu_environ, relaunch_with_huge_pages
from benchmarks.grids import MODES


def _run_in_process(name: str, params: dict, repeats: int | None) -> dict:
    from benchmarks.cases import CASES

    kwargs = dict(params)
    if repeats is not None:
        kwargs["repeats"] = repeats
    return CASES[name](**kwargs)


def _run_isolated(name: str, params: dict, repeats: int | None) -> dict:
    spec = json.dumps({"case": name, "params": params, "repeats": repeats})
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--child", spec], capture_output=True, text=True,
                          env=cpu_environ())  # glibc huge pages, as `bal run` relaunches with
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"case": name, "params": params, "error": tail[0]}
    return json.loads(lines[-1])


def _row(rec: dict) -> str:
    p = rec.get("params", {})
    desc = " ".join(f"{k}={v}" for k, v in p.items() if v is not None)
    if "error" in rec:
        return f"{rec['case']:<24} {desc:<70} ERROR {rec['error']}"
    extra = ""
    for key in ("speedup_vs_sequential", "examples_per_second", "items_per_second", "mfu_vs_bf16_peak"):
        if key in rec:
            extra = f"{key}={rec[key]:.3g}"
            break
    return (f"{rec['case']:<24} {desc:<70} median {rec['median_seconds']:.4f} s "
            f"(min {rec['min_seconds']:.4f}, compile {rec['compile_seconds']:.2f}) {extra}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one small instance of every case")
    mode.add_argument("--full", action="store_true", help="the whole grid (hours on a CPU)")
    ap.add_argument("--only", nargs="+", default=None, help="run only these case names")
    ap.add_argument("--repeats", type=int, default=None, help="override the timed repeats (default 5; >= 5)")
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    ap.add_argument("--no-isolate", action="store_true", help="run every case in this process")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_run_in_process(spec["case"], spec["params"], spec["repeats"]), sort_keys=True), flush=True)
        return 0

    grid = MODES["quick" if args.quick else "full" if args.full else "default"]()
    if args.only:
        unknown = sorted(set(args.only) - {name for name, _ in grid})
        if unknown:
            print(f"benchmarks: error: unknown cases {unknown}; this mode has "
                  f"{sorted({name for name, _ in grid})}", file=sys.stderr)
            return 2
        grid = [(name, p) for name, p in grid if name in args.only]
    if args.no_isolate:
        relaunch_with_huge_pages()
    run = _run_in_process if args.no_isolate else _run_isolated
    start, rows = time.perf_counter(), []
    for i, (name, params) in enumerate(grid, 1):
        print(f"[{i}/{len(grid)}] {name} {params}", file=sys.stderr, flush=True)
        try:
            rec = run(name, params, args.repeats)
        except Exception as err:  # a failing case must not lose the others
            rec = {"case": name, "params": params, "error": f"{type(err).__name__}: {err}"}
        line = json.dumps(rec, sort_keys=True)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
        rows.append(_row(rec))
    print(f"\n{len(grid)} cases in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print("\n".join(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
