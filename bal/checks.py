"""Validators and constants shared by every layer: one definition of each.

``IGNORE_LABEL`` is the "no label" value of dense (pixel) labels, the
Cityscapes / BDD100K / PASCAL VOC convention. The checks raise ``ValueError``
with one line that names the setting or argument, so the CLI can print it as
is.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["IGNORE_LABEL", "check_inputs", "check_int", "check_number", "check_target_classes"]

#: the label of an unlabeled pixel (left out of losses and metrics)
IGNORE_LABEL = 255


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int``; booleans, floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def check_number(name: str, value, *, minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a finite ``float``; booleans, strings, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_target_classes(classes, class_names) -> None:
    """Class ids for class targeting must name classes of the data set."""
    for c in classes:
        if not 0 <= c < len(class_names):
            raise ValueError(f"target class {c} is out of range: the dataset has classes "
                             f"0..{len(class_names) - 1} ({', '.join(class_names)})")


def check_inputs(x, name: str = "inputs") -> None:
    """Model inputs must be floating point (a uint8 image would silently train on
    0..255), at least ``[N, D]``, and finite (one NaN poisons every gradient)."""
    if not np.issubdtype(np.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype, np.floating) \
            and str(getattr(x, "dtype", "")) != "bfloat16":
        raise ValueError(
            f"{name} must be floating point (e.g. images.astype('float32') / 255); got dtype {x.dtype}"
        )
    if np.ndim(x) < 2:
        raise ValueError(f"{name} must have shape [N, ...features]; got shape {list(np.shape(x))}")
    if not bool(np.isfinite(np.asarray(x, np.float32) if str(x.dtype) == "bfloat16" else x).all()):
        raise ValueError(f"{name} hold NaN or infinite values")


class input_shape_errors:
    """Turn flax's parameter-shape error (inputs that do not fit the variables,
    e.g. 28x28 images for a model initialised on 8x8) into a one-line ``ValueError``."""

    def __init__(self, x_shape):
        self.x_shape = tuple(x_shape)

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        from flax.errors import ScopeParamShapeError

        if kind is not None and issubclass(kind, ScopeParamShapeError):
            detail = str(err).split("(https://")[0].strip()
            raise ValueError(f"inputs of shape {list(self.x_shape)} do not fit the model's variables "
                             f"({detail})") from None
        return False
