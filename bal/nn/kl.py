"""Collecting the KL term of every Bayesian layer in a model.

The negative ELBO per training example is

    loss = nll + kl_weight * KL(q || p) / num_train_examples

(Blundell et al. 2015, with the minibatch weighting of Graves 2011). Three ways
to get ``KL(q || p)``:

* Linen, from a forward pass: every :mod:`bal.nn.linen` layer sows its KL into
  the ``"kl"`` collection when it is mutable::

      logits, updates = model.apply(variables, x, rngs={"noise": key}, mutable=["kl"])
      kl = collect_kl(updates)           # or collect_kl(updates["kl"])

* Linen, straight from ``params`` without a forward pass:
  :func:`kl_from_params` (one prior for every layer).
* NNX: :func:`nnx_kl` walks an ``nnx.Module`` and sums each Bayesian layer's
  :meth:`~bal.nn.nnx.BayesianLayer.kl` (each with its own prior).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from bal.nn.linen import KL_COLLECTION
from bal.nn.nnx import BayesianLayer
from bal.nn.params import bayesian_scopes, unwrap
from bal.nn.priors import GaussianPrior, check_prior


def collect_kl(tree) -> jax.Array:
    """Sum of every KL a Bayesian layer sowed: a scalar (0 for an empty tree).

    Accepts the ``"kl"`` collection itself, or the whole ``mutable`` updates
    dict returned by ``apply`` (other collections such as ``batch_stats`` are
    ignored): a leaf counts when a key on its path is ``"kl"``.
    """
    total = jnp.zeros(())
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if any(getattr(k, "key", None) == KL_COLLECTION for k in path):
            total = total + jnp.sum(leaf)
    return total


def kl_from_params(params, prior=GaussianPrior(), *, key: jax.Array | None = None) -> jax.Array:
    """Total KL of every Bayesian layer found in ``params`` (or ``{"params": ...}``) from ``prior``.

    No forward pass: it finds each ``kernel_mean``/``kernel_logvar`` pair (and
    ``bias_mean``/``bias_logvar``). Uses one ``prior`` for all layers -- the
    analytic KL for ``GaussianPrior``; Monte Carlo priors need ``key``. Equals
    :func:`collect_kl` of a forward pass when the layers use that prior.
    """
    check_prior(prior)
    if prior.needs_key and key is None:
        raise ValueError(f"kl_from_params with {type(prior).__name__} (Monte Carlo KL) needs key=...")
    total = jnp.zeros(())
    for i, (_, scope) in enumerate(bayesian_scopes(unwrap(params))):
        k = None if key is None else jax.random.fold_in(key, i)
        k1, k2 = (None, None) if k is None else jax.random.split(k)
        total = total + prior.kl(scope["kernel_mean"], scope["kernel_logvar"], key=k1)
        if "bias_mean" in scope and "bias_logvar" in scope:
            total = total + prior.kl(scope["bias_mean"], scope["bias_logvar"], key=k2)
    return total


def nnx_kl(module: nnx.Module, *, key: jax.Array | None = None) -> jax.Array:
    """Total KL of every :class:`bal.nn.nnx.BayesianLayer` inside ``module`` (a scalar).

    Works for any user model; each layer uses its own prior. ``key`` is needed
    only when some layer's prior has a Monte Carlo KL (folded per layer).
    """
    if not isinstance(module, nnx.Module):
        raise ValueError(f"nnx_kl expects an nnx.Module; got {type(module).__name__}")
    total = jnp.zeros(())
    for i, (_, layer) in enumerate(nnx.iter_modules(module)):
        if isinstance(layer, BayesianLayer):
            total = total + layer.kl(None if key is None else jax.random.fold_in(key, i))
    return total
