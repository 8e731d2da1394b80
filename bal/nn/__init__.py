"""Mean-field Gaussian (Bayesian) layers for Flax, built on pure functions.

Layers of this package (each imports only those above it):

* :mod:`bal.nn.gaussian` -- init / sample / KL of ``N(mean, exp(logvar))`` weights;
* :mod:`bal.nn.priors` -- ``GaussianPrior`` (analytic KL), ``ScaleMixturePrior``
  (Blundell et al. 2015, Monte Carlo KL);
* :mod:`bal.nn.estimators` -- reparameterisation, local reparameterisation
  (Kingma et al. 2015), Flipout (Wen et al. 2018), posterior mean;
* :mod:`bal.nn.functional` -- Bayesian dense / conv as functions of params and a key;
* :mod:`bal.nn.linen` (``Dense``, ``Conv``; noise from the ``"noise"`` RNG stream)
  and :mod:`bal.nn.nnx` (``Dense``, ``Conv``; key passed at call time);
* :mod:`bal.nn.kl` -- ``collect_kl``, ``kl_from_params``, ``nnx_kl``;
* :mod:`bal.nn.ops` -- drop-in ``conv_general_dilated`` / ``max_pool`` that avoid
  XLA:CPU slow paths (the Gal CNN train step 3x faster on the CPU);
* :mod:`bal.nn.params` -- walking params trees (``to_deterministic``: posterior
  mean or one sample as parameters of the deterministic twin model).

ELBO of a minibatch (any Linen model containing these layers)::

    logits, upd = model.apply(variables, x, rngs={"noise": key}, mutable=["kl"])
    loss = nll(logits, y) + kl_weight * bal.nn.collect_kl(upd) / num_train_examples

Posterior sampling by ``vmap``: a batch of keys gives independent posterior
samples of the whole model in one compiled call, sample axis first::

    def one_sample(key):                    # one weight draw shared by all N inputs
        return model.apply(variables, x, train=False, sample=True,
                           rngs={"noise": key, "dropout": key})        # [N, C]

    keys = jax.random.split(key, S)
    logits = jax.jit(jax.vmap(one_sample))(keys)                       # [S, N, C]
    logits = jax.jit(lambda ks: jax.lax.map(one_sample, ks))(keys)     # the same values

The same key gives the same sample (chunks of a pool scored with the same keys
see the same networks). On XLA:CPU, ``jax.vmap`` over per-sample *conv
kernels* becomes a slow grouped convolution (about 30x slower than
``jax.lax.map``, see ``shared/notes-performance.md``); on accelerators vmap is
usually the faster. For MC dropout the noise-free trunk is hoisted out of the
vmap, so vmap is fast everywhere. Measure both.

Keys: use the default threefry keys (``jax.random.key(seed)``) for posterior
sampling. ``"rbg"`` keys are not vmap-invariant: a ``vmap`` over rbg keys does
not reproduce the per-key draws (equal keys even give different samples).
They do compile much faster on the CPU (every threefry call site costs a
noticeable fraction of a second of XLA compile time, and a variational layer
has one or two per call), so they suit un-mapped training steps.

For NNX, pass the key explicitly: ``jax.vmap(lambda k: model(x, k))(keys)``
(``nnx.vmap`` with ``in_axes=(None, 0)`` for a model that is not captured).
"""

from bal.nn import estimators, functional, gaussian, linen, nnx, ops, params, priors
from bal.nn.estimators import ESTIMATORS, check_estimator
from bal.nn.gaussian import (
    DEFAULT_LOGVAR_MEAN,
    DEFAULT_LOGVAR_STDDEV,
    gaussian_kl,
    logvar_init,
    monte_carlo_kl,
    posterior,
    sample,
    stddev,
)
from bal.nn.kl import collect_kl, kl_from_params, nnx_kl
from bal.nn.linen import KL_COLLECTION, Conv, Dense
from bal.nn.params import bayesian_scopes, to_deterministic
from bal.nn.priors import GaussianPrior, Prior, ScaleMixturePrior, check_prior

__all__ = [
    "ESTIMATORS",
    "DEFAULT_LOGVAR_MEAN",
    "DEFAULT_LOGVAR_STDDEV",
    "KL_COLLECTION",
    "Conv",
    "Dense",
    "GaussianPrior",
    "Prior",
    "ScaleMixturePrior",
    "check_estimator",
    "check_prior",
    "collect_kl",
    "estimators",
    "functional",
    "gaussian",
    "gaussian_kl",
    "kl_from_params",
    "linen",
    "logvar_init",
    "monte_carlo_kl",
    "nnx",
    "ops",
    "nnx_kl",
    "params",
    "posterior",
    "priors",
    "sample",
    "stddev",
    "to_deterministic",
    "bayesian_scopes",
]
