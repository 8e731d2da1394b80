"""Render benchmark JSON lines as a Markdown table (for the README and results notes).

    python -m benchmarks.table benchmarks/results/cpu-2core.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import json
import sys

_SKIP_PARAMS = {"chunk_size", "classes", "k"}


def _params(rec: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in rec.get("params", {}).items() if v is not None and k not in _SKIP_PARAMS)


def _figure(rec: dict) -> str:
    if "ratio" in rec:
        return f"{rec['peer']} {rec['peer_timing']['median_seconds']:.3g} s → **{rec['ratio']:.1f}×**"
    for key, fmt in (("speedup_vs_sequential", "{:.2f}× vs sequential ({:.3g} s)"),
                     ("examples_per_second", "{:,.0f} examples/s"),
                     ("items_per_second", "{:,.0f} items/s")):
        if key in rec:
            if key == "speedup_vs_sequential":
                return fmt.format(rec[key], rec["sequential"]["median_seconds"])
            return fmt.format(rec[key])
    if "last_split" in rec:  # one cycle's parts: train / score seconds, or a detection cycle's
        parts = [f"{k.removesuffix('_seconds').replace('_', ' ')} {v:.3g}{' s' if k.endswith('_seconds') else ''}"
                 for k, v in rec["last_split"].items()]
        return " + ".join(parts)
    return ""


def _utilisation(rec: dict) -> str:
    """The case's FLOP/s over the float32 matmul FLOP/s measured in the same run, if recorded."""
    u = rec.get("utilisation")
    return "" if u is None else f"{100 * u:.0f} %"


def render(records: list[dict]) -> str:
    rows = ["| case | parameters | median s (min) | compile s | figure | utilisation | device |",
            "|---|---|---|---|---|---|---|"]
    for rec in records:
        if "error" in rec:
            rows.append(f"| {rec['case']} | {_params(rec)} | error: {rec['error']} | | | | |")
            continue
        timing = rec.get("bal", rec)
        env = rec.get("env", {})
        device = env.get("device_kind", "?")
        if device == "cpu":
            device = f"{env.get('cpu', 'cpu')} ({env.get('cpu_cores')} cores"
            device += f", matmul {env['matmul_gflops_float32']:.0f} GFLOP/s)" if "matmul_gflops_float32" in env else ")"
        rows.append(f"| {rec['case']} | {_params(rec)} | {timing['median_seconds']:.4g} ({timing['min_seconds']:.4g})"
                    f" | {timing['compile_seconds']:.2f} | {_figure(rec)} | {_utilisation(rec)} | {device} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:])
    if not paths:
        print("usage: python -m benchmarks.table RESULTS.jsonl [...]", file=sys.stderr)
        return 2
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    print(render(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
