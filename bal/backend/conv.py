"""Drop-in ops that avoid slow paths of XLA:CPU: ``conv_general_dilated`` and ``max_pool``.

Together they take the Gal CNN train step (batch 64, Adam) on the 2-core CPU
from 163 ms to 45 ms (PyTorch 2.13 on the same cores: 33-42 ms), see ``benchmarks/``.
On other backends ``conv_general_dilated`` is ``lax``'s own.

**Unpadded convolutions.** Measured on the 2-core CPU (jax 0.10.2, float32, batch 64, ``[64, 25, 25, 32]``
through a 4x4x32x32 kernel, the second conv of the Gal CNN)::

    padding            forward   weight gradient   input gradient
    "VALID"            55 ms     83 ms             9 ms
    ((0, 0), (0, 1))   12 ms     27 ms             9 ms
    + patch matmul               13 ms

XLA:CPU sends a convolution with no padding at all down a path about 4x slower
than the same convolution with any padding. Padding the last spatial axis by one
zero column on the high side and slicing that extra output column away gives
bit-for-bit the windows of the unpadded convolution (every window that starts
inside the input is the same; only the one extra trailing window sees the zero
column, and it is dropped), so gradients are exact too.

**Kernel gradients.** XLA:CPU's kernel gradient runs at 7-40 GFLOP/s where its
forward convolution and its matmuls reach 80-170: 630 ms for a 3x3, 64-channel
ResNet conv at 32x32 whose forward takes 60 ms. 2-D convolutions with at least
8 input channels and 64 output pixels therefore get a custom VJP whose kernel
gradient is a matmul over width patches (:func:`weight_gradient`: 630 -> 46 ms
there, 27 -> 13 ms for the Gal CNN conv2); at stride 1 and without padding
their forward is an im2col matmul too (:func:`forward_patches`: Gal CNN conv2
12.5 -> 9.2 ms, 603 -> 471 ms at batch 2,048; padded ones keep XLA's forward,
which was 2-6x faster for CenterNet's "SAME" convs, see :func:`_fast_forward`);
the input gradient stays XLA's.
Being a custom VJP, such a convolution supports reverse mode (any order, under
``vmap`` and ``jit``) but not forward mode: ``jax.jvp``/``jax.jacfwd`` through it
raise a ``TypeError``; set ``BAL_CONV_REWRITE=0`` before tracing for those.

**1x1 convolutions** (any rank) are written as a matmul over the feature axis
(ResNet's 1x1 stride-2 shortcut: forward 4.0 -> 2.4 ms, kernel gradient 26 -> 4 ms).

All rewrites apply only on the CPU backend and only to plain convolutions: no
input dilation (transposed convs) and no batch grouping; the two gradient
rewrites also need ``feature_group_count == 1``. ``BAL_CONV_REWRITE=0`` switches
them all off, for comparisons and for forward-mode differentiation.

**Max pooling.** ``flax.linen.max_pool`` lowers to ``reduce_window`` whose
gradient is a ``select_and_scatter`` (5.5 ms for ``[64, 22, 22, 32]`` on the CPU);
non-overlapping windows written as a reshape and a max reduce differentiate in
1.3 ms. The gradient differs only where a window holds tied maxima (XLA's
picks one, the reshape splits it evenly); both are valid subgradients.

Whether the rewrites apply and the im2col chunk size come from
:func:`bal.backend.policy` (``conv_rewrite``, ``im2col_chunk_bytes``), read
when a convolution is traced. Use them in your own Flax models with
``nn.Conv(..., conv_general_dilated=bal.backend.conv_general_dilated)`` (also
``bal.nn.ops.conv_general_dilated``) and ``bal.backend.max_pool``; the
``bal.models`` already do.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bal.backend.policy import policy

__all__ = ["conv_general_dilated", "forward_patches", "max_pool", "rewrite_enabled", "weight_gradient"]


def rewrite_enabled() -> bool:
    """Whether convolutions are rewritten here: the policy's ``conv_rewrite`` (CPU, not ``BAL_CONV_REWRITE=0``)."""
    return policy().conv_rewrite


