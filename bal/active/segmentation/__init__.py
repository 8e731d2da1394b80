"""Active learning for semantic segmentation: image- or crop-level acquisition under a pixel budget.

::

    from bal.active.segmentation import SegmentationConfig, run_segmentation
    config = SegmentationConfig(strategies=("random", "bald", "bald_crops"), cycles=4)
    records = run_segmentation(config, "runs/seg")          # results.jsonl, resumable
    bal.report.plot_learning_curves("runs/seg", metric="mean_iou", x_key="num_labeled_pixels")

- :mod:`.config` — :class:`SegmentationConfig`, strategy names ``<score>[_crops][_targeted]``;
- :mod:`.acquire` — unit (image / crop) scores streamed from the posterior, pixel-budget selection;
- :mod:`.loop` — the loop over strategies x seeds with partial-label training and resume.
"""

from bal.active.segmentation.acquire import mark_acquired, select_within_budget, unit_costs, unit_grid, unit_scores
from bal.active.segmentation.config import SegmentationConfig, Strategy, parse_strategy
from bal.active.segmentation.loop import (
    SegmentationProblem,
    build_posterior,
    evaluate_segmentation,
    load_pretrained,
    load_segmentation_problem,
    run_segmentation,
    run_segmentation_one,
)

__all__ = [
    "SegmentationConfig",
    "Strategy",
    "parse_strategy",
    "SegmentationProblem",
    "load_segmentation_problem",
    "build_posterior",
    "evaluate_segmentation",
    "load_pretrained",
    "run_segmentation",
    "run_segmentation_one",
    "unit_grid",
    "unit_scores",
    "unit_costs",
    "select_within_budget",
    "mark_acquired",
]
