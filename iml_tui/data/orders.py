"""Stream orders, batches and context stacking for the streaming paradigm (SPEC B.2).

An *order* is a 1-D integer array of sample indices: the sequence in which the stream presents
the samples. ``random`` shuffles; ``cluster`` makes a label-skewed order with long runs of one
class (drift). Both are seeded through the numpy Generator they are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from iml_tui.atomic import atomic_save_npy, atomic_write_text
from iml_tui.errors import UserError

OrderKind = Literal["random", "cluster"]
ORDER_KINDS: tuple[str, ...] = ("random", "cluster")
SAMPLES_PER_BATCH = 720
CONTEXT = 3
MIN_CHUNK = 10


def random_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(len(labels))``: (n,) int64."""
    return rng.permutation(len(labels)).astype(np.int64)


def cluster_order(
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    alpha: float = 1.0,
    min_chunk: int = MIN_CHUNK,
    max_tries: int = 1000,
) -> np.ndarray:
    """Label-skewed permutation (n,) int64: K = #classes chunks drawn with Dirichlet(alpha).

    For each class (in sorted order) shuffle its items and split them over the K chunks with
    proportions from Dirichlet(alpha); a chunk that already holds >= N/K items gets no more.
    Redraw everything until every chunk has >= ``min_chunk`` items (ValueError after
    ``max_tries``). Within a chunk the classes are concatenated in random order; chunks follow
    each other in index order.
    """
    y = np.asarray(labels).ravel()
    n = len(y)
    classes, inverse = np.unique(y, return_inverse=True)
    k = len(classes)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if n < k * min_chunk:
        raise ValueError(f"{n} samples cannot fill {k} chunks of >= {min_chunk}")
    members = [np.flatnonzero(inverse == c) for c in range(k)]
    cap = n / k
    for _ in range(max_tries):
        # chunks[j][c]: items of class c in chunk j
        chunks: list[list[np.ndarray]] = [[] for _ in range(k)]
        sizes = np.zeros(k, dtype=np.int64)
        for c in range(k):
            idx = rng.permutation(members[c])
            prop = rng.dirichlet(np.full(k, alpha))
            prop = prop * (sizes < cap)
            prop = prop / prop.sum()
            cuts = (np.cumsum(prop) * len(idx)).astype(np.int64)[:-1]
            for j, part in enumerate(np.split(idx, cuts)):
                chunks[j].append(part)
                sizes[j] += len(part)
        if sizes.min() >= min_chunk:
            parts = [chunks[j][c] for j in range(k) for c in rng.permutation(k)]
            return np.concatenate(parts).astype(np.int64)
    raise ValueError(f"no cluster order with every chunk >= {min_chunk} in {max_tries} draws")


def make_order(kind: str, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dispatch on ``kind`` ("random" | "cluster")."""
    if kind == "random":
        return random_order(labels, rng)
    if kind == "cluster":
        return cluster_order(labels, rng)
    raise UserError(f"unknown order kind {kind!r}", fix=f"use one of {', '.join(ORDER_KINDS)}")


def batches(order: np.ndarray, samples_per_batch: int = SAMPLES_PER_BATCH) -> np.ndarray:
    """Consecutive batches (n_batches, samples_per_batch) of ``order``; the remainder is dropped."""
    if samples_per_batch <= 0:
        raise ValueError("samples_per_batch must be positive")
    o = np.asarray(order).ravel()
    nb = len(o) // samples_per_batch
    return o[: nb * samples_per_batch].reshape(nb, samples_per_batch)


def _context_block(x: np.ndarray, context: int) -> np.ndarray:
    """(B, L, D) -> (B, L, (2c+1) D): zero-padded neighbours i-c .. i+c in time order."""
    b, ln, d = x.shape
    padded = np.zeros((b, ln + 2 * context, d), dtype=x.dtype)
    padded[:, context : context + ln] = x
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * context + 1, axis=1)
    # win: (B, L, D, 2c+1) -> (B, L, 2c+1, D)
    return np.ascontiguousarray(win.transpose(0, 1, 3, 2)).reshape(b, ln, (2 * context + 1) * d)


def with_context(
    x: np.ndarray, context: int = CONTEXT, batch_size: int | None = None
) -> np.ndarray:
    """Stack each row with ``context`` neighbours on each side: (n, D) -> (n, D (2c+1)).

    Row i becomes ``[x[i-c], ..., x[i], ..., x[i+c]]`` (time order, so x[i] sits in the middle
    block of D columns); neighbours beyond a batch edge are zeros. ``x`` is one batch unless
    ``batch_size`` is given, in which case every consecutive ``batch_size`` rows (and a shorter
    last block) are padded separately.
    """
    if context < 0:
        raise ValueError("context must be >= 0")
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"x must be (n, D), got {a.shape}")
    if context == 0:
        return a.copy()
    n, d = a.shape
    size = n if batch_size is None or batch_size >= n else batch_size
    if size <= 0:
        return np.zeros((0, d * (2 * context + 1)), dtype=a.dtype)
    nb = n // size
    full = _context_block(a[: nb * size].reshape(nb, size, d), context).reshape(nb * size, -1)
    if nb * size == n:
        return full
    rest = _context_block(a[nb * size :][None], context)[0]
    return np.concatenate([full, rest])


def write_order(path: str | Path, order: np.ndarray) -> Path:
    """Save an order: ``.npy`` as an int64 array, any other suffix as one index per line."""
    p = Path(path)
    o = np.asarray(order, dtype=np.int64).ravel()
    if p.suffix == ".npy":
        return atomic_save_npy(p, o)
    return atomic_write_text(p, "".join(f"{i}\n" for i in o.tolist()))


def read_order(path: str | Path, n: int | None = None) -> np.ndarray:
    """Load an order (``.npy`` or one index per line) as (m,) int64.

    Indices must be unique, non-negative and, when ``n`` is given, < n; otherwise UserError.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError("no order file", path=p, fix="write one with the order command")
    try:
        if p.suffix == ".npy":
            raw = np.load(p, allow_pickle=False)
            if raw.dtype.kind not in "iu":
                raise ValueError(f"dtype {raw.dtype} is not an integer type")
            o = raw.astype(np.int64).ravel()
        else:
            lines = [ln.strip() for ln in p.read_text().splitlines()]
            o = np.array([int(ln) for ln in lines if ln], dtype=np.int64)
    except ValueError as exc:
        raise UserError(f"not an order file ({exc})", path=p) from exc
    if len(o) and o.min() < 0:
        raise UserError("negative index in order", path=p)
    if n is not None and len(o) and o.max() >= n:
        raise UserError(f"index {int(o.max())} out of range for {n} samples", path=p)
    if len(np.unique(o)) != len(o):
        raise UserError("repeated index in order", path=p)
    return o
