"""Fitting any posterior family on a labeled set with optax.

``fit`` runs a Python loop over jitted steps (so early stopping and progress
can look at the host between epochs) while the labeled set stays on the device:
each step gathers its minibatch on the device from a per-epoch permutation, so
there is no host->device copy per batch, and the train state is donated.

Shapes are bucketed so a growing labeled set recompiles rarely: the data is
padded to the next power of two (>= 64 rows) and permutations only ever index
the valid rows. The minibatch size is ``min(batch_size, n)``.

The small-labeled-set protocol (Gal et al. 2017 train on 20 to 1,000 labels):
an epoch is ``ceil(N / B)`` steps and sees every labeled example once; the last
batch of an epoch wraps around to the start of the epoch's permutation, so
every batch has the same shape and nothing recompiles. ``min_steps`` gives
tiny sets a floor on the number of steps, and ``l2`` adds Keras' coupled L2
penalty ``l2 * sum(kernel ** 2)`` (Gal et al.'s code uses ``l2 = 3.5 / N``).

Keys: epoch ``e``'s permutation uses ``fold_in(fold_in(key, 0), e)`` and step
``t``'s noise ``fold_in(fold_in(key, 1), t)``. An ensemble gives member ``m``
the key ``split(key, M)[m]`` and derives the rest the same way, so a vmapped
ensemble trains exactly like its members trained one by one with those keys.
Runs side by side (``runs=True``: the seeds of one strategy) are one more
vmapped axis in front of that, each run with its own key, data and state.

Data parallel (``mesh``, :mod:`bal.parallel`): over a mesh of ``D > 1`` devices
the padded labeled set is split by rows over the mesh axis ``"data"`` (padded
to a multiple of ``D`` rows), each minibatch is constrained to that axis after
the gather, and the train state is replicated, so XLA averages the gradients
across devices (and processes, under ``jax.distributed``). The permutations,
keys and steps are those of one device, so the result equals one device's up
to the order of floating-point sums. One device is exactly the plain path.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from bal import parallel
from bal.predict import predict, predictive
from bal import metrics as bmetrics
from bal.checks import IGNORE_LABEL, check_inputs, input_shape_errors

if TYPE_CHECKING:  # the protocol only types signatures
    from bal.posteriors.protocol import Posterior

__all__ = ["FitResult", "fit", "make_optimizer", "steps_per_epoch", "check_labeled", "check_targets",
           "check_inputs"]


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
      variables: the trained (or, with early stopping, best) variables.
      opt_state: the optimiser state after the last step.
      history: one dict per epoch: ``epoch``, ``step``, ``loss`` (+ aux terms,
        + ``val_*`` metrics when a validation set is given).
      best_epoch: the epoch whose variables were returned (early stopping).
    """

    variables: Any
    opt_state: Any
    history: list[dict]
    best_epoch: int | None = None


@functools.lru_cache(maxsize=64)
def make_optimizer(
    learning_rate: float | Callable = 1e-3, weight_decay: float = 0.0
) -> optax.GradientTransformation:
    """Adam (AdamW when ``weight_decay > 0``); cached so equal settings reuse one
    object and the jitted train step is not recompiled every cycle."""
    if weight_decay:
        return optax.adamw(learning_rate, weight_decay=weight_decay)
    return optax.adam(learning_rate)


