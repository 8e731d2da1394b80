"""When to stop paying for labels: stopping rules over a run's records (pure functions).

Two rules, each a :class:`Verdict` over the records of one run (one strategy
and seed, any order):

* :func:`gain_per_label` — the *learning-curve slope*: the least-squares slope
  of the test metric against the number of labels over the last ``window``
  cycles (``window + 1`` records). Stop when it falls below ``min_gain`` per
  label (e.g. 1e-4 accuracy per label: 100 more labels buy less than a point).
  A slope over several cycles, not the last difference, so one noisy
  evaluation neither stops nor prolongs a run. Lower-is-better metrics
  (``nll``, ``ece``, ...) count a fall as a gain.
* :func:`stabilized_scores` — the *informativeness plateau*: in the spirit of
  stabilizing predictions (Bloodgood & Vijay-Shanker, 2009), which stop once
  successive models stop changing, this stops once the best acquisition score
  of each cycle's queries (``max(record["scores"])``, e.g. BALD's mutual
  information) has stopped falling: over the last ``window`` cycles it fell
  by less than ``tolerance`` (relative). It needs records with acquisition
  scores; without them the verdict is "no opinion" (``stop = False``).

:func:`should_stop` combines them: stop when a rule with an opinion says so.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["Verdict", "gain_per_label", "stabilized_scores", "should_stop", "label_count_key"]

#: metrics where lower is better (a fall is a gain)
LOWER_IS_BETTER = frozenset({"nll", "ece", "brier", "loss"})


@dataclasses.dataclass(frozen=True)
class Verdict:
    stop: bool
    rule: str
    reason: str
    value: float | None = None  # the statistic the rule compared (slope, relative fall)


def label_count_key(records: list[dict]) -> str:
    for key in ("num_labels", "num_labeled_pixels", "num_labeled_boxes", "num_labeled_images"):
        if records and all(key in r for r in records):
            return key
    raise ValueError("the records hold no label count (num_labels, num_labeled_pixels, ...)")


def _sorted(records):
    return sorted(records, key=lambda r: r["cycle"])


def gain_per_label(records: list[dict], *, metric: str = "accuracy", window: int = 3,
                   min_gain: float = 1e-4) -> Verdict:
    """Stop when the metric's slope per label over the last ``window`` cycles is below ``min_gain``."""
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    rule = f"gain per label over the last {window} cycles"
    rs = [r for r in _sorted(records) if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if len(rs) < window + 1:
        return Verdict(False, rule, f"too few cycles with {metric} ({len(rs)} of {window + 1} needed)")
    key = label_count_key(rs)
    last = rs[-(window + 1):]
    n = np.array([r[key] for r in last], np.float64)
    m = np.array([r[metric] for r in last], np.float64)
    if metric in LOWER_IS_BETTER:
        m = -m
    if np.ptp(n) == 0:
        return Verdict(False, rule, "the label count did not change over the window")
    slope = float(np.polyfit(n, m, 1)[0])
    stop = slope < min_gain
    verb = "below" if stop else "at least"
    return Verdict(stop, rule, f"{metric} {'falls' if metric in LOWER_IS_BETTER else 'gains'} {abs(slope):.3g} "
                   f"per label{' (worse)' if slope < 0 else ''}, {verb} {min_gain:g}", slope)


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
                tolerance: float = 0.05) -> tuple[bool, list[Verdict]]:
    """``(stop, verdicts)``: stop when any rule with an opinion says so."""
    verdicts = [gain_per_label(records, metric=metric, window=window, min_gain=min_gain),
                stabilized_scores(records, window=window, tolerance=tolerance)]
    return any(v.stop for v in verdicts), verdicts
