"""Labels to each threshold, savings and paired wins against random, learning-curve AUC."""

from __future__ import annotations

import math

import numpy as np

from bal.active.results import runs
from bal.report.records import (FRACTION_METRICS, _higher_is_better, _metric_name, default_metric,
                                label_key, label_unit, record_task)

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


def default_thresholds(records: list[dict], metric: str | None = None, *, baseline: str = "random") -> tuple:
    """The thresholds a summary uses when none are given: 90 % and 95 % accuracy for
    classification; for other metrics (mIoU, mAP), whose attainable level depends on the data,
    90 % and 100 % of the baseline's final metric (mean over its seeds; without a baseline, of
    the best strategy's), so "labels to" reads as labels to match random."""
    metric = metric or default_metric(records)
    if metric == "accuracy":
        return (0.90, 0.95)
    finals: dict[str, list[float]] = {}
    for (strategy, _), run in runs(records).items():
        if metric in run[-1]:
            finals.setdefault(strategy, []).append(float(run[-1][metric]))
    if not finals:
        raise ValueError(f"no record holds {metric!r}: give thresholds")
    means = {s: float(np.mean(v)) for s, v in finals.items()}
    level = means.get(baseline, max(means.values()) if _higher_is_better(metric) else min(means.values()))
    # 4 decimals, rounded toward the reachable side: a run that ends exactly at the level reaches it
    if _higher_is_better(metric):
        return tuple(math.floor(v * 1e4 + 1e-6) / 1e4 for v in (0.9 * level, level))
    return tuple(math.ceil(v * 1e4 - 1e-6) / 1e4 for v in (level / 0.9, level))


def check_thresholds(thresholds, metric: str) -> tuple[float, ...]:
    """``thresholds`` as floats: finite, > 0, and at most 1 for a fraction metric (0.9 = 90 %)."""
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds or not all(math.isfinite(t) and t > 0 for t in thresholds):
        raise ValueError(f"thresholds must be finite numbers > 0; got {list(thresholds)}")
    if metric in FRACTION_METRICS and any(t > 1 for t in thresholds):
        raise ValueError(f"thresholds of {metric} are fractions (0.9 = 90 %); got {list(thresholds)}")
    return thresholds


def summarize(records: list[dict], thresholds=None, metric: str | None = None, *,
              baseline: str = "random") -> list[dict]:
    """One row per strategy: labels to each threshold, AUC, final metric, and the comparison with ``baseline``.

    ``thresholds=None``: :func:`default_thresholds`.

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
    task = record_task(records)
    metric = metric or default_metric(records)
    missing = [r for r in records if metric not in r]
    if missing:
        have = sorted(k for k, v in missing[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise ValueError(f"record of {missing[0].get('strategy')!r} seed {missing[0].get('seed')} cycle "
                         f"{missing[0].get('cycle')} has no metric {metric!r}; numeric keys: {', '.join(have)}")
    if thresholds is None:  # from the records (0 where the baseline ended at 0: a tiny run)
        thresholds = default_thresholds(records, metric, baseline=baseline)
    else:
        thresholds = check_thresholds(thresholds, metric)
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
