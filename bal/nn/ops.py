"""Drop-in ops that avoid slow paths of XLA:CPU: ``conv_general_dilated`` and ``max_pool``.

Together they take the Gal CNN train step (batch 64, Adam) on the 2-core CPU
from 163 ms to 55 ms (PyTorch 2.13: 40 ms), see ``benchmarks/``.

**Unpadded convolutions.** Measured on the 2-core CPU (jax 0.10.2, float32, batch 64, ``[64, 25, 25, 32]``
through a 4x4x32x32 kernel, the second conv of the Gal CNN)::

    padding            forward   weight gradient   input gradient
    "VALID"            55 ms     83 ms             9 ms
    ((0, 0), (0, 1))   12 ms     27 ms             9 ms

XLA:CPU sends a convolution with no padding at all down a path about 4x slower
than the same convolution with any padding. Padding the last spatial axis by one
zero column on the high side and slicing that extra output column away gives
bit-for-bit the windows of the unpadded convolution (every window that starts
inside the input is the same; only the one extra trailing window sees the zero
column, and it is dropped), so gradients are exact too.

The rewrite is applied only on the CPU backend (on GPUs cuDNN has no such
cliff) and only to plain convolutions: no input dilation (transposed convs) and
no batch grouping. ``BAL_CONV_REWRITE=0`` switches it off for comparisons.

**Max pooling.** ``flax.linen.max_pool`` lowers to ``reduce_window`` whose
gradient is a ``select_and_scatter`` (5.5 ms for ``[64, 22, 22, 32]`` on the CPU);
non-overlapping windows written as a reshape and a max reduce differentiate in
1.3 ms. The gradient differs only where a window holds tied maxima (XLA's
picks one, the reshape splits it evenly); both are valid subgradients.

Use them in your own Flax models with
``nn.Conv(..., conv_general_dilated=bal.nn.ops.conv_general_dilated)`` and
``bal.nn.ops.max_pool``; the ``bal.models`` already do.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def rewrite_enabled() -> bool:
    """Whether unpadded convolutions are rewritten here (CPU backend, not switched off)."""
    if os.environ.get("BAL_CONV_REWRITE", "1") == "0":
        return False
    return jax.default_backend() == "cpu"


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
    """``jax.lax.conv_general_dilated`` with the same signature and values (see the module doc)."""
    kwargs = dict(lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                  precision=precision, preferred_element_type=preferred_element_type)
    n = lhs.ndim - 2
    pads = _explicit_padding(padding, n)
    plain = (pads is not None and n >= 1 and batch_group_count == 1
             and all(d == 1 for d in (lhs_dilation or (1,) * n)))
    if not (plain and all(p == (0, 0) for p in pads) and rewrite_enabled()):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)
    dims = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    out = lax.conv_general_dilated(lhs, rhs, window_strides, pads[:-1] + [(0, 1)], **kwargs)
    # output size of the unpadded conv along the last spatial axis
    in_size = lhs.shape[dims.lhs_spec[-1]]
    k = rhs.shape[dims.rhs_spec[-1]]
    d = (rhs_dilation or (1,) * n)[-1]
    s = window_strides[-1]
    size = (in_size - (k - 1) * d - 1) // s + 1
    axis = dims.out_spec[-1]
    return lax.slice_in_dim(out, 0, size, axis=axis)


def _explicit_padding(padding, n: int):
    """``[(lo, hi)] * n`` for "VALID" or explicit pairs; ``None`` for other strings ("SAME", ...)."""
    if isinstance(padding, str):
        return [(0, 0)] * n if padding.upper() == "VALID" else None
    pads = [tuple(int(v) for v in p) for p in padding]
    return pads if len(pads) == n else None


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """``flax.linen.max_pool`` (``[N, *spatial, C]``), as reshape + max where windows tile the input.

    Non-overlapping ``"VALID"`` windows (``strides == window_shape``) drop the
    trailing remainder like ``nn.max_pool``; anything else falls back to it.
    """
    window_shape = tuple(window_shape)
    strides = tuple(strides) if strides is not None else (1,) * len(window_shape)
    n = len(window_shape)
    if strides != window_shape or not (isinstance(padding, str) and padding.upper() == "VALID") or x.ndim < n + 1:
        return nn.max_pool(x, window_shape, strides=strides, padding=padding)
    batch = x.shape[: x.ndim - n - 1]
    spatial = x.shape[len(batch): len(batch) + n]
    out = [s // k for s, k in zip(spatial, window_shape)]
    x = x[(Ellipsis,) + tuple(slice(0, o * k) for o, k in zip(out, window_shape)) + (slice(None),)]
    split = [d for o, k in zip(out, window_shape) for d in (o, k)]
    x = jnp.reshape(x, batch + tuple(split) + x.shape[-1:])
    axes = tuple(len(batch) + 2 * i + 1 for i in range(n))
    return jnp.max(x, axis=axes)