def check_labeled(x, y, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a labeled set at the API edge; returns numpy ``(x, y int32)``.

    Classification: ``y [N]`` in ``[0, C)``. Dense prediction (segmentation):
    ``y [N, H, W]`` for inputs ``[N, H, W, C_in]`` (``y.shape == x.shape[:y.ndim]``),
    values in ``[0, C)`` or the ignore label 255 (an unlabeled pixel, left out of
    the loss; see :func:`bal.posteriors.losses.data_nll`).
    """
    x, y = np.asarray(x), np.asarray(y)
    check_inputs(x)
    if x.shape[0] == 0:
        raise ValueError("the labeled set is empty: fit needs at least one labeled example")
    dense = y.ndim >= 2 and y.ndim < x.ndim and y.shape == x.shape[:y.ndim]
    if not dense and (y.ndim != 1 or y.shape[0] != x.shape[0]):
        raise ValueError(f"labels must have shape [N] = [{x.shape[0]}] (classification) or, for dense "
                         f"prediction, the inputs' leading shape {list(x.shape[:-1])} (pixel labels "
                         f"[N, H, W]); got shape {list(y.shape)}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {y.dtype}")
    if dense:
        bad = ((y < 0) | (y >= num_classes)) & (y != IGNORE_LABEL)
        if bad.any():
            raise ValueError(f"pixel labels must lie in [0, {num_classes}) or be the ignore label "
                             f"{IGNORE_LABEL} (unlabeled); got {int(y[bad][0])}")
        return x, y.astype(np.int32)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}); got values in [{y.min()}, {y.max()}]"
        )
    return x, y.astype(np.int32)



def check_targets(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Validate the float targets of a posterior with its own ``data_loss`` (e.g. CenterNet's
    packed heatmap / size / offset / mask maps ``[N, H', W', C + 5]``); returns numpy
    ``(x, y float32)``. One target array per input: ``y [N, ...]``, finite."""
    x, y = np.asarray(x), np.asarray(y)
    check_inputs(x)
    if x.shape[0] == 0:
        raise ValueError("the labeled set is empty: fit needs at least one labeled example")
    if y.ndim < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"targets must have shape [N, ...] with N = {x.shape[0]} (one per input); got shape "
                         f"{list(y.shape)}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"targets of a posterior with its own data_loss must be floating point; got dtype "
                         f"{y.dtype}")
    if not np.isfinite(y).all():
        raise ValueError("targets hold NaN or infinite values")
    return x, y.astype(np.float32)


def _bucket(n: int) -> int:
    return max(64, 1 << (n - 1).bit_length())


def _pad(a: np.ndarray, rows: int) -> np.ndarray:
    return np.concatenate([a, np.zeros((rows - a.shape[0],) + a.shape[1:], a.dtype)])


