"""Helpers for the bal.nn tests (a plain module, not a conftest, so that its name cannot clash)."""

import jax


def fast_key(seed: int) -> jax.Array:
    """A PRNG key that compiles fast, for calls *not* mapped over keys.

    The layers treat keys opaquely, so the implementation is free. On XLA:CPU
    each threefry call site takes a noticeable fraction of a second to compile
    and compilation dominates these tests; "rbg" keys compile several times
    faster. They are not vmap-invariant, so every test that maps over keys (and
    the statistical ones) uses the default threefry keys.
    """
    return jax.random.key(seed, impl="rbg")
