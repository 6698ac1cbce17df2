"""Farthest-first traversal (greedy k-centre) on cosine distance, never building an N x N matrix.

Distance: ``d(i, j) = 1 - x_i . x_j`` on L2-normalised rows of the pool embeddings ``x`` (N, D).
The first pass bounds each candidate's min-distance to the base from a spread subset of the base,
in bounded-memory blocks; the traversal then keeps these upper bounds in a heap and brings a
candidate up to date against the rest of the base and the picks only when it reaches the top.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.floating[Any]]

# Block sizing for candidate x base products: at most this many bytes and rows per block.
_BLOCK_BYTES = 32 * 2**20
_MAX_BLOCK_ROWS = 1024
# A round's first pass compares every candidate with at most this many base rows, spread over the
# base; the traversal folds in the rest only for candidates that reach the top of its heap.
_SEED_CENTRES = 64
# Stale candidates brought up to date together, in one matrix product.
_REFINE_BATCH = 64


def block_rows(ncols: int, itemsize: int) -> int:
    """Rows per block so that a (rows, ncols) block of ``itemsize``-byte items fits the budget."""
    return max(1, min(_MAX_BLOCK_ROWS, _BLOCK_BYTES // max(1, ncols * itemsize)))


def as_embeddings(x: npt.ArrayLike) -> FloatArray:
    """``x`` as a 2-D float array (N, D); float32/float64 kept as is, other dtypes -> float64."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def as_pool_indices(idx: npt.ArrayLike, n_pool: int, name: str) -> IntArray:
    """``idx`` as a 1-D int64 array of pool indices (K,), checked to lie in [0, n_pool)."""
    arr = np.asarray(idx)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    out = arr.astype(np.int64, copy=False)
    if out.min() < 0 or out.max() >= n_pool:
        raise ValueError(f"{name} holds indices outside the pool [0, {n_pool})")
    return out


def l2_normalize(x: npt.ArrayLike, eps: float = 1e-12) -> FloatArray:
    """Rows of ``x`` (N, D) scaled to unit L2 norm (zero rows stay zero); dtype kept if float."""
    arr = as_embeddings(x)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    out: FloatArray = arr / np.maximum(norms, eps).astype(arr.dtype)
    return out


def max_similarity(
    x: FloatArray,
    rows: IntArray,
    others: IntArray,
    rows_data: FloatArray | None = None,
    others_data: FloatArray | None = None,
) -> tuple[FloatArray, IntArray]:
    """Per row r: max over ``others`` of ``x_r . x_o`` and the position in ``others`` of the max.

    x: (N, D); rows: (K,) pool indices (any order); others: (M,) pool indices; ``rows_data``, when
    given, is ``x[rows]`` (K, D) already gathered; ``others_data``, when given, stands for
    ``x[others]`` (M, D) (rows held elsewhere, e.g. by another shard of the pool). Returns (K,)
    maxima in x's dtype (-inf if M = 0) and (K,) int64 positions (-1 if M = 0); ties -> the
    first position in ``others``. Computed in blocks of at most ``_BLOCK_BYTES``; never K x M.
    """
    k, m = rows.size, others.size
    best: FloatArray = np.full(k, -np.inf, dtype=x.dtype)
    arg: IntArray = np.full(k, -1, dtype=np.int64)
    if k == 0 or m == 0:
        return best, arg
    d, isz = x.shape[1], x.dtype.itemsize
    ob = min(m, block_rows(d, isz))
    rb = block_rows(max(ob, d), isz)
    if others_data is not None:
        xo_once = others_data if ob == m else None
    else:
        xo_once = x[others] if ob == m else None
    for r0 in range(0, k, rb):
        r1 = min(k, r0 + rb)
        xr = rows_data[r0:r1] if rows_data is not None else x[rows[r0:r1]]
        b_best, b_arg = best[r0:r1], arg[r0:r1]
        for o0 in range(0, m, ob):
            o1 = min(m, o0 + ob)
            if xo_once is not None:
                xo = xo_once
            elif others_data is not None:
                xo = others_data[o0:o1]
            else:
                xo = x[others[o0:o1]]
            sim = xr @ xo.T
            j = np.argmax(sim, axis=1)
            v = sim[np.arange(r1 - r0), j]
            upd = v > b_best
            b_best[upd] = v[upd]
            b_arg[upd] = j[upd] + o0
    return best, arg


