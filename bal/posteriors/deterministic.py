"""Deterministic networks: a point estimate, ``S = 1``.

The baseline for margin / entropy acquisition on point predictions.
"""

from __future__ import annotations

import dataclasses

import jax

from bal.posteriors.base import SingleModelPosterior, check_num_samples


@dataclasses.dataclass(frozen=True)
class Deterministic(SingleModelPosterior):
    """A single network trained by maximum likelihood; ``predict`` returns ``[1, N, C]``."""

    default_num_samples: int = 1

    def num_samples_for(self, num_samples):
        if num_samples is not None and check_num_samples(num_samples) != 1:
            raise ValueError(
                f"a deterministic posterior has exactly one sample; got num_samples={num_samples}"
            )
        return 1

    def predict_with_embeddings(self, variables, x, key=None, num_samples=None):
        self.num_samples_for(num_samples)
        key = jax.random.key(0) if key is None else key  # no noise is drawn
        log_probs, embedding = self._one_sample(variables, x, key, sample=False)
        return log_probs[None], embedding[None]
