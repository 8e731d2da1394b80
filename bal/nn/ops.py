"""Moved to :mod:`bal.backend.conv` (issue 16); this path re-exports it unchanged.

Drop-in ``conv_general_dilated`` and ``max_pool`` that avoid slow paths of
XLA:CPU; whether they rewrite follows :func:`bal.backend.policy`.
"""

from bal.backend.conv import (  # noqa: F401
    _ConvConfig,
    _MIN_IM2COL_CHANNELS,
    _MIN_IM2COL_OUTPUT,
    _explicit_padding,
    _forward,
    conv_general_dilated,
    forward_patches,
    max_pool,
    rewrite_enabled,
    weight_gradient,
)

__all__ = ["conv_general_dilated", "forward_patches", "max_pool", "rewrite_enabled", "weight_gradient"]
