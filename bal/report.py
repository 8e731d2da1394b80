"""Learning curves and summary tables, read from results files only.

Both work on any run directory (or ``results.jsonl``), including runs made on
other machines: they need nothing but the records.

:func:`summarize` answers, per strategy and against the ``random`` baseline:

* how many labels it needs to reach each threshold (mean ± std over seeds and
  per seed; ``> N`` where a seed never got there within its ``N`` labels);
* how many labels it saves against random at each threshold;
* the area under its learning curve (a mean of the metric over the label range
  every run covers);
* in how many seeds it beats random, paired by seed.

The task (classification, segmentation, detection), its metric and the
label count (``num_labels``, or ``num_labeled_pixels`` / ``_boxes`` /
``_images``) with its unit (labels, pixels, ...) come from the records
themselves: a ``"task"`` key when the records have one, else the keys they carry.

Runs labeled by people (``oracle = "human"``) record the annotation time their
labels took (``annotation_seconds``, from the labeling tool's lead times);
:func:`plot_annotation_curves` draws the metric against it, and
:func:`write_report` adds that plot when the records carry annotation time.
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np

from bal.active.results import read_records, runs

__all__ = ["default_metric", "record_task", "label_key", "label_unit", "labels_to_reach", "learning_curve_auc",
           "summarize", "format_summary", "plot_learning_curves", "annotation_timed", "plot_annotation_curves",
           "write_report", "ANNOTATION_KEY", "ANNOTATION_PLOT", "detection_class", "training_curves",
           "plot_detection", "compare_detection", "format_detection_comparison"]

#: The metric keys of each task, preferred first.
TASK_METRICS = {"classification": ("accuracy",), "segmentation": ("miou", "mean_iou"), "detection": ("map",)}
#: Metrics where lower is better: a threshold is reached at ``metric <= t`` and a smaller AUC wins.
LOWER_IS_BETTER = frozenset({"nll", "ece", "brier", "loss"})
#: Metrics in [0, 1], shown and thresholded as percentages.
FRACTION_METRICS = frozenset({"accuracy", "miou", "mean_iou", "map", "ap50", "ap75", "pixel_accuracy"})
_DISPLAY = {"miou": "mIoU", "mean_iou": "mIoU", "map": "mAP", "pixel_accuracy": "pixel accuracy"}
#: The record key of the annotation time people spent on the labels a cycle trained on, and its plot.
ANNOTATION_KEY = "annotation_seconds"
ANNOTATION_PLOT = "annotation_curves.png"
#: Label counts other than ``num_labels``, preferred first, and what they count.
_UNIT_KEYS = (("num_labeled_pixels", "pixels"), ("num_labeled_images", "images"), ("num_labeled_boxes", "boxes"))


def record_task(records: list[dict]) -> str:
    """The records' task: their ``"task"`` key, else ``"segmentation"`` for records with
    ``mean_iou`` / ``miou`` / ``num_labeled_pixels`` and no ``accuracy``, ``"detection"`` for
    records with ``map`` and no ``accuracy``, else ``"classification"``."""
    tasks = {r["task"] for r in records if "task" in r}
    if len(tasks) > 1:
        raise ValueError(f"the records mix tasks {sorted(tasks)}; summarise each run directory on its own")
    if tasks:
        return tasks.pop()
    first = records[0] if records else {}
    if "accuracy" not in first and {"mean_iou", "miou", "num_labeled_pixels"} & set(first):
        return "segmentation"
    if "accuracy" not in first and "map" in first:
        return "detection"
    return "classification"


def default_metric(records: list[dict]) -> str:
    """The task's metric key that the records carry: ``"accuracy"`` for classification,
    ``"miou"`` or ``"mean_iou"`` for segmentation, ``"map"`` for detection."""
    task = record_task(records)
    if task not in TASK_METRICS:
        raise ValueError(f"unknown task {task!r} in the records (known: {', '.join(TASK_METRICS)}); "
                         "pass the metric to summarise explicitly")
    candidates = TASK_METRICS[task]
    if not records:
        return candidates[0]
    for m in candidates:
        if m in records[0]:
            return m
    raise ValueError(f"{task} records carry none of the metrics {list(candidates)}; pass the metric explicitly")


def label_key(records: list[dict]) -> str:
    """The record key that counts the labels (what labeling is paid by): ``num_labels`` when every
    record has it, else the first of ``num_labeled_pixels``, ``num_labeled_images`` (detection pays
    per image), ``num_labeled_boxes`` that every record has."""
    for key in ("num_labels", *(k for k, _ in _UNIT_KEYS)):
        if all(key in r for r in records):
            return key
    raise ValueError("the records carry no label count (num_labels, num_labeled_pixels, num_labeled_images "
                     "or num_labeled_boxes) in every record")


def label_unit(records: list[dict], key: str | None = None) -> str:
    """What the label count ``key`` (default :func:`label_key`) counts: ``"pixels"`` for
    ``num_labeled_pixels`` (``"boxes"``, ``"images"`` likewise), also for ``num_labels`` when every
    record's ``num_labels`` equals its ``num_labeled_pixels`` (...); else ``"labels"`` (labeled examples)."""
    key = key or label_key(records)
    for other, unit in _UNIT_KEYS:
        if key == other or (records and all(other in r and r[other] == r[key] for r in records)):
            return unit
    return "labels"


