"""The talk's per-cycle figures: each strategy's metric after cycle 1, 2, 6, ... (bars with the
seed spread), read from results files only.

The talk compares strategies "after one, two and six cycles": a group of bars
per cycle, one bar per strategy, its height the mean over seeds and its error
bar the (population) standard deviation, with every seed's value drawn as a
dot. :func:`cycle_table` computes those numbers; :func:`plot_cycle_bars` draws
them (``bal plot RUN_DIR --cycles 1 2 6``). Accuracy against cycles (the growth
study) is ``bal plot RUN_DIR --x cycle``.

Cycle ``c`` here is the record of cycle ``c``: the model trained after ``c``
acquisitions (cycle 0 is the initial labeled set).
"""

from __future__ import annotations

import pathlib

import numpy as np

from bal.active.results import runs
from bal.report.records import default_metric, label_key, label_unit, open_plot

__all__ = ["cycle_table", "plot_cycle_bars", "format_cycle_table"]


def cycle_table(records: list[dict], cycles, metric: str | None = None) -> list[dict]:
    """Per strategy and cycle: ``{"strategy", "cycle", "mean", "std", "values" {seed: v}, "labels",
    "unit", "metric"}`` (``metric`` default: the task's, e.g. accuracy, mean_iou, map; ``labels``: the
    label count in its ``unit``, e.g. pixels for segmentation).

    A cycle some seed of a strategy did not reach is left out for that strategy (no mean over
    fewer seeds than the others).
    """
    cycles = [int(c) for c in cycles]
    metric = metric or default_metric(records)
    key, unit = label_key(records), label_unit(records)
    if not cycles or any(c < 0 for c in cycles):
        raise ValueError(f"cycles must be integers >= 0; got {cycles}")
    out = []
    by_strategy: dict[str, dict[int, list[dict]]] = {}
    for (strategy, seed), run in runs(records).items():
        by_strategy.setdefault(strategy, {})[seed] = run
    for strategy in sorted(by_strategy, key=lambda s: (s == "random", s)):
        seeds = by_strategy[strategy]
        for c in cycles:
            at = {seed: next((r for r in run if r["cycle"] == c), None) for seed, run in seeds.items()}
            if any(r is None or metric not in r for r in at.values()):
                continue
            values = {seed: float(r[metric]) for seed, r in sorted(at.items())}
            v = np.array(list(values.values()))
            labels = sorted({r.get(key) for r in at.values()})
            out.append({"strategy": strategy, "cycle": c, "mean": float(v.mean()), "std": float(v.std()),
                        "values": values, "labels": labels[0] if len(labels) == 1 else labels, "unit": unit,
                        "metric": metric})
    missing = sorted(set(cycles) - {r["cycle"] for r in out})
    if missing:
        raise ValueError(f"no strategy has a record of cycle(s) {missing} with {metric!r} in every seed "
                         f"(the runs end at cycle {max(r['cycle'] for r in records)})")
    return out


def format_cycle_table(rows: list[dict], metric: str | None = None) -> str:
    """A Markdown table: strategy x cycle, ``mean ± std (labels)``."""
    metric = metric or (rows[0]["metric"] if rows else "accuracy")
    cycles = sorted({r["cycle"] for r in rows})
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    cell = {(r["strategy"], r["cycle"]): r for r in rows}
    lines = [f"| {metric} after cycle | " + " | ".join(str(c) for c in cycles) + " |",
             "|---|" + "---|" * len(cycles)]
    for s in strategies:
        cells = []
        for c in cycles:
            r = cell.get((s, c))
            cells.append("-" if r is None else f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f} % "
                                                f"({r['labels']} {r['unit']}, {len(r['values'])} seeds)")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_cycle_bars(source, cycles=(1, 2, 6), out_path=None, *, metric: str | None = None,
                    title: str | None = None) -> pathlib.Path:
    """Write the per-cycle bar figure of a run directory (or ``results.jsonl``, or several:
    :func:`bal.report.records.read_sources`) as a PNG. Default path: ``<run dir>/cycle_bars.png``
    (of the first source)."""
    plt, run_dir, records = open_plot(source)
    rows = cycle_table(records, cycles, metric)
    out_path = pathlib.Path(out_path) if out_path else run_dir / "cycle_bars.png"
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    shown = sorted({r["cycle"] for r in rows})
    width = 0.8 / len(strategies)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 1.4 * len(shown)), 4.2), dpi=120)
    for i, strategy in enumerate(strategies):
        color = "0.55" if strategy == "random" else f"C{i}"
        mine = {r["cycle"]: r for r in rows if r["strategy"] == strategy}
        xs = [shown.index(c) + (i - (len(strategies) - 1) / 2) * width for c in mine]
        ax.bar(xs, [r["mean"] for r in mine.values()], width, yerr=[r["std"] for r in mine.values()],
               color=color, capsize=3, label=strategy)
        for x, r in zip(xs, mine.values()):
            ax.plot([x + width / 4] * len(r["values"]), list(r["values"].values()), "k.", markersize=4)
    ax.set_xticks(range(len(shown)), [f"cycle {c}" for c in shown])
    ax.set_ylabel(f"test {rows[0]['metric']}")
    low = min(min(r["values"].values()) for r in rows)
    ax.set_ylim(max(0.0, low - 0.05), None)
    ax.set_title(title or run_dir.name)
    ax.set_xlabel("bars: mean ± std over seeds; dots: single seeds", fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
