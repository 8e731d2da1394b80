"""The pieces of segmentation active learning: strategy names, unit scores, pixel budgets.

::

    from bal.active import run
    from bal.active.segmentation import SegmentationConfig
    config = SegmentationConfig(strategies=("random", "bald", "bald_crops"), cycles=4)
    records = run(config, "runs/seg")          # results.jsonl, resumable; or `bal run seg.toml`

- :mod:`.config` — :class:`SegmentationConfig`, strategy names ``<score>[_crops][_targeted]``;
- :mod:`.acquire` — unit (image / crop) scores streamed from the posterior, pixel-budget selection;
- the task itself (training on partial labels, metrics) is :mod:`bal.active.tasks.segmentation`.
"""

from bal.active.segmentation.acquire import mark_acquired, select_within_budget, unit_costs, unit_grid, unit_scores
from bal.active.segmentation.config import SegmentationConfig, Strategy, parse_strategy

__all__ = [
    "SegmentationConfig",
    "Strategy",
    "parse_strategy",
    "unit_grid",
    "unit_scores",
    "unit_costs",
    "select_within_budget",
    "mark_acquired",
]
