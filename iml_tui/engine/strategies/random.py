"""Uniform random selection without replacement."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def random_pick(n: int, candidates: npt.ArrayLike, rng: np.random.Generator) -> IntArray:
    """``n`` uniform picks without replacement from ``candidates`` (K,) pool indices.

    Candidates are deduplicated and sorted first, so the result depends only on the candidate set
    and the generator state. Returns (min(n, K),) int64 pool indices in pick order; n = 0 (or no
    candidates) returns an empty array without drawing from ``rng``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    arr = np.asarray(candidates)
    if arr.size and (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"candidates must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    cand = np.unique(arr.astype(np.int64, copy=False))
    k = min(n, cand.size)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    picked: IntArray = cand[rng.choice(cand.size, size=k, replace=False)]
    return picked
