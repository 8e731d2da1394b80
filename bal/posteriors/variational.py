"""Mean-field variational inference (Blundell et al. 2015, "Bayes by Backprop").

The loss is the negative ELBO per training example (:func:`bal.posteriors.losses.elbo`)::

    loss = mean_k [ nll_k ] + kl_weight(step) * mean_k [ KL_k ] / num_train

(with a ``data_loss``, e.g. CenterNet's, its value takes the place of ``nll_k``)

with ``k`` over ``train_samples`` weight draws per step (each draw uses the
layers' training estimator: reparameterisation, local reparameterisation or
Flipout). At prediction time every posterior sample is one weight draw shared
by all pool items (plain reparameterisation), so joint scores are meaningful.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, final

import jax
import jax.numpy as jnp

from bal.posteriors import losses
from bal.posteriors.base import SingleModelPosterior, check_num_samples, map_over, resolve_sample_map
from bal.posteriors.losses import KLWeight
from bal.posteriors.protocol import LossAux, Variables

__all__ = ["KLWeight", "Variational"]


@final
@dataclasses.dataclass(frozen=True)
class Variational(SingleModelPosterior):
    """Mean-field Gaussian posterior over a model built with ``kind="variational"``.

    Fields: see :class:`~bal.posteriors.base.SingleModelPosterior`, and

    Attributes:
      kl_weight: constant or schedule (e.g. ``optax.linear_schedule(0., 1., 1000)``
        for KL annealing); 1.0 gives the exact ELBO.
      train_samples: weight draws per training step (``K``), averaged.
    """

    model: Any
    num_classes: int
    default_num_samples: int = 20
    sample_map: str = "auto"
    sample_batch_size: int | None = None
    class_weights: tuple[float, ...] | None = None
    data_loss: Callable | None = None
    output_transform: Callable | None = None
    kl_weight: KLWeight = 1.0
    train_samples: int = 1

    def __post_init__(self):
        self._check_fields()
        if not isinstance(self.train_samples, int) or self.train_samples < 1:
            raise ValueError(f"train_samples must be an integer >= 1; got {self.train_samples!r}")

    def loss(self, variables: Variables, x, y, key, *, num_train: int, step=0) -> tuple[jax.Array, LossAux]:
        """The negative ELBO per example over ``K = train_samples`` weight draws
        (:func:`bal.posteriors.losses.elbo`); aux: the data term's, ``"kl"`` and ``"kl_weight"``.

        Draw ``k`` uses ``split(key, K)[k]``.
        """
        keys = jax.random.split(key, self.train_samples)

        def one_draw(k):
            outputs, stats, kl = self._train_forward(variables, x, k)
            data, aux = self.data_term(outputs, y)
            return data, aux, kl, stats

        if self.train_samples == 1:
            data, aux, kl, stats = jax.tree.map(lambda a: a[None], one_draw(keys[0]))
        else:  # draws differ in their kernels: see resolve_sample_map
            strategy = resolve_sample_map(self.sample_map, training=True)
            data, aux, kl, stats = map_over(one_draw, keys, strategy)
        # batch statistics do not depend on the weight draw much; average the K updates
        stats = None if stats is None else jax.tree.map(lambda s: jnp.mean(s, axis=0), stats)
        total, aux = losses.elbo(data, kl, kl_weight=self.kl_weight, num_train=num_train, step=step,
                                 data_aux=aux)
        return total, (stats, aux)

    def num_samples_for(self, num_samples: int | None) -> int:
        """``num_samples``, or :attr:`default_num_samples` for ``None``."""
        return self.default_num_samples if num_samples is None else check_num_samples(num_samples)

    def predict_with_embeddings(self, variables, x, key, num_samples: int | None = None):
        """``(log_probs [S, N, C], embeddings [S, N, D])``: sample ``s`` is one weight draw from
        ``split(key, S)[s]``, shared by every item of ``x``."""
        return self._sampled_predictions(variables, x, key, num_samples)
