"""Search by example: the pool clips nearest to one clip, by cosine on the pooled embeddings.

The selection array (``derived/pooled_max_l2``, (N, D) time-max-pooled and L2-normalised) is
read once; a query costs one (N, D) x (D,) product in row blocks, exact, never N x N. Each row's
dot product is the same sum wherever the row sits in a block (einsum, not the BLAS matrix-vector
kernel, whose rounding depends on the row's position), so identical clips tie, and ties go to the
lower pool index.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

BLOCK_ROWS = 65536


def unit(v: np.ndarray) -> np.ndarray:
    """(D,) float32 of length 1 (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def nearest(
    x: np.ndarray, query: np.ndarray, k: int, exclude: Iterable[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of x (N, D), L2-normalised, most similar to ``query`` (D,): (indices (k,),
    cosines (k,)), most similar first; rows in ``exclude`` are left out."""
    q = unit(query)
    sims = np.empty(x.shape[0], dtype=np.float32)
    for lo in range(0, x.shape[0], BLOCK_ROWS):
        block = np.asarray(x[lo : lo + BLOCK_ROWS], dtype=np.float32)
        sims[lo : lo + BLOCK_ROWS] = np.einsum("ij,j->i", block, q)
    skip = np.fromiter((int(i) for i in exclude), dtype=np.int64)
    if skip.size:
        sims[skip] = -np.inf
    k = max(0, min(k, int(np.isfinite(sims).sum())))
    order = np.lexsort((np.arange(sims.size), -sims))[:k]
    return order.astype(np.int64), sims[order]
