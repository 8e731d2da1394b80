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

from bal.posteriors.base import SingleModelPosterior


@dataclasses.dataclass(frozen=True)
class MCDropout(SingleModelPosterior):
    """MC-dropout posterior over a model built with ``kind="mc_dropout"``."""
