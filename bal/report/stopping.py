"""When more labels stop paying, read from the records alone.

:func:`format_stopping` (``bal summary``): where each criterion of
:mod:`bal.active.stopping` (computed every cycle on a stop set) would have
stopped each run, and the accuracy that gave up. For ``bal labels status``,
rules that need no stop set: :func:`gain_per_label` (the learning-curve slope
per label over the last ``window`` cycles below ``min_gain``) and
:func:`stabilized_scores` (the best acquisition score of each cycle's queries
stopped falling); :func:`should_stop` combines them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from bal.active.results import runs
from bal.active.stopping import KAPPA_THRESHOLD, would_stop
from bal.report.records import LOWER_IS_BETTER, label_key, label_unit

__all__ = ["format_stopping", "Verdict", "gain_per_label", "stabilized_scores", "should_stop"]


def format_stopping(records: Sequence[dict], config=None) -> str:
    """For ``bal summary``: per run with a stop set, where each criterion would have stopped it
    and the accuracy given up compared with running on (empty when no run has a stop set)."""
    settings = dict(kappa_threshold=getattr(config, "kappa_threshold", KAPPA_THRESHOLD), window=getattr(config, "stop_window", 3),
                    plateau_threshold=getattr(config, "plateau_threshold", None),
                    plateau_epsilon=getattr(config, "plateau_epsilon", None))
    rows = []
    for (strategy, seed), rs in sorted(runs(records).items()):
        verdicts = would_stop(rs, **settings)
        for criterion, where in verdicts.items():
            last = max(rs, key=lambda r: r["cycle"])
            if where is None:
                rows.append(f"| {strategy} | {seed} | {criterion} | not before the end "
                            f"({last.get('num_labels')} labels, {_pct(last.get('accuracy'))}) | | |")
            else:
                rows.append(f"| {strategy} | {seed} | {criterion} | cycle {where['cycle']}: {where['num_labels']} labels, "
                            f"{_pct(where['accuracy'])} | {where['labels_saved']} | "
                            f"{_pct(where['accuracy_given_up'], points=True)} |")
    if not rows:
        return ""
    head = (f"stopping criteria (kappa >= {settings['kappa_threshold']} over {settings['window']} cycles"
            + (f"; plateau: entropy < {settings['plateau_threshold']}" if settings["plateau_threshold"] else "")
            + (f"; plateau: change < {settings['plateau_epsilon']}" if settings["plateau_epsilon"] else "")
            + "), against running to the end:")
    return "\n".join([head, "", "| strategy | seed | criterion | would stop at | labels saved | accuracy given up |",
                      "|---|---|---|---|---|---|", *rows])


def _pct(value, points: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f} points" if points else f"{100 * value:.1f} %"


@dataclasses.dataclass(frozen=True)
class Verdict:
    stop: bool
    rule: str
    reason: str
    value: float | None = None  # the statistic the rule compared (slope, relative fall)


def _sorted(records):
    return sorted(records, key=lambda r: r["cycle"])


def gain_per_label(records: list[dict], *, metric: str = "accuracy", window: int = 3,
                   min_gain: float = 1e-4, unit_size: float = 1.0) -> Verdict:
    """Stop when the metric's slope per label over the last ``window`` cycles is below ``min_gain``.

    Labels are counted as the reports count what labeling is paid by (:func:`label_key`: examples;
    images for detection; pixels for segmentation), in units of ``unit_size`` of them (e.g. an
    image's worth of pixels, ``H * W``, so that one ``min_gain`` means the same for every task).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    if not unit_size > 0:
        raise ValueError(f"unit_size must be > 0; got {unit_size}")
    rule = f"gain per label over the last {window} cycles"
    rs = [r for r in _sorted(records) if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if len(rs) < window + 1:
        return Verdict(False, rule, f"too few cycles with {metric} ({len(rs)} of {window + 1} needed)")
    key, unit = label_key(rs), label_unit(rs)
    per = "label" if unit == "labels" else (unit[:-1] if unit_size == 1 else f"{unit_size:g} {unit}")
    last = rs[-(window + 1):]
    n = np.array([r[key] for r in last], np.float64) / unit_size
    m = np.array([r[metric] for r in last], np.float64)
    if metric in LOWER_IS_BETTER:
        m = -m
    if np.ptp(n) == 0:
        return Verdict(False, rule, "the label count did not change over the window")
    slope = float(np.polyfit(n, m, 1)[0])
    stop = slope < min_gain
    verb = "below" if stop else "at least"
    return Verdict(stop, rule, f"{metric} {'falls' if metric in LOWER_IS_BETTER else 'gains'} {abs(slope):.3g} "
                   f"per {per}{' (worse)' if slope < 0 else ''}, {verb} {min_gain:g}", slope)


def stabilized_scores(records: list[dict], *, window: int = 3, tolerance: float = 0.05) -> Verdict:
    """Stop when the best query score per cycle fell by less than ``tolerance`` (relative)
    over the last ``window`` cycles. Needs records with ``scores``."""
    rule = f"best query score over the last {window} cycles"
    tops = [(r["cycle"], max(r["scores"])) for r in _sorted(records)
            if isinstance(r.get("scores"), list) and r["scores"]
            and all(isinstance(s, (int, float)) for s in r["scores"])]
    if len(tops) < window + 1:
        return Verdict(False, rule, f"no opinion: {len(tops)} cycles record acquisition scores "
                       f"({window + 1} needed)")
    first, last = tops[-(window + 1)][1], tops[-1][1]
    fall = (first - last) / abs(first) if first else 0.0
    stop = fall < tolerance
    return Verdict(stop, rule, f"the best score fell {100 * fall:.1f}% ({first:.4g} -> {last:.4g}), "
                   f"{'under' if stop else 'at least'} {100 * tolerance:g}%", fall)


def should_stop(records: list[dict], *, metric: str = "accuracy", window: int = 3, min_gain: float = 1e-4,
                tolerance: float = 0.05, unit_size: float = 1.0) -> tuple[bool, list[Verdict]]:
    """``(stop, verdicts)``: stop when any rule with an opinion says so."""
    verdicts = [gain_per_label(records, metric=metric, window=window, min_gain=min_gain, unit_size=unit_size),
                stabilized_scores(records, window=window, tolerance=tolerance)]
    return any(v.stop for v in verdicts), verdicts
