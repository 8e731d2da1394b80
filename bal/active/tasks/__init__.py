"""The tasks of the one active-learning loop (:mod:`bal.active.kernel`): classification,
segmentation, detection (the table :data:`bal.active.config.TASKS`)."""

from __future__ import annotations

from bal.active.config import task_part

__all__ = ["build_task"]


def build_task(config, **kwargs):
    """The task of ``config`` (its ``task`` setting); ``kwargs`` go to the task
    (e.g. ``problem=`` preloaded arrays, ``oracle=`` a labeling function)."""
    return task_part(config.task, 1)(config, **kwargs)
