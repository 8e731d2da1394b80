"""Small array helpers shared by the acquisition modules (internal).

XLA:CPU (jax 0.10.2, measured on the project's 2-core machines) is slow at
two patterns that acquisition scores are made of:

- a reduction over the *leading* sample axis of ``[S, N, C]`` (``mean(axis=0)``):
  ~80 ms for ``[20, 60000, 10]``, versus ~5 ms for the same sum written as a
  pairwise tree of ``S`` slice additions (one vectorised elementwise fusion);
- a reduction over the short class axis fused with transcendental producers
  (``sum_c p log p``): the producers are then evaluated unvectorised (~40 ms);
  a dot with a ones-vector (or ``top_k`` for a maximum) keeps them vectorised (~1 ms).

So sample-axis sums go through :func:`sum_over_samples` and class-axis sums /
maxima through :func:`sum_over_classes` / :func:`max_over_classes`.

These forms are exact rewrites that cost nothing on accelerators either, so
they are used on every backend and are not part of the backend policy
(:mod:`bal.backend`): ``bal.acquisition`` stays a pure function of arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_HI = jax.lax.Precision.HIGHEST  # keep float32 accuracy on accelerators (no TF32 / bf16 passes)
_TREE_MAX_S = 64  # unroll up to this many samples; a fori_loop beyond


def sum_over_samples(fn, x):
    """``Σ_s fn(x[s])`` over the leading axis, as a pairwise tree (small S) or a loop (large S)."""
    s = x.shape[0]
    if s <= _TREE_MAX_S:
        terms = [fn(x[i]) for i in range(s)]
        while len(terms) > 1:
            terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
        return terms[0]
    first = fn(x[0])
    return jax.lax.fori_loop(1, s, lambda i, acc: acc + fn(x[i]), first)


def sum_over_classes(v):
    """``Σ_c v[..., c]`` as a dot product with ones (keeps the producer vectorised)."""
    return jnp.dot(v, jnp.ones((v.shape[-1],), v.dtype), precision=_HI)


def max_over_classes(v):
    """``max_c v[..., c]`` via ``top_k`` (keeps the producer vectorised)."""
    return jax.lax.top_k(v, 1)[0][..., 0]


def plogp(p, logp):
    """``p * log p`` with ``0 log 0 = 0``; never forms ``-inf * 0``."""
    return p * jnp.where(p > 0, logp, 0.0)


def safe_log(p):
    """``log p`` where ``p > 0``, 0 elsewhere (only ever multiplied by ``p = 0``)."""
    return jnp.log(jnp.where(p > 0, p, 1.0))
