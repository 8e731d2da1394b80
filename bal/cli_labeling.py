"""The people-in-the-loop commands of the ``bal`` command line (:mod:`bal.labeling`).

    bal queries export RUN_DIR [--format all|jsonl|label-studio|coco|csv|masks] [--out DIR] [--image-root URL_OR_DIR]
    bal labels import RUN_DIR FILE [--format auto|label-studio|coco|csv|masks]
    bal labels status RUN_DIR [--metric M] [--window K] [--min-gain G] [--tolerance T]

:func:`add_commands` adds them to ``bal``'s subcommands, and makes ``bal run``
end with the "awaiting labels" line when a run with ``oracle = "human"`` has
paused. Errors are ``bal``'s: one line on stderr, status 2.
"""

from __future__ import annotations

import functools
import math
import pathlib

__all__ = ["add_commands"]


def _cmd_export(args) -> int:
    from bal.labeling import resume_command
    from bal.labeling.export import export_queries

    result = export_queries(args.run_dir, args.out, args.format, image_root=args.image_root)
    if not result.count:
        print(f"no query awaits labels in {args.run_dir}; continue with: {resume_command(args.run_dir)}")
        return 0
    names = sorted({p.name for p in result.files if p.suffix != ".png"})
    masks = sum(p.parent.name == "masks" and p.parent.parent == result.out for p in result.files)
    if masks:
        names.append(f"masks/ ({masks} predicted class maps)")
    print(f"exported {result.count} queries to {result.out}: {result.count} PNG images, {', '.join(names)}")
    print(f"label them, then: bal labels import {args.run_dir} FILE")
    return 0


def _cmd_import(args) -> int:
    from bal.labeling import resume_command
    from bal.labeling.imports import import_labels

    r = import_labels(args.run_dir, args.file, args.format)
    timed = f", {r.seconds:g} s of annotation time for {r.timed} of them" if r.timed else ""
    again = f", {r.again} imported before skipped" if r.again else ""
    print(f"imported {r.imported} labels from {r.path} ({r.format}, batch {r.batch}{timed}{again}); "
          f"{r.missing} queries still await labels")
    print(f"continue with: {resume_command(args.run_dir)}")
    return 0


def _cmd_status(args) -> int:
    from bal.active.results import RunDirectory, read_records, runs
    from bal.labeling import state as lstate
    from bal.report.records import label_key, label_unit
    from bal.report.stopping import should_stop

    run_dir = RunDirectory(args.run_dir)
    config = run_dir.read_config()
    records = read_records(run_dir.results_path) if run_dir.results_path.exists() else []
    oracle = getattr(config, "oracle", "dataset")
    pending = lstate.read_pending(run_dir.path)
    stored = lstate.LabelStore(run_dir.path).answers()
    waiting = lstate.awaiting(pending, stored)
    queued_labeled = {lstate.query_key(q) for q in (pending or {"queries": []})["queries"]} & set(stored)
    print(f"{run_dir.path}: {getattr(config, 'task', 'classification')}, oracle {oracle}")
    if oracle == "human":
        store = lstate.LabelStore(run_dir.path)
        print(f"labels: {len(stored)} given in {store.num_batches()} imports "
              f"({len(queued_labeled)} not used yet); pending: {len(waiting)} queries await labels")
        times = [a.seconds for a in store.answers(timed=True).values() if a.seconds is not None]
        if times:
            print(f"annotation time: {sum(times):.1f} s for {len(times)} labels "
                  f"({sum(times) / len(times):.1f} s per label)")
    paused = {(r["strategy"], r["seed"]): r for r in (pending or {"runs": []})["runs"]}
    # segmentation pays per pixel: its gain is measured per image's worth of pixels
    unit_size = math.prod(config.image_size) if getattr(config, "task", "") == "segmentation" else 1
    if args.metric:
        metric = args.metric
    else:  # the task's metric: accuracy, mean IoU, mAP
        from bal.report import default_metric

        metric = default_metric(records) if records else "accuracy"
    for (strategy, seed), rs in sorted(runs(records).items()):
        last = rs[-1]
        value = last.get(metric)
        state = "finished" if last.get("final") else (
            f"paused before cycle {paused[(strategy, seed)]['next_cycle']}" if (strategy, seed) in paused
            else "stopped (resume to continue)")
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{strategy} seed {seed}: {len(rs)} cycles, {last[label_key(rs)]} {label_unit(rs)}, {metric} {shown}; "
              f"{state}")
        stop, verdicts = should_stop(rs, metric=metric, window=args.window, min_gain=args.min_gain,
                                     tolerance=args.tolerance, unit_size=unit_size)
        print(f"  stop paying for labels? {'yes' if stop else 'no'}: "
              + "; ".join(f"{v.rule}: {v.reason}" for v in verdicts))
    if not records:
        print("no completed cycles yet")
    return 0


