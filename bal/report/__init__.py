"""Learning curves and summary tables, read from results files only.

Both work on any run directory (or ``results.jsonl``), including runs made on
other machines: they need nothing but the records.

:func:`summarize` answers, per strategy and against the ``random`` baseline:

* how many labels it needs to reach each threshold (mean ± std over seeds and
  per seed; ``> N`` where a seed never got there within its ``N`` labels);
* how many labels it saves against random at each threshold;
* the area under its learning curve (a mean of the metric over the label range
  every run covers);
* in how many seeds it beats random, paired by seed.

The task (classification, segmentation, detection), its metric and the
label count (``num_labels``, or ``num_labeled_pixels`` / ``_boxes`` /
``_images``) with its unit (labels, pixels, ...) come from the records
themselves: a ``"task"`` key when the records have one, else the keys they carry.

Runs labeled by people (``oracle = "human"``) record the annotation time their
labels took (``annotation_seconds``, from the labeling tool's lead times);
:func:`plot_annotation_curves` draws the metric against it, and
:func:`write_report` adds that plot when the records carry annotation time.

Modules: :mod:`~bal.report.records` (task, metric and label count of the
records), :mod:`~bal.report.summary` (the table), :mod:`~bal.report.curves`
(learning curves), :mod:`~bal.report.cycles` (the talk's per-cycle bars),
:mod:`~bal.report.detection` (AP against images and epochs),
:mod:`~bal.report.write` (``summary.md``).
"""

from bal.report.curves import annotation_timed, plot_annotation_curves, plot_learning_curves
from bal.report.cycles import cycle_table, format_cycle_table, plot_cycle_bars
from bal.report.detection import (compare_detection, detection_class, format_detection_comparison, plot_detection,
                                  training_curves)
from bal.report.records import (ANNOTATION_KEY, ANNOTATION_PLOT, default_metric, label_key, label_unit,
                                record_task)
from bal.report.summary import default_thresholds, format_summary, labels_to_reach, learning_curve_auc, summarize
from bal.report.write import stopping_text, write_report

__all__ = ["default_metric", "record_task", "label_key", "label_unit", "labels_to_reach", "learning_curve_auc",
           "summarize", "format_summary", "plot_learning_curves", "annotation_timed", "plot_annotation_curves",
           "write_report", "ANNOTATION_KEY", "ANNOTATION_PLOT", "detection_class", "training_curves",
           "plot_detection", "compare_detection", "format_detection_comparison", "cycle_table",
           "format_cycle_table", "plot_cycle_bars", "stopping_text", "default_thresholds"]
