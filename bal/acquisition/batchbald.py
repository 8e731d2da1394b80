"""BatchBALD: greedy batch acquisition by joint mutual information.

Kirsch, van Amersfoort & Gal 2019, "BatchBALD: Efficient and Diverse Batch
Acquisition for Deep Bayesian Active Learning" (NeurIPS).

    a(x_1..x_b) = I[y_1..y_b; θ] = H[y_1..y_b] − Σ_j mean_s H[p(y_j | x_j, θ_s)]

is submodular, and the batch is built greedily: with ``B`` the items chosen so
far, the next item maximises ``I[y_B, y_i; θ] − I[y_B; θ]``. By the chain rule
``H[y_B, y_i] = H[y_B] + H[y_i | y_B]``, so the greedy *gain* of candidate
``i`` is

    gain_i = H[y_i | y_B] − mean_s H[p_s(y_i)],
    H[y_i | y_B] = Σ_m π_m H[ Σ_s w_{m,s} p(y_i | θ_s) ],

with ``m`` running over label configurations ``ŷ_B`` of the batch,
``P[s, m] = Π_{j∈B} p(ŷ_j | θ_s)`` (paper, "joint probabilities per MC sample"),
``π_m = mean_s P[s, m]`` and ``w_{m,s} = P[s, m] / Σ_s' P[s', m]`` (the
posterior over the ``S`` samples given the configuration, computed in log
space with a softmax, so no product underflows). This is the paper's
``−Σ_{ŷ,y} (P̂ P_i) log (P̂ P_i)`` estimator rearranged; the term
``H[y_B]`` is common to all candidates and drops out of the argmax.

- *Exact* while ``C^|B| <= num_configs``: ``m`` enumerates all ``C^|B|``
  configurations, ``π_m`` their probabilities.
- *Sampled* beyond that (paper §3.3; batchbald_redux's ``SampledJointEntropy``):
  ``num_configs // S`` configurations are drawn from ``p(ŷ_B | θ_s)`` for each
  sample ``s`` (a stratified draw from ``p(ŷ_B)``, the importance proposal),
  ``π_m = 1 / M``; configurations are redrawn at every greedy step.

Speed: the whole ``k``-step greedy selection is one jitted function — a
single ``lax.fori_loop`` whose body serves exact and sampled steps alike
(configurations live in one fixed-size buffer; the active prefix is a traced
length), so compile time does not grow with ``k`` and no step returns to the
host. A candidate's term is a ``[T*C, S] x [S, M_blk]`` matmul per block of
``M_blk`` configurations, fused by XLA with the ``r log r`` reduction; blocks
beyond the active prefix are skipped, so early exact steps with few
configurations stay cheap. Memory is bounded by ``T * C * M_blk`` floats
(``T = chunk_size`` candidates at a time). With ``lazy=True`` (default) each
step evaluates candidates in decreasing order of an upper bound on their gain —
their gain at an earlier step (gains only shrink: submodularity; Minoux 1978) —
and stops once no unevaluated candidate's bound reaches the best gain found
(minus ``lazy_tolerance``): the same selection as evaluating every candidate,
in a fraction of the work when gains are spread. In the sampled regime stale
*estimates* bound fresh ones only approximately; ``lazy=False`` re-estimates
every candidate at every step (as the reference implementation does).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bal.acquisition._validation import check_k, check_log_probs, is_tracer, static_int
from bal.acquisition._ops import _HI, plogp
from bal.acquisition.scores import _bald_parts

__all__ = ["BatchResult", "batchbald", "joint_entropy", "DEFAULT_NUM_CONFIGS"]

#: Default size of the configuration set (exact while ``C^n`` is at most this; batchbald_redux's ``num_samples``).
DEFAULT_NUM_CONFIGS = 10_000
#: Configurations per block of the candidate computation.
CONFIG_BLOCK = 256
#: Default candidates per chunk (full evaluation) and per round (lazy evaluation):
#: ``[T, C, CONFIG_BLOCK]`` float32 stays well inside the cache for C <= 100.
DEFAULT_CHUNK = 512
DEFAULT_LAZY_CHUNK = 128


class BatchResult(NamedTuple):
    """``indices int32[k]`` in acquisition order; ``scores [k]``: ``scores[j]`` estimates ``I[y_{b_0..b_j}; θ]``."""

    indices: jax.Array
    scores: jax.Array


# ----------------------------------------------------------------------------- configuration sets
def _config_weights(log_joint):
    """``log P [S, M]`` -> (``w [M, S]`` posterior weights per configuration, ``log π [M]``)."""
    s = log_joint.shape[0]
    mx = jnp.max(log_joint, axis=0)
    finite = jnp.isfinite(mx)
    shifted = jnp.exp(log_joint - jnp.where(finite, mx, 0.0))  # 0 for impossible configurations
    total = jnp.sum(shifted, axis=0)
    safe_total = jnp.where(finite, total, 1.0)
    w = jnp.where(finite, shifted / safe_total, 0.0).T
    log_pi = jnp.where(finite, mx + jnp.log(safe_total) - math.log(s), -jnp.inf)
    return w, log_pi


def _extend_exact(log_joint, lp_item):
    """All configurations of the batch plus one item: ``[S, M] x [S, C] -> [S, M*C]``."""
    s = log_joint.shape[0]
    return (log_joint[:, :, None] + lp_item[:, None, :]).reshape(s, -1)


def _sample_labels(key, log_p, per_sample: int):
    """``per_sample`` labels drawn from each row of ``log_p [S, C]`` by inverse CDF -> ``int32[per_sample, S]``.

    ``y = #{c < C−1 : cdf_c <= u · cdf_{C−1}}``; a class with ``p = 0`` spans an
    empty interval and is never drawn. (Cheaper to compile and run than
    Gumbel-max ``jax.random.categorical``.)
    """
    cdf = jnp.cumsum(jnp.exp(log_p), axis=-1)  # [S, C]
    u = jax.random.uniform(key, (per_sample, log_p.shape[0], 1), log_p.dtype) * cdf[None, :, -1:]
    return jnp.sum(cdf[None, :, :-1] <= u, axis=-1, dtype=jnp.int32)


def _sample_log_joint(key, log_probs, chosen, n, per_sample: int):
    """``log P [S, S*per_sample]`` of configurations drawn for the first ``n`` chosen items.

    For each posterior sample ``s``, ``per_sample`` configurations ``ŷ_B ~ p(· | θ_s)``
    (labels independent given ``θ_s``); configuration ``m = s * per_sample + r``.
    """
    s = log_probs.shape[0]

    def add_item(j, log_joint):
        log_p = jax.lax.dynamic_index_in_dim(log_probs, chosen[j], axis=1, keepdims=False)  # [S, C]
        y = _sample_labels(jax.random.fold_in(key, j), log_p, per_sample)  # [per_sample, S]
        return log_joint + log_p[:, y.T.reshape(-1)]

    return jax.lax.fori_loop(0, n, add_item, jnp.zeros((s, s * per_sample), log_probs.dtype))


def _conditional_entropy_given(probs_ncs, w, pi, n_active, idx, block: int):
    """``H[y_i | y_B] = Σ_m π_m H[Σ_s w_{m,s} p_s(y_i)]`` for candidates ``idx [T]`` -> ``[T]``.

    ``probs_ncs [N, C, S]`` holds ``p(y = c | x_n, θ_s)``; ``w [M_buf, S]`` and
    ``π [M_buf]`` the configurations, of which the first ``n_active`` (traced)
    are live (``π = 0`` beyond). Loops over blocks of ``block`` configurations:
    one ``[T*C, S] x [S, block]`` matmul and one ``π``-weighted ``r log r``
    reduction each (``0 log 0 = 0``).
    """
    pc = jnp.take(probs_ncs, idx, axis=0)  # [T, C, S]
    tiny = jnp.finfo(pc.dtype).tiny

    def add_block(b, acc):
        wb = jax.lax.dynamic_slice_in_dim(w, b * block, block, axis=0)
        pib = jax.lax.dynamic_slice_in_dim(pi, b * block, block)
        r = jnp.einsum("tcs,ms->tcm", pc, wb, precision=_HI)
        r_log_r = r * jnp.log(jnp.maximum(r, tiny))
        return acc + jnp.sum(jnp.dot(r_log_r, pib, precision=_HI), axis=1)

    n_blocks = (n_active + block - 1) // block
    return -jax.lax.fori_loop(0, n_blocks, add_block, jnp.zeros(idx.shape, pc.dtype))


# ----------------------------------------------------------------------------- one greedy step
def _better(val_a, idx_a, val_b, idx_b):
    """Is candidate a preferred to b (higher value, then lower index)?"""
    return (val_a > val_b) | ((val_a == val_b) & (idx_a < idx_b))


def _step_full(gain_of, n: int, chosen_mask, chunk: int):
    """Gains of every candidate (chunked), then the masked argmax (lowest index on ties)."""
    n_chunks = -(-n // chunk)
    idx = jnp.minimum(jnp.arange(n_chunks * chunk, dtype=jnp.int32), n - 1).reshape(n_chunks, chunk)
    gains = jax.lax.map(gain_of, idx).reshape(-1)[:n]
    gains = jnp.where(chosen_mask, -jnp.inf, gains)
    best = jnp.argmax(gains).astype(jnp.int32)
    return best, gains[best], gains


def _step_lazy(gain_of, bounds, chosen_mask, chunk: int, tol):
    """Lazy greedy: evaluate candidates by decreasing upper bound until none can win."""
    n = bounds.shape[0]

    def cond(state):
        bounds, evaluated, best_val, _ = state
        remaining = jnp.where(evaluated, -jnp.inf, bounds)
        return jnp.any(~evaluated) & (jnp.max(remaining) >= best_val - tol)

    def body(state):
        bounds, evaluated, best_val, best_idx = state
        vals, idx = jax.lax.top_k(jnp.where(evaluated, -jnp.inf, bounds), chunk)
        idx = idx.astype(jnp.int32)
        valid = ~evaluated[idx]  # the top of an exhausted pool may hold evaluated items
        g = jnp.where(valid, gain_of(idx), -jnp.inf)
        bounds = bounds.at[idx].set(jnp.where(valid, g, bounds[idx]))
        evaluated = evaluated.at[idx].set(True)
        g_max = jnp.max(g)
        g_idx = jnp.min(jnp.where(g == g_max, idx, n)).astype(jnp.int32)
        take = _better(g_max, g_idx, best_val, best_idx)
        return bounds, evaluated, jnp.where(take, g_max, best_val), jnp.where(take, g_idx, best_idx)

    init = (bounds, chosen_mask, jnp.array(-jnp.inf, bounds.dtype), jnp.array(n, jnp.int32))
    bounds, _, best_val, best_idx = jax.lax.while_loop(cond, body, init)
    return best_idx, best_val, bounds


# ----------------------------------------------------------------------------- the greedy loop
def _plan(s: int, c: int, k: int, num_configs: int):
    """Static sizes: last exact step, sampled configuration count, block and buffer sizes."""
    exact_upto = 0  # steps j = 1 .. exact_upto (j items chosen) enumerate C^j configurations
    while exact_upto + 1 <= k - 1 and c ** (exact_upto + 1) <= num_configs:
        exact_upto += 1
    per_sample = max(1, num_configs // s)
    m_sampled = s * per_sample if exact_upto < k - 1 else 0
    m_need = max(c**exact_upto, m_sampled, 1)
    block = min(CONFIG_BLOCK, m_need)
    return exact_upto, per_sample, m_sampled, block, -(-m_need // block) * block


@partial(jax.jit, static_argnames=("k", "num_configs", "chunk_size", "lazy"))
def _batchbald(key, log_probs, lazy_tolerance, candidates, *, k: int, num_configs: int, chunk_size, lazy: bool):
    s, n, c = log_probs.shape
    dtype = log_probs.dtype
    probs = jnp.transpose(jnp.exp(log_probs), (1, 2, 0))  # [N, C, S]: a candidate's rows are contiguous
    bald, cond_ent = _bald_parts(log_probs)
    exact_upto, per_sample, m_sampled, block, m_buf = _plan(s, c, k, num_configs)
    chunk = min(n, chunk_size or (DEFAULT_LAZY_CHUNK if lazy else DEFAULT_CHUNK))
    live = jnp.arange(m_buf)

    # Step 0: BatchBALD of one item is BALD. Non-candidates count as already chosen: never picked.
    masked_bald = jnp.where(candidates, bald, -jnp.inf)
    first = jnp.argmax(masked_bald).astype(jnp.int32)
    chosen = jnp.zeros((k,), jnp.int32).at[0].set(first)
    scores = jnp.zeros((k,), dtype).at[0].set(bald[first])
    mask = (~candidates).at[first].set(True)
    bounds = masked_bald.at[first].set(-jnp.inf)
    log_joint = jnp.zeros((s, m_buf), dtype)  # exact configurations; prefix C^(j-1) valid at step j

    def exact_configs(j, chosen, log_joint):
        lp_item = jax.lax.dynamic_index_in_dim(log_probs, chosen[j - 1], axis=1, keepdims=False)  # [S, C]
        head = m_buf // c
        ext = (log_joint[:, :head, None] + lp_item[:, None, :]).reshape(s, head * c)
        log_joint = jnp.pad(ext, ((0, 0), (0, m_buf - head * c)))
        n_active = c**j
        w, log_pi = _config_weights(log_joint)
        return w, jnp.exp(log_pi), n_active, log_joint

    def sampled_configs(j, chosen, log_joint):
        sampled = _sample_log_joint(jax.random.fold_in(key, j), log_probs, chosen, j, per_sample)
        w, _ = _config_weights(jnp.pad(sampled, ((0, 0), (0, m_buf - m_sampled))))
        return w, jnp.full((m_buf,), 1.0 / max(m_sampled, 1), dtype), jnp.asarray(m_sampled), log_joint

    def step(j, state):
        chosen, scores, mask, bounds, log_joint = state
        if exact_upto == 0:
            w, pi, n_active, log_joint = sampled_configs(j, chosen, log_joint)
        elif m_sampled == 0:
            w, pi, n_active, log_joint = exact_configs(j, chosen, log_joint)
        else:
            w, pi, n_active, log_joint = jax.lax.cond(j <= exact_upto, exact_configs, sampled_configs,
                                                      j, chosen, log_joint)
        on = live < n_active
        w, pi = jnp.where(on[:, None], w, 0.0), jnp.where(on, pi, 0.0)

        def gain_of(idx):
            return _conditional_entropy_given(probs, w, pi, n_active, idx, block) - cond_ent[idx]

        if lazy:
            best, gain, bounds = _step_lazy(gain_of, bounds, mask, chunk, lazy_tolerance)
        else:
            best, gain, _ = _step_full(gain_of, n, mask, chunk)
        return (chosen.at[j].set(best), scores.at[j].set(scores[j - 1] + gain), mask.at[best].set(True),
                bounds.at[best].set(-jnp.inf), log_joint)

    if k == 1:
        return BatchResult(chosen, scores)
    state = jax.lax.fori_loop(1, k, step, (chosen, scores, mask, bounds, log_joint))
    return BatchResult(state[0], state[1])


def batchbald(key, log_probs, k: int, *, num_configs: int = DEFAULT_NUM_CONFIGS, chunk_size: int | None = None,
              lazy: bool = True, lazy_tolerance: float = 1e-4, candidates=None,
              validate: bool = True) -> BatchResult:
    """Select ``k`` pool items greedily by BatchBALD (Kirsch et al. 2019).

    Args:
      key: PRNG key for the sampled configurations (unused while the joint is exact).
      log_probs: ``[S, N, C]`` per-sample log-probabilities; the samples must be
        *consistent* across pool items (e.g. the same dropout masks for every item).
      k: static batch size, ``1 <= k <= N``.
      num_configs: exact joint entropy while ``C^|B| <= num_configs``; beyond,
        ``num_configs // S`` sampled configurations per posterior sample.
      chunk_size: candidates evaluated together (memory ``chunk_size * C * 256``
        floats); ``None``: 128 per lazy round, 512 per chunk otherwise.
      lazy: lazy-greedy evaluation (see module docstring).
      lazy_tolerance: slack in nats when comparing bounds with the best gain
        (absorbs float rounding; larger = more re-evaluation).
      candidates: optional ``bool[N]``; only items marked True can be picked.
        Lets a loop pad its shrinking pool to a few fixed sizes (padding rows
        must still be valid log-probabilities, e.g. uniform) so that the
        jitted selection is not recompiled every cycle.
      validate: check on concrete inputs that ``log_probs`` normalises (and
        that ``candidates`` holds at least ``k`` items).

    Returns:
      :class:`BatchResult` — ``indices int32[k]`` (distinct, in acquisition
      order) and ``scores [k]`` (running estimate of ``I[y_batch; θ]`` in nats).
    """
    log_probs = check_log_probs(log_probs, check_values=validate)
    k = check_k(k, log_probs.shape[1])
    num_configs = static_int(num_configs, "num_configs")
    if chunk_size is not None:
        chunk_size = static_int(chunk_size, "chunk_size")
    if not lazy_tolerance >= 0:
        raise ValueError(f"lazy_tolerance must be >= 0; got {lazy_tolerance!r}")
    if key is None:
        key = jax.random.key(0)  # only the exact regime runs without a key; documented above
        if log_probs.shape[2] ** (k - 1) > num_configs:
            raise ValueError(f"batchbald with k = {k}, C = {log_probs.shape[2]} samples configurations "
                             f"(C^(k-1) > num_configs = {num_configs}); pass a PRNG key")
    n = log_probs.shape[1]
    if candidates is None:
        candidates = jnp.ones((n,), bool)
    else:
        candidates = jnp.asarray(candidates)
        if candidates.shape != (n,) or candidates.dtype != jnp.bool_:
            raise ValueError(f"candidates must be a bool array of shape [N] = [{n}]; "
                             f"got {candidates.dtype} {tuple(candidates.shape)}")
        if validate and not is_tracer(candidates) and int(jnp.sum(candidates)) < k:
            raise ValueError(f"acquisition size k = {k} is larger than the number of candidates "
                             f"({int(jnp.sum(candidates))} marked True)")
    return _batchbald(key, log_probs, jnp.asarray(lazy_tolerance, log_probs.dtype), candidates, k=k,
                      num_configs=num_configs, chunk_size=chunk_size, lazy=bool(lazy))


# ----------------------------------------------------------------------------- joint entropy
@partial(jax.jit, static_argnames=("num_configs",))
def _joint_entropy(key, log_probs, *, num_configs: int):
    s, n, c = log_probs.shape
    if c ** n <= num_configs:
        log_joint = log_probs[:, 0, :]
        for j in range(1, n):
            log_joint = _extend_exact(log_joint, log_probs[:, j, :])
        _, log_pi = _config_weights(log_joint)
        return -jnp.sum(plogp(jnp.exp(log_pi), log_pi))
    per_sample = max(1, num_configs // s)
    log_joint = _sample_log_joint(key, log_probs, jnp.arange(n, dtype=jnp.int32), n, per_sample)
    _, log_pi = _config_weights(log_joint)
    return -jnp.mean(log_pi)  # importance sampling from p(ŷ) itself: H = E[-log p(ŷ)]


def joint_entropy(key, log_probs, *, num_configs: int = DEFAULT_NUM_CONFIGS, validate: bool = True):
    """Joint entropy ``H[y_1..y_n]`` of ``n`` items' labels under the MC posterior.

    ``p(ŷ_1..ŷ_n) = mean_s Π_j p(ŷ_j | x_j, θ_s)``; exact (enumerating all
    ``C^n`` configurations) while ``C^n <= num_configs``, otherwise the Monte
    Carlo estimate ``mean_m −log p(ŷ^m)`` over ``num_configs // S``
    configurations drawn per posterior sample (Kirsch et al. 2019, §3.3).

    Args:
      key: PRNG key (used only when sampling; may be None for the exact case).
      log_probs: ``[S, n, C]`` log-probabilities of the ``n`` items.

    Returns:
      scalar, nats.
    """
    log_probs = check_log_probs(log_probs, check_values=validate)
    num_configs = static_int(num_configs, "num_configs")
    s, n, c = log_probs.shape
    if key is None:
        if c ** n > num_configs:
            raise ValueError(f"C^n = {c}^{n} > num_configs = {num_configs}: the joint entropy is "
                             "sampled; pass a PRNG key")
        key = jax.random.key(0)
    return _joint_entropy(key, log_probs, num_configs=num_configs)