def _higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def labels_to_reach(run: list[dict], threshold: float, metric: str = "accuracy", *,
                    higher_is_better: bool | None = None, x_key: str = "num_labels"):
    """The first ``x_key`` (label count) at which one run reaches ``threshold`` (``metric >= threshold``,
    or ``<=`` for lower-is-better metrics such as ``nll``), or None if it never does."""
    higher = _higher_is_better(metric) if higher_is_better is None else higher_is_better
    for r in run:
        value = r[metric]
        if (value >= threshold) if higher else (value <= threshold):  # NaN never reaches
            return r[x_key]
    return None


def learning_curve_auc(run: list[dict], lo: float, hi: float, metric: str = "accuracy",
                       x_key: str = "num_labels") -> float:
    """Area under ``metric`` vs ``x_key`` of one run over ``[lo, hi]``, divided by ``hi - lo``.

    The trapezoid rule over the run's points inside the range, with the curve
    linearly interpolated at ``lo`` and ``hi``: the mean of the metric over the
    label range, in the metric's units. ``lo < hi`` must lie within the run's range.
    """
    xs = np.asarray([r[x_key] for r in run], dtype=float)
    ys = np.asarray([r[metric] for r in run], dtype=float)
    if np.any(np.diff(xs) < 0):
        raise ValueError(f"{x_key} decreases along the cycles of {run[0]['strategy']!r} seed {run[0]['seed']}")
    if not xs[0] <= lo < hi <= xs[-1]:
        raise ValueError(f"[{lo}, {hi}] is not inside the run's {x_key} range [{xs[0]}, {xs[-1]}]")
    inside = (xs > lo) & (xs < hi)
    x = np.concatenate([[lo], xs[inside], [hi]])
    y = np.concatenate([[np.interp(lo, xs, ys)], ys[inside], [np.interp(hi, xs, ys)]])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (hi - lo))


