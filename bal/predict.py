"""Posterior prediction at pool scale: chunked, sharded, streamed to scores.

``predict`` walks a pool ``x: [N, ...]`` in fixed-size chunks. For each chunk
it computes the posterior samples ``[S, n, C]`` (samples mapped inside the
chunk) and, when ``reduce`` is given, reduces them on the device straight to
per-item results (e.g. BALD scores ``[n]`` or the predictive ``[n, C]``), so
``[S, N, C]`` is never materialised for a big pool. Every chunk has the same
shape (the last one is padded), so the computation compiles once per chunk
size and is reused across chunks and across active-learning cycles.

Every chunk uses the same ``key``, so posterior sample ``s`` is the same
network (same weight draw, same dropout masks) for every pool item.

Dense models (segmentation, ``logits [N, H, W, C]``) go through the same code:
samples are ``[S, n, H, W, C]`` per chunk and ``reduce`` sees them, e.g. to
reduce pixel scores to image or crop scores on the device
(:mod:`bal.acquisition.dense`, :mod:`bal.acquisition.regions`). Choose a small
``chunk_size`` for them (memory grows with ``H * W``).

With several devices, each chunk is split across them along the pool axis
(data parallel, ``jax.jit`` over a ``NamedSharding`` on a 1-D mesh named
``"pool"``); parameters are replicated. One device is the same code path with
a mesh of one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bal import backend
from bal.metrics import predictive_log_probs
from bal.checks import check_inputs, input_shape_errors

if TYPE_CHECKING:  # the protocol only types signatures
    from bal.posteriors.protocol import Posterior

__all__ = ["Chunk", "default_chunk_size", "predict", "predictive", "pool_mesh"]


def default_chunk_size() -> int:
    """Pool items per chunk when ``predict`` is given none: the backend policy's ``chunk_size``.

    :func:`bal.backend.policy`: 2,048 on accelerators (big chunks fill the
    device); on the CPU derived from its caches, 128 on the machines measured
    (:func:`bal.backend.cpu_chunk_sizes`). On the 2-core CPU large chunks lose
    to cache misses and page faults on their big activations (the Gal CNN's
    first conv: 0.7 ms for 64 items but 122 ms for 2,048): MC-dropout BALD
    over 10,000 items took 5.0 s with chunks of 2,048, 4.9 s with 512, 3.7 s
    with 128 and 4.2 s with 32; a 5-member ensemble 16.0 s with 2,048 and
    11.6 s with 128.
    """
    return backend.policy().chunk_size


class Chunk(NamedTuple):
    """What a ``reduce`` function sees for one chunk of the pool.

    Attributes:
      log_probs: ``[S, n, C]`` posterior-sample log-probabilities (``[S, n, H, W, C]``
        for a dense model such as the U-Net: one distribution per pixel).
      embeddings: ``[S, n, D]`` penultimate features (``[S, n, H, W, D]`` for a dense
        model; dropped by XLA if unused).
      start: global pool index of the chunk's first item (a traced int), for
        reductions keyed by item, e.g. stochastic acquisition.
    """

    log_probs: jax.Array
    embeddings: jax.Array
    start: jax.Array


def predictive(chunk: Chunk) -> jax.Array:
    """A ``reduce`` giving the posterior predictive ``log mean_s p``: ``[n, C]``."""
    return predictive_log_probs(chunk.log_probs)


def pool_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"pool"`` over ``devices`` (default: all local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("pool",))


_STATIC = ("posterior", "num_samples", "reduce", "with_embeddings")


def _chunk_outputs(variables, x, key, start, reduce_args, *, posterior, num_samples, reduce,
                   with_embeddings):
    log_probs, emb = posterior.predict_with_embeddings(variables, x, key, num_samples)
    if reduce is not None:
        return reduce(Chunk(log_probs, emb, start), *reduce_args)
    return (log_probs, emb) if with_embeddings else log_probs


_chunk = jax.jit(_chunk_outputs, static_argnames=_STATIC)


@functools.partial(jax.jit, static_argnames=_STATIC + ("per_run_x",))
def _chunk_runs(variables, x, key, start, reduce_args, *, per_run_x, **static):
    """:func:`_chunk_outputs` of ``R`` runs at once (variables, key, reduce_args: ``[R, ...]``)."""
    one = functools.partial(_chunk_outputs, **static)
    return jax.vmap(one, in_axes=(0, 0 if per_run_x else None, 0, None, 0))(
        variables, x, key, start, reduce_args)


def predict(
    posterior: Posterior,
    variables,
    x,
    key: jax.Array,
    *,
    num_samples: int | None = None,
    chunk_size: int | None = None,
    reduce: Callable[..., Any] | None = None,
    reduce_args: tuple = (),
    with_embeddings: bool = False,
    mesh: Mesh | None = None,
    runs: bool = False,
    per_run_x: bool = False,
):
    """Posterior predictive samples (or their reductions) over a whole pool.

    Args:
      posterior: any ``bal.posteriors`` family; variables: its variables.
      x: ``[N, ...]`` float inputs (numpy on the host, or a jax array).
      key: PRNG key; sample ``s`` is the same network for every chunk.
      num_samples: ``S`` (``None``: the family's default).
      chunk_size: pool items per chunk (default :func:`default_chunk_size`;
        rounded up to a multiple of the device count; smaller pools use the
        next power of two); bounds memory at
        ``S * chunk_size * C`` floats. Dense models hold ``S * chunk_size * H * W * C``
        (plus activations): pass a small ``chunk_size`` for images, e.g. 8–32
        (``bal.active.segmentation`` uses 16), not the default.
      reduce: optional jittable ``reduce(chunk: Chunk, *reduce_args)`` applied
        per chunk on the device, returning a pytree of arrays whose leading axis
        is the chunk's items (e.g. :func:`predictive`, or acquisition scores
        ``[n]``). Pass a stable function object: it is a static argument of
        the compiled computation.
      reduce_args: traced arguments of ``reduce`` (e.g. a PRNG key), so a new
        value does not recompile.
      with_embeddings: also return embeddings ``[S, N, D]`` (no ``reduce``).
      mesh: a 1-D device mesh (default: all local devices).
      runs: predict for ``R`` independent runs side by side (the seeds of one
        active-learning strategy) as one vmapped program: ``variables``,
        ``key`` and every ``reduce_args`` leaf carry a leading run axis ``[R]``,
        and so does every output (``[R, S, N, C]``, reductions ``[R, N, ...]``).
      per_run_x: with ``runs``, ``x`` is ``[R, N, ...]``, one pool per run
        (e.g. each seed's candidates); otherwise ``x [N, ...]`` is shared.

    Returns:
      numpy ``[S, N, C]`` (dense models: ``[S, N, H, W, C]``) log-probabilities; or ``(log_probs, embeddings)``; or
      the reductions, concatenated over chunks along their leading axis (with ``runs``: all
      of them with a leading run axis).
    """
    if reduce is not None and with_embeddings:
        raise ValueError("with_embeddings cannot be combined with reduce")
    chunk_size = default_chunk_size() if chunk_size is None else chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}")
    if per_run_x and not runs:
        raise ValueError("per_run_x needs runs=True (one pool per run)")
    num_samples = posterior.num_samples_for(num_samples)
    check_inputs(x)
    x_axis = 1 if per_run_x else 0  # the pool axis of x
    n = x.shape[x_axis] if x.ndim > x_axis else 0
    if n == 0:
        raise ValueError("the pool is empty: nothing to predict")
    mesh = pool_mesh() if mesh is None else mesh
    num_devices = mesh.devices.size
    # a pool smaller than a chunk is padded to the next power of two, so a pool that
    # shrinks cycle by cycle recompiles only a few times
    chunk = min(chunk_size, 1 << (n - 1).bit_length())
    chunk = -(-chunk // num_devices) * num_devices
    data_sharding = NamedSharding(mesh, PartitionSpec(*([None] * x_axis), "pool"))
    replicated = NamedSharding(mesh, PartitionSpec())
    variables = jax.device_put(variables, replicated)
    key = jax.device_put(key, replicated)
    reduce_args = jax.device_put(tuple(reduce_args), replicated)
    static = dict(posterior=posterior, num_samples=num_samples, reduce=reduce, with_embeddings=with_embeddings)
    run = (functools.partial(_chunk_runs, per_run_x=per_run_x, **static) if runs
           else functools.partial(_chunk, **static))
    # the pool axis of the outputs: reductions [(R,) n, ...], samples [(R,) S, n, ...]
    out_axis = int(runs) + int(reduce is None)
    cut = lambda a, v: np.asarray(a)[(slice(None),) * out_axis + (slice(0, v),)]  # noqa: E731
    if reduce is not None:
        to_host = lambda out, v: jax.tree.map(lambda a: cut(a, v), out)  # noqa: E731
    elif with_embeddings:
        to_host = lambda out, v: (cut(out[0], v), cut(out[1], v))  # noqa: E731
    else:
        to_host = cut
    xp = np if isinstance(x, np.ndarray) else jnp
    host, pending = [], None
    for start in range(0, n, chunk):
        part = x[(slice(None),) * x_axis + (slice(start, start + chunk),)]
        valid = part.shape[x_axis]
        if valid < chunk:  # pad the last chunk: one compiled shape for every chunk
            shape = list(part.shape)
            shape[x_axis] = chunk - valid
            part = xp.concatenate([part, xp.zeros(shape, part.dtype)], axis=x_axis)
        if pending is None:  # the first chunk compiles: a shape mismatch shows here
            with input_shape_errors(x.shape):
                out = run(variables, jax.device_put(part, data_sharding), key, start, reduce_args)
        else:
            out = run(variables, jax.device_put(part, data_sharding), key, start, reduce_args)
        # dispatch is asynchronous: copy the previous chunk to the host while this one runs,
        # so at most two chunks of outputs live on the device
        if pending is not None:
            host.append(to_host(*pending))
        pending = (out, valid)
    host.append(to_host(*pending))
    join = lambda *parts: np.concatenate(parts, axis=out_axis)  # noqa: E731
    if reduce is not None:
        return jax.tree.map(join, *host)
    if with_embeddings:
        return join(*[h[0] for h in host]), join(*[h[1] for h in host])
    return join(*host)
