"""Deterministic networks: a point estimate, ``S = 1``.

The baseline for margin / entropy acquisition on point predictions, and the
usual member of an ensemble.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, final

import jax

from bal.posteriors.base import SingleModelPosterior, check_num_samples
from bal.posteriors.protocol import LossAux, Variables


@final
@dataclasses.dataclass(frozen=True)
class Deterministic(SingleModelPosterior):
    """A single network trained by maximum likelihood; ``predict`` returns ``[1, N, C]``.

    Fields: see :class:`~bal.posteriors.base.SingleModelPosterior`. The model's
    stochastic layers (dropout) are on in training and off in prediction.
    """

    model: Any
    num_classes: int
    default_num_samples: int = 1
    sample_map: str = "auto"
    sample_batch_size: int | None = None
    class_weights: tuple[float, ...] | None = None
    data_loss: Callable | None = None
    output_transform: Callable | None = None

    def __post_init__(self):
        self._check_fields()

    def loss(self, variables: Variables, x, y, key, *, num_train: int, step=0) -> tuple[jax.Array, LossAux]:
        """The data term of one training pass (:func:`bal.posteriors.losses.data_term`).

        ``key`` drives the model's training-time noise (dropout); ``num_train`` and
        ``step`` are unused (no prior term).
        """
        del num_train, step
        return self._one_pass_loss(variables, x, y, key)

    def num_samples_for(self, num_samples: int | None) -> int:
        """Always 1; any other requested ``num_samples`` is refused."""
        if num_samples is not None and check_num_samples(num_samples) != 1:
            raise ValueError(
                f"a deterministic posterior has exactly one sample; got num_samples={num_samples}"
            )
        return 1

    def predict_with_embeddings(self, variables, x, key=None, num_samples=None):
        """``(log_probs [1, N, C], embeddings [1, N, D])``; ``key`` may be ``None``."""
        self.num_samples_for(num_samples)
        key = jax.random.key(0) if key is None else key  # no noise is drawn
        log_probs, embedding = self._one_sample(variables, x, key, sample=False)
        return log_probs[None], embedding[None]
