"""Frame-level metrics: average precision, macro mAP, F1, the global F1 threshold, rare finds.

All functions are numpy-only and vectorised. ``scores`` are probabilities (or any real-valued
scores, higher = more positive); ``targets`` are 0/1. Frame-level metrics flatten every frame of
every clip into one list of M = N * T samples per class.

Prediction rule everywhere: a frame is positive for a class when ``score >= threshold``, the
comparison made in float64 (so a float32 score and a Python-float threshold compare exactly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAP_UNIT = "%"
"""mAP is shown in percent everywhere (status line, learning curve, progress, tables, README);
the functions here and the API return it in [0, 1]."""


def map_text(value: float) -> str:
    """An mAP in [0, 1] as shown: percent with one decimal, ``0.4531`` -> ``'45.3%'``."""
    return f"{100.0 * float(value):.1f}{MAP_UNIT}"


def is_map_score(name: str) -> bool:
    """Whether a score called ``name`` is an mAP (shown in percent), e.g. "valid mAP"."""
    return "mAP" in name


def score_text(name: str, value: float) -> str:
    """A score as shown: an mAP in percent (:func:`map_text`), any other (pre-DCF) to 3 decimals."""
    return map_text(value) if is_map_score(name) else f"{float(value):.3f}"


# Coarse-to-fine threshold grid: (step, half-width in steps, decimals to round to).
_THRESHOLD_STAGES: tuple[tuple[float, int, int], ...] = ((0.1, 4, 1), (0.01, 9, 2), (0.001, 9, 3))
_THRESHOLD_START = 0.5


def _as_frames(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten (N, T, C) or (M, C) scores and targets to (M, C) each; check the shapes match."""
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ in shape")
    if scores.ndim not in (2, 3):
        raise ValueError(f"expected (N, T, C) or (M, C) arrays, got shape {scores.shape}")
    c = scores.shape[-1]
    return scores.reshape(-1, c), targets.reshape(-1, c)


