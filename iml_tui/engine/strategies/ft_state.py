"""Farthest-first traversal that carries its bounds from one round to the next.

A round of FT starts from ``m[i] = min_{b in L} d(i, b)`` over the labelled set L. The traversal
works with upper bounds instead (see ``farthest.traverse_bounds``): each item holds the exact min
over a prefix of a sequence of centres, and only items that reach the top of its heap are brought
further. :class:`FtState` keeps, for every pool item, that bound and the length of its prefix, with
the sequence itself (the labels in the order they were folded in, then each round's picks). A later
round whose labelled set contains the sequence appends the new labels and goes on: it computes
distances only for the items that reach the top, and reads only their rows of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from iml_tui.atomic import atomic_save_npz
from iml_tui.engine.strategies.farthest import IntArray, as_embeddings, first_pass, traverse_bounds


@dataclass(frozen=True)
class FtState:
    """Per pool item (N,): ``bound``, the min of d(i, c) over the first ``seen[i]`` entries of
    ``centres`` (M,) int64 (+inf over none; 0 for the centres themselves); ``key`` names the pool.
    Built only from rounds that read every row of that pool (the first round reads them all)."""

    centres: IntArray
    bound: npt.NDArray[np.float64]
    seen: IntArray
    key: str

    @property
    def base(self) -> IntArray:
        """(M,) the centres, sorted."""
        out: IntArray = np.sort(self.centres)
        return out


def load_state(path: str | Path, key: str, n_pool: int) -> FtState | None:
    """The state saved at ``path``; None when absent, unreadable, malformed or of another pool."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            centres, bound, seen, saved_key = z["centres"], z["bound"], z["seen"], str(z["key"])
    except (OSError, ValueError, KeyError):
        return None
    if saved_key != key or bound.shape != (n_pool,) or seen.shape != (n_pool,) or centres.ndim != 1:
        return None
    centres = centres.astype(np.int64)
    seen = seen.astype(np.int64)
    if centres.size and (
        centres.min() < 0 or centres.max() >= n_pool or np.unique(centres).size != centres.size
    ):
        return None
    if seen.size and (seen.min() < 0 or seen.max() > centres.size):
        return None
    return FtState(centres, bound.astype(np.float64), seen, saved_key)


def save_state(path: str | Path, state: FtState) -> None:
    """Write ``state`` atomically (temp file in the same folder, then rename)."""
    atomic_save_npz(
        path, centres=state.centres, bound=state.bound, seen=state.seen, key=np.asarray(state.key)
    )


def state_usable(state: FtState | None, key: str, labeled: npt.ArrayLike) -> bool:
    """Whether ``state`` belongs to the pool ``key`` and all its centres are still labelled."""
    if state is None or state.key != key:
        return False
    return bool(np.isin(state.centres, np.asarray(labeled, dtype=np.int64)).all())


def farthest_round(
    x: npt.ArrayLike, n: int, labeled: npt.ArrayLike, state: FtState | None, key: str
) -> tuple[IntArray, FtState]:
    """FT(n, base = labeled, cand = the rest of the pool), carried on from ``state`` when usable
    (``state_usable``), else from scratch; returns the picks (pick order) and the state for
    base = labeled + picks. Same picks as ``farthest_traversal`` up to float rounding of ties."""
    xa = as_embeddings(x)
    n_pool = xa.shape[0]
    lab = np.unique(np.asarray(labeled, dtype=np.int64))
    mask = np.ones(n_pool, dtype=np.bool_)
    mask[lab] = False
    cand = np.flatnonzero(mask)
    n_picks = min(max(n, 0), cand.size)
    if state is not None and state_usable(state, key, lab):
        centres = np.concatenate(
            [state.centres, np.setdiff1d(lab, state.centres, assume_unique=True)]
        )
        bound, seen = state.bound.copy(), state.seen.copy()
    else:
        bound = np.full(n_pool, np.inf, dtype=np.float64)
        seen = np.zeros(n_pool, dtype=np.int64)
        bound[cand], centres, seen[cand] = first_pass(xa, lab, cand)
    picks, bound[cand], seen[cand] = traverse_bounds(
        xa, n_picks, cand, bound[cand], centres, seen[cand]
    )
    centres = np.concatenate([centres, picks])
    bound[centres] = 0.0
    seen[centres] = centres.size
    return picks, FtState(centres, bound, seen, key)
