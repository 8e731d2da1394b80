"""The training losses of the posterior families, as pure functions of arrays.

Every family's loss is a data term plus the family's prior term:

- data term (:func:`data_term`): the label NLL :func:`data_nll` (classification
  ``[B, C]``; dense ``[B, H, W, C]`` averaged over labeled pixels, the ignore
  label :data:`bal.checks.IGNORE_LABEL` left out), or a task's own
  ``data_loss`` on float targets (:func:`split_data_loss`);
- deterministic, MC dropout: the data term alone (MC dropout's Gaussian prior is
  the optimiser's weight decay, Gal & Ghahramani 2016);
- variational: the negative ELBO per example, :func:`elbo` (Blundell et al. 2015);
- deep ensemble: the sum of member losses, :func:`ensemble_loss`;
- regularized ensemble: that sum plus ``β Ω / N_train``,
  :func:`regularized_ensemble_loss` (Chitta et al. 2018; ``Ω`` in
  :mod:`bal.posteriors.regularized`).

The families run the model (forward passes, weight draws, member mapping) and
hand the resulting arrays to these functions.
"""

from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp

from bal.checks import IGNORE_LABEL
from bal.posteriors.regularized import dpe_penalty

__all__ = [
    "KLWeight",
    "cross_entropy",
    "data_nll",
    "data_term",
    "elbo",
    "ensemble_loss",
    "kl_weight_at",
    "regularized_ensemble_loss",
    "split_data_loss",
]

#: a constant KL weight or an optax-style schedule ``step -> weight``.
KLWeight = Union[float, Callable[[jax.Array], jax.Array]]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean categorical cross-entropy. ``logits: [B, C]``, ``labels: [B]`` -> ``[]``."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def data_nll(logits: jax.Array, labels: jax.Array, class_weights=None) -> jax.Array:
    """The label NLL of every family's loss, for classification or dense prediction: ``[]``.

    - ``logits [B, C]``, ``labels [B]``: :func:`cross_entropy`.
    - ``logits [B, H, W, C]`` (any ``[B, ..., C]``), ``labels [B, H, W]``: the mean
      cross-entropy over *labeled* pixels (:func:`bal.segmentation.masked_cross_entropy`):
      pixels holding :data:`~bal.checks.IGNORE_LABEL` (unlabeled crops, void) add
      nothing to the value and get exactly zero gradient; a batch without a labeled
      pixel has loss 0.

    ``class_weights`` (``[C]``, optional): the weighted mean ``Σ w_y CE / Σ w_y``
    (e.g. to up-weight rare classes), for either shape.
    """
    if logits.ndim == 2 and class_weights is None:
        return cross_entropy(logits, labels)
    from bal.segmentation.loss import masked_cross_entropy  # arrays only; imported on use

    weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)
    return masked_cross_entropy(logits, labels, ignore_label=IGNORE_LABEL, class_weights=weights)


def split_data_loss(value) -> tuple[jax.Array, dict]:
    """A ``data_loss`` result as ``(loss [], aux {name: scalar})``: a scalar, a
    ``(loss, aux)`` pair, or a dict holding ``"loss"`` (plus named parts)."""
    if isinstance(value, dict):
        if "loss" not in value:
            raise ValueError(f"a data_loss returning a dict must hold 'loss'; got keys {sorted(value)}")
        return value["loss"], {k: v for k, v in value.items() if k != "loss"}
    if isinstance(value, tuple):
        loss, aux = value
        return loss, dict(aux)
    return value, {}


