"""MC dropout (Gal & Ghahramani 2016): dropout kept on at prediction time.

Each of the ``S`` predictive samples is one stochastic forward pass. The model's
dropout is *consistent* at prediction time (the ``bal.models`` contract): sample
``s`` draws one mask per dropout layer from its key and shares it across every
pool item, so the ``S`` samples are ``S`` sub-networks and joint scores such as
BatchBALD are meaningful. Training uses ordinary per-example masks; weight
decay (the Gaussian prior of the paper) belongs to the optimiser.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, final

import jax

from bal.posteriors.base import SingleModelPosterior, check_num_samples
from bal.posteriors.protocol import LossAux, Variables


@final
@dataclasses.dataclass(frozen=True)
class MCDropout(SingleModelPosterior):
    """MC-dropout posterior over a model built with ``kind="mc_dropout"``.

    Fields: see :class:`~bal.posteriors.base.SingleModelPosterior`.
    """

    model: Any
    num_classes: int
    default_num_samples: int = 20
    sample_map: str = "auto"
    sample_batch_size: int | None = None
    class_weights: tuple[float, ...] | None = None
    data_loss: Callable | None = None
    output_transform: Callable | None = None

    def __post_init__(self):
        self._check_fields()

    def loss(self, variables: Variables, x, y, key, *, num_train: int, step=0) -> tuple[jax.Array, LossAux]:
        """The data term of one pass with fresh per-example masks drawn from ``key``
        (:func:`bal.posteriors.losses.data_term`); ``num_train`` and ``step`` are unused."""
        del num_train, step  # the prior is the optimiser's weight decay
        return self._one_pass_loss(variables, x, y, key)

    def num_samples_for(self, num_samples: int | None) -> int:
        """``num_samples``, or :attr:`default_num_samples` for ``None``."""
        return self.default_num_samples if num_samples is None else check_num_samples(num_samples)

    def predict_with_embeddings(self, variables, x, key, num_samples: int | None = None):
        """``(log_probs [S, N, C], embeddings [S, N, D])``: sample ``s`` is one dropout mask per
        layer, drawn from ``split(key, S)[s]`` and shared by every item of ``x``."""
        return self._sampled_predictions(variables, x, key, num_samples)