def _run_out(args) -> pathlib.Path:
    """The run directory ``bal run`` used (its ``--out`` or default)."""
    if getattr(args, "out", None):
        return pathlib.Path(args.out)
    from bal import cli
    from bal.active.config import load_config

    settings = load_config(args.config) if getattr(args, "config", None) else {}
    flags = {f.name for f, _, _ in cli._setting_fields() if getattr(args, f.name, None) is not None}
    quickstart = not ({"dataset", "task"} & (set(settings) | flags))
    return pathlib.Path(cli.QUICKSTART_DIR if quickstart else "runs/experiment")


def _run_then_notice(run_command, args) -> int:
    """``bal run``, then the "awaiting labels" line of a run that paused for people."""
    code = run_command(args)
    if code == 0:
        from bal.labeling import pending_notice

        notice = pending_notice(_run_out(args))
        if notice:
            print(notice)
    return code


def add_commands(subparsers) -> None:
    """Add ``bal queries`` and ``bal labels`` to ``bal``'s ``subparsers``; make ``bal run``
    (when already added) end with the "awaiting labels" line of a paused run."""
    from bal.labeling.state import EXPORT_FORMATS as FORMATS, IMPORT_FORMATS

    p = subparsers.add_parser("queries", help="the queries a paused run (oracle = human) awaits labels for")
    sub = p.add_subparsers(dest="action", required=True)
    e = sub.add_parser(
        "export", help="write the queries for labeling tools",
        description="Write the queries awaiting labels in RUN_DIR, most informative first: their images "
                    "(pool_<index>.png; a segmentation crop pool_<index>_crop_<y0>_<x0>_<y1>_<x1>.png), "
                    "queries.jsonl, Label Studio tasks.json (with predictions and label_config.xml), coco.json, "
                    "queries.csv (fill its label column) and, for segmentation, masks/ (the predicted class "
                    "maps to correct).")
    e.add_argument("run_dir")
    e.add_argument("--format", default="all", choices=("all", *FORMATS), help="what to write (default: all)")
    e.add_argument("--out", default=None, help="output directory (default: RUN_DIR/queries)")
    e.add_argument("--image-root", default=None,
                   help="URL or directory prefix of the images in tasks.json, e.g. http://localhost:8081/ "
                        "(default: the bare file name)")
    e.set_defaults(func=_cmd_export)

    p = subparsers.add_parser("labels", help="import people's labels into a run; labeling status")
    sub = p.add_subparsers(dest="action", required=True)
    i = sub.add_parser(
        "import", help="add labels from a labeling tool's file",
        description="Add the labels of FILE (a Label Studio JSON export, a COCO instances file, the filled "
                    "CSV, or for segmentation a folder of PNG / .npy class maps named like the queries) to "
                    "RUN_DIR's label store, all or nothing; queries FILE leaves unlabeled stay queued.")
    i.add_argument("run_dir")
    i.add_argument("file")
    i.add_argument("--format", default="auto", choices=IMPORT_FORMATS,
                   help="the file's format (default: from its extension and content)")
    i.set_defaults(func=_cmd_import)
    s = sub.add_parser("status", help="labeled / pending, and whether to stop paying for labels")
    s.add_argument("run_dir")
    s.add_argument("--metric", default=None,
                   help="test metric of the stopping rule (default: the task's, accuracy or map or mean IoU)")
    s.add_argument("--window", type=int, default=3, help="cycles the stopping rules look back (default: 3)")
    s.add_argument("--min-gain", type=float, default=1e-4,
                   help="stop below this metric gain per label: per example, per image for detection, per "
                        "image's worth of pixels for segmentation (default: 1e-4)")
    s.add_argument("--tolerance", type=float, default=0.05,
                   help="stop when the best query score fell less than this fraction (default: 0.05)")
    s.set_defaults(func=_cmd_status)

    run = subparsers.choices.get("run")
    if run is not None and run.get_default("func") is not None:
        run.set_defaults(func=functools.partial(_run_then_notice, run.get_default("func")))