@functools.partial(jax.jit, static_argnames=("n_pad",))
def _permutation(key, n_valid, n_pad: int):
    """A uniform permutation of ``range(n_valid)`` in the first ``n_valid`` slots."""
    u = jax.random.uniform(key, (n_pad,))
    return jnp.argsort(jnp.where(jnp.arange(n_pad) < n_valid, u, 2.0))


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """``ceil(N / min(B, N))``: an epoch sees every one of the ``N`` examples."""
    bsz = min(batch_size, num_examples)
    return -(-num_examples // bsz)


def _l2_grad(params, l2):
    """Gradient of Keras' ``l2 * sum(w ** 2)`` over the ``kernel`` leaves (not biases,
    not variational means / variances, whose prior already regularises them)."""
    def leaf(path, w):
        name = getattr(path[-1], "key", None)
        return 2.0 * l2 * w if name == "kernel" else jnp.zeros_like(w)

    return jax.tree_util.tree_map_with_path(leaf, params)


def _step(state, x, y, perm, offset, n_valid, l2, step_key, num_train, *, posterior, optimizer,
          batch_size, mesh=None):
    variables, opt_state, step = state
    # the last batch of an epoch wraps to the permutation's start: fixed shapes
    pos = (offset + jnp.arange(batch_size)) % n_valid
    idx = jnp.take(perm, pos, axis=-1)  # [B] or [M, B]
    xb, yb = x[idx], y[idx]
    if mesh is not None:  # data parallel: each device computes the loss of its slice of the batch
        batch = NamedSharding(mesh, PartitionSpec(*([None] * (idx.ndim - 1)), parallel.AXIS))
        xb = jax.lax.with_sharding_constraint(xb, batch)
        yb = jax.lax.with_sharding_constraint(yb, batch)
    if posterior.num_members is None:
        key = jax.random.fold_in(step_key, step)
    else:
        key = jax.vmap(jax.random.fold_in, in_axes=(0, None))(step_key, step)

    def loss_fn(params):
        v = {**variables, "params": params}
        return posterior.loss(v, xb, yb, key, num_train=num_train, step=step)

    (loss, (stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
    grads = jax.tree.map(jnp.add, grads, _l2_grad(variables["params"], l2))
    updates, opt_state = optimizer.update(grads, opt_state, variables["params"])
    new = {"params": optax.apply_updates(variables["params"], updates)}
    if stats is not None:
        new["batch_stats"] = stats
    state = (new, opt_state, step + 1)
    if mesh is not None:  # the state stays replicated (the gradients were all-reduced)
        state = jax.lax.with_sharding_constraint(state, NamedSharding(mesh, PartitionSpec()))
    return state, {"loss": loss, **aux}


_STATIC = ("posterior", "optimizer", "batch_size", "mesh")
_train_step = jax.jit(_step, static_argnames=_STATIC, donate_argnums=(0,))


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnums=(0,))
def _train_step_runs(state, x, y, perm, offset, n_valid, l2, step_key, num_train, *, posterior,
                     optimizer, batch_size, mesh=None):
    """:func:`_step` of ``R`` independent runs at once: state, data, permutations and keys carry a
    leading run axis ``[R, ...]``; the step count, offset and scalars are shared."""
    one = functools.partial(_step, posterior=posterior, optimizer=optimizer, batch_size=batch_size, mesh=mesh)
    return jax.vmap(one, in_axes=(0, 0, 0, 0, None, None, None, 0, None))(
        state, x, y, perm, offset, n_valid, l2, step_key, num_train)


def fit(
    posterior: Posterior,
    variables,
    x,
    y,
    key: jax.Array,
    *,
    num_epochs: int | None = None,
    num_steps: int | None = None,
    batch_size: int = 64,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float | Callable = 1e-3,
    weight_decay: float = 0.0,
    l2: float = 0.0,
    min_steps: int = 0,
    num_train: int | None = None,
    opt_state=None,
    validation: tuple | None = None,
    patience: int | None = None,
    monitor: str = "nll",
    eval_num_samples: int | None = None,
    callback: Callable[[dict], None] | None = None,
    runs: bool = False,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    """Train ``posterior`` on the labeled set ``(x, y)``.

    Args:
      posterior: any ``bal.posteriors`` family.
      variables: initial variables (``posterior.init(...)``) or a warm start.
      x: ``[N, ...]`` inputs; y: ``[N]`` integer labels in ``[0, C)``, or for a dense
        model (U-Net) pixel labels ``[N, H, W]`` in ``[0, C)`` or 255 = unlabeled
        (partially labeled images: only labeled pixels enter the loss), or, for a
        posterior with its own ``data_loss`` (detection), float targets ``[N, ...]``
        (:func:`check_targets`; e.g. CenterNet's packed maps).
      key: PRNG key; the result is a deterministic function of it.
      num_epochs / num_steps: the budget, exactly one of them (an epoch is
        ``ceil(N / B)`` steps: every example once, the last batch wrapping).
      batch_size: ``B``, capped at ``N``.
      optimizer: an optax transformation; default Adam(W) from ``learning_rate``
        (a float or an optax schedule) and ``weight_decay`` (decoupled, AdamW).
      l2: coupled L2 penalty ``l2 * sum(kernel ** 2)`` added to the loss, as
        Keras' ``l2(c)`` regulariser (Gal et al. 2017: ``c = 3.5 / N``).
      min_steps: with ``num_epochs``, train at least this many steps (whole
        epochs), so that a tiny labeled set is not under-trained.
      num_train: the ``N`` that scales KL terms (default ``len(x)``).
      opt_state: resume from this optimiser state (else a fresh one).
      validation: optional ``(x_val, y_val)``; evaluated after every epoch.
      patience: with ``validation``, stop after this many epochs without
        improvement of ``monitor`` and return the best variables.
      monitor: "nll" (lower is better) or "accuracy".
      eval_num_samples: posterior samples for validation (default: family's).
      callback: called with each epoch's history record (e.g. progress bars).
      runs: train ``R`` independent runs side by side as one vmapped program (the
        seeds of one active-learning strategy, whose labeled sets have equal
        sizes): ``variables``, ``x``, ``y`` and ``key`` carry a leading run axis
        (``x [R, N, ...]``, ``y [R, N]``, ``key [R]``), and so do the returned
        variables, optimiser state and each history value. Run ``r`` gets
        exactly the keys, permutations and steps of ``fit`` on run ``r`` alone.
        No early stopping (runs would stop at different epochs).
      mesh: data parallelism (:mod:`bal.parallel`): a 1-D mesh named ``"data"``
        (:func:`bal.parallel.data_mesh`) to split every minibatch over; the
        labeled set is split by rows, the state replicated. Default
        (:func:`bal.parallel.default_mesh`): every device when there are
        several processes (``jax.distributed``) or several accelerators, else
        one device (the plain path). A mesh of one device trains there. Under
        ``jax.distributed`` every process must call ``fit`` with the same
        arguments (a collective); each gets the result as local arrays.
        Results equal one device's up to the order of floating-point sums.
    """
    if (num_epochs is None) == (num_steps is None):
        raise ValueError("give exactly one of num_epochs and num_steps")
    budget = num_epochs if num_epochs is not None else num_steps
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"num_epochs / num_steps must be an integer >= 1; got {budget!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if isinstance(min_steps, bool) or not isinstance(min_steps, int) or min_steps < 0:
        raise ValueError(f"min_steps must be an integer >= 0; got {min_steps!r}")
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not (0 <= l2 < float("inf")):
        raise ValueError(f"l2 must be a finite number >= 0; got {l2!r}")
    if monitor not in ("nll", "accuracy"):
        raise ValueError(f"monitor must be 'nll' or 'accuracy'; got {monitor!r}")
    if patience is not None and validation is None:
        raise ValueError("patience (early stopping) needs a validation set")
    mesh = parallel.default_mesh() if mesh is None else parallel.check_mesh(mesh)
    if runs:
        if validation is not None:
            raise ValueError("runs side by side cannot early-stop (they would stop at different epochs); "
                             "train them one by one with validation")
        if opt_state is not None:
            raise ValueError("runs side by side start from a fresh optimiser state (opt_state=None)")
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim < 2 or y.ndim < 1 or x.shape[0] != y.shape[0]:
            raise ValueError(f"runs side by side need x [R, N, ...] and y [R, N, ...] with one leading run axis; "
                             f"got shapes {list(x.shape)} and {list(y.shape)}")
        check = check_labeled if getattr(posterior, "uses_labels", True) else check_targets
        checked = [check(xr, yr, posterior.num_classes) if check is check_labeled else check(xr, yr)
                   for xr, yr in zip(x, y)]
        x, y = np.stack([c[0] for c in checked]), np.stack([c[1] for c in checked])
    elif not getattr(posterior, "uses_labels", True):  # a task's own loss on float targets (detection)
        if validation is not None:
            raise ValueError("validation (early stopping) needs classification labels; this posterior trains "
                             "on the float targets of its data_loss")
        x, y = check_targets(x, y)
    else:
        x, y = check_labeled(x, y, posterior.num_classes)
    if validation is not None and y.ndim > 1:
        raise ValueError("validation (early stopping) supports classification labels [N] only; evaluate "
                         "a segmentation model with bal.segmentation.evaluate instead")
    n = x.shape[1] if runs else x.shape[0]
    num_train = n if num_train is None else num_train
    bsz = min(batch_size, n)
    epoch_steps = steps_per_epoch(n, bsz)
    if num_steps is not None:
        total_steps = num_steps
    else:  # whole epochs, at least min_steps
        total_steps = max(num_epochs, -(-min_steps // epoch_steps)) * epoch_steps
    optimizer = optimizer if optimizer is not None else make_optimizer(learning_rate, weight_decay)

    n_perm = _bucket(n)  # permutations index the valid rows of a bucket: the same on any mesh
    devices = 1 if mesh is None else mesh.devices.size
    n_pad = -(-n_perm // devices) * devices  # rows split evenly over the devices
    pad = (lambda a: np.stack([_pad(r, n_pad) for r in a])) if runs else (lambda a: _pad(a, n_pad))
    if devices > 1:
        x_dev, y_dev = (parallel.shard_rows(pad(a), mesh, axis=int(runs)) for a in (x, y))
    else:
        x_dev, y_dev = jnp.asarray(pad(x)), jnp.asarray(pad(y))
    if mesh is not None and devices == 1:  # a mesh of one device: the plain path, on that device
        device = mesh.devices.flat[0]
        x_dev, y_dev, key = jax.device_put((x_dev, y_dev, key), device)
        variables = jax.device_put(variables, device)
    ensemble = posterior.num_members is not None
    member_keys = posterior.member_keys if ensemble else (lambda k: k)
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None)) if ensemble else jax.random.fold_in
    permute = jax.vmap(_permutation, in_axes=(0, None, None)) if ensemble else _permutation
    if runs:  # one more leading axis: every key function maps over the runs
        member_keys, fold = jax.vmap(member_keys), jax.vmap(fold, in_axes=(0, None))
        permute = jax.vmap(permute, in_axes=(0, None, None))
    root = member_keys(key)
    perm_root, step_root = fold(root, 0), fold(root, 1)

    variables = jax.tree.map(jnp.array, variables)  # a private copy: the step donates it
    if opt_state is None:
        init_opt = jax.vmap(optimizer.init) if runs else optimizer.init
        opt_state = init_opt(variables["params"])
    # the step counter; runs side by side keep one per run (the vmapped step maps it)
    state = (variables, opt_state, jnp.zeros((x.shape[0],) if runs else (), jnp.int32))
    if devices > 1:  # replicated on every device (of every process)
        state, perm_root, step_root = parallel.replicate((state, perm_root, step_root), mesh)
    step_fn = functools.partial(
        _train_step_runs if runs else _train_step, posterior=posterior, optimizer=optimizer, batch_size=bsz,
        mesh=mesh if devices > 1 else None,
    )
    history, best, best_epoch, bad_epochs = [], None, None, 0
    done, epoch = 0, 0
    while done < total_steps:
        perm = permute(fold(perm_root, epoch), n, n_perm)
        sums = None
        steps = min(epoch_steps, total_steps - done)
        for s in range(steps):
            with input_shape_errors(x.shape):
                state, aux = step_fn(state, x_dev, y_dev, perm, s * bsz, n, float(l2), step_root,
                                     float(num_train))
            sums = aux if sums is None else jax.tree.map(jnp.add, sums, aux)
        done += steps
        sums = parallel.to_local(sums)
        record = {"epoch": epoch, "step": done}
        if runs:  # one value per run
            record.update({k: [float(r) / steps for r in np.asarray(v)] for k, v in sums.items()})
        else:
            record.update({k: float(v) / steps for k, v in sums.items()})
        if validation is not None:
            val = _evaluate(posterior, parallel.to_local(state[0]), validation, key, eval_num_samples)
            record.update({f"val_{k}": v for k, v in val.items()})
            score = val[monitor] if monitor == "nll" else -val[monitor]
            if best is None or score < best[0]:
                best = (score, jax.tree.map(jnp.copy, state[0]))
                best_epoch, bad_epochs = epoch, 0
            else:
                bad_epochs += 1
        history.append(record)
        if callback is not None:
            callback(record)
        epoch += 1
        if patience is not None and bad_epochs > patience:
            break
    variables = best[1] if (best is not None and patience is not None) else state[0]
    return FitResult(parallel.to_local(variables), parallel.to_local(state[1]), history,
                     best_epoch if patience is not None else None)


def _evaluate(posterior, variables, validation, key, num_samples):
    x_val, y_val = validation
    x_val, y_val = check_labeled(x_val, y_val, posterior.num_classes)
    log_probs = predict(
        posterior, variables, x_val, jax.random.fold_in(key, 2), num_samples=num_samples,
        reduce=predictive,
    )
    return bmetrics.evaluate(log_probs, y_val)
