"""The active-learning pool: which example indices are labelled, which are not.

:func:`initial_pool` draws the class-balanced initial labelled set of Gal,
Islam & Ghahramani, "Deep Bayesian Active Learning with Image Data" (ICML
2017): ``k`` random examples of every class (e.g. 2 per class = 20 MNIST
images), the rest unlabelled.  :func:`random_pool` draws a set of a given size
without regard to class.

Randomness comes from ``numpy.random.Generator`` so this layer does not need
jax.  ``seed`` may be a non-negative ``int`` (``np.random.default_rng(seed)``),
an existing ``np.random.Generator`` (used, and advanced, as is), or a legacy
raw jax key (``uint32 [2]``, e.g. ``jax.random.PRNGKey(0)``), whose two words
seed the generator; for a typed key pass ``jax.random.key_data(key)``.  The
same seed gives the same pool on every machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Pool", "initial_pool", "random_pool", "as_generator"]


def as_generator(seed) -> np.random.Generator:
    """A ``np.random.Generator`` from an int seed, a Generator, or a raw ``uint32`` jax key."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int, a numpy Generator or a uint32 key array; got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return np.random.default_rng(int(seed))
    try:
        arr = np.asarray(seed)
    except Exception:  # e.g. a typed jax key, which numpy cannot convert
        arr = None
    if arr is not None and arr.ndim == 1 and arr.size > 0 and arr.dtype in (np.uint32, np.uint64):
        return np.random.default_rng([int(x) for x in arr])
    raise TypeError(
        f"seed must be an int, a numpy Generator or a raw uint32 jax key; got {type(seed).__name__}. "
        "For a typed jax key pass jax.random.key_data(key), or draw an int with "
        "int(jax.random.randint(key, (), 0, 2**31 - 1))."
    )


def _index_array(x, name: str, n: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array; got {arr.dtype} with shape {arr.shape}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} must lie in [0, {n}); found {arr.min()}..{arr.max()}")
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Pool:
    """A split of example indices ``[0, num_examples)`` into labelled and unlabelled.

    Attributes:
        labeled: ``int64 [L]``, sorted, unique.
        unlabeled: ``int64 [U]``, sorted, unique, disjoint from ``labeled``.
        num_examples: ``N``, the size of the dataset the indices point into.
            Usually ``L + U == N``; indices held out of both (e.g. a validation
            set) are allowed.
    """

    labeled: np.ndarray
    unlabeled: np.ndarray
    num_examples: int

    def __post_init__(self):
        n = int(self.num_examples)
        lab = _index_array(self.labeled, "labeled", n)
        unl = _index_array(self.unlabeled, "unlabeled", n)
        for name, arr in (("labeled", lab), ("unlabeled", unl)):
            if arr.size > 1 and np.any(np.diff(arr) <= 0):
                raise ValueError(f"Pool.{name} must be sorted and unique")
        both = np.intersect1d(lab, unl, assume_unique=True)
        if both.size:
            raise ValueError(f"indices {both[:10].tolist()} are both labeled and unlabeled")
        lab.setflags(write=False)
        unl.setflags(write=False)
        object.__setattr__(self, "labeled", lab)
        object.__setattr__(self, "unlabeled", unl)
        object.__setattr__(self, "num_examples", n)

    @property
    def num_labeled(self) -> int:
        return int(self.labeled.size)

    @property
    def num_unlabeled(self) -> int:
        return int(self.unlabeled.size)

    def acquire(self, indices) -> "Pool":
        """A new pool with the dataset ``indices`` ``[K]`` moved from unlabelled to labelled.

        ``indices`` are dataset indices (not positions in ``unlabeled``); each
        must currently be unlabelled and appear once.
        """
        idx = _index_array(indices, "indices", self.num_examples)
        if np.unique(idx).size != idx.size:
            raise ValueError("acquire() got repeated indices")
        not_pool = np.setdiff1d(idx, self.unlabeled)
        if not_pool.size:
            raise ValueError(f"indices {not_pool[:10].tolist()} are not in the unlabeled pool")
        return Pool(np.union1d(self.labeled, idx), np.setdiff1d(self.unlabeled, idx), self.num_examples)

    def __repr__(self) -> str:
        return f"Pool(labeled={self.num_labeled}, unlabeled={self.num_unlabeled}, num_examples={self.num_examples})"


def initial_pool(labels, num_per_class: int, seed, num_classes: int | None = None) -> Pool:
    """A class-balanced initial labelled set: ``num_per_class`` random examples of each class.

    Args:
        labels: ``int [N]`` class of every example, in ``[0, num_classes)``.
        num_per_class: ``k``, examples drawn per class (Gal et al. 2017 use 2 on MNIST).
        seed: int seed, ``np.random.Generator`` or raw jax key (see module docstring).
        num_classes: ``C``; defaults to ``labels.max() + 1``.

    Returns:
        A :class:`Pool` with ``k * C`` labelled indices and the other ``N - k*C`` unlabelled.

    Raises:
        ValueError: labels not 1-D integers or out of range, ``k < 1``, ``k * C > N``,
            or a class with fewer than ``k`` examples (the message lists them).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array; got {labels.dtype} with shape {labels.shape}")
    n = labels.size
    if n == 0:
        raise ValueError("labels is empty")
    k = int(num_per_class)
    if k < 1:
        raise ValueError(f"num_per_class must be >= 1, got {num_per_class}")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0; found {labels.min()}")
    c = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.max() >= c:
        raise ValueError(f"labels must lie in [0, {c}) for num_classes={c}; found label {labels.max()}")
    if k * c > n:
        raise ValueError(f"num_per_class * num_classes = {k} * {c} = {k * c} exceeds the {n} examples")
    counts = np.bincount(labels, minlength=c)
    short = np.flatnonzero(counts < k)
    if short.size:
        detail = ", ".join(f"class {i}: {counts[i]}" for i in short[:10])
        raise ValueError(f"num_per_class={k} but some classes have fewer examples ({detail}); lower num_per_class")
    rng = as_generator(seed)
    chosen = [rng.choice(np.flatnonzero(labels == i), size=k, replace=False) for i in range(c)]
    labeled = np.sort(np.concatenate(chosen)).astype(np.int64)
    return Pool(labeled, np.setdiff1d(np.arange(n, dtype=np.int64), labeled), n)


def random_pool(num_examples: int, size: int, seed) -> Pool:
    """A random (not class-balanced) initial labelled set of ``size`` of ``num_examples`` indices."""
    n, m = int(num_examples), int(size)
    if n < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    if not 0 <= m <= n:
        raise ValueError(f"size must lie in [0, {n}], got {size}")
    labeled = np.sort(as_generator(seed).choice(n, size=m, replace=False)).astype(np.int64)
    return Pool(labeled, np.setdiff1d(np.arange(n, dtype=np.int64), labeled), n)
