"""Corrective feedback (CF) and class balance of queries for the streaming paradigm (SPEC B.5).

CF: after the post-test the human reviews some of the model's current decisions on the batch's
remaining samples and corrects them. Which decisions are shown is set by ``sim_type`` tokens:

- ``fps``: y = 0, pred = 1 (false positives)   - ``tps``: y = 1, pred = 1 (true positives)
- ``fns``: y = 1, pred = 0 (false negatives)   - ``tns``: y = 0, pred = 0 (true negatives)
- ``all``: every remaining sample

``fpstps`` (the human reviews the model's detections) is the usual setting. In the real loop the
groups come from the oracle's answers; in simulation ``y`` is the oracle's truth.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from iml_tui.errors import UserError

FB_TOKENS: tuple[str, ...] = ("fps", "tps", "fns", "tns", "all")
_ERROR_TOKENS = frozenset({"fps", "fns"})


def parse_sim_type(sim_type: str | Sequence[str] | None) -> tuple[str, ...]:
    """Tokens of a sim_type: ``"fpstps"`` -> ("fps", "tps"); also "fps,tps", lists, "all".

    None or "" means no corrective feedback (plain online AL): (). Repeats are dropped.
    """
    if sim_type is None:
        return ()
    if isinstance(sim_type, str):
        text = re.sub(r"[\s,+;|_-]", "", sim_type.lower())
        if text in ("", "none"):
            return ()
        tokens = re.findall(r"fps|tps|fns|tns|all", text)
        if "".join(tokens) != text:
            raise UserError(
                f"bad sim_type {sim_type!r}",
                fix=f"concatenate tokens of {', '.join(FB_TOKENS)}, e.g. fpstps",
            )
        items: Sequence[str] = tokens
    else:
        items = [t.lower() for t in sim_type]
        bad = [t for t in items if t not in FB_TOKENS]
        if bad:
            raise UserError(f"bad sim_type tokens {bad}", fix=f"use {', '.join(FB_TOKENS)}")
    return tuple(dict.fromkeys(items))


def feedback_groups(
    y: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray | None,
    tokens: Sequence[str],
    rank_cf: bool = False,
    remaining: np.ndarray | None = None,
) -> list[np.ndarray]:
    """One index array per token, each in stream order (ascending index).

    With ``rank_cf``: ``fps``/``fns`` most-confident first, ``tps``/``tns`` least-confident
    first (``confidence`` (n,) = the model's probability of its own decision; ties keep stream
    order); ``all`` stays in stream order. ``remaining`` (indices or a bool mask over n) limits
    the candidates, e.g. to the samples not queried by AL.
    """
    yb = np.asarray(y).astype(bool).ravel()
    pb = np.asarray(pred).astype(bool).ravel()
    if yb.shape != pb.shape:
        raise ValueError(f"y {yb.shape} and pred {pb.shape} differ in shape")
    n = len(yb)
    cand = np.ones(n, dtype=bool)
    if remaining is not None:
        r = np.asarray(remaining)
        if r.dtype == bool:
            cand = r.ravel().copy()
        else:
            cand = np.zeros(n, dtype=bool)
            cand[r.astype(np.int64)] = True
    masks = {
        "fps": ~yb & pb,
        "tps": yb & pb,
        "fns": yb & ~pb,
        "tns": ~yb & ~pb,
        "all": np.ones(n, dtype=bool),
    }
    if rank_cf and confidence is None:
        raise ValueError("rank_cf needs confidences")
    conf = None if confidence is None else np.asarray(confidence, dtype=np.float64).ravel()
    out: list[np.ndarray] = []
    for tok in tokens:
        idx = np.flatnonzero(masks[tok] & cand)
        if rank_cf and tok != "all" and conf is not None:
            key = -conf[idx] if tok in _ERROR_TOKENS else conf[idx]
            idx = idx[np.argsort(key, kind="stable")]
        out.append(idx.astype(np.int64))
    return out


def interleave(groups: Sequence[np.ndarray], limit: int | None = None) -> np.ndarray:
    """Round-robin merge (g1[0], g2[0], g1[1], g2[1], ...); skips repeats; first ``limit`` items."""
    if not groups:
        return np.zeros(0, dtype=np.int64)
    longest = max(len(g) for g in groups)
    width = len(groups)
    grid = np.full((longest, width), -1, dtype=np.int64)
    for j, g in enumerate(groups):
        grid[: len(g), j] = g
    flat = grid.ravel()
    flat = flat[flat >= 0]
    _, first = np.unique(flat, return_index=True)
    merged = flat[np.sort(first)]
    return merged if limit is None else merged[: max(0, limit)]


def select_feedback(
    y: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray | None,
    sim_type: str | Sequence[str] | None,
    max_fb_samples: int | None,
    rank_cf: bool = False,
    remaining: np.ndarray | None = None,
) -> np.ndarray:
    """Indices (m,) of the decisions the human reviews, in review order, m <= max_fb_samples.

    Groups per :func:`feedback_groups`, interleaved round-robin in token order, cut to
    ``max_fb_samples`` (None: no cap).
    """
    tokens = parse_sim_type(sim_type)
    groups = feedback_groups(y, pred, confidence, tokens, rank_cf=rank_cf, remaining=remaining)
    return interleave(groups, max_fb_samples)


def cf_label_counts(y: np.ndarray, chosen: np.ndarray) -> tuple[int, int]:
    """(cf_tp, cf_fp) of scores.csv: chosen CF items with label 1 / label 0."""
    lab = np.asarray(y).astype(bool).ravel()[np.asarray(chosen, dtype=np.int64)]
    return int(lab.sum()), int((~lab).sum())


def adapt_distr_split(
    p: float,
    n_target_labelled: int,
    n_nontarget_labelled: int,
    n_q: int,
    n_pred_targets: int,
) -> int:
    """Queries to take from the predicted-target ranking: L_t = round(p (N_t + N_n + n_q) - N_t).

    Rounded half up, clipped to [0, min(n_q, n_pred_targets)]; ``p`` is the wanted target share
    of the labelled pool after this batch's queries.
    """
    raw = p * (n_target_labelled + n_nontarget_labelled + n_q) - n_target_labelled
    lt = int(np.floor(raw + 0.5))
    return int(min(max(lt, 0), max(0, min(n_q, n_pred_targets))))


def split_queries(ranking: np.ndarray, pred: np.ndarray, n_q: int, n_target: int) -> np.ndarray:
    """Pick ``n_target`` from the predicted targets and the rest from predicted non-targets.

    ``ranking`` (n,) is the AL order (best first) over a batch, ``pred`` (n,) the decisions. Each
    side keeps the AL order; if a side runs short the others are topped up in ranking order.
    Returns (min(n_q, n),) indices, targets first.
    """
    r = np.asarray(ranking, dtype=np.int64).ravel()
    is_t = np.asarray(pred).astype(bool).ravel()[r]
    tgt = r[is_t][: max(0, n_target)]
    non = r[~is_t][: max(0, n_q - len(tgt))]
    chosen = np.concatenate([tgt, non])
    if len(chosen) < n_q:
        rest = r[~np.isin(r, chosen)]
        chosen = np.concatenate([chosen, rest[: n_q - len(chosen)]])
    return chosen.astype(np.int64)
