"""Detection reports: AP against labeled images and against training epochs (base / random /
active, as in the talk), and the issue's targets against random."""

from __future__ import annotations

import math
import pathlib

import numpy as np

from bal.active.results import runs
from bal.report.records import open_plot, _metric_name, label_key, label_unit, record_task
from bal.report.summary import _count

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
    plt, run_dir, records = open_plot(source)
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
