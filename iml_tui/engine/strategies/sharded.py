"""Exact selection over a pool held in K row shards (one worker each: in this process, a process
each, or a Ray actor each; see :mod:`iml_tui.parallel.actors`).

Shard k holds the contiguous rows [lo_k, hi_k) of the L2-normalised (N, D) array and, during a
farthest-first traversal, its candidates' running min-distance bounds (``LazyTraversal``). Per pick
each shard brings its own top up to date and reports (bound, global index, row); the driver takes
the largest bound, lowest global index on ties, and sends that row to every shard as the new
centre. Nearest-labelled-neighbour passes (MP, MFFT) run per shard against the labelled rows,
which the driver gathers from their shards. The picks are those of the single-process engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from iml_tui.engine.strategies import INIT_RULE, STRATEGIES, initial_base
from iml_tui.engine.strategies import farthest as _ft
from iml_tui.engine.strategies.farthest import (
    FloatArray,
    IntArray,
    LazyTraversal,
    as_embeddings,
    max_similarity,
    spread_subset,
)
from iml_tui.engine.strategies.mismatch import mismatch_walk
from iml_tui.engine.strategies.random import random_pick
from iml_tui.errors import UserError
from iml_tui.parallel.actors import ActorGroup, make_group


def shard_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """K contiguous row ranges covering [0, n), sizes differing by at most one (k <= n)."""
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


class ShardWorker:
    """Rows [lo, hi) of the pool; built from an array slice or from a pool store's row range."""

    def __init__(
        self,
        lo: int,
        rows: FloatArray | None = None,
        store_path: str | None = None,
        hi: int | None = None,
    ) -> None:
        if rows is None:
            from iml_tui.data.store import PoolStore

            assert store_path is not None and hi is not None
            rows = PoolStore(store_path).pooled_rows(lo, hi)
        self.lo = lo
        self.x = as_embeddings(rows)
        self.hi = lo + self.x.shape[0]
        self.walk: LazyTraversal | None = None
        self.cand: IntArray = np.zeros(0, dtype=np.int64)

    def _local(self, idx: IntArray) -> IntArray:
        return idx[(idx >= self.lo) & (idx < self.hi)] - self.lo

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the process holding this shard, in MB (VmHWM; 0 where
        /proc is absent): what the shard costs its node."""
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def info(self) -> tuple[int, int, str]:
        """(rows, D, dtype name)."""
        return self.x.shape[0], self.x.shape[1], str(self.x.dtype)

    def rows(self, idx: IntArray) -> FloatArray:
        """The rows of those global indices ``idx`` (sorted) that this shard holds, in order."""
        out: FloatArray = self.x[self._local(idx)]
        return out

    def nearest(self, cand: IntArray, others: FloatArray) -> tuple[FloatArray, IntArray]:
        """``max_similarity`` of this shard's part of ``cand`` (global, sorted) against the rows
        ``others`` (M, D)."""
        local = self._local(cand)
        return max_similarity(
            self.x,
            local,
            np.arange(others.shape[0]),
            others_data=others.astype(self.x.dtype, copy=False),
        )

    def ft_start(
        self, cand: IntArray, m: FloatArray | None, centres: FloatArray, n_seen: int, room: int
    ) -> tuple[float, int, FloatArray | None]:
        """Start a traversal over this shard's part of ``cand`` (global, sorted). ``m`` (K_k,):
        its bounds, or None to compute them over the first ``n_seen`` rows of ``centres`` (R, D),
        the centre sequence so far. Returns this shard's ``top``."""
        local = self._local(cand)
        cen = centres.astype(self.x.dtype, copy=False)
        if m is None:
            best, _ = max_similarity(self.x, local, np.arange(n_seen), others_data=cen[:n_seen])
            m = np.subtract(1, best, dtype=self.x.dtype)
        seen = np.full(local.size, n_seen, dtype=np.int64)
        self.cand = local
        self.walk = LazyTraversal(self.x, local, m, seen=seen, room=room, centre_rows=cen)
        return self.top()

    def top(self) -> tuple[float, int, FloatArray | None]:
        """(exact bound, global index, row) of this shard's farthest candidate, or
        (-inf, -1, None) when it has none left."""
        assert self.walk is not None
        value, j = self.walk.top()
        if j < 0:
            return value, -1, None
        i = int(self.cand[j])
        return value, i + self.lo, self.x[i].copy()

    def ft_step(self, picked: int, row: FloatArray) -> tuple[float, int, FloatArray | None]:
        """Fold in the pick ``picked`` (global) with its ``row`` (D,); the new ``top``."""
        assert self.walk is not None
        if self.lo <= picked < self.hi:
            self.walk.pop_top()
        self.walk.add_centre(row.astype(self.x.dtype, copy=False))
        return self.top()

    def ft_end(self) -> None:
        self.walk = None