def data_term(outputs: jax.Array, y: jax.Array, *, class_weights=None,
              data_loss: Callable | None = None) -> tuple[jax.Array, dict]:
    """The data term of one forward pass: ``(loss [], aux {name: scalar})``.

    Args:
      outputs: the model's outputs, ``[B, C]`` / ``[B, H, W, C]`` logits or, with a
        ``data_loss``, whatever it takes.
      y: labels ``[B]`` / ``[B, H, W]``, or a ``data_loss``'s float targets ``[B, ...]``.
      class_weights: optional ``[C]`` weights of the label NLL.
      data_loss: ``None`` for the label NLL (aux ``{"nll"}``); else ``data_loss(outputs, y)``
        (aux ``{"data_loss", **its named parts}``).
    """
    if data_loss is None:
        nll = data_nll(outputs, y, class_weights)
        return nll, {"nll": nll}
    value, aux = split_data_loss(data_loss(outputs, y))
    return value, {"data_loss": value, **aux}


def kl_weight_at(kl_weight: KLWeight, step) -> jax.Array | float:
    """The KL weight at ``step``: ``kl_weight(step)`` for a schedule, else the constant."""
    return kl_weight(step) if callable(kl_weight) else kl_weight


def elbo(data_losses: jax.Array, kls: jax.Array, *, kl_weight: KLWeight, num_train, step=0,
         data_aux: dict | None = None) -> tuple[jax.Array, dict]:
    """The negative ELBO per training example, from ``K`` weight draws (Blundell et al. 2015)::

        loss = mean_k data_k + w(step) * mean_k KL_k / N_train

    Dividing the whole ELBO by ``N_train`` puts the minibatch's *mean* data term
    next to ``KL / N_train`` (Graves 2011's minibatch weighting); ``w = 1`` is
    the exact ELBO, a schedule ``w(step)`` anneals the KL.

    Args:
      data_losses: ``[K]`` the data term of each draw (label NLL or ``data_loss``).
      kls: ``[K]`` ``KL(q || p)`` of each draw (all equal for an analytic KL).
      kl_weight: a constant or a schedule ``step -> weight`` (e.g. ``optax.linear_schedule``).
      num_train: ``N_train``, the labeled-set size.
      step: the optimisation step the schedule reads.
      data_aux: ``{name: [K]}`` the data term's aux scalars per draw, averaged into the result.

    Returns:
      ``(loss [], {**mean data_aux, "kl": mean KL, "kl_weight": w})``.
    """
    data, kl = jnp.mean(data_losses), jnp.mean(kls)
    aux = jax.tree.map(lambda a: jnp.mean(a, axis=0), data_aux or {})
    weight = kl_weight_at(kl_weight, step)
    return data + weight * kl / num_train, {**aux, "kl": kl, "kl_weight": jnp.asarray(weight)}


def ensemble_loss(member_losses: jax.Array, member_aux: dict | None = None) -> tuple[jax.Array, dict]:
    """A deep ensemble's loss: the *sum* of the ``[M]`` member losses.

    A sum, not a mean: its gradient with respect to member ``m``'s parameters is
    that member's own gradient, so with an element-wise optimiser the members
    train exactly as ``M`` separate runs. The aux scalars (``{name: [M]}``) are
    averaged over members.
    """
    return jnp.sum(member_losses), jax.tree.map(jnp.mean, member_aux or {})


def regularized_ensemble_loss(member_losses: jax.Array, member_aux: dict | None, stacked_params, *,
                              regularization: float, num_train) -> tuple[jax.Array, dict]:
    """A Deep Probabilistic Ensemble's loss (Chitta et al. 2018)::

        loss = Σ_m loss_m + β Ω(params) / N_train

    with ``Ω`` the DPE penalty of the stacked parameters (leaves ``[M, ...]``,
    :func:`bal.posteriors.regularized.dpe_penalty`), logged as ``"dpe_penalty"``.
    ``β = 0``, or a single member (``Ω`` needs a variance over members), gives
    :func:`ensemble_loss`.
    """
    total, aux = ensemble_loss(member_losses, member_aux)
    if regularization > 0 and member_losses.shape[0] > 1:
        penalty = dpe_penalty(stacked_params)
        total = total + regularization * penalty / num_train
        aux = {**aux, "dpe_penalty": penalty}
    return total, aux