def _mean_std(values):
    """(mean, population std) over seeds; the std of a single seed is NaN (undefined), not 0."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), (float(a.std(ddof=0)) if a.size > 1 else math.nan)


def _labels_to(strategy_runs: dict, threshold: float, metric: str, x_key: str) -> dict:
    per_seed = {seed: labels_to_reach(run, threshold, metric, x_key=x_key) for seed, run in strategy_runs.items()}
    most = {seed: max(r[x_key] for r in run) for seed, run in strategy_runs.items()}
    return _labels_stats(per_seed, most)


def _labels_stats(per_seed: dict, most: dict) -> dict:
    reached = sum(v is not None for v in per_seed.values())
    exact = reached == len(per_seed)
    # unreached seeds count with the most labels they had: a strict lower bound on their true need
    mean, std = _mean_std([most[s] if v is None else v for s, v in per_seed.items()])
    return {"per_seed": per_seed, "most_labels": most, "reached": reached, "seeds": len(per_seed),
            "exact": exact, "mean": mean, "std": std if exact else math.nan}


def _paired_reach(mine: dict, base: dict) -> dict:
    """Per paired seed: win (fewer labels than the baseline), loss, tie, or undecided."""
    out = {"wins": 0, "losses": 0, "ties": 0, "undecided": 0, "paired": 0}
    for seed in sorted(set(mine["per_seed"]) & set(base["per_seed"])):
        s, b = mine["per_seed"][seed], base["per_seed"][seed]
        ns, nb = mine["most_labels"][seed], base["most_labels"][seed]
        out["paired"] += 1
        if s is not None and b is not None:
            out["wins" if s < b else "losses" if s > b else "ties"] += 1
        elif s is not None:  # the baseline needs more than nb labels
            out["wins" if s <= nb else "undecided"] += 1
        elif b is not None:  # the strategy needs more than ns labels
            out["losses" if ns >= b else "undecided"] += 1
        else:
            out["undecided"] += 1
    return out


def _savings(mine: dict, base: dict, strategy: str, baseline: str) -> dict:
    """Fraction of the baseline's mean labels saved, ``1 − mean / baseline mean``, over the paired seeds.

    ``relation`` is ``"="`` when both reached the threshold in every paired seed,
    ``">"`` / ``"<"`` for a bound (one side reached it in every seed, the other's
    mean is only a lower bound), or None when nothing can be said.
    """
    seeds = sorted(set(mine["per_seed"]) & set(base["per_seed"]))
    out = {"paired": len(seeds), "mean": math.nan, "baseline_mean": math.nan}
    if not seeds:
        return {**out, "fraction": None, "relation": None, "reason": f"no seed run by both {strategy} and {baseline}"}
    mine, base = (_labels_stats({s: d["per_seed"][s] for s in seeds}, {s: d["most_labels"][s] for s in seeds})
                  for d in (mine, base))
    ms, mb = mine["mean"], base["mean"]
    out.update(mean=ms, baseline_mean=mb)
    if mine["exact"] and base["exact"]:
        return {**out, "fraction": 1 - ms / mb, "relation": "=", "reason": None}
    if mine["exact"]:
        bound = 1 - ms / mb  # the baseline's true mean > mb
        if bound > 0:
            return {**out, "fraction": bound, "relation": ">",
                    "reason": f"{baseline} reached it in {base['reached']}/{base['seeds']} seeds"}
    if base["exact"]:
        bound = 1 - ms / mb  # the strategy's true mean > ms
        if bound < 0:
            return {**out, "fraction": bound, "relation": "<",
                    "reason": f"{strategy} reached it in {mine['reached']}/{mine['seeds']} seeds"}
    who = [f"{name} reached it in {d['reached']}/{d['seeds']} seeds"
           for name, d in ((strategy, mine), (baseline, base)) if not d["exact"]]
    return {**out, "fraction": None, "relation": None, "reason": "; ".join(who)}


def summarize(records: list[dict], thresholds=(0.90, 0.95), metric: str | None = None, *,
              baseline: str = "random") -> list[dict]:
    """One row per strategy: labels to each threshold, AUC, final metric, and the comparison with ``baseline``.

    Conventions:

    * Statistics over seeds are ``(mean, std)`` with the population std
      (``ddof=0``); the std of a single seed is NaN (shown without "±").
    * **Labels to a threshold** (``row["labels_to"][t]``): ``per_seed``
      maps seed -> the first label count reaching ``t``, or None; a seed
      that never reached it needs more than ``most_labels[seed]`` (the most
      labels it had). When every seed reached it (``exact``), ``mean`` / ``std``
      are over the seeds. Otherwise ``mean`` is a **strict lower bound**: the
      unreached seeds count with their ``most_labels`` (so the true mean is
      larger; shown as ``> mean (k/n reached)``) and ``std`` is NaN.
    * **Savings** (``row["vs_baseline"]["savings"][t]``): ``1 − mean /
      baseline mean`` over the seeds run by both (0.41 = 41 % fewer labels
      than the baseline), exact only when both reached ``t`` in every one of
      these seeds. If only the strategy did, the
      baseline's lower bound gives a lower bound on the savings (kept when
      positive, ``relation ">"``); if only the baseline did, an upper bound
      (kept when negative: needs more labels, ``"<"``); else None with a reason.
    * **AUC** (``row["auc"]``): per seed, the trapezoid area under ``metric``
      vs the label count over ``[lo, hi]``, the label range common to *all* runs
      of the records (every strategy and seed: the largest first and the
      smallest last label count), divided by ``hi − lo`` — the mean metric
      over that range. None when the runs share no range.
    * **Paired wins** (``row["vs_baseline"]``): over the seeds run by both the
      strategy and the baseline, ``auc_wins`` counts seeds whose AUC is larger
      (smaller for lower-is-better metrics) than the baseline's on the same
      seed (a tie is no win); ``reach[t]`` counts ``wins`` (fewer labels to ``t``), ``losses``,
      ``ties`` and ``undecided`` (neither reached it, or the one that did
      needed more than the other had).

    Each row also has ``strategy``, ``seeds`` (count), ``seed_ids``, ``task``,
    ``metric``, ``label_key`` (the label count: :func:`label_key`), ``unit``
    (what it counts: "labels", "pixels", ...: :func:`label_unit`),
    ``higher_is_better``, ``final_labels`` (mean), ``final_accuracy`` (mean,
    std of the final ``metric`` — the name predates other metrics;
    ``final_metric`` is the same), ``vs_baseline`` (None for the baseline and
    when the records have no baseline runs), and the older ``reach[t]`` = (mean,
    std, count) over *only the seeds that reached* ``t`` — not a result on its
    own when some seeds did not; use ``labels_to``.

    ``metric`` defaults to :func:`default_metric`; thresholds of percentage
    metrics (accuracy, mIoU, mAP) are fractions (0.9 = 90 %).
    """
    thresholds = tuple(float(t) for t in thresholds)
    task = record_task(records)
    metric = metric or default_metric(records)
    missing = [r for r in records if metric not in r]
    if missing:
        have = sorted(k for k, v in missing[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise ValueError(f"record of {missing[0].get('strategy')!r} seed {missing[0].get('seed')} cycle "
                         f"{missing[0].get('cycle')} has no metric {metric!r}; numeric keys: {', '.join(have)}")
    if metric in FRACTION_METRICS and any(t > 1 for t in thresholds):
        raise ValueError(f"thresholds of {metric} are fractions (0.9 = 90 %); got {list(thresholds)}")
    higher = _higher_is_better(metric)
    x_key = label_key(records)
    unit = label_unit(records, x_key)
    by_strategy: dict[str, dict[int, list[dict]]] = {}
    for (strategy, seed), run in sorted(runs(records).items()):
        by_strategy.setdefault(strategy, {})[seed] = run
    all_runs = [run for strategy_runs in by_strategy.values() for run in strategy_runs.values()]
    lo = max((run[0][x_key] for run in all_runs), default=math.nan)
    hi = min((run[-1][x_key] for run in all_runs), default=math.nan)
    has_range = bool(lo < hi)
    rows = []
    for strategy, strategy_runs in by_strategy.items():
        finals = [run[-1] for run in strategy_runs.values()]
        labels_to = {t: _labels_to(strategy_runs, t, metric, x_key) for t in thresholds}
        auc = None
        if has_range:
            per_seed = {seed: learning_curve_auc(run, lo, hi, metric, x_key) for seed, run in strategy_runs.items()}
            mean, std = _mean_std(list(per_seed.values()))
            auc = {"per_seed": per_seed, "mean": mean, "std": std, "range": (lo, hi)}
        final = _mean_std([f[metric] for f in finals])
        row = {
            "strategy": strategy,
            "seeds": len(strategy_runs),
            "seed_ids": list(strategy_runs),
            "task": task,
            "metric": metric,
            "unit": unit,
            "label_key": x_key,
            "higher_is_better": higher,
            "final_labels": _mean_std([f[x_key] for f in finals])[0],
            "final_accuracy": final,
            "final_metric": final,
            "labels_to": labels_to,
            "auc": auc,
            "auc_range": (lo, hi) if has_range else None,
            "baseline": baseline,
            "reach": {},
        }
        for t in thresholds:
            hits = [h for h in labels_to[t]["per_seed"].values() if h is not None]
            row["reach"][t] = (*_mean_std(hits), len(hits))
        rows.append(row)
    base = next((r for r in rows if r["strategy"] == baseline), None)
    for row in rows:
        row["vs_baseline"] = None if base is None or row is base else _compare(row, base, thresholds, higher)
    return rows


def _compare(row: dict, base: dict, thresholds, higher: bool) -> dict:
    out = {"baseline": base["strategy"], "reach": {}, "savings": {}, "auc_wins": 0, "auc_paired": 0}
    for t in thresholds:
        out["reach"][t] = _paired_reach(row["labels_to"][t], base["labels_to"][t])
        out["savings"][t] = _savings(row["labels_to"][t], base["labels_to"][t], row["strategy"], base["strategy"])
    if row["auc"] is not None and base["auc"] is not None:
        mine, theirs = row["auc"]["per_seed"], base["auc"]["per_seed"]
        for seed in set(mine) & set(theirs):
            out["auc_paired"] += 1
            out["auc_wins"] += bool(mine[seed] > theirs[seed] if higher else mine[seed] < theirs[seed])
    return out


# --- text ---------------------------------------------------------------------------------------------------


def _metric_name(metric: str) -> str:
    return _DISPLAY.get(metric, metric)


def _threshold_name(t: float, metric: str) -> str:
    value = f"{t * 100:g} %" if metric in FRACTION_METRICS else f"{t:g}"
    if metric == "accuracy":
        return value
    return f"{_metric_name(metric)} {'' if _higher_is_better(metric) else '≤ '}{value}"


def _count(x: float) -> str:
    return f"{x:,.0f}"


def _pm(mean: float, std: float, fmt) -> str:
    if math.isnan(std):
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def _labels_cell(d: dict) -> str:
    """``mean ± std`` when every seed reached it; else ``> lower bound (k/n reached)``."""
    if d["exact"]:
        return _pm(d["mean"], d["std"], _count)
    return f"> {_count(math.floor(d['mean']))} ({d['reached']}/{d['seeds']} reached)"


def _per_seed_labels(d: dict) -> str:
    return ", ".join(f"seed {seed}: {_count(v) if v is not None else '> ' + _count(d['most_labels'][seed])}"
                     for seed, v in d["per_seed"].items())


def _savings_text(s: dict, strategy: str, baseline: str, tname: str, unit: str) -> str:
    """``bald: 90 % with 41 % fewer labels than random (...)``, a bound, or why it cannot be computed."""
    if s["relation"] is None:
        return f"{strategy} vs {baseline} at {tname}: savings cannot be computed ({s['reason']})"
    pct = abs(s["fraction"]) * 100
    word = "fewer" if s["fraction"] >= 0 else "more"
    if s["relation"] == "=":
        return (f"{strategy}: {tname} with {pct:.0f} % {word} {unit} than {baseline} "
                f"({_count(s['mean'])} vs {_count(s['baseline_mean'])} {unit}, means over {s['paired']} paired seeds)")
    return f"{strategy}: {tname} with more than {pct:.0f} % {word} {unit} than {baseline} (a bound: {s['reason']})"


def _wins_text(w: dict, unit: str) -> str:
    text = f"fewer {unit} in {w['wins']}/{w['paired']} paired seeds"
    names = {"losses": ("loss", "losses"), "ties": ("tie", "ties"), "undecided": ("undecided", "undecided")}
    extra = [f"{w[k]} {names[k][w[k] != 1]}" for k in names if w[k]]
    return text + (f" ({', '.join(extra)})" if extra else "")


def format_summary(rows: list[dict]) -> str:
    """A plain-text report of :func:`summarize`'s rows: a table, then per strategy the per-seed
    values and the comparison with the baseline (conventions in :func:`summarize`).

    Labels to a threshold read ``mean ± std`` when every seed reached it, else
    ``> lower bound (k/n reached)``; a seed that did not reach it reads ``> N``
    (the most labels it had); a single seed has no "±".
    """
    if not rows:
        return "(no results)"
    first = rows[0]
    thresholds = list(first["reach"])
    metric = first.get("metric", "accuracy")
    unit = first.get("unit", "labels")
    baseline = first.get("baseline", "random")
    name = _metric_name(metric)
    value_fmt = (lambda x: f"{x:.4f}")  # noqa: E731
    has_base = any(r["vs_baseline"] for r in rows)

    lines = [f"{first['task']}: {name} vs {unit}; mean ± std over seeds (population std)"]
    if first["auc_range"]:
        lo, hi = first["auc_range"]
        lines.append(f"AUC = mean {name} over {_count(lo)}-{_count(hi)} {unit} (trapezoid; the range every run covers)")
    else:
        lines.append(f"AUC cannot be computed: the runs share no range of {unit}")
    lines.append(f"'> N': not reached within the N {unit} a seed had; with such seeds the mean is a lower bound")
    if not has_base:
        lines.append(f"no {baseline!r} runs in these records: savings and paired wins cannot be computed")
    lines.append("")

    final = "final acc" if metric == "accuracy" else f"final {metric}"
    head = ["strategy", "seeds"] + [f"{unit} to {_threshold_name(t, metric)}" for t in thresholds]
    head.append("AUC")
    if has_base:
        head.append(f"AUC wins vs {baseline}")
    head += [final, f"final {unit}"]
    body = []
    for r in rows:
        cells = [r["strategy"], str(r["seeds"])]
        cells += [_labels_cell(r["labels_to"][t]) for t in thresholds]
        cells.append("-" if r["auc"] is None else _pm(r["auc"]["mean"], r["auc"]["std"], value_fmt))
        if has_base:
            v = r["vs_baseline"]
            cells.append("-" if v is None or not v["auc_paired"] else f"{v['auc_wins']}/{v['auc_paired']} seeds")
        mean, std = r["final_accuracy"]
        cells += [_pm(mean, std, value_fmt), _count(r["final_labels"])]
        body.append(cells)
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in body]

    for r in rows:
        lines += ["", f"{r['strategy']} (seeds {', '.join(map(str, r['seed_ids']))})"]
        for t in thresholds:
            d = r["labels_to"][t]
            lines.append(f"  {unit} to {_threshold_name(t, metric)}: {_labels_cell(d)}; {_per_seed_labels(d)}")
        if r["auc"] is not None:
            a = r["auc"]
            per_seed = ", ".join(f"seed {seed}: {value_fmt(x)}" for seed, x in a["per_seed"].items())
            lines.append(f"  AUC: {_pm(a['mean'], a['std'], value_fmt)}; {per_seed}")
        v = r["vs_baseline"]
        if v is None:
            continue
        lines.append(f"  vs {v['baseline']}:")
        for t in thresholds:
            tname = _threshold_name(t, metric)
            saved = _savings_text(v["savings"][t], r["strategy"], v["baseline"], tname, unit)
            lines.append(f"    {saved}; {_wins_text(v['reach'][t], unit)}")
        if v["auc_paired"]:
            better = "larger" if r["higher_is_better"] else "smaller"
            lines.append(f"    AUC {better} than {v['baseline']}'s in {v['auc_wins']}/{v['auc_paired']} paired seeds")
    return "\n".join(lines)


def plot_learning_curves(source, out_path=None, *, metric: str | None = None, x_key: str | None = None,
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
    if metric is None and x_key is None and record_task(records) == "detection":  # AP vs images and epochs
        return plot_detection(source, out_path, title=title)
    metric = metric or default_metric(records)
    count_key = label_key(records)
    x_key = x_key or count_key
    unit = label_unit(records, count_key)
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
    run_dir = source if source.is_dir() else source.parent
    if not annotation_timed(read_records(source)):
        raise ValueError(f"{source}: the records carry no annotation time ({ANNOTATION_KEY}: runs with "
                         "oracle = 'human' whose labels came with a lead time)")
    return plot_learning_curves(source, pathlib.Path(out_path) if out_path else run_dir / ANNOTATION_PLOT,
                                metric=metric, x_key=ANNOTATION_KEY, title=title)


# --- detection: AP against labeled images and against training epochs (the talk's figure) ----------------

#: classes shown as "person AP" when the records carry their AP (COCO / BDD100K / KITTI, road scenes)
PERSON_CLASSES = ("person", "pedestrian")
#: the talk's colours: base model blue, random purple, (first) active strategy orange
_DETECTION_COLOURS = {"base": "tab:blue", "random": "tab:purple"}
_ACTIVE_COLOURS = ("tab:orange", "tab:green", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def detection_class(records: list[dict], preferred=PERSON_CLASSES) -> str | None:
    """The first class of ``preferred`` whose AP (``ap_<class>``) every record carries, else None."""
    for name in preferred:
        if records and all(f"ap_{name}" in r for r in records):
            return name
    return None


def _by_strategy(records: list[dict]) -> dict[str, dict[int, list[dict]]]:
    out: dict[str, dict[int, list[dict]]] = {}
    for (strategy, seed), run in sorted(runs(records).items()):
        out.setdefault(strategy, {})[seed] = run
    return out


def _mean_curve(seed_runs: dict[int, list[dict]], key: str, x_key: str):
    """``(xs [L], mean [L], std [L])`` over seeds of the cycles every seed completed."""
    length = min(len(r) for r in seed_runs.values())
    xs = np.mean([[r[c][x_key] for c in range(length)] for r in seed_runs.values()], axis=0)
    ys = np.array([[r[c][key] for c in range(length)] for r in seed_runs.values()], dtype=float)
    return xs, ys.mean(0), ys.std(0)


def training_curves(records: list[dict], key: str = "map", *, baseline: str = "random") -> list[dict]:
    """The talk's "mAP as a function of epochs" from detection records with training curves.

    Every cycle trains from scratch, so cycle 0's ``curve`` is the **base** model's (the initial
    images only, the same for every strategy of a seed) and a strategy's last cycle whose curve
    every seed recorded is the model of the data set it grew. Returns one entry per curve, base
    first, then ``baseline``, then the other strategies: ``{"name", "strategy", "cycle",
    "images" (mean labeled images), "seeds", "epochs" [L], "mean" [L], "std" [L]}`` of ``key``
    (``map``, ``ap50``, ``ap_<class>``) over seeds (population std), over the points every seed has.
    Empty when no record carries a ``curve``.
    """
    by = _by_strategy(records)
    out = []

    def entry(name, strategy, cycle, chosen: list[dict]) -> dict:
        points = [r["curve"] for r in chosen]
        length = min(len(p) for p in points)
        ys = np.array([[p[i][key] for i in range(length)] for p in points], dtype=float)
        epochs = np.mean([[p[i]["epoch"] for i in range(length)] for p in points], axis=0)
        return {"name": name, "strategy": strategy, "cycle": cycle, "seeds": len(chosen),
                "images": float(np.mean([r.get("num_labeled_images", math.nan) for r in chosen])),
                "epochs": epochs, "mean": ys.mean(0), "std": ys.std(0)}

    base = {}
    for strategy in by:
        for seed, run in by[strategy].items():
            if run[0]["cycle"] == 0 and run[0].get("curve") and seed not in base:
                base[seed] = run[0]
    if base:
        out.append(entry("base", None, 0, [base[s] for s in sorted(base)]))
    order = ([baseline] if baseline in by else []) + [s for s in by if s != baseline]
    for strategy in order:
        cycles = None
        for run in by[strategy].values():
            have = {r["cycle"] for r in run if r.get("curve")} - {0}
            cycles = have if cycles is None else cycles & have
        if cycles:
            last = max(cycles)
            chosen = [next(r for r in run if r["cycle"] == last) for _, run in sorted(by[strategy].items())]
            out.append(entry(strategy, strategy, last, chosen))
    return out


def plot_detection(source, out_path=None, *, person: str | None = None, baseline: str = "random",
                   title: str | None = None) -> pathlib.Path:
    """Write the detection report's PNG (default ``<run dir>/learning_curves.png``).

    Top row: test mAP and the person class's AP (``person``, default :func:`detection_class`:
    ``ap_person`` or ``ap_pedestrian``) against labeled images, mean ± std over seeds per
    strategy (``baseline`` dashed). Bottom row, when the records carry training curves
    (``curve_every``): the same two against training epochs for the base model (cycle 0, blue),
    ``baseline`` (purple) and each active strategy (orange first) at their last curve cycle
    (:func:`training_curves`), as in the talk. A panel is left out when its data is missing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = pathlib.Path(source)
    run_dir = source if source.is_dir() else source.parent
    records = read_records(source)
    if not records:
        raise ValueError(f"{source} holds no completed cycles to plot")
    if record_task(records) != "detection":
        raise ValueError(f"{source} holds {record_task(records)} records, not detection ones")
    person = person or detection_class(records)
    if person is not None and not all(f"ap_{person}" in r for r in records):
        raise ValueError(f"{source}: not every record carries ap_{person} (the AP of class {person!r})")
    keys = ["map"] + ([f"ap_{person}"] if person else [])
    names = {"map": "mAP", f"ap_{person}": f"{person} AP"}
    x_key = label_key(records)
    by = _by_strategy(records)
    curves = {key: training_curves(records, key, baseline=baseline) for key in keys}
    rows = 2 if curves["map"] else 1
    fig, axes = plt.subplots(rows, len(keys), figsize=(6.0 * len(keys), 4.2 * rows), dpi=110, squeeze=False)
    actives = [s for s in by if s != baseline]
    colour = {baseline: _DETECTION_COLOURS["random"], **dict(zip(actives, _ACTIVE_COLOURS * 4))}
    for col, key in enumerate(keys):
        ax = axes[0, col]
        for strategy, seed_runs in by.items():
            xs, mean, std = _mean_curve(seed_runs, key, x_key)
            style = dict(color=colour[strategy], linestyle="--" if strategy == baseline else "-", marker="o", ms=3)
            ax.plot(xs, mean, label=f"{strategy} ({len(seed_runs)} seeds)", **style)
            ax.fill_between(xs, mean - std, mean + std, alpha=0.15, color=colour[strategy])
        ax.set_xlabel(f"labeled {label_unit(records, x_key)}")
        ax.set_ylabel(f"test {names[key]}")
        ax.set_title(f"{names[key]} against labeled {label_unit(records, x_key)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if rows == 2:
            ax = axes[1, col]
            for c in curves[key]:
                tint = _DETECTION_COLOURS["base"] if c["name"] == "base" else colour[c["strategy"]]
                where = "initial images" if c["name"] == "base" else f"cycle {c['cycle']}"
                ax.plot(c["epochs"], c["mean"], color=tint, marker="o", ms=3,
                        linestyle="--" if c["name"] == baseline else "-",
                        label=f"{c['name']} ({c['images']:.0f} images, {where})")
                ax.fill_between(c["epochs"], c["mean"] - c["std"], c["mean"] + c["std"], alpha=0.15, color=tint)
            ax.set_xlabel("training epochs (each cycle trains from scratch)")
            ax.set_ylabel(f"test {names[key]}")
            ax.set_title(f"{names[key]} against epochs: base / {baseline} / active")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(title or run_dir.name)
    fig.tight_layout()
    out_path = pathlib.Path(out_path) if out_path else run_dir / "learning_curves.png"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path


def compare_detection(records: list[dict], metric: str = "map", *, baseline: str = "random",
                      lead: float = 0.03, savings: float = 0.25) -> list[dict]:
    """The issue's detection targets, per strategy against ``baseline`` (means over seeds).

    * ``reach``: the first labeled-image count at which the strategy's mean ``metric`` reaches
      the baseline's final mean (None: never), ``baseline_reach`` the baseline's own first count
      reaching it (its last one unless it got there earlier) and ``savings = 1 − reach /
      baseline_reach`` (recorded cycles only, no interpolation);
    * ``leads``: per labeled-image count both recorded after cycle 0 (cycle 0 is the same model),
      the strategy's mean minus the baseline's, and ``cycles_leading`` of them by ``>= lead``;
    * ``met``: ``savings >= savings`` or a lead ``>= lead`` in most (more than half) of those cycles.

    Each row also has ``strategy``, ``seeds`` (paired with the baseline) and ``final`` (mean).
    """
    by = _by_strategy(records)
    if baseline not in by:
        raise ValueError(f"the records hold no {baseline!r} runs to compare with")
    x_key = label_key(records)
    bx, bmean, _ = _mean_curve(by[baseline], metric, x_key)
    out = []
    for strategy, seed_runs in by.items():
        if strategy == baseline:
            continue
        paired = {s: r for s, r in seed_runs.items() if s in by[baseline]}
        if not paired:
            continue
        xs, mean, _ = _mean_curve(paired, metric, x_key)
        reach = next((float(x) for x, y in zip(xs, mean) if y >= bmean[-1]), None)
        base_at = dict(zip(bx.tolist(), bmean.tolist()))
        leads = [(float(x), float(y - base_at[x])) for x, y in zip(xs[1:], mean[1:]) if x in base_at]
        leading = sum(d >= lead - 1e-9 for _, d in leads)  # 0.23 - 0.20 leads by 3 points
        base_reach = next(float(x) for x, y in zip(bx, bmean) if y >= bmean[-1])
        saved = None if reach is None else 1 - reach / base_reach
        out.append({"strategy": strategy, "seeds": len(paired), "final": float(mean[-1]),
                    "baseline_final": float(bmean[-1]), "baseline_images": float(bx[-1]),
                    "baseline_reach": base_reach, "reach": reach,
                    "savings": saved, "leads": leads, "cycles_leading": leading,
                    "met": bool((saved is not None and saved >= savings - 1e-9)
                                or (leads and leading > len(leads) / 2))})
    return out


def format_detection_comparison(rows: list[dict], metric: str = "map", *, lead: float = 0.03,
                                savings: float = 0.25) -> str:
    """Text of :func:`compare_detection`'s rows (points: ``metric`` x 100)."""
    if not rows:
        return "(no strategy to compare with the baseline)"
    name = _metric_name(metric)
    r0 = rows[0]
    lines = [f"targets: reach random's final {name} ({r0['baseline_final'] * 100:.1f} at "
             f"{_count(r0['baseline_images'])} images, first reached at {_count(r0['baseline_reach'])}) with "
             f">= {savings * 100:.0f} % fewer images, or lead by >= {lead * 100:g} points in most cycles "
             "(means over paired seeds)"]
    for r in rows:
        reach = ("never" if r["reach"] is None else
                 f"at {_count(r['reach'])} images ({r['savings'] * 100:.0f} % fewer)")
        leads = ", ".join(f"{_count(x)}: {d * 100:+.1f}" for x, d in r["leads"])
        lines.append(f"  {r['strategy']} ({r['seeds']} seeds): final {r['final'] * 100:.1f}; reaches random's final "
                     f"{reach}; lead per cycle [{leads}] (>= {lead * 100:g} in {r['cycles_leading']}/"
                     f"{len(r['leads'])}); target {'met' if r['met'] else 'not met'}")
    return "\n".join(lines)


def write_report(run_dir, thresholds=(0.90, 0.95), *, metric: str | None = None,
                 title: str | None = None) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``summary.md`` (the :func:`format_summary` text and the machine the
    records came from) and ``learning_curves.png`` into ``run_dir``; returns both paths.
    Records with annotation time (:func:`annotation_timed`) also get ``annotation_curves.png``
    (:func:`plot_annotation_curves`), shown in ``summary.md``."""
    import json
    import platform

    run_dir = pathlib.Path(run_dir)
    records = read_records(run_dir)
    if not records:
        raise ValueError(f"{run_dir} holds no completed cycles to summarise")
    text = format_summary(summarize(records, thresholds, metric=metric))
    if record_task(records) == "detection" and any(r["strategy"] == "random" for r in records):
        text += "\n\n" + format_detection_comparison(compare_detection(records, metric or "map"), metric or "map")
    plot = plot_learning_curves(run_dir, metric=metric, title=title)
    config = {}
    if (run_dir / "config.json").exists():
        config = json.loads((run_dir / "config.json").read_text())
    seconds = sum(r.get("train_seconds", 0) + r.get("acquisition_seconds", 0) for r in records)
    timed = annotation_timed(records)
    annotation = plot_annotation_curves(run_dir, metric=metric, title=title) if timed else None
    finals = [run[-1][ANNOTATION_KEY] for run in runs(records).values()] if timed else []
    lines = [f"# {title or run_dir.name}", "",
             f"- task: {record_task(records)}; {len(records)} cycles recorded over "
             f"{len(runs(records))} runs (strategy x seed)",
             f"- time in the recorded cycles: {seconds / 3600:.2f} h (train + evaluate + acquire)",
             f"- machine of this summary: {_cpu_model()} ({platform.machine()}, {os.cpu_count()} cores)",
             f"- config: `{json.dumps(config, sort_keys=True)}`" if config else "- config: (none)",
             *([f"- annotation time of people's labels: {sum(finals) / len(finals):.1f} s per run "
                f"(mean over {len(finals)} runs, at their last cycle)"] if timed else []),
             "", "```", text, "```", "", f"![learning curves]({plot.name})", "",
             *([f"![{_metric_name(metric or default_metric(records))} against annotation time]({annotation.name})",
                ""] if timed else [])]
    out = run_dir / "summary.md"
    out.write_text("\n".join(lines))
    return out, plot


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"
