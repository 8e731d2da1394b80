"""The tasks of the one active-learning loop (:mod:`bal.active.kernel`).

A task turns a config into the pieces the kernel calls: the labeled state,
training and metrics, acquisition within a budget, and labeling. Build one
with :func:`build_task`.
"""

from __future__ import annotations

__all__ = ["build_task"]


def build_task(config, **kwargs):
    """The task of ``config`` (its ``task`` setting); ``kwargs`` go to the task
    (e.g. ``problem=`` preloaded arrays, ``oracle=`` a labeling function)."""
    if config.task == "classification":
        from bal.active.tasks.classification import ClassificationTask
        return ClassificationTask(config, **kwargs)
    if config.task == "segmentation":
        from bal.active.tasks.segmentation import SegmentationTask
        return SegmentationTask(config, **kwargs)
    if config.task == "detection":
        from bal.active.tasks.detection import DetectionTask
        return DetectionTask(config, **kwargs)
    raise ValueError(f"unknown task {config.task!r}")
