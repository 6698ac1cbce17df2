"""Farthest-first traversal that carries its min-distance vector from one round to the next.

A round of FT starts from ``m[i] = min_{b in L} d(i, b)`` over the labelled set L: an |L| x N
product, the largest cost of a round at paper scale. At the end of a round the traversal already
holds ``min_{b in L + picks} d(i, b)``, which is exactly the start of the next round when the picks
were labelled. :class:`FtState` keeps that vector (N,) with its base set; a later round whose
labelled set contains the base only adds the distances to the labels that are new.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from iml_tui.engine.strategies.farthest import (
    IntArray,
    as_embeddings,
    min_distance_to,
    traverse,
)

FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class FtState:
    """``dmin`` (N,) in the pool's dtype: min over the sorted ``base`` (B,) int64 of d(i, b) for
    every pool item (0 on the base); ``key`` names the pool it belongs to."""

    base: IntArray
    dmin: FloatArray
    key: str


def load_state(path: str | Path, key: str, n_pool: int) -> FtState | None:
    """The state saved at ``path``, or None when absent, unreadable or of another pool."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            base, dmin, saved_key = z["base"], z["dmin"], str(z["key"])
    except (OSError, ValueError, KeyError):
        return None
    if saved_key != key or dmin.shape != (n_pool,) or base.ndim != 1:
        return None
    return FtState(base.astype(np.int64), dmin, saved_key)


def save_state(path: str | Path, state: FtState) -> None:
    """Write ``state`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, base=state.base, dmin=state.dmin, key=np.asarray(state.key))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def farthest_round(x: npt.ArrayLike, n: int, labeled: npt.ArrayLike, state: FtState | None,
                   key: str) -> tuple[IntArray, FtState]:
    """FT(n, base = labeled, cand = the rest of the pool), started from ``state`` when its base is
    a subset of ``labeled`` (else from scratch); returns the picks (pick order) and the state for
    base = labeled + picks. Same picks as ``farthest_traversal`` up to float rounding of ties."""
    xa = as_embeddings(x)
    n_pool = xa.shape[0]
    lab = np.unique(np.asarray(labeled, dtype=np.int64))
    mask = np.ones(n_pool, dtype=np.bool_)
    mask[lab] = False
    cand = np.flatnonzero(mask)
    n_picks = min(max(n, 0), cand.size)
    usable = state is not None and state.key == key and bool(np.isin(state.base, lab).all())
    if usable:
        assert state is not None
        dmin = state.dmin.astype(xa.dtype)
        new = np.setdiff1d(lab, state.base, assume_unique=True)
    else:
        dmin = np.full(n_pool, np.inf, dtype=xa.dtype)
        new = lab
    if new.size:
        np.minimum(dmin, min_distance_to(xa, new), out=dmin)
    picks = traverse(xa, n_picks, cand, dmin[cand])
    if n_picks:
        np.minimum(dmin, min_distance_to(xa, picks), out=dmin)
    dmin[lab] = 0.0
    dmin[picks] = 0.0
    return picks, FtState(np.union1d(lab, picks).astype(np.int64), dmin, key)
