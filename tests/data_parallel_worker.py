"""One process of the data-parallel training tests (tests/test_data_parallel.py).

    python -m tests.data_parallel_worker OUT.npz                       # one process, 8 simulated devices
    python -m tests.data_parallel_worker OUT.npz PORT COUNT PROCESS_ID # one of COUNT processes, 2 devices each

The first trains every case of :func:`cases` on a mesh of all 8 devices; the
second joins ``jax.distributed`` over 127.0.0.1 and trains the cases in
:data:`DISTRIBUTED` with ``fit``'s default mesh (every device of every process). Both write the trained
variables and the loss history per case (see :func:`flatten`), plus facts
about the sharding, to OUT.npz.
"""

from __future__ import annotations

import sys

import numpy as np


#: the cases trained across processes (the others differ only in shapes, covered by the 8 devices)
DISTRIBUTED = ("mc_dropout", "early_stopping")


def cases():
    """``{name: (posterior, variables, x, y, key, fit keyword arguments)}``: tiny, fixed problems."""
    import jax

    from bal import posteriors

    rng = np.random.default_rng(0)
    x = rng.random((100, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 100).astype(np.int32)
    hidden = {"hidden_sizes": (16,)}
    mlp = posteriors.build("mc_dropout", "mlp", 10, num_samples=4, model_kwargs=hidden)
    ens = posteriors.build("ensemble", "mlp", 10, num_members=2, model_kwargs=hidden)
    v_mlp = mlp.init(jax.random.key(1), x[:1])
    v_ens = ens.init(jax.random.key(1), x[:1])
    v_runs = jax.tree.map(lambda *a: jax.numpy.stack(a), v_mlp, mlp.init(jax.random.key(2), x[:1]))
    common = dict(num_epochs=3, batch_size=20, l2=0.01)  # 20 rows do not split evenly over 8 devices
    return {
        "mc_dropout": (mlp, v_mlp, x, y, jax.random.key(3), common),
        "ensemble": (ens, v_ens, x, y, jax.random.key(4), common),
        "runs": (mlp, v_runs, x.reshape(2, 50, 8, 8, 1), y.reshape(2, 50), jax.random.split(jax.random.key(5), 2),
                 dict(common, runs=True)),
        "early_stopping": (mlp, v_mlp, x[:70], y[:70], jax.random.key(6),
                           dict(common, num_epochs=4, validation=(x[70:], y[70:]), patience=1)),
    }


def flatten(result) -> dict:
    """A fit result as flat numpy arrays: every variable leaf and the loss history."""
    import jax

    out = {jax.tree_util.keystr(path): np.asarray(leaf)
           for path, leaf in jax.tree_util.tree_flatten_with_path(result.variables)[0]}
    out["loss"] = np.asarray([r["loss"] for r in result.history], np.float64)
    return out


def _step_flops(mesh) -> float:
    """Per-device FLOPs of one compiled train step of the MC-dropout case (batch 64) on ``mesh`` (or one device)."""
    import jax.numpy as jnp

    from bal import parallel, train

    post, variables, x, y, key, _ = cases()["mc_dropout"]
    opt = train.make_optimizer(1e-3)
    state = (variables, opt.init(variables["params"]), jnp.zeros((), jnp.int32))
    x, y, perm = train._pad(x, 128), train._pad(y, 128), jnp.arange(128)
    if mesh is not None:
        state, perm, key = parallel.replicate((state, perm, key), mesh)
        x, y = parallel.shard_rows(x, mesh), parallel.shard_rows(y, mesh)
    compiled = train._train_step.lower(state, x, y, perm, 0, 100, 0.0, key, 100.0, posterior=post, optimizer=opt,
                                       batch_size=64, mesh=mesh).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis["flops"])


def main(argv):
    import os

    out = argv[0]
    distributed = len(argv) > 1
    devices = 2 if distributed else 8
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax

    if distributed:
        port, count, pid = argv[1], int(argv[2]), int(argv[3])
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=count, process_id=pid)
    from bal import parallel
    from bal.train import fit

    mesh = None if distributed else parallel.data_mesh()
    arrays = {}
    for name, (post, variables, x, y, key, kwargs) in cases().items():
        if distributed and name not in DISTRIBUTED:
            continue
        result = fit(post, variables, x, y, key, mesh=mesh, **kwargs)
        leaves = jax.tree.leaves(result.variables)
        arrays.update({f"{name}/{k}": v for k, v in flatten(result).items()})
        arrays[f"{name}/local"] = np.asarray(all(a.is_fully_addressable for a in leaves))
        arrays[f"{name}/best_epoch"] = np.asarray(-1 if result.best_epoch is None else result.best_epoch)
    used = parallel.default_mesh() if distributed else mesh
    arrays["mesh_devices"] = np.asarray(used.devices.size)
    rows = parallel.shard_rows(np.arange(64 * used.devices.size)[:, None], used)
    arrays["local_rows"] = np.sort(np.concatenate([np.asarray(s.data).ravel() for s in rows.addressable_shards]))
    if not distributed:
        arrays["flops_ratio"] = np.asarray(_step_flops(mesh) / _step_flops(None))
    np.savez(out, **arrays)
    if distributed:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
