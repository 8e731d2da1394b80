"""Backend policy: every choice ``bal`` makes by backend and machine, in one place (issues 16, 20).

* :mod:`bal.backend.policy` -- :class:`Policy` (``chunk_size``, ``sample_map``,
  ``member_map``, ``conv_rewrite``, ``im2col_chunk_bytes``, ``train_map``, ``run_map``),
  :func:`policy` (resolved once per process from the backend and the CPU's
  caches), :func:`use` / :func:`set_policy` to force one, :func:`cache_sizes`
  and the pure rule :func:`cpu_chunk_sizes`;
* :mod:`bal.backend.calibrate` -- the one choice no rule predicts (the
  unpadded-conv forward), measured once per CPU model and cached;
* :mod:`bal.backend.conv` -- the XLA:CPU convolution / max-pool rewrites
  (also at their old path :mod:`bal.nn.ops`);
* :mod:`bal.backend.allocator` -- glibc huge pages for XLA:CPU's per-call
  buffers (also at :mod:`bal.runtime`).

Readers of the policy: :func:`bal.predict.default_chunk_size`,
:func:`bal.posteriors.base.resolve_sample_map`, :func:`bal.active.run.run`
(``run_map``), :mod:`bal.backend.conv` (and
through it the ``bal.models`` and the Bayesian conv layers of :mod:`bal.nn`).

``bal.backend.policy`` is the function (import the module's other names with
``from bal.backend.policy import ...``). The conv and allocator names load
lazily, and the policy module imports JAX only when it resolves, so
``bal.runtime.relaunch_with_huge_pages`` (what programs do first thing) runs
without importing JAX.
"""

from __future__ import annotations

import importlib

from bal.backend.policy import (Policy, accelerator_policy, cache_sizes, cpu_chunk_sizes, cpu_policy, policy,
                                set_policy, use)

_NAMES = {
    "conv_general_dilated": "conv", "max_pool": "conv", "rewrite_enabled": "conv",
    "cpu_environ": "allocator", "huge_pages_enabled": "allocator", "relaunch_with_huge_pages": "allocator",
}

__all__ = ["Policy", "accelerator_policy", "cache_sizes", "cpu_chunk_sizes", "cpu_policy", "policy",
           "set_policy", "use", *sorted(_NAMES)]


def __getattr__(name: str):
    if name in _NAMES:
        module = importlib.import_module(f"bal.backend.{_NAMES[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bal.backend' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