class ShardedPool:
    """The driver side: K shards of an (N, D) pool, with the operations the strategies need."""

    def __init__(self, group: ActorGroup, bounds: Sequence[tuple[int, int]]) -> None:
        self.group = group
        self.bounds = list(bounds)
        info = group.call("info", [() for _ in bounds])
        self.n = self.bounds[-1][1]
        self.d = int(info[0][1])
        for (lo, hi), (rows, d, _) in zip(self.bounds, info, strict=True):
            if rows != hi - lo or d != self.d:
                raise UserError(f"a shard holds {rows} x {d} rows, expected {hi - lo} x {self.d}")

    @classmethod
    def from_array(
        cls, x: npt.ArrayLike, k: int, executor: str = "local", ray_address: str | None = None
    ) -> ShardedPool:
        """Shards of the in-memory (N, D) array ``x`` (each worker gets a copy of its rows)."""
        xa = as_embeddings(x)
        bounds = shard_bounds(xa.shape[0], _check_k(k, xa.shape[0]))
        group = make_group(
            executor, ShardWorker, [(lo, xa[lo:hi]) for lo, hi in bounds], ray_address
        )
        return cls(group, bounds)

    @classmethod
    def from_store(
        cls,
        path: str | Path,
        n: int,
        k: int,
        executor: str = "local",
        ray_address: str | None = None,
        num_cpus: float | None = None,
    ) -> ShardedPool:
        """Shards of a pool store's selection array: each worker reads only its row range (the
        file must be reachable at ``path`` from every worker). num_cpus: each Ray actor's CPU
        request (None: 1, scaled down so all K fit on the cluster)."""
        bounds = shard_bounds(n, _check_k(k, n))
        path = str(Path(path).resolve())
        group = make_group(
            executor,
            ShardWorker,
            [(lo, None, path, hi) for lo, hi in bounds],
            ray_address,
            num_cpus,
        )
        return cls(group, bounds)

    def close(self) -> None:
        self.group.close()

    def __enter__(self) -> ShardedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _all(self, method: str, *args: Any) -> list[Any]:
        return self.group.call(method, [args] * len(self.bounds))

    def rows(self, idx: npt.ArrayLike) -> FloatArray:
        """(len(idx), D) rows of the pool indices ``idx`` (any order), gathered from the shards."""
        arr = np.asarray(idx, dtype=np.int64)
        order = np.argsort(arr, kind="stable")
        parts = self._all("rows", arr[order])
        got = np.concatenate(parts) if parts else np.zeros((0, self.d))
        out: FloatArray = np.empty_like(got)
        out[order] = got
        return out

    def max_similarity(self, cand: IntArray, others: IntArray) -> tuple[FloatArray, IntArray]:
        """``farthest.max_similarity`` for sorted global ``cand`` (K,) against ``others`` (M,):
        (K,) maxima and (K,) positions in ``others``, computed shard by shard."""
        parts = self._all("nearest", cand, self.rows(others))
        best = np.concatenate([p[0] for p in parts])
        arg = np.concatenate([p[1] for p in parts])
        return best, arg

    def _walk(
        self, n_picks: int, cand: IntArray, m: FloatArray | None, centres: FloatArray, n_seen: int
    ) -> IntArray:
        """n_picks picks of the traversal over sorted ``cand``, each the global farthest."""
        picks: IntArray = np.empty(n_picks, dtype=np.int64)
        if n_picks == 0:
            return picks
        args: list[tuple[Any, ...]]
        if m is None:
            args = [(cand, None, centres, n_seen, n_picks) for _ in self.bounds]
        else:
            cuts = np.searchsorted(cand, [lo for lo, _ in self.bounds] + [self.n])
            args = [
                (cand, m[cuts[s] : cuts[s + 1]], centres, n_seen, n_picks)
                for s in range(len(self.bounds))
            ]
        tops = self.group.call("ft_start", args)
        try:
            for t in range(n_picks):
                _, index, row = max(
                    (tp for tp in tops if tp[1] >= 0), key=lambda tp: (tp[0], -tp[1])
                )
                picks[t] = index
                tops = self._all("ft_step", index, row)
        finally:
            self._all("ft_end")
        return picks

    def traverse(self, n_picks: int, cand: IntArray, m: FloatArray) -> IntArray:
        """``farthest.traverse``: ``m`` (K,) aligned with sorted ``cand`` (K,)."""
        return self._walk(n_picks, cand, m, np.zeros((0, self.d)), 0)

    def farthest_traversal(
        self, n: int, base: npt.ArrayLike, candidates: npt.ArrayLike
    ) -> IntArray:
        """``farthest.farthest_traversal`` on the sharded pool: same first pass (the spread
        subset of the base is chosen by the driver from the gathered base rows), same picks."""
        base_idx = np.unique(np.asarray(base, dtype=np.int64))
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        if base_idx.size:
            cand = cand[~np.isin(cand, base_idx, assume_unique=True)]
        n_picks = min(max(n, 0), cand.size)
        if n_picks == 0:
            return np.zeros(0, dtype=np.int64)
        base_rows = self.rows(base_idx)
        first = np.arange(base_idx.size)
        seeds = _ft._SEED_CENTRES
        if base_idx.size > 2 * seeds and cand.size > 2 * seeds:
            first = spread_subset(base_rows, first, seeds)
        order = np.concatenate([first, np.setdiff1d(np.arange(base_idx.size), first)])
        return self._walk(n_picks, cand, None, base_rows[order], int(first.size))


