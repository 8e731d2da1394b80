"""Scoring one pool with many processes on ``jax.distributed``: local top-k, one all-gather, exact global top-k.

Every process scores its own contiguous range of the pool — a contiguous run
of whole chunks of the global chunk grid (:func:`process_range`) — with the
chunked, sharded prediction over *its local devices*, keeping a local top-k
(:func:`bal.pools.score.score_pool`). One
``jax.experimental.multihost_utils.process_allgather`` of the ``k`` local
candidates of every process (values, global indices, payloads) then gives
each process the same ``P * k`` rows, merged by ``(value desc, global index
asc)`` into the exact global top-k. Because the ranges follow the chunk grid,
each chunk is the same computation as in a single-process run, so the result
is identical to one process's (given the same chunk size and number of
devices per process). Each process can resume on its own: its state file is
``<state_path>.<index>-of-<count>``.

Launching
---------

Under Slurm, one task per node (or per GPU), ``jax.distributed.initialize()``
finds the coordinator, the process count and each process id from Slurm's
environment, so the same command runs everywhere::

    srun --nodes=4 --ntasks-per-node=1 --gpus-per-task=8 \\
        python -m bal.pools score /data/pool --checkpoint ckpt/ --model gal_cnn \\
            --posterior mc_dropout --num-classes 10 -k 10000 --out topk.json --distributed

(``--distributed`` calls ``jax.distributed.initialize()``; process 0 writes
``topk.json``). Elsewhere pass the coordinator explicitly, e.g. on two hosts
``--coordinator host0:1234 --num-processes 2 --process-id {0,1}``.

On one multi-GPU machine, either run one process that drives all local GPUs
(no ``--distributed``: each chunk is split over the local devices along the
pool axis), or one process per GPU::

    for i in 0 1 2 3; do
      CUDA_VISIBLE_DEVICES=$i python -m bal.pools score /data/pool ... --distributed \\
          --coordinator 127.0.0.1:1234 --num-processes 4 --process-id $i &
    done; wait

One process per device overlaps the host work (reading, decoding images,
merging) across processes; one process for all devices is simpler. On a CPU,
``JAX_PLATFORMS=cpu`` and, per process, ``XLA_FLAGS=--xla_force_host_platform_device_count=D``
for ``D`` local devices; the all-gather then runs over Gloo.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bal.predict import pool_mesh
from bal.pools.score import ScoreResult, resolve_chunk, score_pool
from bal.pools.topk import RunningTopK

__all__ = ["initialize", "process_range", "gather_top_k", "score_distributed", "score"]

_EMPTY32 = np.iinfo(np.int32).max


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids=None) -> None:
    """``jax.distributed.initialize`` (arguments ``None``: detected, e.g. from Slurm); once per process."""
    if jax.distributed.is_initialized():
        return
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids)


def process_range(pool_size: int, chunk: int, process_count: int, process_index: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of process ``process_index``: a contiguous run of whole chunks, balanced to one chunk."""
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index must be in [0, {process_count}); got {process_index}")
    num_chunks = -(-pool_size // chunk)
    a = process_index * num_chunks // process_count
    b = (process_index + 1) * num_chunks // process_count
    return min(a * chunk, pool_size), min(b * chunk, pool_size)


def gather_top_k(local: ScoreResult, k: int) -> ScoreResult:
    """The global top-k from every process's local top-k: one ``process_allgather``, then an exact merge.

    Every process must call it (it is a collective); all get the same result.
    """
    from jax.experimental import multihost_utils

    m = local.indices.size
    if m and local.indices.max() >= _EMPTY32:
        raise ValueError(f"global indices up to {_EMPTY32 - 1} can be gathered; got {local.indices.max()}")
    pad = k - m
    values = np.concatenate([local.scores.astype(np.float32), np.full(pad, -np.inf, np.float32)])
    indices = np.concatenate([local.indices.astype(np.int32), np.full(pad, _EMPTY32, np.int32)])
    payload = {name: np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)])
               for name, a in local.payload.items()}
    tree = {"values": values, "indices": indices, "payload": payload,
            "count": np.asarray([local.num_scored], np.int32), "seconds": np.asarray([local.seconds], np.float32)}
    gathered = multihost_utils.process_allgather(tree, tiled=False)
    top = RunningTopK(k)
    for p in range(gathered["values"].shape[0]):
        idx = np.asarray(gathered["indices"][p], np.int64)
        real = idx != _EMPTY32
        top.update(np.asarray(gathered["values"][p])[real], idx[real],
                   {name: np.asarray(a[p])[real] for name, a in gathered["payload"].items()})
    r = top.result()
    return ScoreResult(r.indices, r.values, r.payload, int(np.sum(gathered["count"])),
                       float(np.max(gathered["seconds"])), local.resumed_from)


def score_distributed(posterior, variables, source, key, k: int, *, chunk_size: int | None = None, mesh=None,
                      state_path=None, **options) -> ScoreResult:
    """:func:`~bal.pools.score.score_pool` of the whole ``source`` split over ``jax.process_count()`` processes.

    Every process calls it with the same arguments (same pool, variables,
    key, ``k``); each scores :func:`process_range` on its local devices; all
    return the same exact global top-k. ``options`` are :func:`score_pool`'s
    (``strategy``, ``params``, ``payload``, ``num_samples``, ``save_every`` ...).
    """
    count, index = jax.process_count(), jax.process_index()
    mesh = pool_mesh(jax.local_devices()) if mesh is None else mesh
    chunk = resolve_chunk(len(source), chunk_size, mesh.devices.size)
    if -(-len(source) // chunk) < count:
        raise ValueError(f"the pool of {len(source)} items has {-(-len(source) // chunk)} chunks of {chunk} for "
                         f"{count} processes; pass a smaller chunk_size (every process needs a chunk)")
    start, stop = process_range(len(source), chunk, count, index)
    if state_path is not None and count > 1:
        state_path = f"{state_path}.{index}-of-{count}"
    local = score_pool(posterior, variables, source, key, k, chunk_size=chunk, mesh=mesh, start=start, stop=stop,
                       state_path=state_path, **options)
    if count == 1:
        return local
    merged = gather_top_k(local, k)
    return dataclasses.replace(merged, resumed_from=local.resumed_from)


def score(posterior, variables, source, key, k: int, **options) -> ScoreResult:
    """:func:`score_distributed` when ``jax.process_count() > 1``, else :func:`~bal.pools.score.score_pool`."""
    if jax.process_count() > 1:
        return score_distributed(posterior, variables, source, key, k, **options)
    return score_pool(posterior, variables, source, key, k, **options)
