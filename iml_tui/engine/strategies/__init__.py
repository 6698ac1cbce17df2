"""Pool-based selection strategies of the MFFT paper (EUSIPCO 2025): RAND, FT, MP, MFFT.

Functional API: ``select(strategy, state, n, rng)`` for one round after the first and
``initial_round(strategy, x, n, rng, k_pos, clip_targets)`` for the first (cold or warm) round.
Object API: ``get_strategy(name).query(state, n, rng)``. Numpy only; all randomness comes from the
given ``numpy.random.Generator``; ties are broken by the lowest pool index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from iml_tui.engine.strategies.farthest import (
    IntArray,
    as_embeddings,
    as_pool_indices,
    farthest_traversal,
    l2_normalize,
)
from iml_tui.engine.strategies.mismatch import (
    mismatch_degree,
    mismatch_degree_and_similarity,
    mismatch_select,
)
from iml_tui.engine.strategies.random import random_pick
from iml_tui.errors import UserError

__all__ = [
    "INIT_RULE",
    "STRATEGIES",
    "NamedStrategy",
    "SelectionState",
    "Strategy",
    "UnknownStrategyError",
    "farthest_traversal",
    "get_strategy",
    "initial_round",
    "l2_normalize",
    "mismatch_degree",
    "mismatch_degree_and_similarity",
    "mismatch_select",
    "random_pick",
    "select",
]

STRATEGIES: tuple[str, ...] = ("rand", "ft", "mp", "mfft")
INIT_RULE: dict[str, str] = {"rand": "rand", "ft": "ft", "mp": "rand", "mfft": "ft"}

# Rows of x sampled to check that the embeddings are L2-normalised (cheap, not exhaustive).
_NORM_CHECK_ROWS = 32
_NORM_TOL = 1e-3


class UnknownStrategyError(UserError, ValueError):
    """A strategy name that is not one of ``STRATEGIES``."""


def _check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise UnknownStrategyError(
            f"unknown strategy {name!r}", fix=f"use one of: {', '.join(STRATEGIES)}"
        )


@dataclass(frozen=True, eq=False)
class SelectionState:
    """What a strategy sees at the start of a round.

    x: (N, D) L2-normalised pooled embeddings; labeled: (L,) int64 pool indices in annotation
    order; labeled_targets: (L, C) clip-level 0/1 targets of those; probs: (N, C) clip-level
    probabilities of the current classifier or None; threshold: a clip is predicted positive for a
    class when ``prob >= threshold`` (compared in float64). Shapes are validated on construction,
    ``labeled`` is coerced to int64 and must not repeat, and a sample of rows of x is checked to
    have unit norm (ValueError otherwise; see ``l2_normalize``).
    """

    x: npt.NDArray[np.floating[Any]]
    labeled: IntArray
    labeled_targets: npt.NDArray[Any]
    probs: npt.NDArray[np.floating[Any]] | None = None
    threshold: float = 0.5

    def __post_init__(self) -> None:
        x = as_embeddings(self.x)
        n_pool = x.shape[0]
        labeled = as_pool_indices(self.labeled, n_pool, "labeled")
        if np.unique(labeled).size != labeled.size:
            raise ValueError("labeled must not repeat a pool index")
        targets = np.asarray(self.labeled_targets)
        if targets.ndim != 2 or targets.shape[0] != labeled.size:
            raise ValueError(
                f"labeled_targets must have shape ({labeled.size}, C), got {targets.shape}"
            )
        if self.probs is not None:
            probs = np.asarray(self.probs)
            if probs.shape != (n_pool, targets.shape[1]):
                raise ValueError(
                    f"probs must have shape ({n_pool}, {targets.shape[1]}), got {probs.shape}"
                )
            object.__setattr__(self, "probs", probs)
        rows = np.unique(np.linspace(0, n_pool - 1, min(n_pool, _NORM_CHECK_ROWS)).astype(int))
        norms = np.linalg.norm(x[rows].astype(np.float64), axis=1)
        if not np.all((np.abs(norms - 1.0) <= _NORM_TOL) | (norms == 0.0)):
            raise ValueError("x rows must be L2-normalised; use l2_normalize(x)")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "labeled", labeled)
        object.__setattr__(self, "labeled_targets", targets)


def initial_round(
    strategy: str,
    x: npt.ArrayLike,
    n: int,
    rng: np.random.Generator,
    k_pos: int = 0,
    clip_targets: npt.ArrayLike | None = None,
) -> IntArray:
    """The first round of ``n`` picks from the whole pool x (N, D), by ``INIT_RULE[strategy]``.

    Cold (k_pos = 0): one random clip, then n - 1 by the rule (FT with base = that clip). Warm
    (k_pos > 0): for each class in order, min(k_pos, #positives not yet taken) random clip-level
    positives from clip_targets (N, C) (stopping early if the budget n is reached), then filled up
    to n by the rule (FT with base = those taken); with no positive at all it starts cold.
    Returns (min(n, N),) int64 pool indices in pick order, without duplicates.
    """
    _check_strategy(strategy)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if k_pos < 0:
        raise ValueError(f"k_pos must be >= 0, got {k_pos}")
    xa = as_embeddings(x)
    n_pool = xa.shape[0]
    n_eff = min(n, n_pool)
    if n_eff == 0:
        return np.zeros(0, dtype=np.int64)
    base, rest, count = initial_base(n_pool, n_eff, rng, k_pos, clip_targets)
    if INIT_RULE[strategy] == "ft":
        fill = farthest_traversal(xa, n_eff - count, base, rest)
    else:
        fill = random_pick(n_eff - count, rest, rng)
    out: IntArray = np.concatenate([base, fill])
    return out


def initial_base(
    n_pool: int,
    n_eff: int,
    rng: np.random.Generator,
    k_pos: int,
    clip_targets: npt.ArrayLike | None,
) -> tuple[IntArray, IntArray, int]:
    """The random part of ``initial_round``: (picks so far (B,) in pick order, the rest of the
    pool (N - B,) sorted, B); n_eff >= 1."""
    taken: list[IntArray] = []
    mask = np.zeros(n_pool, dtype=np.bool_)
    count = 0
    if k_pos > 0:
        if clip_targets is None:
            raise ValueError("a warm start (k_pos > 0) needs clip_targets (N, C)")
        targets = np.asarray(clip_targets)
        if targets.ndim != 2 or targets.shape[0] != n_pool:
            raise ValueError(f"clip_targets must have shape ({n_pool}, C), got {targets.shape}")
        for c in range(targets.shape[1]):
            if count == n_eff:
                break
            pos = np.flatnonzero((targets[:, c] > 0) & ~mask)
            picked = random_pick(min(k_pos, pos.size, n_eff - count), pos, rng)
            mask[picked] = True
            taken.append(picked)
            count += picked.size
    if count == 0:
        first = random_pick(1, np.arange(n_pool), rng)
        mask[first] = True
        taken.append(first)
        count = 1
    return np.concatenate(taken), np.flatnonzero(~mask), count


def select(strategy: str, state: SelectionState, n: int, rng: np.random.Generator) -> IntArray:
    """One round of ``n`` picks from U = the pool minus ``state.labeled``.

    rand: RAND(n, U); ft: FT(n, base = labeled, cand = U); mp / mfft: mismatch degree of U
    (predictions ``probs[U] >= threshold`` against the 1-NN labelled neighbour), then
    ``mismatch_select``; they need ``state.probs`` (ValueError if None). With nothing labelled yet
    this is ``initial_round(strategy, x, n, rng)`` (cold start).
    Returns (min(n, |U|),) int64 pool indices in pick order.
    """
    _check_strategy(strategy)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    x, labeled = state.x, state.labeled
    if labeled.size == 0:
        return initial_round(strategy, x, n, rng)
    mask = np.ones(x.shape[0], dtype=np.bool_)
    mask[labeled] = False
    unlabeled = np.flatnonzero(mask)
    if strategy == "rand":
        return random_pick(n, unlabeled, rng)
    if strategy == "ft":
        return farthest_traversal(x, n, labeled, unlabeled)
    if state.probs is None:
        raise ValueError(f"strategy {strategy!r} needs the classifier's probs (N, C)")
    pred = state.probs[unlabeled].astype(np.float64, copy=False) >= float(state.threshold)
    mis, sim = mismatch_degree_and_similarity(x, unlabeled, labeled, state.labeled_targets, pred)
    return mismatch_select(x, n, strategy, unlabeled, labeled, mis, rng, labeled_sim=sim)


class Strategy(Protocol):
    """Object-style strategy: ``query(state, n, rng)`` returns (<= n,) int64 pool indices."""

    @property
    def name(self) -> str: ...

    def query(self, state: SelectionState, n: int, rng: np.random.Generator) -> IntArray: ...


@dataclass(frozen=True)
class NamedStrategy:
    """A thin wrapper binding a strategy name to ``select`` and ``initial_round``."""

    name: str

    def __post_init__(self) -> None:
        _check_strategy(self.name)

    def query(self, state: SelectionState, n: int, rng: np.random.Generator) -> IntArray:
        """``select(self.name, state, n, rng)``."""
        return select(self.name, state, n, rng)

    def initial(
        self,
        x: npt.ArrayLike,
        n: int,
        rng: np.random.Generator,
        k_pos: int = 0,
        clip_targets: npt.ArrayLike | None = None,
    ) -> IntArray:
        """``initial_round(self.name, x, n, rng, k_pos, clip_targets)``."""
        return initial_round(self.name, x, n, rng, k_pos, clip_targets)


def get_strategy(name: str) -> NamedStrategy:
    """The strategy object for ``name`` (one of ``STRATEGIES``)."""
    return NamedStrategy(name)