def _check_k(k: int, n: int) -> int:
    if k < 1:
        raise UserError(f"--shards must be >= 1, got {k}", None, "give a positive shard count")
    return min(k, n)


def sharded_select(
    pool: ShardedPool,
    strategy: str,
    n: int,
    rng: np.random.Generator,
    labeled: npt.ArrayLike,
    labeled_targets: npt.ArrayLike | None = None,
    probs: npt.ArrayLike | None = None,
    threshold: float = 0.5,
    k_pos: int = 0,
    clip_targets: npt.ArrayLike | None = None,
) -> IntArray:
    """``select`` (labelled items given) or ``initial_round`` (none) on a sharded pool, drawing
    from ``rng`` exactly as they do. labeled: (L,); labeled_targets: (L, C); probs: (N, C)."""
    if strategy not in STRATEGIES:
        raise UserError(
            f"unknown strategy {strategy!r}", None, f"use one of: {', '.join(STRATEGIES)}"
        )
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    lab = np.asarray(labeled, dtype=np.int64)
    if lab.size == 0:
        n_eff = min(n, pool.n)
        if n_eff == 0:
            return np.zeros(0, dtype=np.int64)
        base, rest, count = initial_base(pool.n, n_eff, rng, k_pos, clip_targets)
        if INIT_RULE[strategy] == "ft":
            fill = pool.farthest_traversal(n_eff - count, base, rest)
        else:
            fill = random_pick(n_eff - count, rest, rng)
        out: IntArray = np.concatenate([base, fill])
        return out
    mask = np.ones(pool.n, dtype=np.bool_)
    mask[lab] = False
    unlabeled = np.flatnonzero(mask)
    if strategy == "rand":
        return random_pick(n, unlabeled, rng)
    if strategy == "ft":
        return pool.farthest_traversal(n, lab, unlabeled)
    if probs is None or labeled_targets is None:
        raise ValueError(f"strategy {strategy!r} needs the classifier's probs (N, C)")
    pred = np.asarray(probs)[unlabeled].astype(np.float64, copy=False) >= float(threshold)
    order = np.argsort(lab, kind="stable")
    sim, nn = pool.max_similarity(unlabeled, lab[order])
    q = np.asarray(labeled_targets).astype(np.bool_)[order][nn]
    mis: IntArray = np.count_nonzero(pred != q, axis=1).astype(np.int64)

    def fill_ft(remaining: int, group: IntArray, taken: list[IntArray], pos: IntArray) -> IntArray:
        best = sim[pos]
        taken_idx = np.unique(np.concatenate(taken)) if taken else np.zeros(0, dtype=np.int64)
        if taken_idx.size:
            best = np.maximum(best, pool.max_similarity(group, taken_idx)[0])
        m: FloatArray = np.subtract(1, best, dtype=best.dtype)
        return pool.traverse(remaining, group, m)

    return mismatch_walk(n, strategy, unlabeled, mis, rng, fill_ft)
