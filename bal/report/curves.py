"""Learning curves (metric against labels, cycles or annotation time), mean ± std over seeds."""

from __future__ import annotations

import pathlib

import numpy as np

from bal.active.results import read_records, runs
from bal.report.detection import plot_detection
from bal.report.records import (open_plot, ANNOTATION_KEY, ANNOTATION_PLOT, _metric_name, default_metric, label_key, label_unit,
                                record_task, run_dir_of)

def plot_learning_curves(source, out_path=None, *, metric: str | None = None, x_key: str | None = None,
                         title: str | None = None) -> pathlib.Path:
    """Write a PNG of ``metric`` vs ``x_key``: mean ± std band over seeds per strategy.

    Args:
      source: a run directory or a ``results.jsonl`` path.
      out_path: the PNG to write (default: ``<run dir>/learning_curves.png``).
    """
    plt, run_dir, records = open_plot(source)
    if metric is None and x_key is None and record_task(records) == "detection":  # AP vs images and epochs
        return plot_detection(source, out_path, title=title)
    metric = metric or default_metric(records)
    count_key = label_key(records)
    x_key = x_key or count_key
    unit = label_unit(records, count_key)
    for key, what in ((x_key, "--x"), (metric, "metric")):
        if not all(key in r for r in records):
            numeric = sorted(k for k in records[0] if isinstance(records[0][k], (int, float))
                             and not isinstance(records[0][k], bool) and all(k in r for r in records))
            raise ValueError(f"{what} {key!r} is not in every record; these are: {', '.join(numeric)}")
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
    if x_key == count_key:
        ax.set_xlabel(f"number of labeled {'examples' if unit == 'labels' else unit}")
    elif x_key == ANNOTATION_KEY:
        ax.set_xlabel("annotation time (seconds; the labeling tool's lead time)")
    else:
        ax.set_xlabel(x_key)
    ax.set_ylabel(f"test {_metric_name(metric)}")
    ax.set_title(title or run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path


def annotation_timed(records: list[dict]) -> bool:
    """Whether the records carry people's annotation time: every record has
    ``annotation_seconds`` and some cycle trained on timed labels."""
    return bool(records) and all(ANNOTATION_KEY in r for r in records) and any(
        r[ANNOTATION_KEY] > 0 for r in records)


def plot_annotation_curves(source, out_path=None, *, metric: str | None = None,
                           title: str | None = None) -> pathlib.Path:
    """Write a PNG of ``metric`` vs the annotation time of the labels (``annotation_seconds``),
    mean ± std over seeds per strategy (default ``<run dir>/annotation_curves.png``)."""
    source = pathlib.Path(source)
    run_dir = run_dir_of(source)
    if not annotation_timed(read_records(source)):
        raise ValueError(f"{source}: the records carry no annotation time ({ANNOTATION_KEY}: runs with "
                         "oracle = 'human' whose labels came with a lead time)")
    return plot_learning_curves(source, pathlib.Path(out_path) if out_path else run_dir / ANNOTATION_PLOT,
                                metric=metric, x_key=ANNOTATION_KEY, title=title)


# --- detection: AP against labeled images and against training epochs (the talk's figure) ----------------