def _average_precision_columns(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP of each column of (M, C) scores against (M, C) 0/1 targets -> (C,); NaN if no positive.

    sklearn ``average_precision_score`` semantics: AP = sum_k (R_k - R_{k-1}) P_k over the
    distinct score values in decreasing order (tied scores form one operating point). Written as a
    sum over samples: every positive contributes P(end of its tie group) / #positives.
    """
    m, c = scores.shape
    if m == 0:
        return np.full(c, np.nan)
    order = np.argsort(-scores, axis=0, kind="stable")
    s = np.take_along_axis(scores, order, axis=0)
    y = np.take_along_axis(targets, order, axis=0).astype(np.float64) > 0
    tps = np.cumsum(y, axis=0, dtype=np.int64)
    n_pos = tps[-1]
    # Index of the last sample of each sample's tie group: next group end at or after it.
    is_end = np.ones((m, c), dtype=bool)
    is_end[:-1] = s[:-1] != s[1:]
    end_idx = np.where(is_end, np.arange(m)[:, None], m)
    end_idx = np.minimum.accumulate(end_idx[::-1], axis=0)[::-1]
    precision_at_end = np.take_along_axis(tps, end_idx, axis=0) / (end_idx + 1.0)
    contrib = np.where(y, precision_at_end, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = contrib / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Average precision of scores (M,) against 0/1 targets (M,); NaN when there is no positive.

    Same value as ``sklearn.metrics.average_precision_score`` (step-wise, ties grouped).
    """
    s = np.asarray(scores).reshape(-1, 1)
    t = np.asarray(targets).reshape(-1, 1)
    if s.shape != t.shape:
        raise ValueError(f"scores {np.shape(scores)} and targets {np.shape(targets)} differ")
    return float(_average_precision_columns(s, t)[0])


def frame_map(scores: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Frame-level macro mAP of (N, T, C) or (M, C) scores -> (mean over classes, per-class (C,)).

    Per-class AP over all frames; a class with no positive frame scores 0 (NaN -> 0).
    """
    s, t = _as_frames(scores, targets)
    per_class = np.nan_to_num(_average_precision_columns(s, t), nan=0.0)
    return (float(per_class.mean()) if per_class.size else 0.0), per_class


def f1_per_class(scores: np.ndarray, targets: np.ndarray, threshold: float) -> np.ndarray:
    """Frame-level F1 = 2TP / (2TP + FP + FN) per class -> (C,); 0 where the denominator is 0.

    scores, targets: (N, T, C) or (M, C); predictions are ``score >= threshold``.
    """
    s, t = _as_frames(scores, targets)
    pred = s.astype(np.float64, copy=False) >= float(threshold)
    y = t > 0
    tp = np.count_nonzero(pred & y, axis=0)
    denom = np.count_nonzero(pred, axis=0) + np.count_nonzero(y, axis=0)  # = 2TP + FP + FN
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)


def mean_f1(scores: np.ndarray, targets: np.ndarray, threshold: float) -> float:
    """Mean over classes of :func:`f1_per_class`."""
    per_class = f1_per_class(scores, targets, threshold)
    return float(per_class.mean()) if per_class.size else 0.0


def threshold_grid(center: float, step: float, half_width: int, decimals: int) -> np.ndarray:
    """Candidate thresholds ``center + k * step`` for k in [-half_width, half_width], ascending,
    rounded to ``decimals``, keeping only values strictly inside (0, 1)."""
    grid = np.round(center + step * np.arange(-half_width, half_width + 1), decimals)
    return grid[(grid > 0.0) & (grid < 1.0)]


def _mean_f1_many(
    sorted_scores: np.ndarray, sorted_pos: list[np.ndarray], thresholds: np.ndarray
) -> np.ndarray:
    """Mean per-class F1 at each threshold -> (K,), from per-class sorted scores (M, C) and each
    class's sorted positive scores; counts via searchsorted (predicted positive = score >= t)."""
    m, c = sorted_scores.shape
    f1 = np.zeros((thresholds.size, c))
    for j in range(c):
        n_pred = m - np.searchsorted(sorted_scores[:, j], thresholds, side="left")
        p = sorted_pos[j]
        tp = p.size - np.searchsorted(p, thresholds, side="left")
        denom = n_pred + p.size
        f1[:, j] = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
    return f1.mean(axis=1) if c else np.zeros(thresholds.size)


def best_global_threshold(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """One threshold for all classes maximising mean per-class F1 -> (threshold, mean F1).

    scores, targets: (N, T, C) or (M, C). Coarse-to-fine search: 0.1..0.9 step 0.1, then 19 values
    step 0.01 centred on the best, then 19 values step 0.001 centred on that; values outside
    (0, 1) skipped; ties go to the lowest threshold. Each class is sorted once; all thresholds of
    a stage are counted with one searchsorted.
    """
    s, t = _as_frames(scores, targets)
    s64 = s.astype(np.float64, copy=False)
    sorted_scores = np.sort(s64, axis=0)
    sorted_pos = [np.sort(s64[t[:, j] > 0, j]) for j in range(s64.shape[1])]
    best_t, best_f1 = _THRESHOLD_START, -1.0
    for step, half_width, decimals in _THRESHOLD_STAGES:
        grid = threshold_grid(best_t, step, half_width, decimals)
        values = _mean_f1_many(sorted_scores, sorted_pos, grid)
        k = int(np.argmax(values))  # first maximum = lowest threshold among ties
        best_t, best_f1 = float(grid[k]), float(values[k])
    return best_t, best_f1


def rare_found(annotated_clip_targets: np.ndarray, rare: Sequence[int]) -> int:
    """Number of annotated clips (L, C) that are clip-level positive for any class in ``rare``."""
    targets = np.asarray(annotated_clip_targets)
    rare_idx = list(rare)
    if not rare_idx or targets.size == 0:
        return 0
    return int(np.count_nonzero((targets[:, rare_idx] > 0).any(axis=1)))


def default_rare_classes(clip_targets: np.ndarray, class_list: Sequence[str]) -> list[int]:
    """Rare class indices: names starting with "Meerkat" if any; else classes whose clip-level
    positive count over the (N, C) clip targets is below 0.5 % of N but above 0."""
    meerkats = [i for i, name in enumerate(class_list) if str(name).startswith("Meerkat")]
    if meerkats:
        return meerkats
    targets = np.asarray(clip_targets)
    counts = np.count_nonzero(targets > 0, axis=0)
    limit = 0.005 * targets.shape[0]
    return [int(i) for i in np.flatnonzero((counts > 0) & (counts < limit))]


def event_prf(
    predicted: Sequence[tuple[str, float, float, str]],
    truth: Sequence[tuple[str, float, float, str]],
    onset_tolerance: float = 0.5,
) -> dict[str, float]:
    """Event-level precision, recall and F1: a detection matches an unmatched true event of the
    same recording and class whose onset is within ``onset_tolerance`` seconds (greedy by onset
    distance). Rows are (recording, onset, offset, class)."""
    pairs = []
    for i, (rp, op, _, cp) in enumerate(predicted):
        for j, (rt, ot, _, ct) in enumerate(truth):
            if rp == rt and cp == ct and abs(op - ot) <= onset_tolerance:
                pairs.append((abs(op - ot), i, j))
    used_p: set[int] = set()
    used_t: set[int] = set()
    for _, i, j in sorted(pairs):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    tp = len(used_p)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": float(tp),
        "predicted": float(len(predicted)),
        "true": float(len(truth)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