class _ConvConfig(NamedTuple):
    """The static part of a convolution (hashable: it is a ``custom_vjp`` nondiff argument)."""

    strides: tuple
    pads: tuple
    rhs_dilation: tuple
    dims: lax.ConvDimensionNumbers
    feature_group_count: int
    precision: Any
    preferred_element_type: Any


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
    """``jax.lax.conv_general_dilated`` with the same signature and values (see the module doc)."""
    kwargs = dict(lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                  precision=precision, preferred_element_type=preferred_element_type)
    n = lhs.ndim - 2
    plain = n >= 1 and batch_group_count == 1 and all(d == 1 for d in (lhs_dilation or (1,) * n))
    if not (plain and rewrite_enabled()):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)
    dims = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    dilation = tuple(int(d) for d in (rhs_dilation or (1,) * n))
    pads = _explicit_padding(lhs, rhs, dims, window_strides, padding, dilation)
    cfg = _ConvConfig(tuple(int(s) for s in window_strides), pads, dilation, dims, int(feature_group_count),
                      precision, preferred_element_type)
    kernel = [rhs.shape[d] for d in dims.rhs_spec[2:]]
    if feature_group_count == 1 and all(k == 1 for k in kernel):
        return _pointwise(lhs, rhs, cfg)
    out_size = np.prod([(s + lo + hi - (k - 1) * d - 1) // st + 1 for s, (lo, hi), k, d, st in
                        zip((lhs.shape[a] for a in dims.lhs_spec[2:]), pads, kernel, dilation, cfg.strides)])
    if (n == 2 and feature_group_count == 1 and lhs.shape[dims.lhs_spec[1]] >= _MIN_IM2COL_CHANNELS
            and out_size >= _MIN_IM2COL_OUTPUT):
        return _conv_fast_weight_grad(lhs, rhs, cfg)
    return _forward(lhs, rhs, cfg)


# Where the patch matmul of :func:`weight_gradient` beats XLA's own kernel
# gradient, measured on the 2-core CPU: not below 8 input channels (Gal CNN conv1
# with 1, the ResNet stem with 3) nor below 64 output pixels (ResNet 512 channels at 4x4).
_MIN_IM2COL_CHANNELS = 8
_MIN_IM2COL_OUTPUT = 64


def _to_last(x, spec):
    """Axes ``spec = (batch-or-O, feature-or-I, *spatial)`` of ``x`` ordered as ``[spec[0], *spatial, spec[1]]``."""
    return jnp.transpose(x, (spec[0], *spec[2:], spec[1]))


def _from_last(y, spec):
    """Inverse of :func:`_to_last`: back to the layout ``spec`` describes."""
    return jnp.transpose(y, np.argsort((spec[0], *spec[2:], spec[1])))


def _pad_spatial(x, pads):
    """Zero-pad the spatial axes of ``[B, *spatial, C]`` (negative pads crop, as in lax)."""
    return lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)])


def _pointwise(lhs, rhs, cfg: _ConvConfig):
    """A 1x1 convolution as a matmul over the feature axis (XLA:CPU's 1x1 conv gradients are slow)."""
    dims = cfg.dims
    x = _pad_spatial(_to_last(lhs, dims.lhs_spec), cfg.pads)  # [B, *spatial, C]
    x = lax.slice(x, [0] * x.ndim, x.shape, (1, *cfg.strides, 1))
    w = _to_last(rhs, dims.rhs_spec).reshape(rhs.shape[dims.rhs_spec[0]], -1)  # [O, I]
    out = lax.dot_general(x, w, (((x.ndim - 1,), (1,)), ((), ())), precision=cfg.precision,
                          preferred_element_type=cfg.preferred_element_type)  # [B, *spatial, O]
    return _from_last(out, dims.out_spec)