def traverse(xa: FloatArray, n_picks: int, cand: IntArray, m: FloatArray) -> IntArray:
    """The FT loop: ``n_picks`` <= K picks from sorted unique ``cand`` (K,), given ``m`` (K,), each
    candidate's min distance to the base, left unchanged. Each step picks
    ``argmax_c min(m[c], min over the picks so far of d(c, p))`` (first on ties), the same as
    updating all of ``m`` with one matrix-vector product per pick, but lazily (``traverse_bounds``).
    """
    return traverse_bounds(xa, n_picks, cand, m)[0]


def traverse_bounds(
    xa: FloatArray,
    n_picks: int,
    cand: IntArray,
    m: FloatArray,
    centres: IntArray | None = None,
    seen: IntArray | None = None,
) -> tuple[IntArray, npt.NDArray[np.float64], IntArray]:
    """``traverse`` that also says how far each candidate was brought up to date.

    The centre sequence is ``centres`` (R,) followed by the picks as they are made; ``m`` (K,) is,
    per candidate, the exact min distance over the first ``seen`` (K,) centres (default: none of
    them; +inf when there is nothing). A max-heap holds these upper bounds, and only candidates
    reaching its top are brought up to date (in batches) against the centres they have not seen.
    Bounds only fall, so the first up-to-date candidate on top is the exact maximum, and the heap
    order (bound, then position) keeps the lowest-index rule.

    Returns the picks (n_picks,), and per candidate the bound (K,) float64 and the number of centres
    (K,) int64 it holds, of the sequence ``centres`` + picks.
    """
    picks: IntArray = np.empty(n_picks, dtype=np.int64)
    if n_picks == 0:
        return (
            picks,
            np.asarray(m, dtype=np.float64).copy(),
            np.zeros(cand.size, dtype=np.int64)
            if seen is None
            else np.asarray(seen, dtype=np.int64).copy(),
        )
    walk = LazyTraversal(xa, cand, m, centres, seen, n_picks)
    for t in range(n_picks):
        j = walk.top()[1]
        picks[t] = cand[j]
        walk.pop_top()
        walk.add_centre(xa[cand[j]])
    return picks, walk.bound, walk.seen


class LazyTraversal:
    """The state of ``traverse_bounds`` between picks, for drivers that choose each pick.

    xa: (N', D) rows; cand: (K,) row indices into xa; m: (K,) bounds over the first ``seen`` (K,)
    rows of the centre sequence (``centres`` (R,) rows of xa, then every ``add_centre`` row);
    ``room``: how many centres will be added (rows preallocated; more grow the buffer).
    """

    def __init__(
        self,
        xa: FloatArray,
        cand: IntArray,
        m: npt.ArrayLike,
        centres: IntArray | None = None,
        seen: IntArray | None = None,
        room: int = 0,
        centre_rows: FloatArray | None = None,
    ) -> None:
        self.xa, self.cand = xa, cand
        self.bound = np.asarray(m, dtype=np.float64).copy()
        self.seen: IntArray = (
            np.zeros(cand.size, dtype=np.int64)
            if seen is None
            else np.asarray(seen, dtype=np.int64).copy()
        )
        if centre_rows is not None:
            n_pending = centre_rows.shape[0]
        else:
            n_pending = 0 if centres is None else centres.size
        self.known = n_pending
        self.rows = np.empty((n_pending + max(room, 1), xa.shape[1]), dtype=xa.dtype)
        if centre_rows is not None:
            self.rows[:n_pending] = centre_rows
        elif centres is not None and n_pending and cand.size:
            first = min(int(self.seen.min()), n_pending)  # rows no candidate needs are not read
            self.rows[first:n_pending] = xa[centres[first:]]
        self.heap = list(zip((-self.bound).tolist(), range(cand.size), strict=True))
        heapq.heapify(self.heap)

    def top(self) -> tuple[float, int]:
        """(exact min distance to every centre so far, position in cand) of the farthest
        candidate, lowest position on ties; (-inf, -1) when none is left. Leaves it on the heap."""
        heap, seen, bound, known = self.heap, self.seen, self.bound, self.known
        batch_size = 1
        while heap:
            stale: list[int] = []
            while heap and len(stale) < batch_size and seen[heap[0][1]] < known:
                stale.append(heapq.heappop(heap)[1])
            batch_size = min(2 * batch_size, _REFINE_BATCH)
            if not stale:
                j = heap[0][1]
                return float(bound[j]), j
            batch = np.asarray(stale, dtype=np.int64)
            for lo in np.unique(seen[batch]).tolist():
                js = batch[seen[batch] == lo]
                sims = self.xa[self.cand[js]] @ self.rows[lo:known].T
                d = np.subtract(1, sims.max(axis=1), dtype=self.xa.dtype)
                bound[js] = np.minimum(bound[js], d)
            seen[batch] = known
            for j in stale:
                heapq.heappush(heap, (-bound[j], j))
        return -np.inf, -1

    def pop_top(self) -> int:
        """Remove the candidate ``top`` names from the heap; its position in cand."""
        return heapq.heappop(self.heap)[1]

    def add_centre(self, row: FloatArray) -> None:
        """Append one centre (D,) to the sequence; bounds are brought up to it lazily."""
        if self.known == self.rows.shape[0]:
            self.rows = np.concatenate([self.rows, np.empty_like(self.rows)])
        self.rows[self.known] = row
        self.known += 1


