"""Helpers for the model tests (a plain module, not a conftest, so that its name cannot clash)."""

import math

import jax
import jax.numpy as jnp
import numpy as np


def random_variables(model, x, seed=0, logvar=-4.0):
    """Variables of ``model`` for input ``x``, drawn with numpy from the traced shapes.

    Means are fan-in scaled normals, log-variances ``logvar`` (larger than the
    default -9 so that posterior samples differ visibly), normalisation scales
    one, running variances one. Skipping ``model.init`` keeps the tests fast:
    compiling PRNG-heavy initialisers dominates their run time on the CPU.
    """
    shapes = jax.eval_shape(lambda k: model.init(k, x), jax.random.key(0))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name.endswith("logvar"):
            value = np.full(leaf.shape, logvar)
        elif name in ("kernel", "kernel_mean"):
            value = rng.normal(size=leaf.shape) / math.sqrt(np.prod(leaf.shape[:-1]))
        elif name in ("scale", "var"):
            value = np.ones(leaf.shape)
        else:  # biases, running means
            value = 0.1 * rng.normal(size=leaf.shape)
        return jnp.asarray(value, leaf.dtype)

    variables = {k: v for k, v in shapes.items() if k in ("params", "batch_stats")}
    return jax.tree_util.tree_map_with_path(draw, variables)


def fast_key(seed: int) -> jax.Array:
    """A PRNG key that compiles fast, for calls *not* mapped over keys.

    The models treat keys opaquely, so the key implementation is free. On
    XLA:CPU every threefry call site takes a noticeable fraction of a second to
    compile, and a variational network has two or more per layer; "rbg" keys
    compile about 5x faster. But rbg keys are not vmap-invariant (a vmap over
    rbg keys does not reproduce the per-key draws, nor equal draws for equal
    keys), so posterior sampling by vmap uses the default threefry keys.
    """
    return jax.random.key(seed, impl="rbg")