def _explicit_padding(lhs, rhs, dims, strides, padding, dilation) -> tuple:
    """``((lo, hi), ...)`` per spatial axis, strings ("SAME", "VALID", ...) resolved as lax does."""
    if isinstance(padding, str):
        in_shape = [lhs.shape[d] for d in dims.lhs_spec[2:]]
        window = [(rhs.shape[d] - 1) * r + 1 for d, r in zip(dims.rhs_spec[2:], dilation)]
        padding = lax.padtype_to_pads(in_shape, window, strides, padding)
    return tuple((int(lo), int(hi)) for lo, hi in padding)


def _forward(lhs, rhs, cfg: _ConvConfig):
    """The convolution itself; an unpadded one padded by a zero column and sliced back."""
    kwargs = dict(rhs_dilation=cfg.rhs_dilation, dimension_numbers=cfg.dims,
                  feature_group_count=cfg.feature_group_count, precision=cfg.precision,
                  preferred_element_type=cfg.preferred_element_type)
    if any(p != (0, 0) for p in cfg.pads):
        return lax.conv_general_dilated(lhs, rhs, cfg.strides, cfg.pads, **kwargs)
    out = lax.conv_general_dilated(lhs, rhs, cfg.strides, cfg.pads[:-1] + ((0, 1),), **kwargs)
    # output size of the unpadded conv along the last spatial axis
    in_size = lhs.shape[cfg.dims.lhs_spec[-1]]
    k = rhs.shape[cfg.dims.rhs_spec[-1]]
    size = (in_size - (k - 1) * cfg.rhs_dilation[-1] - 1) // cfg.strides[-1] + 1
    return lax.slice_in_dim(out, 0, size, axis=cfg.dims.out_spec[-1])