def spread_subset(xa: FloatArray, rows: IntArray, k: int) -> IntArray:
    """Sorted (min(k, R),) subset of ``rows`` (R,) chosen by farthest-first traversal among them,
    starting from the first: every row of ``rows`` is near some member, so distances to the subset
    are tight upper bounds of distances to all of ``rows``."""
    if rows.size <= k:
        return np.sort(rows)
    xr = xa[rows]
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = 0
    dmin = np.subtract(1, xr @ xr[0], dtype=xa.dtype)
    for i in range(1, k):
        j = int(np.argmax(dmin))
        chosen[i] = j
        np.minimum(dmin, np.subtract(1, xr @ xr[j], dtype=xa.dtype), out=dmin)
    out: IntArray = np.sort(rows[chosen])
    return out


def farthest_traversal(
    x: npt.ArrayLike, n: int, base: npt.ArrayLike, candidates: npt.ArrayLike
) -> IntArray:
    """Greedy k-centre: ``n`` picks from ``candidates``, each the farthest from base + picks so far.

    x: (N, D) embeddings with L2-normalised rows (see ``l2_normalize``); base: (B,) pool indices;
    candidates: (K,) pool indices (deduplicated; candidates that are in ``base`` are never picked).
    ``m[c] = min_b d(c, b)`` (+inf for an empty base, so the first pick is the lowest candidate),
    then n times: ``s = argmax m`` (ties -> lowest pool index), ``m = min(m, d(., s))``.
    Returns (min(n, K'),) int64 pool indices in pick order. Works in x's dtype.
    """
    xa = as_embeddings(x)
    n_pool = xa.shape[0]
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base_idx = np.unique(as_pool_indices(base, n_pool, "base"))
    cand = np.unique(as_pool_indices(candidates, n_pool, "candidates"))
    if base_idx.size:
        cand = cand[~np.isin(cand, base_idx, assume_unique=True)]
    n_picks = min(n, cand.size)
    if n_picks == 0:
        return np.zeros(0, dtype=np.int64)
    m, centres, n_seen = first_pass(xa, base_idx, cand)
    seen = np.full(cand.size, n_seen, dtype=np.int64)
    return traverse_bounds(xa, n_picks, cand, m, centres, seen)[0]


def first_pass(xa: FloatArray, base: IntArray, cand: IntArray) -> tuple[FloatArray, IntArray, int]:
    """Upper bounds (K,) of each candidate's min distance to the sorted ``base`` (B,): exact when
    the base or the candidates (K,) are few, else over a spread subset of ``_SEED_CENTRES`` base
    rows. Also returns the base reordered with that subset first (B,) and the subset's size, the
    number of those centres the bounds hold (+inf bounds for an empty base)."""
    first = base
    if base.size > 2 * _SEED_CENTRES and cand.size > 2 * _SEED_CENTRES:
        first = spread_subset(xa, base, _SEED_CENTRES)
    centres = np.concatenate([first, base[~np.isin(base, first, assume_unique=True)]])
    best, _ = max_similarity(xa, cand, first)
    m: FloatArray = np.subtract(1, best, dtype=xa.dtype)  # empty base: 1 - (-inf) = +inf
    return m, centres, int(first.size)
