"""What the rest of ``bal`` needs of an approximate posterior: the :class:`Posterior` protocol.

A posterior is an immutable bundle of pure functions around a model (in the
spirit of ``optax.GradientTransformation``): it holds no parameters. These
live in a ``variables`` pytree (``{"params": ..., "batch_stats": ...}``) that
the caller threads through explicitly, with every PRNG ``key`` passed in::

    variables = posterior.init(key, example_x)
    loss, (new_batch_stats, aux) = posterior.loss(variables, x, y, key, num_train=N, step=t)
    log_probs = posterior.predict(variables, x, key, num_samples=S)                # [S, N, C]
    log_probs, emb = posterior.predict_with_embeddings(variables, x, key, S)        # + [S, N, D]

``bal.train.fit`` calls ``loss`` (under ``jax.grad``, in a jitted step), the
pool scorers and ``bal.predict.predict`` call ``predict_with_embeddings`` and
``num_samples_for``; acquisition functions see only the arrays it returns,
sample (or member) axis first, never which family produced them.

A new family is any class with these members; nothing needs to subclass
anything (``isinstance(obj, Posterior)`` checks their presence at run time).
It must be hashable and compare by value (a frozen dataclass is): it is a
static argument of the jitted train step and prediction, so two equal
posteriors share one compiled program.

Outputs other than class logits (a detector's heatmaps and boxes): the
single-model families take a ``data_loss`` (the loss on float targets ``y``,
used instead of the label NLL; ``uses_labels`` is then False) and an
``output_transform`` (used instead of ``log_softmax``, e.g.
:func:`bal.posteriors.raw_outputs`); ``log_probs`` is then the model's own
per-sample outputs ``[S, N, ...]``.

An ensemble (``num_members = M``, an integer) is an :class:`EnsemblePosterior`:
the train step gives it one minibatch and one key per member, stacked on a
leading ``[M]`` axis, with keys from ``member_keys``. ``bal.checkpoint`` reads
an optional ``member`` (an ensemble's member posterior) and ``model`` (a
single-model posterior's module) to name the model in its errors.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

__all__ = ["EnsemblePosterior", "LossAux", "Posterior", "Variables"]

#: a pytree: ``{"params": ..., optionally "batch_stats": ...}`` (ensembles: leaves ``[M, ...]``).
Variables = Any

#: ``(new_batch_stats or None, {name: scalar})``: the second output of :meth:`Posterior.loss`.
LossAux = tuple[Any, dict[str, jax.Array]]


@runtime_checkable
class Posterior(Protocol):
    """An approximate posterior ``q(θ)`` over a model's parameters, as ``bal`` uses it.

    Shapes: ``B`` minibatch, ``N`` pool items, ``C`` classes, ``S`` posterior
    samples, ``D`` embedding width, ``M`` ensemble members. Dense models add
    their spatial axes after ``N`` (``log_probs [S, N, H, W, C]``, labels
    ``[B, H, W]``).
    """

    @property
    def num_classes(self) -> int:
        """``C``, the number of classes (labels lie in ``[0, C)``)."""
        ...

    @property
    def num_members(self) -> int | None:
        """``None`` for one model; ``M`` for an ensemble (see :class:`EnsemblePosterior`)."""
        ...

    @property
    def default_num_samples(self) -> int:
        """The ``S`` that prediction returns for ``num_samples=None``."""
        ...

    @property
    def uses_labels(self) -> bool:
        """True: ``y`` holds integer labels ``[B]`` (or pixel labels ``[B, H, W]``, 255 = none);
        False: ``y`` holds the float targets ``[B, ...]`` of a task's own ``data_loss``."""
        ...

    def init(self, key: jax.Array, example_x: jax.Array) -> Variables:
        """Fresh variables from ``key`` and an example batch ``example_x [B, ...]``."""
        ...

    def loss(self, variables: Variables, x: jax.Array, y: jax.Array, key: jax.Array, *,
             num_train: int, step: jax.Array | int = 0) -> tuple[jax.Array, LossAux]:
        """The training loss of one minibatch, to minimise: ``(loss [], (new_batch_stats, aux))``.

        Args:
          variables: the current variables (``jax.grad`` differentiates ``variables["params"]``).
          x: inputs ``[B, ...]`` (ensembles: ``[M, B, ...]``).
          y: labels ``[B]`` / ``[B, H, W]`` or float targets (ensembles: ``[M, B, ...]``).
          key: this step's PRNG key (ensembles: ``[M]`` keys).
          num_train: ``N_train``, the labeled-set size that scales prior terms (``KL / N_train``).
          step: the optimisation step, a traced int (for schedules such as KL annealing).

        Returns:
          the scalar loss, the updated ``batch_stats`` (``None`` without), and a dict of
          scalars to log (``bal.train.fit`` averages them per epoch; same keys every step).
        """
        ...

    def num_samples_for(self, num_samples: int | None) -> int:
        """The ``S`` that prediction returns for a requested ``num_samples``
        (``None``: :attr:`default_num_samples`); raises ``ValueError`` for one it cannot give."""
        ...

    def predict_with_embeddings(self, variables: Variables, x: jax.Array, key: jax.Array,
                                num_samples: int | None = None) -> tuple[jax.Array, jax.Array]:
        """``(log_probs [S, N, C], embeddings [S, N, D])``: ``S`` posterior samples, sample axis first.

        Sample ``s`` must be one network for every item of ``x`` and depend only on
        ``key`` (not on ``x``), so that chunks of a pool scored with the same key see
        the same networks and joint scores (BatchBALD) stay meaningful.
        """
        ...

    def predict(self, variables: Variables, x: jax.Array, key: jax.Array,
                num_samples: int | None = None) -> jax.Array:
        """``log_probs [S, N, C]``: the first output of :meth:`predict_with_embeddings`."""
        ...


@runtime_checkable
class EnsemblePosterior(Posterior, Protocol):
    """A :class:`Posterior` of ``M`` stacked members (``num_members = M``).

    Its variables have a leading member axis (leaves ``[M, ...]``), its ``loss``
    takes ``x [M, B, ...]``, ``y [M, B, ...]`` and ``[M]`` keys (one minibatch and
    one key per member), and its samples are member-major (``S = M * S_member``).
    """

    @property
    def num_members(self) -> int:
        """``M``, the number of members."""
        ...

    def member_keys(self, key: jax.Array) -> jax.Array:
        """``[M]`` keys, the ``m``-th driving member ``m`` (init and training)."""
        ...