def _num_chunks(b: int, per_example: int, chunk_bytes: int) -> int:
    """How many batch chunks keep each chunk's temporaries near ``chunk_bytes``."""
    return -(-b // max(1, min(b, chunk_bytes // max(per_example, 1))))


def forward_patches(lhs, rhs, cfg: _ConvConfig, chunk_bytes: int | None = None):
    """A 2-D convolution as im2col + one matmul per batch chunk of about ``chunk_bytes`` of patches.

    ``chunk_bytes`` defaults to the policy's ``im2col_chunk_bytes`` (4 MB on the machine measured here).

    The forward of the stride-1 convolutions that :func:`conv_general_dilated`
    routes to the custom VJP, in prediction and in training. Measured on the
    2-core CPU against XLA's (padded) forward, float32, batch 64 (two runs;
    this VM's timings vary by 10-30 %): Gal CNN conv2 12.5-17.4 -> 9.2-12.4 ms,
    at batch 128 25 -> 18-23 ms, at 2,048 603 -> 471 ms; ResNet 3x3 64
    channels at 32x32 60 -> 52 ms; equal at 128 and 256 channels; *slower* at
    stride 2 (33-35 -> 37-40 ms), which therefore keeps XLA's. End to end: the
    Gal CNN train step 44.5 -> 41.5 ms, MC-dropout BALD over 10,000 items
    (20 samples, chunks of 128) 3.7 -> 3.0 s, a 5-member ensemble 11.6 -> 8.5 s.
    Chunks of 8 MB made the train step *slower* (55-65 ms: they no longer fit
    the cache next to the step's other buffers); 2-6 MB all measured alike.

    Chunk ``i`` holds examples ``i, i + chunks, ...``: interleaved rather than
    contiguous chunks keep each device's share of a batch-sharded ``lhs`` in
    every chunk, so the loop over chunks needs no communication (contiguous
    chunks made 8-device sharded prediction 8x slower). Under ``vmap`` over
    kernels only (weight samples, ensemble members) the patches are gathered
    once and the matmul is batched.
    """
    dims = cfg.dims
    x = _pad_spatial(_to_last(lhs, dims.lhs_spec), cfg.pads)                 # [B, H, W, C]
    kh, kw = (rhs.shape[d] for d in dims.rhs_spec[2:])
    kernel = _to_last(rhs, dims.rhs_spec).reshape(rhs.shape[dims.rhs_spec[0]], -1)  # [O, (kh, kw, C)]
    b, h, w, c = x.shape
    (sh, sw), (dh, dw) = cfg.strides, cfg.rhs_dilation
    ho, wo = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
    rows = (np.arange(ho) * sh)[:, None, None, None] + (np.arange(kh) * dh)[None, None, :, None]
    cols = (np.arange(wo) * sw)[None, :, None, None] + (np.arange(kw) * dw)[None, None, None, :]

    def one(x):  # [n, H, W, C] -> [n, Ho, Wo, O]
        patches = x[:, rows, cols, :].reshape(x.shape[0], ho, wo, kh * kw * c)
        return lax.dot_general(patches, kernel, (((3,), (1,)), ((), ())), precision=cfg.precision,
                               preferred_element_type=cfg.preferred_element_type)

    chunk_bytes = policy().im2col_chunk_bytes if chunk_bytes is None else chunk_bytes
    chunks = _num_chunks(b, ho * wo * kh * kw * c * x.dtype.itemsize, chunk_bytes)
    if chunks == 1:
        out = one(x)
    else:
        size = -(-b // chunks)
        x = jnp.pad(x, [(0, chunks * size - b)] + [(0, 0)] * 3)
        out = lax.map(one, jnp.swapaxes(x.reshape(size, chunks, h, w, c), 0, 1))  # [chunks, size, Ho, Wo, O]
        out = jnp.swapaxes(out, 0, 1).reshape(chunks * size, ho, wo, -1)[:b]
    return _from_last(out, dims.out_spec)


def _fast_forward(lhs, rhs, cfg: _ConvConfig):
    """The forward of a custom-VJP convolution: patch matmuls for unpadded stride-1 convs, else XLA's.

    Padded convolutions keep XLA's forward (issue 20): measured on the 2-core
    Intel Xeon VM (batch 8, 3x3 "SAME", CenterNet shapes, three interleaved
    rounds, loaded machine), the im2col forward took 8-13 ms against XLA's 2-3
    at 16 channels (48x64), 4-5 against 1.1-1.6 at 32 (24x32), 5-11 against
    0.9-1.5 at 64 (12x16), and tied at 96 (24x32); with XLA's forward and the
    patch-matmul kernel gradient the gradient matched XLA's at 16 channels and
    beat it at 96 (44-72 against 86-164 ms). Unpadded convolutions (the Gal
    CNN's) take the patch forward where it was measured faster (the first AMD
    machine), XLA's where that was faster (another AMD EPYC VM: 12 against
    17 ms): the policy's ``conv_forward``, measured per machine type.
    """
    if (all(s == 1 for s in cfg.strides) and all(p == (0, 0) for p in cfg.pads)
            and policy().conv_forward == "patches"):
        return forward_patches(lhs, rhs, cfg)
    return _forward(lhs, rhs, cfg)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_fast_weight_grad(lhs, rhs, cfg: _ConvConfig):
    """A 2-D convolution whose kernel gradient is a patch matmul (see :func:`weight_gradient`)."""
    return _fast_forward(lhs, rhs, cfg)


def _conv_fwd(lhs, rhs, cfg):
    return _fast_forward(lhs, rhs, cfg), (lhs, rhs)


def _conv_bwd(cfg, residuals, ct):
    lhs, rhs = residuals
    # the input gradient is XLA's transposed convolution, which is fast; unused ones are removed by XLA
    d_lhs = jax.vjp(lambda x: _forward(x, rhs, cfg), lhs)[1](ct)[0]
    return d_lhs, weight_gradient(lhs, ct, rhs.shape, cfg).astype(rhs.dtype)


_conv_fast_weight_grad.defvjp(_conv_fwd, _conv_bwd)


def weight_gradient(lhs, ct, rhs_shape, cfg: _ConvConfig, chunk_bytes: int | None = None):
    """Kernel cotangent of a 2-D convolution as matmuls over width patches, in batch chunks.

    With ``x`` the padded input ``[B, H, W, C]`` and ``g`` the output cotangent
    ``[B, Ho, Wo, Co]``, the kernel cotangent is
    ``dW[i, j, c, o] = sum_{b, h, w} x[b, h*s + i*d, w*s + j*d, c] g[b, h, w, o]``.
    Gathering the ``kw`` width taps of ``x`` (``P[b, h, w, (j, c)]``, width
    im2col only) and shifting ``g`` down by each row offset ``i*d`` (with
    ``s - 1`` zero rows between its rows for a row stride ``s``; ``G[b, h, w, (i, o)]``)
    turns it into one matmul ``G^T P`` over ``(b, h, w)``. The batch is cut into
    chunks of about ``chunk_bytes`` of patches and summed in a scan, which keeps
    the temporaries small: XLA:CPU allocates a program's temporaries per call,
    and first touches of large fresh buffers (page faults) cost as much as the
    matmul itself. Measured on the 2-core CPU against XLA's own kernel gradient
    (batch 64): Gal CNN conv2 27 -> 13 ms; ResNet 3x3 convs: 64 channels at
    32x32 630 -> 46 ms, 128 at 16x16 106 -> 39 ms, 256 at 8x8 53 -> 39 ms.

    ``chunk_bytes`` defaults to the policy's ``im2col_chunk_bytes``.
    Returns ``dW`` in the kernel's layout, float32 accumulated (cast by the caller).
    """
    dims = cfg.dims
    x = _pad_spatial(_to_last(lhs, dims.lhs_spec), cfg.pads)  # [B, H, W, C]
    g = _to_last(ct, dims.out_spec)                           # [B, Ho, Wo, Co]
    kh, kw = (rhs_shape[d] for d in dims.rhs_spec[2:])
    (sh, sw), (dh, dw) = cfg.strides, cfg.rhs_dilation
    b, h, _, c = x.shape
    _, ho, wo, co = g.shape
    taps = np.arange(wo)[:, None] * sw + np.arange(kw)[None, :] * dw  # [Wo, kw] input columns
    acc_dtype = jnp.promote_types(jnp.promote_types(x.dtype, g.dtype), jnp.float32)

    def one(x, g):  # x [b, H, W, C], g [b, Ho, Wo, Co] -> [(kh, Co), (kw, C)]
        n = x.shape[0]
        patches = x[:, :, taps, :].reshape(n * h * wo, kw * c)
        zero = jnp.zeros((), g.dtype)
        shifted = jnp.stack([lax.pad(g, zero, [(0, 0, 0), (i * dh, h - i * dh - (ho - 1) * sh - 1, sh - 1),
                                               (0, 0, 0), (0, 0, 0)]) for i in range(kh)], axis=3)
        return lax.dot_general(shifted.reshape(n * h * wo, kh * co), patches, (((0,), (0,)), ((), ())),
                               precision=cfg.precision, preferred_element_type=acc_dtype)

    chunk_bytes = policy().im2col_chunk_bytes if chunk_bytes is None else chunk_bytes
    chunks = _num_chunks(b, h * wo * (kw * c + kh * co) * x.dtype.itemsize, chunk_bytes)
    if chunks == 1:
        acc = one(x, g)
    else:
        size = -(-b // chunks)
        extra = [(0, chunks * size - b)] + [(0, 0)] * 3  # zero examples add nothing
        xs = jnp.pad(x, extra).reshape(chunks, size, *x.shape[1:])
        gs = jnp.pad(g, extra).reshape(chunks, size, *g.shape[1:])
        acc, _ = lax.scan(lambda a, xg: (a + one(*xg), None), jnp.zeros((kh * co, kw * c), acc_dtype), (xs, gs))
    dw = acc.reshape(kh, co, kw, c).transpose(1, 0, 2, 3)  # [Co, kh, kw, C]
    return _from_last(dw, dims.rhs_spec)


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
