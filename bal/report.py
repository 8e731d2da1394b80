"""Learning curves and summary tables, read from results files only.

Both work on any run directory (or ``results.jsonl``), including runs made on
other machines: they need nothing but the records.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from bal.active.results import read_records, runs

__all__ = ["default_metric", "labels_to_reach", "summarize", "format_summary", "plot_learning_curves"]


def default_metric(records: list[dict]) -> str:
    """``"accuracy"`` for classification records, ``"mean_iou"`` for segmentation ones."""
    if records and "accuracy" not in records[0] and "mean_iou" in records[0]:
        return "mean_iou"
    return "accuracy"


def labels_to_reach(run: list[dict], threshold: float, metric: str = "accuracy"):
    """The first ``num_labels`` at which ``metric >= threshold`` in one run, or None."""
    for r in run:
        if r[metric] >= threshold:
            return r["num_labels"]
    return None


def _mean_std(values):
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=0))


def summarize(records: list[dict], thresholds=(0.90, 0.95), metric: str | None = None) -> list[dict]:
    """One row per strategy: labels to reach each threshold and final accuracy.

    Each row: ``strategy``, ``seeds``, ``metric``, ``final_labels``,
    ``final_accuracy`` (of ``metric``: mean, std over seeds), and per threshold
    ``t``: ``reach[t]`` = (mean, std over the seeds that reached it, how many
    seeds reached it). ``metric`` defaults to :func:`default_metric` (segmentation
    records count labels in pixels).
    """
    metric = metric or default_metric(records)
    by_strategy: dict[str, list[list[dict]]] = {}
    for (strategy, _seed), run in sorted(runs(records).items()):
        by_strategy.setdefault(strategy, []).append(run)
    rows = []
    for strategy, strategy_runs in by_strategy.items():
        finals = [run[-1] for run in strategy_runs]
        row = {
            "strategy": strategy,
            "seeds": len(strategy_runs),
            "final_labels": _mean_std([f["num_labels"] for f in finals])[0],
            "metric": metric,
            "final_accuracy": _mean_std([f[metric] for f in finals]),
            "reach": {},
        }
        for t in thresholds:
            hits = [labels_to_reach(run, t, metric) for run in strategy_runs]
            hits = [h for h in hits if h is not None]
            row["reach"][t] = (*(_mean_std(hits) if hits else (math.nan, math.nan)), len(hits))
        rows.append(row)
    return rows


def format_summary(rows: list[dict]) -> str:
    """A plain-text table of :func:`summarize`'s rows."""
    if not rows:
        return "(no results)"
    thresholds = list(rows[0]["reach"])
    metric = rows[0].get("metric", "accuracy")
    final = "final acc" if metric == "accuracy" else f"final {metric}"
    head = ["strategy", "seeds"] + [f"labels to {t:.0%}" for t in thresholds] + [final, "final labels"]
    body = []
    for r in rows:
        cells = [r["strategy"], str(r["seeds"])]
        for t in thresholds:
            mean, std, hit = r["reach"][t]
            cells.append("not reached" if hit == 0 else
                         f"{mean:.0f} ± {std:.0f}" + ("" if hit == r["seeds"] else f" ({hit}/{r['seeds']})"))
        mean, std = r["final_accuracy"]
        cells += [f"{mean:.4f} ± {std:.4f}", f"{r['final_labels']:.0f}"]
        body.append(cells)
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in body])


def plot_learning_curves(source, out_path=None, *, metric: str | None = None, x_key: str = "num_labels",
                         title: str | None = None) -> pathlib.Path:
    """Write a PNG of ``metric`` vs ``x_key``: mean ± std band over seeds per strategy.

    Args:
      source: a run directory or a ``results.jsonl`` path.
      out_path: the PNG to write (default: ``<run dir>/learning_curves.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = pathlib.Path(source)
    run_dir = source if source.is_dir() else source.parent
    records = read_records(source)
    if not records:
        raise ValueError(f"{source} holds no completed cycles to plot")
    metric = metric or default_metric(records)
    pixels = "num_labeled_pixels" in records[0]
    out_path = pathlib.Path(out_path) if out_path else run_dir / "learning_curves.png"
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    by_strategy: dict[str, list[list[dict]]] = {}
    for (strategy, _seed), run in sorted(runs(records).items()):
        by_strategy.setdefault(strategy, []).append(run)
    for i, (strategy, strategy_runs) in enumerate(sorted(by_strategy.items())):
        length = min(len(r) for r in strategy_runs)  # cycles completed by every seed
        xs = np.mean([[r[c][x_key] for c in range(length)] for r in strategy_runs], axis=0)
        ys = np.array([[r[c][metric] for c in range(length)] for r in strategy_runs])
        mean, std = ys.mean(0), ys.std(0)
        style = dict(color="black", linestyle="--") if strategy == "random" else dict(color=f"C{i}")
        ax.plot(xs, mean, label=f"{strategy} ({len(strategy_runs)} seeds)", **style)
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2, color=style["color"])
    if x_key == "num_labels":
        ax.set_xlabel("number of labeled pixels" if pixels else "number of labeled examples")
    else:
        ax.set_xlabel(x_key)
    ax.set_ylabel(f"test {metric}")
    ax.set_title(title or run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
