"""People in the loop: a pausable loop, queries for labeling tools, labels read back.

A run with ``oracle = "human"`` (``bal run --oracle human``) trains, acquires,
records the cycle as usual and then **pauses**: the queried items go to the
run directory's pending-queries file and ``bal run`` exits 0 saying what to do::

    bal run --dataset digits --oracle human --strategies bald --no-include-random --seeds 0 --out runs/h
    bal queries export runs/h                       # PNGs + queries.jsonl, tasks.json (Label Studio),
                                                    #   coco.json, queries.csv in runs/h/queries
    ... label them (Label Studio, CVAT, a spreadsheet) ...
    bal labels import runs/h export.json            # Label Studio JSON, COCO, the filled CSV or mask files
    bal run runs/h/config.json --out runs/h --resume  # the next cycle trains on the new labels
    bal labels status runs/h                        # labeled / pending / whether to stop paying

Classification, detection and segmentation runs take people as their oracle
(a detection label is an image's boxes; a segmentation label the class map of
a queried image or crop, drawn with Label Studio's brushes or polygons, or
written as PNG / ``.npy`` mask files: :mod:`~bal.labeling.masks`). Labels carry their cost when the tool says it
(Label Studio's ``lead_time``): records carry ``annotation_seconds`` and
``bal summary --write`` plots the metric against it. Label Studio itself runs
from a virtual environment of its own (``scripts/labelstudio-env``);
``tests/labeling/test_labelstudio.py`` labels runs through a real server.

Modules: :mod:`~bal.labeling.oracle` (the human oracle and the exact pause
and partial-import semantics), :mod:`~bal.labeling.state` (the label store
``labels.jsonl`` and ``pending_queries.json``), :mod:`~bal.labeling.export`,
:mod:`~bal.labeling.imports`, :mod:`~bal.labeling.masks` (class maps, Label
Studio's brush RLE; stopping rules: :mod:`bal.active.stopping`).
"""

from __future__ import annotations

import pathlib

from bal.labeling.state import LabelStore, awaiting, query_key, read_pending

__all__ = ["LabelStore", "awaiting", "read_pending", "pending_notice", "resume_command"]


def resume_command(run_dir) -> str:
    run_dir = pathlib.Path(run_dir)
    return f"bal run {run_dir / 'config.json'} --out {run_dir} --resume"


def pending_notice(run_dir) -> str | None:
    """The one-line "awaiting labels" message of ``run_dir`` (None when nothing awaits labels)."""
    run_dir = pathlib.Path(run_dir)
    pending = read_pending(run_dir)
    if pending is None or not pending.get("runs"):
        return None
    stored = LabelStore(run_dir).answers()
    waiting = awaiting(pending, stored)
    answered = len({query_key(q) for q in pending["queries"]} & set(stored))
    runs = ", ".join(f"{r['strategy']} seed {r['seed']} before cycle {r['next_cycle']}" for r in pending["runs"])
    if not waiting:
        return (f"every query of {run_dir} is labeled ({runs}); continue with: {resume_command(run_dir)}")
    more = f" ({answered} already labeled)" if answered else ""
    return (f"awaiting labels for {len(waiting)} queries{more} ({runs}): bal queries export {run_dir}, "
            f"label them, bal labels import {run_dir} FILE, then {resume_command(run_dir)}")
