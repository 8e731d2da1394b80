"""Approximate posteriors behind one interface, :class:`Posterior`.

Every family offers (:mod:`bal.posteriors.protocol` documents each member)::

    variables = posterior.init(key, example_x)
    loss, (new_batch_stats, aux) = posterior.loss(variables, x, y, key, num_train=N)
    log_probs = posterior.predict(variables, x, key, num_samples=S)          # [S, N, C]
    log_probs, emb = posterior.predict_with_embeddings(variables, x, key, S)  # + [S, N, D]

Families, each a final class: :class:`Deterministic` (S = 1), :class:`Variational`
(mean-field, Blundell et al. 2015), :class:`MCDropout` (Gal & Ghahramani 2016),
:class:`Ensemble` (deep ensembles, Lakshminarayanan et al. 2017) and
:class:`RegularizedEnsemble` (Deep Probabilistic Ensembles, Chitta et al. 2018).
Their losses are the pure functions of :mod:`bal.posteriors.losses`.
:func:`build` makes any of them, with the right kind of model, by name.
"""

from __future__ import annotations

from bal.posteriors import losses
from bal.posteriors.base import SingleModelPosterior, raw_outputs
from bal.posteriors.deterministic import Deterministic
from bal.posteriors.ensemble import (
    Ensemble,
    RegularizedEnsemble,
    StackedMembers,
    deep_ensemble,
    regularized_ensemble,
)
from bal.posteriors.mc_dropout import MCDropout
from bal.posteriors.protocol import EnsemblePosterior, Posterior, Variables
from bal.posteriors.regularized import dpe_penalty, dpe_prior
from bal.posteriors.variational import Variational

FAMILIES = ("deterministic", "variational", "mc_dropout", "ensemble", "regularized_ensemble")

__all__ = [
    "FAMILIES",
    "Deterministic",
    "Ensemble",
    "EnsemblePosterior",
    "MCDropout",
    "Posterior",
    "RegularizedEnsemble",
    "SingleModelPosterior",
    "StackedMembers",
    "Variables",
    "Variational",
    "build",
    "deep_ensemble",
    "dpe_penalty",
    "dpe_prior",
    "losses",
    "raw_outputs",
    "regularized_ensemble",
]


def build(
    family: str,
    model: str,
    num_classes: int,
    *,
    num_samples: int = 20,
    num_members: int | None = None,
    regularization: float = 1e-3,
    estimator: str = "reparam",
    kl_weight=1.0,
    train_samples: int = 1,
    sample_map: str = "auto",
    model_kwargs: dict | None = None,
    class_weights=None,
    data_loss=None,
    output_transform=None,
) -> Posterior:
    """Build a posterior ``family`` over the ``bal.models`` model named ``model``.

    Args:
      family: one of :data:`FAMILIES`.
      model: a ``bal.models`` name ("mlp", "gal_cnn", "lenet5", "resnet18").
      num_classes: ``C``.
      num_samples: default ``S`` for the stochastic families.
      num_members: ensemble size (default 5 for "ensemble", 8 for
        "regularized_ensemble", as in the DPE paper).
      regularization: ``β`` of the regularized ensemble.
      estimator: gradient estimator of the variational layers ("reparam",
        "local_reparam", "flipout").
      kl_weight, train_samples: see :class:`Variational`.
      sample_map: "auto", "vmap" or "map" for samples (and ensemble members).
      model_kwargs: extra arguments of the model constructor.
      class_weights: optional per-class loss weights ``[C]`` (every member's loss).
      data_loss, output_transform: a task's own loss on float targets and
        prediction transform, for outputs that are not class logits (detection:
        ``data_loss=bal.detection.centernet.loss_terms``,
        ``output_transform=raw_outputs``); see :class:`SingleModelPosterior`.

    Returns:
      a :class:`Deterministic`, :class:`Variational`, :class:`MCDropout`, :class:`Ensemble`
      or :class:`RegularizedEnsemble` (of :class:`Deterministic` members).
    """
    from bal import models  # posteriors sit above models; import on use keeps import light

    # TOML / JSON give lists; a Flax module is a static jit argument and must hash
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (model_kwargs or {}).items()}
    cw = None if class_weights is None else tuple(float(w) for w in class_weights)
    head = dict(class_weights=cw, data_loss=data_loss, output_transform=output_transform)
    if family not in FAMILIES:
        raise ValueError(f"unknown posterior family {family!r}; valid: {', '.join(FAMILIES)}")
    if family == "variational":
        net = models.build(model, num_classes, kind="variational", estimator=estimator, **kw)
        return Variational(net, num_classes, num_samples, sample_map, kl_weight=kl_weight,
                           train_samples=train_samples, **head)
    if family == "mc_dropout":
        net = models.build(model, num_classes, kind="mc_dropout", **kw)
        return MCDropout(net, num_classes, num_samples, sample_map, **head)
    net = models.build(model, num_classes, kind="deterministic", **kw)
    member = Deterministic(net, num_classes, **head)
    if family == "deterministic":
        return member
    if family == "ensemble":
        return deep_ensemble(member, num_members or 5, member_map=sample_map)
    return regularized_ensemble(member, num_members or 8, regularization, member_map=sample_map)
