"""The Deep Probabilistic Ensembles penalty (Chitta, Alvarez & Lesnikowski 2018,
"Large-Scale Visual Active Learning with Deep Probabilistic Ensembles",
arXiv:1811.03575).

For every weight ``i``, a Gaussian is fitted to its values across the ``E``
ensemble members (mean ``μ_i``, variance ``σ_i²`` over the member axis) and
compared with the prior ``N(μ_p, σ_p²)``::

    Ω = Σ_i [ log σ_i² + (σ_p² + (μ_i - μ_p)²) / σ_i² ]

This is ``2 KL(N(μ_p, σ_p²) || N(μ_i, σ_i²))`` without the constants
``-log σ_p² - 1`` (the paper's equation, which places the prior variance over
the ensemble's). The training objective is ``Σ_n Σ_e CE + β Ω``; ``bal``
minimises it divided by the number of training examples (mean cross-entropy
per member and minibatch, plus ``β Ω / N``), which has the same minimiser.

Priors, as in the paper:

- convolution kernels ``[h, w, n_i, n_o]``: ``N(0, 2 / (n_o w h))`` (He);
- dense kernels ``[n_i, n_o]``: the same with ``w = h = 1``;
- normalisation scales: ``N(1, 0.01)``; normalisation shifts: ``N(0, 0.01)``
  (0.01 is the variance).

Choices the paper leaves open, made here and documented: the variance over
members is the maximum-likelihood one (divides by ``E``); biases of dense and
convolution layers carry no penalty (the paper regularises weights and
batch-norm parameters only); other parameters carry no penalty either.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["dpe_prior", "dpe_penalty"]

NORM_PRIOR_VARIANCE = 0.01


def _is_norm(path_names: list[str]) -> bool:
    module = path_names[-2].lower() if len(path_names) > 1 else ""
    return "norm" in module or module.startswith("bn")


def dpe_prior(path_names: list[str], member_shape: tuple[int, ...]):
    """The prior ``(μ_p, σ_p²)`` of one parameter, or ``None`` for no penalty.

    Args:
      path_names: the parameter's path in the params tree, e.g.
        ``["Conv_0", "kernel"]`` or ``["BatchNorm_0", "scale"]``.
      member_shape: the shape of one member's parameter (no ensemble axis).
    """
    leaf = path_names[-1]
    if _is_norm(path_names) and leaf == "scale":
        return 1.0, NORM_PRIOR_VARIANCE
    if _is_norm(path_names) and leaf == "bias":
        return 0.0, NORM_PRIOR_VARIANCE
    if leaf == "kernel" and len(member_shape) >= 2:
        receptive = 1
        for size in member_shape[:-2]:  # the spatial dims of a conv kernel
            receptive *= size
        return 0.0, 2.0 / (member_shape[-1] * receptive)
    return None


def _names(path) -> list[str]:
    return [str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))) for p in path]


def dpe_penalty(stacked_params) -> jax.Array:
    """``Ω`` of a stacked ensemble's parameters (leaves ``[E, ...]``).

    Returns a scalar. ``E`` must be at least 2 (a variance over one member is 0).
    """
    total = jnp.zeros((), jnp.float32)
    found = False
    for path, leaf in jax.tree_util.tree_flatten_with_path(stacked_params)[0]:
        prior = dpe_prior(_names(path), tuple(leaf.shape[1:]))
        if prior is None:
            continue
        if leaf.shape[0] < 2:
            raise ValueError(
                f"the DPE penalty needs at least 2 ensemble members; got {leaf.shape[0]}"
            )
        found = True
        prior_mean, prior_var = prior
        mean = jnp.mean(leaf, axis=0)
        var = jnp.var(leaf, axis=0)
        total = total + jnp.sum(jnp.log(var) + (prior_var + (mean - prior_mean) ** 2) / var)
    if not found:
        raise ValueError(
            "no parameter of the model has a DPE prior (expected 'kernel' leaves of dense/conv "
            "layers or 'scale'/'bias' of normalisation layers)"
        )
    return total
