"""Helpers shared by the acquisition tests (a uniquely named module: ``conftest`` names collide across folders)."""

import jax.numpy as jnp
import numpy as np
from scipy.special import log_softmax


def random_log_probs(s, n, c, seed=0, scale=2.0, disagreement=1.0):
    """``[S, N, C]`` log-probabilities: a per-item logit plus per-sample noise (float32).

    Built in numpy (no XLA compilation per shape: compile time dominates this suite).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(1, n, c)) * scale
    noise = rng.normal(size=(s, n, c)) * disagreement * rng.uniform(0.1, 1.5, size=(1, n, 1))
    return jnp.asarray(log_softmax(base + noise, axis=-1), jnp.float32)
