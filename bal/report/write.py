"""``summary.md`` + plots of a run directory (``bal summary --write``)."""

from __future__ import annotations

import os
import pathlib

from bal.active.results import RunDirectory, read_records, runs
from bal.backend.policy import cpu_model
from bal.report.curves import annotation_timed, plot_annotation_curves, plot_learning_curves
from bal.report.detection import compare_detection, format_detection_comparison
from bal.report.records import ANNOTATION_KEY, _metric_name, default_metric, record_task, run_dir_of
from bal.report.stopping import format_stopping
from bal.report.summary import format_summary, summarize


def stopping_text(run_dir, records: list[dict]) -> str:
    """Where each stopping criterion would have stopped the runs that watched a stop set, under the
    run's own settings (:func:`format_stopping`); empty without a stop set."""
    run_dir = run_dir_of(run_dir)
    config = RunDirectory(run_dir).read_config() if (run_dir / "config.json").exists() else None
    return format_stopping(records, config)


def write_report(run_dir, thresholds=None, *, metric: str | None = None,
                 title: str | None = None) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``summary.md`` (the :func:`format_summary` text and the machine the
    records came from) and ``learning_curves.png`` into ``run_dir``; returns both paths.
    Records with annotation time (:func:`annotation_timed`) also get ``annotation_curves.png``
    (:func:`plot_annotation_curves`), shown in ``summary.md``."""
    import json
    import platform

    source, run_dir = run_dir, run_dir_of(run_dir)  # a run directory, or a results file in it
    records = read_records(source)
    if not records:
        raise ValueError(f"{run_dir} holds no completed cycles to summarise")
    text = format_summary(summarize(records, thresholds, metric=metric))
    if record_task(records) == "detection" and any(r["strategy"] == "random" for r in records):
        text += "\n\n" + format_detection_comparison(compare_detection(records, metric or "map"), metric or "map")
    plot = plot_learning_curves(source, metric=metric, title=title)
    config = {}
    if (run_dir / "config.json").exists():
        config = json.loads((run_dir / "config.json").read_text())
    stops = stopping_text(run_dir, records)
    if stops:
        text += "\n\n" + stops
    seconds = sum(r.get("train_seconds", 0) + r.get("acquisition_seconds", 0) for r in records)
    timed = annotation_timed(records)
    annotation = plot_annotation_curves(source, metric=metric, title=title) if timed else None
    finals = [run[-1][ANNOTATION_KEY] for run in runs(records).values()] if timed else []
    lines = [f"# {title or run_dir.name}", "",
             f"- task: {record_task(records)}; {len(records)} cycles recorded over "
             f"{len(runs(records))} runs (strategy x seed)",
             f"- time in the recorded cycles: {seconds / 3600:.2f} h (train + evaluate + acquire)",
             f"- machine of this summary: {cpu_model()} ({platform.machine()}, {os.cpu_count()} cores)",
             f"- config: `{json.dumps(config, sort_keys=True)}`" if config else "- config: (none)",
             *([f"- annotation time of people's labels: {sum(finals) / len(finals):.1f} s per run "
                f"(mean over {len(finals)} runs, at their last cycle)"] if timed else []),
             "", "```", text, "```", "", f"![learning curves]({plot.name})", "",
             *([f"![{_metric_name(metric or default_metric(records))} against annotation time]({annotation.name})",
                ""] if timed else [])]
    out = run_dir / "summary.md"
    out.write_text("\n".join(lines))
    return out, plot

