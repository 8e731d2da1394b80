"""Checkpoints of any training state (variables, optimiser state, step, keys).

A thin layer over ``orbax.checkpoint``'s ``StandardCheckpointer``: writes are
atomic (orbax writes to a temporary directory and renames it on success), so
a crash never leaves a half-written checkpoint under the final name.

    save(path, {"variables": v, "opt_state": s, "step": t})
    state = restore(path, like={"variables": v0, "opt_state": s0, "step": 0})

``like`` is a pytree with the structure of the saved one (e.g. a freshly
initialised state); it restores NamedTuple optimiser states and dtypes
exactly. Without it, a plain nested-dict pytree of arrays comes back.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["save", "restore", "exists", "restore_variables"]


def exists(path) -> bool:
    """Whether a complete checkpoint is at ``path``."""
    path = pathlib.Path(path)
    return path.is_dir() and (path / "_CHECKPOINT_METADATA").exists()


def save(path, state, *, overwrite: bool = False) -> pathlib.Path:
    """Save the pytree ``state`` to the directory ``path`` (atomically).

    Raises:
      FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = pathlib.Path(path).absolute()
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"checkpoint {path} exists; pass overwrite=True to replace it")
        shutil.rmtree(path)
    os.makedirs(path.parent, exist_ok=True)
    state = jax.tree.map(lambda a: np.asarray(a) if isinstance(a, (int, float)) else a, state)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, state)
    checkpointer.wait_until_finished()
    checkpointer.close()
    return path


def restore(path, like=None):
    """Restore the pytree saved at ``path``, shaped like ``like`` when given.

    Raises:
      FileNotFoundError: no complete checkpoint at ``path``.
    """
    path = pathlib.Path(path).absolute()
    if not exists(path):
        raise FileNotFoundError(f"no checkpoint at {path} (missing or incomplete)")
    checkpointer = ocp.StandardCheckpointer()
    try:
        if like is None:
            return checkpointer.restore(path)
        like = jax.tree.map(lambda a: np.asarray(a) if isinstance(a, (int, float)) else a, like)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        return checkpointer.restore(path, abstract)
    finally:
        checkpointer.close()


def restore_variables(path, posterior, example_x):
    """A posterior's variables from the checkpoint at ``path`` (saved as the variables
    themselves or as ``{"variables": ...}``), shaped like ``posterior.init(key, example_x)``.

    Raises:
      FileNotFoundError: no checkpoint at ``path``.
      ValueError: the checkpoint does not fit this posterior's model.
    """
    import jax

    if not exists(path):
        raise FileNotFoundError(f"no checkpoint at {path} (save one with bal.checkpoint.save(path, variables))")
    like = posterior.init(jax.random.key(0), example_x)
    errors = []
    for wrap in (False, True):
        try:
            restored = restore(path, like={"variables": like} if wrap else like)
            return restored["variables"] if wrap else restored
        except Exception as err:  # orbax raises various types on a structure mismatch
            errors.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
    model = type(getattr(posterior, "member", posterior).model).__name__
    raise ValueError(f"the checkpoint at {path} does not hold variables of this posterior/model "
                     f"({type(posterior).__name__} over {model}): {errors[0]}")
