"""Mismatch degree and the mismatch-first selections MP and MFFT (EUSIPCO 2025)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from iml_tui.engine.strategies.farthest import (
    FloatArray,
    IntArray,
    as_embeddings,
    as_pool_indices,
    max_similarity,
    traverse,
)
from iml_tui.engine.strategies.random import random_pick

MismatchMode = Literal["mp", "mfft"]


def _as_binary(a: npt.ArrayLike, shape0: int, name: str) -> npt.NDArray[np.bool_]:
    """``a`` (shape0, C) holding only 0/1 (or bool) as a bool array."""
    arr = np.asarray(a)
    if arr.ndim != 2 or arr.shape[0] != shape0:
        raise ValueError(f"{name} must have shape ({shape0}, C), got {arr.shape}")
    if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 values")
    return arr.astype(np.bool_, copy=False)


def mismatch_degree(
    x: npt.ArrayLike,
    candidates: npt.ArrayLike,
    labeled: npt.ArrayLike,
    labeled_targets: npt.ArrayLike,
    candidate_pred: npt.ArrayLike,
) -> IntArray:
    """Hamming distance between each candidate's prediction and its nearest labelled neighbour.

    x: (N, D) L2-normalised embeddings; candidates: (K,) pool indices; labeled: (L,) pool
    indices, L >= 1; labeled_targets: (L, C) clip-level 0/1 targets aligned with ``labeled``;
    candidate_pred: (K, C) binarised clip-level predictions aligned with ``candidates``.
    The neighbour is the 1-NN in ``d = 1 - x_i . x_j`` over ``labeled`` (ties -> lowest pool
    index), found in blocks. Returns (K,) int64 in {0..C}, in candidate order.
    """
    return mismatch_degree_and_similarity(x, candidates, labeled, labeled_targets, candidate_pred)[
        0
    ]


def mismatch_degree_and_similarity(
    x: npt.ArrayLike,
    candidates: npt.ArrayLike,
    labeled: npt.ArrayLike,
    labeled_targets: npt.ArrayLike,
    candidate_pred: npt.ArrayLike,
) -> tuple[IntArray, FloatArray]:
    """``mismatch_degree`` (K,) and each candidate's max similarity to ``labeled`` (K,) in x's
    dtype (``1 - `` its min distance), which ``mismatch_select`` can reuse for MFFT."""
    xa = as_embeddings(x)
    n_pool = xa.shape[0]
    cand = as_pool_indices(candidates, n_pool, "candidates")
    lab = as_pool_indices(labeled, n_pool, "labeled")
    if lab.size == 0:
        raise ValueError("mismatch degree needs at least one labelled item")
    targets = _as_binary(labeled_targets, lab.size, "labeled_targets")
    pred = _as_binary(candidate_pred, cand.size, "candidate_pred")
    if pred.shape[1] != targets.shape[1]:
        raise ValueError(
            f"candidate_pred has {pred.shape[1]} classes, labeled_targets {targets.shape[1]}"
        )
    order = np.argsort(lab, kind="stable")
    sim, nn = max_similarity(xa, cand, lab[order])
    q = targets[order][nn]
    mis: IntArray = np.count_nonzero(pred != q, axis=1).astype(np.int64)
    return mis, sim


def mismatch_select(
    x: npt.ArrayLike,
    n: int,
    mode: str,
    candidates: npt.ArrayLike,
    labeled: npt.ArrayLike,
    mis: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    labeled_sim: npt.ArrayLike | None = None,
) -> IntArray:
    """One MP or MFFT round: ``n`` picks from ``candidates`` (K,) bucketed by ``mis`` (K,).

    Groups = candidates with equal mis, highest mis first (mis = 0 last), each in ascending pool
    index order. Whole groups are taken while they fit in the remaining budget; in the first group
    that does not fit, the rest of the budget is ``random_pick`` of that group (mode "mp") or
    ``farthest_traversal`` of it with base = labeled (L,) + everything taken so far this round
    (mode "mfft"); then stop. ``rng`` is drawn from only in mode "mp". ``labeled_sim`` (K,),
    optional: each candidate's max similarity to ``labeled`` (from
    ``mismatch_degree_and_similarity``), saves recomputing it for MFFT.
    Returns (min(n, K),) int64 pool indices in pick order.
    """
    if mode not in ("mp", "mfft"):
        raise ValueError(f"mode must be 'mp' or 'mfft', got {mode!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    xa = as_embeddings(x)
    n_pool = xa.shape[0]
    cand = as_pool_indices(candidates, n_pool, "candidates")
    lab = as_pool_indices(labeled, n_pool, "labeled")
    mis_arr: npt.NDArray[Any] = np.asarray(mis)
    if mis_arr.shape != cand.shape:
        raise ValueError(f"mis must have shape {cand.shape}, got {mis_arr.shape}")
    if np.unique(cand).size != cand.size:
        raise ValueError("candidates must not repeat")
    if np.isin(cand, lab).any():
        raise ValueError("candidates must not be labelled")
    lab_sim = None if labeled_sim is None else np.asarray(labeled_sim, dtype=xa.dtype)
    if lab_sim is not None and lab_sim.shape != cand.shape:
        raise ValueError(f"labeled_sim must have shape {cand.shape}, got {lab_sim.shape}")

    def fill(remaining: int, group: IntArray, taken: list[IntArray], pos: IntArray) -> IntArray:
        return _mfft_fill(xa, remaining, group, lab, taken, lab_sim, pos)

    return mismatch_walk(n, mode, cand, mis_arr, rng, fill)


MfftFill = Callable[[int, IntArray, list[IntArray], IntArray], IntArray]


def mismatch_walk(
    n: int,
    mode: str,
    cand: IntArray,
    mis: npt.NDArray[Any],
    rng: np.random.Generator,
    mfft_fill: MfftFill,
) -> IntArray:
    """The group walk of ``mismatch_select`` over checked inputs: ``mfft_fill(remaining, group,
    taken, pos)`` gives the FT part for mode "mfft" (group (G,) sorted, ``pos`` its positions in
    ``cand``, ``taken`` the groups taken whole so far)."""
    taken: list[IntArray] = []
    remaining = n
    for value in np.unique(mis)[::-1]:
        if remaining == 0:
            break
        pos = np.flatnonzero(mis == value)
        pos = pos[np.argsort(cand[pos])]
        group = cand[pos]
        if group.size <= remaining:
            taken.append(group)
            remaining -= group.size
            continue
        if mode == "mp":
            taken.append(random_pick(remaining, group, rng))
        else:
            taken.append(mfft_fill(remaining, group, taken, pos))
        break
    if not taken:
        return np.zeros(0, dtype=np.int64)
    out: IntArray = np.concatenate(taken).astype(np.int64, copy=False)
    return out


def _mfft_fill(
    xa: FloatArray,
    n_picks: int,
    group: IntArray,
    lab: IntArray,
    taken: list[IntArray],
    lab_sim: FloatArray | None,
    pos: IntArray,
) -> IntArray:
    """FT(n_picks, base = lab + taken, cand = group): group (G,) sorted, disjoint from the base,
    n_picks < G; ``lab_sim[pos]`` (G,), when given, is the group's max similarity to ``lab``."""
    taken_idx = np.unique(np.concatenate(taken)) if taken else np.zeros(0, dtype=np.int64)
    if lab_sim is None:
        best, _ = max_similarity(xa, group, np.unique(np.concatenate([lab, taken_idx])))
    else:
        best = lab_sim[pos]
        if taken_idx.size:
            best = np.maximum(best, max_similarity(xa, group, taken_idx)[0])
    m: FloatArray = np.subtract(1, best, dtype=xa.dtype)
    return traverse(xa, n_picks, group, m)
