"""Walking ``params`` trees of models that contain Bayesian layers.

A Bayesian layer's scope holds ``kernel_mean``, ``kernel_logvar`` and either a
deterministic ``bias`` or ``bias_mean``, ``bias_logvar``. Module names are the
same in a model's deterministic and variational kinds (``bal.models``), so
:func:`to_deterministic` turns variational parameters into parameters of the
deterministic twin: the posterior mean, or one posterior sample.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax

from bal.nn import gaussian


_VARIATIONAL = ("kernel_mean", "kernel_logvar", "bias_mean", "bias_logvar")


def unwrap(variables):
    """``variables["params"]`` when given ``{"params": ...}``, else ``variables``."""
    if isinstance(variables, Mapping) and isinstance(variables.get("params"), Mapping):
        return variables["params"]
    return variables


def bayesian_scopes(params, path=()):
    """Yield ``(path, scope)`` for every dict holding ``kernel_mean`` and ``kernel_logvar``."""
    if not isinstance(params, Mapping):
        return
    if "kernel_mean" in params and "kernel_logvar" in params:
        yield path, params
    for name, child in params.items():
        yield from bayesian_scopes(child, path + (name,))


def to_deterministic(params, key: jax.Array | None = None):
    """Parameters of the deterministic twin: ``kernel`` (and ``bias``) per Bayesian layer.

    With ``key=None`` the posterior means; with a key, one posterior sample
    (independent per layer). Other parameters are kept as they are.
    """
    params = unwrap(params)
    counter = iter(range(1 << 30))

    def convert(tree):
        if not isinstance(tree, Mapping):
            return tree
        if "kernel_mean" in tree and "kernel_logvar" in tree:
            out = {k: v for k, v in tree.items() if k not in _VARIATIONAL}
            for name in ("kernel", "bias"):
                if f"{name}_mean" not in tree:
                    continue
                mean, logvar = tree[f"{name}_mean"], tree[f"{name}_logvar"]
                out[name] = mean if key is None else gaussian.sample(
                    jax.random.fold_in(key, next(counter)), mean, logvar)
            return out
        return {k: convert(v) for k, v in tree.items()}

    return convert(params)
