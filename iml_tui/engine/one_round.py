"""One round of selection from files on disk (``iml-tui select``), outside the simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iml_tui.data.store import PoolStore
from iml_tui.engine.strategies import STRATEGIES, SelectionState, initial_round, select
from iml_tui.engine.strategies.ft_state import (
    farthest_round,
    load_state,
    save_state,
    state_usable,
)
from iml_tui.errors import UserError
from iml_tui.ranges import check_values


def read_index_file(path: str | Path, n_pool: int) -> np.ndarray:
    """(L,) int64 pool indices, one per line (blank lines and '#' comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            "labelled-index file not found",
            path,
            "give --labeled a text file with one pool index per line",
        )
    out: list[int] = []
    seen: set[int] = set()
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            idx = int(text)
        except ValueError:
            raise UserError(
                f"line {lineno} is not an integer index: {text!r}",
                path,
                "write one pool index per line",
            ) from None
        if not 0 <= idx < n_pool:
            raise UserError(
                f"line {lineno}: index {idx} is outside the pool (0..{n_pool - 1})",
                path,
                "use indices of the pool given with --pool",
            )
        if idx in seen:
            raise UserError(
                f"line {lineno}: index {idx} is listed twice", path, "list each labelled clip once"
            )
        seen.add(idx)
        out.append(idx)
    return np.asarray(out, dtype=np.int64)


def read_scores(path: str | Path, n: int, c: int) -> np.ndarray:
    """(N, C) clip-level probabilities from a ``.npy`` file, checked."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            "scores file not found",
            path,
            "give --scores a .npy file of (N, C) clip-level probabilities",
        )
    try:
        scores = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(
            f"not a readable .npy array ({exc})", path, "save the scores with numpy.save"
        ) from exc
    if scores.shape != (n, c):
        raise UserError(
            f"scores have shape {scores.shape}, expected ({n}, {c}) for this pool",
            path,
            "give one row per pool clip and one column per class",
        )
    scores = np.asarray(scores, dtype=np.float32)
    if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise UserError(
            "scores must be finite probabilities in [0, 1]",
            path,
            "apply a sigmoid to logits before saving",
        )
    return scores


def pool_key(store: PoolStore) -> str:
    """What identifies a pool file's contents for carried selection state."""
    st = store.path.stat()
    return (
        f"{store.path.resolve()}|{store.n}|{store.d}|{st.st_size}|{st.st_mtime_ns}|"
        f"{store.attrs.get('checkpoint_hash', '')}"
    )


def select_from_files(
    pool: str | Path,
    labeled: str | Path | None,
    strategy: str,
    n: int,
    seed: int,
    scores: str | Path | None = None,
    threshold: float = 0.5,
    warm_k: int = 0,
    state: str | Path | None = None,
    shards: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> np.ndarray:
    """Pool indices of the next ``n`` clips to annotate, in selection order.

    With no labelled indices this is the initial round (cold, or warm with ``warm_k`` positives
    per class read from the pool's labels). ``state`` (ft only): a file carrying the traversal's
    min-distance vector from this round to the next (:mod:`iml_tui.engine.strategies.ft_state`).
    ``shards`` > 1 or ``executor`` "ray": the selection array is held in that many row shards,
    each read from the file by its own worker (:mod:`iml_tui.engine.strategies.sharded`); the
    picks are the same.
    """
    if strategy not in STRATEGIES:
        raise UserError(
            f"unknown strategy '{strategy}'", None, f"choose one of {', '.join(STRATEGIES)}"
        )
    given: dict[str, object] = {"n": n, "seed": seed, "threshold": threshold, "warm_k": warm_k}
    given |= {"shards": shards, "executor": executor, "ray_address": ray_address}
    names = {k: "-n" if k == "n" else "--" + k.replace("_", "-") for k in given}
    check_values(given, "command line", "select", names)
    if n <= 0:
        raise UserError(f"-n must be positive, got {n}", None, "ask for at least one clip")
    store = PoolStore(pool)
    lab = read_index_file(labeled, store.n) if labeled else np.zeros(0, dtype=np.int64)
    if n > store.n - lab.size:
        raise UserError(
            f"asked for {n} clips but only {store.n - lab.size} are unlabelled",
            store.path,
            "lower -n",
        )
    rng = np.random.default_rng(seed)
    if shards != 1 or executor != "local":
        if state is not None:
            raise UserError(
                "--state carries one process's bounds and does not combine with "
                "--shards or --executor ray",
                state,
                "drop --state or --shards",
            )
        return _select_sharded(
            store, lab, strategy, n, rng, scores, threshold, warm_k, shards, executor, ray_address
        )
    if strategy == "ft" and state is not None and lab.size:
        key = pool_key(store)
        saved = load_state(state, key, store.n)
        # A usable state was built by rounds on this very file (same size and mtime), the first of
        # which scanned every row; the carried round reads only the rows it needs.
        x = store.pooled(scan=not state_usable(saved, key, lab))
        picks, carried = farthest_round(x, n, lab, saved, key)
        save_state(state, carried)
        return picks
    x = store.pooled()
    if lab.size == 0:
        clip_targets = store.clip_labels() if warm_k > 0 else None
        return initial_round(strategy, x, n, rng, k_pos=warm_k, clip_targets=clip_targets)
    probs = _scores_for(strategy, scores, store)
    sel = SelectionState(
        x=x, labeled=lab, labeled_targets=store.clip_labels(lab), probs=probs, threshold=threshold
    )
    return select(strategy, sel, n, rng)


def _scores_for(strategy: str, scores: str | Path | None, store: PoolStore) -> np.ndarray | None:
    """The (N, C) clip probabilities a score-based strategy (mp, mfft) needs; None for others."""
    if strategy not in ("mp", "mfft"):
        return None
    if scores is None:
        raise UserError(
            f"strategy '{strategy}' needs the current classifier's scores",
            None,
            "pass --scores scores.npy ((N, C) clip-level probabilities) and --threshold",
        )
    return read_scores(scores, store.n, store.c)


def _select_sharded(
    store: PoolStore,
    lab: np.ndarray,
    strategy: str,
    n: int,
    rng: np.random.Generator,
    scores: str | Path | None,
    threshold: float,
    warm_k: int,
    shards: int,
    executor: str,
    ray_address: str | None,
) -> np.ndarray:
    from iml_tui.engine.strategies.sharded import ShardedPool, sharded_select

    probs = _scores_for(strategy, scores, store) if lab.size else None
    targets = store.clip_labels(lab) if lab.size and probs is not None else None
    clip_targets = store.clip_labels() if not lab.size and warm_k > 0 else None
    with ShardedPool.from_store(store.path, store.n, shards, executor, ray_address) as pool:
        return sharded_select(
            pool, strategy, n, rng, lab, targets, probs, threshold, warm_k, clip_targets
        )
