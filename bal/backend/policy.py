"""One backend policy per process: how to map samples, how big to chunk, whether to rewrite convs.

Every backend-dependent choice of ``bal`` reads :func:`policy`, resolved once
per process (cached) from the JAX backend and the machine:

* accelerators (GPU, TPU): ``vmap`` for weight samples, dropout masks and
  ensemble members (prediction and training), prediction chunks of 2,048 pool
  items, no convolution rewrites (XLA's own convolutions are fast there), and
  the seeds of a strategy advanced side by side (``run_map="vmap"``: one
  compiled training step for all of them, where one small model alone leaves
  the device mostly idle);
* the CPU: the choices measured best on the project's 2-core machines --
  ``lax.map`` over samples / members in prediction, unrolled members / weight
  draws under ``grad`` (see :func:`bal.posteriors.base.resolve_sample_map`),
  the conv / pool rewrites of :mod:`bal.backend.conv`, and chunk sizes derived
  from the CPU's caches by :func:`cpu_chunk_sizes`, and runs one after another
  (``run_map="sequential"``: on 2 cores one run already fills the machine).

:func:`use` (a context manager) and :func:`set_policy` force a policy, e.g.
the accelerator one on the CPU to check that its branches give the CPU
branches' numbers. ``BAL_CONV_REWRITE=0`` in the environment always means
``conv_rewrite=False`` (read on every :func:`policy` call, so it also works
when set after the policy was resolved, but before tracing).

**Chunk sizes from the caches (issue 20).** The CPU constants were tuned on
one AMD EPYC VM (L2 512 KB-1 MB per core): im2col chunks of 4 MB (2-6 MB all
measured alike, 8 MB slower: the chunk no longer fits the cache next to the
step's other buffers) and prediction chunks of 128 pool items (5.0 s at
2,048, 4.9 s at 512, 3.7 s at 128, 4.2 s at 32 for MC-dropout BALD over
10,000 items). The rule, a pure function of the cache sizes, keeps exactly
those outcomes on that machine and scales with the cache elsewhere:

* ``im2col_chunk_bytes = clip(4 * L2, 4 MB, 8 MB)`` rounded down to a power of
  two: 4 MB for any L2 up to 1 MB (the AMD outcome), 8 MB for the 2 MB L2 of
  the Intel Xeon VM (260 MB L3) -- never above the 8 MB that lost on the AMD
  machine's smaller caches. On that loaded 2-core Intel VM, Gal CNN conv2 at
  batch 64 (three interleaved rounds, ms) gave im2col forward / patch-matmul
  kernel gradient 1 MB: 99-136 / 45-55, 2 MB: 85-374 / 33-43, 4 MB: 135-152 /
  50-83, 8 MB: 96-212 / 28-64, 16 MB: 91-199 / 30-46: alike within the noise,
  so 8 MB there is allowed by, not proven by, the measurement;
* ``chunk_size = 128`` pool items when the per-core L2 is at most 2 MB, doubled
  for every further doubling of L2 (at most 2,048): the prediction chunk's
  first-conv activations (Gal CNN: 128 x 26 x 26 x 32 floats = 11 MB) are what
  must stay near the caches, and they scale with it. Unknown caches (no sysfs)
  give the AMD outcomes.

**Measured where no rule holds.** Which unpadded-conv forward wins (im2col
matmul or XLA's) differs between two AMD EPYC VMs with like caches, so it is
measured once per CPU model and cached (:mod:`bal.backend.calibrate`;
``BAL_CONV_FORWARD`` forces it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from typing import Iterator, Mapping

__all__ = ["Policy", "accelerator_policy", "cache_sizes", "cpu_chunk_sizes", "cpu_model", "cpu_policy", "policy",
           "set_policy", "use"]

MAPS = ("vmap", "map", "unroll")
RUN_MAPS = ("sequential", "vmap")
_MB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Policy:
    """The backend-dependent choices of ``bal``.

    Attributes:
      chunk_size: pool items per prediction chunk (:func:`bal.predict.default_chunk_size`).
      sample_map: how prediction maps weight samples / dropout masks: ``"vmap"``, ``"map"`` (``lax.map``)
        or ``"unroll"`` (for ``sample_map="auto"``).
      member_map: the same for ensemble members in prediction.
      conv_rewrite: whether :func:`bal.backend.conv.conv_general_dilated` rewrites convolutions
        (unpadded -> padded and sliced, patch-matmul kernel gradients, 1x1 convs as matmuls).
      im2col_chunk_bytes: batch-chunk size of the im2col forward and the patch-matmul kernel gradient.
      train_map: how samples / members are mapped under ``grad`` (training).
      run_map: how the runs of one strategy (its seeds) advance in ``bal run``: ``"sequential"``,
        one run after another, or ``"vmap"``, all seeds of the strategy side by side as one
        vmapped program per cycle (their labeled sets have equal sizes every cycle).
      conv_forward: the forward of rewritten unpadded stride-1 2-D convs: ``"patches"`` (im2col
        matmul) or ``"xla"`` (XLA's conv, padded by a column and sliced); on the CPU measured
        once per machine type by :mod:`bal.backend.calibrate`.
    """

    chunk_size: int
    sample_map: str
    member_map: str
    conv_rewrite: bool
    im2col_chunk_bytes: int
    train_map: str = "vmap"
    run_map: str = "sequential"
    conv_forward: str = "patches"

    def __post_init__(self):
        for name in ("chunk_size", "im2col_chunk_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Policy.{name} must be an integer >= 1; got {value!r}")
        for name in ("sample_map", "member_map", "train_map"):
            if getattr(self, name) not in MAPS:
                raise ValueError(f"Policy.{name} must be one of {MAPS}; got {getattr(self, name)!r}")
        if self.run_map not in RUN_MAPS:
            raise ValueError(f"Policy.run_map must be one of {RUN_MAPS}; got {self.run_map!r}")
        if self.conv_forward not in ("patches", "xla"):
            raise ValueError(f"Policy.conv_forward must be 'patches' or 'xla'; got {self.conv_forward!r}")
        if not isinstance(self.conv_rewrite, bool):
            raise ValueError(f"Policy.conv_rewrite must be a bool; got {self.conv_rewrite!r}")


def cache_sizes(base: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """CPU cache sizes in bytes by level (``{"L1d": ..., "L2": ..., "L3": ...}``), from sysfs.

    Empty where sysfs is missing (not Linux, a sandbox).
    """
    out = {}
    try:
        for entry in sorted(os.listdir(base)):
            if not entry.startswith("index"):
                continue
            read = lambda name: open(os.path.join(base, entry, name)).read().strip()  # noqa: E731
            kind, level, size = read("type"), read("level"), read("size")
            if kind == "Instruction":
                continue
            scale = {"K": 1024, "M": 2**20, "G": 2**30}.get(size[-1], 1)
            out[f"L{level}{'d' if kind == 'Data' else ''}"] = int(size.rstrip("KMG")) * scale
    except (OSError, ValueError):
        pass
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _floor_pow2(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def cpu_chunk_sizes(caches: Mapping[str, int]) -> tuple[int, int]:
    """``(chunk_size, im2col_chunk_bytes)`` for a CPU with ``caches`` (see the module doc for the rule).

    A pure function of the cache sizes (bytes, as :func:`cache_sizes` gives them).
    """
    l2 = int(caches.get("L2") or _MB)  # unknown: the AMD machine's outcome
    im2col = _floor_pow2(min(max(4 * l2, 4 * _MB), 8 * _MB))
    chunk = 128 * _floor_pow2(max(l2 // (2 * _MB), 1))
    return min(chunk, 2048), im2col


def cpu_policy(caches: Mapping[str, int] | None = None, conv_forward: str = "patches") -> Policy:
    """The CPU policy for a machine with ``caches`` (default: this machine's, from sysfs)."""
    chunk, im2col = cpu_chunk_sizes(cache_sizes() if caches is None else caches)
    return Policy(chunk_size=chunk, sample_map="map", member_map="map", conv_rewrite=True,
                  im2col_chunk_bytes=im2col, train_map="unroll", conv_forward=conv_forward)


def accelerator_policy() -> Policy:
    """The GPU / TPU policy: ``vmap`` everywhere, chunks of 2,048, XLA's own convolutions."""
    return Policy(chunk_size=2048, sample_map="vmap", member_map="vmap", conv_rewrite=False,
                  im2col_chunk_bytes=4 * _MB, train_map="vmap", run_map="vmap")


_lock = threading.Lock()
_resolved: list[Policy] = []   # the per-process policy, once resolved
_forced: list[Policy] = []     # stack of policies forced by use() / set_policy()


def _resolve() -> Policy:
    import jax  # here, not at the top: bal.backend (and bal.runtime's relaunch) import without JAX

    if jax.default_backend() != "cpu":
        return accelerator_policy()
    if os.environ.get("BAL_CONV_REWRITE", "1") == "0":
        return cpu_policy()  # no rewritten convs: nothing to measure
    from bal.backend.calibrate import conv_forward

    return cpu_policy(conv_forward=conv_forward())


def policy() -> Policy:
    """This process's policy: a forced one (:func:`use`, :func:`set_policy`), else resolved once and cached.

    ``BAL_CONV_REWRITE=0`` turns ``conv_rewrite`` off in the result.
    """
    if _forced:
        p = _forced[-1]
    else:
        if not _resolved:
            with _lock:
                if not _resolved:
                    _resolved.append(_resolve())
        p = _resolved[0]
    if p.conv_rewrite and os.environ.get("BAL_CONV_REWRITE", "1") == "0":
        p = dataclasses.replace(p, conv_rewrite=False)
    return p


def _changed() -> None:
    # compiled functions captured the old policy's choices when they were traced
    import jax

    jax.clear_caches()


def set_policy(p: Policy | None) -> None:
    """Force ``p`` for the rest of the process (``None``: back to the resolved policy).

    Clears JAX's compilation caches: functions traced under the old policy retrace.
    """
    if p is not None and not isinstance(p, Policy):
        raise ValueError(f"set_policy expects a bal.backend.Policy or None; got {type(p).__name__}")
    _forced.clear()
    if p is not None:
        _forced.append(p)
    _changed()


@contextlib.contextmanager
def use(p: Policy) -> Iterator[Policy]:
    """Force ``p`` inside a ``with`` block (nestable), e.g. ``with use(accelerator_policy()): ...``.

    Clears JAX's compilation caches on entry and exit, so code traced inside
    sees ``p`` and code traced after sees the previous policy again.
    """
    if not isinstance(p, Policy):
        raise ValueError(f"use expects a bal.backend.Policy; got {type(p).__name__}")
    _forced.append(p)
    _changed()
    try:
        yield p
    finally:
        del _forced[len(_forced) - 1 - _forced[::-1].index(p)]
        _changed()
