"""Out-of-fold predictions over the labelled items: threshold and score without a valid set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from iml_tui.engine.metrics import best_global_threshold
from iml_tui.errors import UserError

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(train indices, held-out indices) -> scores of the held-out items, (len(held), T, C)."""


@dataclass(frozen=True)
class OutOfFold:
    """Scores of every labelled item from a model that did not see it, and what they give."""

    scores: np.ndarray  # (N, T, C) out-of-fold frame probabilities
    threshold: float  # F1-optimal global threshold (coarse-to-fine search)
    f1: float  # mean per-class F1 at that threshold
    n_labels: int


def fold_ids(n_items: int, k: int, seed: int) -> np.ndarray:
    """(N,) fold of each item in 0..k-1: a seeded permutation dealt round-robin."""
    if n_items < 2:
        raise UserError(f"out-of-fold needs at least 2 labelled items, got {n_items}; label more")
    k = min(k, n_items)
    folds = np.empty(n_items, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n_items)] = np.arange(n_items) % k
    return folds


def out_of_fold(
    targets: np.ndarray, fit_predict: FitPredict, k: int = 5, seed: int = 0
) -> OutOfFold:
    """k-fold over the labelled items (targets (N, T, C)) -> out-of-fold scores and threshold."""
    n = targets.shape[0]
    folds = fold_ids(n, k, seed)
    scores = np.zeros(targets.shape, dtype=np.float32)
    for f in range(int(folds.max()) + 1):
        held = np.flatnonzero(folds == f)
        train = np.flatnonzero(folds != f)
        scores[held] = fit_predict(train, held)
    threshold, f1 = best_global_threshold(scores, targets)
    return OutOfFold(scores=scores, threshold=threshold, f1=f1, n_labels=n)
