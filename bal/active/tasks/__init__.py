"""The tasks of the one active-learning loop (:mod:`bal.active.kernel`): classification,
segmentation, detection (the table :data:`bal.active.config.TASKS`)."""

from __future__ import annotations

from bal.active.config import task_part

__all__ = ["build_task", "check_model"]


def build_task(config, **kwargs):
    """The task of ``config`` (its ``task`` setting); ``kwargs`` go to the task
    (e.g. ``problem=`` preloaded arrays, ``oracle=`` a labeling function)."""
    return task_part(config.task, 1)(config, **kwargs)


def check_model(posterior, example_x) -> None:
    """Trace ``posterior.init`` on one example ``[1, ...]`` (shapes only, no compute), so that a model
    that cannot be built from the config (``model``, ``model_kwargs``, the family's options) fails
    in the task's constructor, before a run directory is written, with a one-line error."""
    import jax

    try:
        jax.eval_shape(posterior.init, jax.random.key(0), example_x)
    except ValueError:
        raise
    except Exception as err:  # a model's own arithmetic or types on a bad option
        raise ValueError(f"the model cannot be built from model / model_kwargs / posterior settings: "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
