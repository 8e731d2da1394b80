"""Data parallelism for training: a 1-D device mesh over the batch axis, in one process or across many.

:func:`bal.train.fit` with a mesh of ``D > 1`` devices (:func:`data_mesh`)
keeps the labeled set split by rows over the mesh axis ``"data"``, gathers
each minibatch and constrains it to the same axis (every device computes the
loss and gradients of ``B / D`` examples), and keeps the parameters and the
optimiser state replicated: XLA inserts the all-reduce that averages the
gradients, so a step is the same computation as on one device (up to the
order of the floating-point sums).

Under ``jax.distributed`` (:func:`bal.pools.initialize`) the mesh spans the
devices of every process and ``fit`` is a collective: every process calls it
with the same arguments (the whole labeled set ``[N, ...]``, checked on every
host), and each process places on its devices only the rows that live there
(:func:`shard_rows`, through ``jax.make_array_from_callback``), so each holds
its slice of every batch. Every process gets the same trained variables, as
local arrays (:func:`to_local`).

Which devices by default (:func:`default_mesh`): every device of every
process when there are several processes, or several accelerators (GPUs,
TPU cores) in one process; one device otherwise. On the CPU one device
already spreads its work over every core, and the simulated host devices of
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` exist to test shardings,
so a single CPU process trains on one device unless it is given a mesh.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["AXIS", "data_mesh", "default_mesh", "check_mesh", "replicate", "shard_rows", "to_local"]

#: the name of the mesh axis the batch is split over
AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: every device of every process, ``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh needs at least one device")
    return Mesh(np.asarray(devices), (AXIS,))


def default_mesh() -> Mesh | None:
    """The mesh :func:`bal.train.fit` trains on when given none (see the module docstring); ``None``: one device."""
    devices = jax.devices()
    if jax.process_count() > 1 or (len(devices) > 1 and devices[0].platform != "cpu"):
        return data_mesh(devices)
    return None


def check_mesh(mesh) -> Mesh:
    """``mesh`` must be a 1-D :class:`jax.sharding.Mesh` whose axis is ``"data"``."""
    if not isinstance(mesh, Mesh) or mesh.axis_names != (AXIS,):
        raise ValueError(f"mesh must be a 1-D jax.sharding.Mesh with the axis {AXIS!r} (bal.parallel.data_mesh()); "
                         f"got {mesh!r}")
    return mesh


def _global(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree, mesh: Mesh):
    """Every leaf of ``tree`` replicated on every device of ``mesh`` (typed PRNG keys stay keys).

    Works across processes: each process places its own copy, so the values
    must be the same in every process (they are when derived from the same
    arguments).
    """
    sharding = NamedSharding(mesh, PartitionSpec())

    def leaf(a):
        a = jax.numpy.asarray(a) if not isinstance(a, (jax.Array, np.ndarray)) else a
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(leaf(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        return _global(np.asarray(a), sharding)

    return jax.tree.map(leaf, tree)


def shard_rows(array, mesh: Mesh, axis: int = 0) -> jax.Array:
    """``array [..., N, ...]`` split by rows along ``axis`` (``N``) over the mesh axis ``"data"``.

    Each process reads only the rows of its own devices (``array`` may be a
    ``np.memmap`` or any array-like that numpy indexing reads lazily). The
    size along ``axis`` must be a multiple of the mesh size.
    """
    size = mesh.devices.size
    if array.shape[axis] % size:
        raise ValueError(f"{array.shape[axis]} rows cannot be split evenly over {size} devices")
    spec = PartitionSpec(*([None] * axis), AXIS)
    sharding = NamedSharding(mesh, spec)
    return jax.make_array_from_callback(tuple(array.shape), sharding,
                                        lambda index: np.asarray(array[index]))


def to_local(tree):
    """Replicated arrays spanning several processes as arrays on one local device (others unchanged).

    What ``fit`` returns under ``jax.distributed``, so that the variables can go
    straight to :func:`bal.predict.predict` (local devices). To save them with
    :func:`bal.checkpoint.save` under ``jax.distributed`` (orbax saves
    collectively), call it in every process with ``jax.tree.map(np.asarray, variables)``.
    """
    def leaf(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            if not a.is_fully_replicated:
                raise ValueError(f"an array of shape {a.shape} sharded across processes is not replicated")
            return a.addressable_data(0)
        return a

    return jax.tree.map(leaf, tree)
