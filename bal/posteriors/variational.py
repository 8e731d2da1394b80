"""Mean-field variational inference (Blundell et al. 2015, "Bayes by Backprop").

The loss is the negative ELBO per training example::

    loss = mean_k [ nll_k ] + kl_weight(step) * mean_k [ KL_k ] / num_train

(with a ``data_loss``, e.g. CenterNet's, its value takes the place of ``nll_k``)

with ``k`` over ``train_samples`` weight draws per step (each draw uses the
layers' training estimator: reparameterisation, local reparameterisation or
Flipout). At prediction time every posterior sample is one weight draw shared
by all pool items (plain reparameterisation), so joint scores are meaningful.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Union

import jax
import jax.numpy as jnp

from bal.posteriors.base import (
    SingleModelPosterior,
    map_over,
    resolve_sample_map,
)

#: a constant KL weight or an optax-style schedule ``step -> weight``.
KLWeight = Union[float, Callable[[jax.Array], jax.Array]]


@dataclasses.dataclass(frozen=True)
class Variational(SingleModelPosterior):
    """Mean-field Gaussian posterior over a model built with ``kind="variational"``.

    Attributes:
      kl_weight: constant or schedule (e.g. ``optax.linear_schedule(0., 1., 1000)``
        for KL annealing); 1.0 gives the exact ELBO.
      train_samples: weight draws per training step (``K``), averaged.
    """

    kl_weight: KLWeight = 1.0
    train_samples: int = 1

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.train_samples, int) or self.train_samples < 1:
            raise ValueError(f"train_samples must be an integer >= 1; got {self.train_samples!r}")

    def loss(self, variables, x, y, key, *, num_train: int, step=0):
        keys = jax.random.split(key, self.train_samples)

        def one_draw(k):
            logits, stats, kl = self._train_forward(variables, x, k)
            data, aux = self.data_term(logits, y)
            return data, aux, kl, stats

        if self.train_samples == 1:
            nll, aux, kl, stats = jax.tree.map(lambda a: a[None], one_draw(keys[0]))
        else:  # draws differ in their kernels: see resolve_sample_map
            strategy = resolve_sample_map(self.sample_map, training=True)
            nll, aux, kl, stats = map_over(one_draw, keys, strategy)
        # batch statistics do not depend on the weight draw much; average the K updates
        stats = None if stats is None else jax.tree.map(lambda s: jnp.mean(s, axis=0), stats)
        nll, kl = jnp.mean(nll), jnp.mean(kl)
        aux = jax.tree.map(lambda a: jnp.mean(a, axis=0), aux)  # {"nll"}, or a data_loss's terms
        weight = self.kl_weight(step) if callable(self.kl_weight) else self.kl_weight
        total = nll + weight * kl / num_train
        return total, (stats, {**aux, "kl": kl, "kl_weight": jnp.asarray(weight)})
