"""What a results file is about: its task, metric and label count, read from the records alone."""

from __future__ import annotations

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



def _metric_name(metric: str) -> str:
    return _DISPLAY.get(metric, metric)


def _least_tagged(run_dir, records: list[dict]) -> list[dict]:
    """``records`` with every strategy renamed ``least_<name>`` when the run directory's config
    acquired the least informative items (``most_informative = false``)."""
    import pathlib

    config = pathlib.Path(run_dir) / "config.json"
    if not config.exists():
        return records
    from bal.active.results import RunDirectory

    if getattr(RunDirectory(run_dir).read_config(), "most_informative", True):
        return records
    return [{**r, "strategy": r["strategy"] if r["strategy"] == "random" else f"least_{r['strategy']}"}
            for r in records]


def run_dir_of(source):
    """The run directory of ``source``: a run directory itself, or the folder of its results file."""
    import pathlib

    source = pathlib.Path(source)
    return source if source.is_dir() else source.parent


def read_sources(sources) -> tuple[list[dict], "pathlib.Path"]:
    """The records of one run directory (or ``results.jsonl``), or of several side by side, and the
    first source's directory (where plots go by default).

    Several sources draw one figure or table: e.g. a study's most-informative runs and the same
    seeds' least-informative runs in another directory (strategies of a directory run with
    ``most_informative = false`` are named ``least_<name>``), or one study at several settings
    (``growth_10pct``, ``growth_33pct``, ...): a strategy name that more than one source holds is
    suffixed with its directory's name in each (``bald @growth_10pct``). A directory given twice
    is an error."""
    import pathlib

    from bal.active.results import read_records

    sources = [sources] if isinstance(sources, (str, pathlib.Path)) else list(sources)
    if not sources:
        raise ValueError("give at least one run directory")
    paths = [pathlib.Path(s) for s in sources]
    dirs = [run_dir_of(p) for p in paths]
    if len(paths) == 1:
        return read_records(paths[0]), dirs[0]
    resolved = [d.resolve() for d in dirs]
    for i, d in enumerate(resolved):
        if d in resolved[:i]:
            raise ValueError(f"{dirs[i]} is given twice; give each run directory once")
    per_source = [_least_tagged(d, read_records(p)) for p, d in zip(paths, dirs)]
    names = [{r["strategy"] for r in records} for records in per_source]
    shared = {n for i, mine in enumerate(names) for n in mine if any(n in other for other in names[i + 1:])}
    out = []
    for run_dir, records in zip(dirs, per_source):
        out += [{**r, "strategy": f"{r['strategy']} @{run_dir.name}"} if r["strategy"] in shared else r
                for r in records]
    record_task(out)  # one task across the sources
    return out, dirs[0]


def open_plot(source):
    """``(pyplot, run directory, records)`` for a plot of a run directory or ``results.jsonl``
    (or several, :func:`read_sources`), matplotlib on its file backend; a clear error when no
    cycle is recorded yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records, run_dir = read_sources(source)
    if not records:
        raise ValueError(f"{run_dir} holds no completed cycles to plot")
    return plt, run_dir, records
