"""What the segmentation scripts share: running SegmentationConfig studies, tables at equal pixel budgets.

The flags are those of :mod:`_common` (``--data-dir`` is not used: the
road-marking set is generated offline).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import sys

import numpy as np

from _common import flag_overrides, parser, select_studies

from bal.active.progress import Progress
from bal.active.results import runs
from bal.active.segmentation import SegmentationConfig, run_segmentation
from bal.report import plot_learning_curves
from bal.runtime import relaunch_with_huge_pages

#: inverse square-root pixel frequencies of the six road-marking classes (the generator's documented
#: statistics: background 64.2 %, road 32.2 %, lane_solid 0.9 %, lane_dashed 0.5 %, road_edge 1.5 %,
#: crosswalk 0.8 %), normalised to mean 1: without them a small U-Net never predicts the thin / rare classes
FREQUENCIES = (0.642, 0.322, 0.009, 0.005, 0.015, 0.008)
CLASS_WEIGHTS = tuple(round(f ** -0.5 / (sum(g ** -0.5 for g in FREQUENCIES) / len(FREQUENCIES)), 3)
                      for f in FREQUENCIES)

#: the road-marking set-up both segmentation scripts share (see their docstrings)
ROAD_MARKINGS = dict(dataset="road_markings", num_train=300, num_test=200, image_size=(48, 64), model="unet",
                     model_kwargs={"width": 8}, posterior="mc_dropout", num_samples=8, class_weights=CLASS_WEIGHTS,
                     reduction="mean", grid_rows=3, grid_cols=4, initial_images=10, acquisition_images=5.0,
                     cycles=3, steps=200, batch_size=8, learning_rate=5e-3, seeds=(0, 1, 2))

#: a tiny, offline version of any study: 16x24 images, a width-4 U-Net, 1 cycle, 1 seed
SMOKE = dict(num_train=24, num_test=8, image_size=(16, 24), model_kwargs={"width": 4}, num_samples=2,
             num_members=None, initial_images=4, acquisition_images=2.0, acquisition_pixels=None, cycles=1,
             steps=2, steps_per_image=0.0, batch_size=4, seeds=(0,), chunk_size=8, pretrained=None)


def budgets_of(records: list[dict], max_columns: int = 5) -> list[int]:
    """Labeled-pixel budgets for the table: the cycle budgets of the first run, at most ``max_columns``."""
    first = sorted(runs(records).items())[0][1]
    values = sorted({r["num_labeled_pixels"] for r in first})
    if len(values) <= max_columns:
        return values
    picks = np.unique(np.linspace(0, len(values) - 1, max_columns).round().astype(int))
    return [values[i] for i in picks]


def at_budgets(records: list[dict], metric: str, budgets) -> dict[str, list[tuple[float, float, int]]]:
    """Per strategy and budget ``B``: mean, std over seeds of ``metric`` at each run's last cycle with
    ``num_labeled_pixels <= B``, and the number of seeds with such a cycle."""
    by_strategy: dict[str, list[list[dict]]] = {}
    for (strategy, _seed), run in runs(records).items():
        by_strategy.setdefault(strategy, []).append(run)
    out = {}
    for strategy, strategy_runs in by_strategy.items():
        cells = []
        for b in budgets:
            vals = [max((r for r in run if r["num_labeled_pixels"] <= b), key=lambda r: r["num_labeled_pixels"])
                    [metric] for run in strategy_runs if any(r["num_labeled_pixels"] <= b for r in run)]
            vals = [v for v in vals if v is not None and not math.isnan(v)]
            cells.append((float(np.mean(vals)), float(np.std(vals)), len(vals)) if vals else
                         (math.nan, math.nan, 0))
        out[strategy] = cells
    return out


def format_table(records: list[dict], metric: str, image_pixels: int, strategies=None) -> str:
    """A plain-text table: strategies x equal labeled-pixel budgets, ``mean ± std (seeds)``."""
    budgets = budgets_of(records)
    table = at_budgets(records, metric, budgets)
    order = [s for s in (strategies or sorted(table)) if s in table]
    head = [metric] + [f"{b} px ({b / image_pixels:.0f} img)" for b in budgets]
    body = [[s] + [f"{m:.3f} ± {sd:.3f} ({n})" for m, sd, n in table[s]] for s in order]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in body])


def run_studies(script: str, studies: dict[str, SegmentationConfig], args, *, extra_metrics=()):
    """Run every study into ``<out>/<study>``; print its tables and plot paths."""
    out = pathlib.Path(args.out or f"runs/{script}")
    for name, config in select_studies(script, studies, args.studies).items():
        overrides = {**(SMOKE if args.smoke else {}), **flag_overrides(args)}
        config = dataclasses.replace(config, **overrides)
        h, w = config.image_size
        print(f"== {script}/{name}: {config.dataset} {config.num_train} train / {config.num_test} test images "
              f"{h}x{w}, {config.posterior} {config.model} {config.model_kwargs}, grid {config.grid_rows}x"
              f"{config.grid_cols}, reduction {config.reduction}, {config.budget_pixels} px "
              f"({config.budget_pixels / (h * w):g} images) per cycle x {config.cycles} cycles, "
              f"{', '.join(config.strategies)}, seeds {list(config.seeds)}", flush=True)
        records = run_segmentation(config, out / name, resume=args.resume, overwrite=args.overwrite,
                                   progress=Progress(quiet=config.quiet))
        for metric in ("mean_iou", *extra_metrics):
            print(format_table(records, metric, h * w, config.strategies))
        for metric in extra_metrics:
            path = plot_learning_curves(out / name, out / name / f"{metric}.png", metric=metric,
                                        x_key="num_labeled_pixels", title=f"{script}: {name} ({metric})")
            print(f"plot ({metric}): {path}")
        path = plot_learning_curves(out / name, metric="mean_iou", x_key="num_labeled_pixels",
                                    title=f"{script}: {name}")
        print(f"plot: {path}", flush=True)


def main(script: str, description: str, studies, argv=None, extra_metrics=()):
    args = parser(description).parse_args(argv)
    relaunch_with_huge_pages()  # glibc's huge-page tunable, read only at process start
    try:
        run_studies(script, studies, args, extra_metrics=extra_metrics)
    except (ValueError, FileNotFoundError) as err:
        print(f"{script}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0
