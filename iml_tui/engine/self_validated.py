"""Training a frame classifier when no labelled validation set exists.

The annotator's own labels validate the model: k-fold over the labelled clips (k = min(5, L)),
each fold's model trained on the other folds with the held-out fold driving its learning-rate
schedule and best-epoch choice, gives out-of-fold frame probabilities of every labelled clip.
From them come the F1-optimal global threshold, an estimated frame mAP and its uncertainty
(standard deviation over a seeded bootstrap of the clips); at clip level (max over frames) when
some labels are for whole clips, whose frames' truth is unknown. The model that is kept is
trained on all labelled clips for the median of the folds' best epochs (its last weights), so it
sees every label and stops where held-out data said to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from iml_tui.engine.metrics import best_global_threshold, frame_map
from iml_tui.engine.out_of_fold import OutOfFold, out_of_fold
from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier
from iml_tui.errors import UserError

K_FOLDS = 5
BOOTSTRAP = 200
FoldProgress = Callable[[int, int, int, float], None]
"""(fold from 0; k + 1 for the final model, k folds; epoch; held-out mAP of that epoch)."""


@dataclass(frozen=True)
class SelfValidated:
    """The model trained on every label, and what its out-of-fold predictions say."""

    state_dict: dict[str, torch.Tensor]
    oof: OutOfFold
    est_map: float  # frame mAP of the out-of-fold probabilities, in [0, 1]
    est_map_std: float  # bootstrap standard deviation of est_map over the clips
    epochs: int  # epochs of the final training (median best epoch of the folds)
    k: int


def bootstrap_map_std(
    scores: np.ndarray, targets: np.ndarray, n: int = BOOTSTRAP, seed: int = 0
) -> float:
    """Standard deviation of frame mAP over ``n`` bootstrap resamples of the clips.

    scores, targets: (L, T, C)."""
    rng = np.random.default_rng(seed)
    m = scores.shape[0]
    vals = [
        frame_map(scores[idx], targets[idx])[0] for idx in (rng.integers(0, m, m) for _ in range(n))
    ]
    return float(np.std(vals))


def train_self_validated(
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    seed: int = 0,
    progress: FoldProgress | None = None,
    k: int = K_FOLDS,
    weak: np.ndarray | None = None,
) -> SelfValidated:
    """Fit on labelled clips x (L, T, D), y (L, T, C) 0/1 without a validation set.

    weak: optional (L,) bool, clips labelled only as a whole (see ``train_frame_classifier``).
    When there are any, the threshold, F1 and estimated mAP are clip-level (max over frames of
    the out-of-fold probabilities against the clip labels): their frames' truth is unknown."""
    n = x.shape[0]
    if n < 2:
        raise UserError(
            f"{n} labelled clip(s): training without a validation set needs at least 2",
            None,
            "label more clips, or give the pool a valid.h5",
        )
    k = min(k, n)
    best_epochs: list[int] = []

    def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        fold = len(best_epochs)

        def on_epoch(epoch: int, valid_map: float) -> None:
            if progress is not None:
                progress(fold, k, epoch, valid_map)

        res = train_frame_classifier(
            x[train],
            y[train],
            x[held],
            y[held],
            cfg,
            on_epoch,
            weak=None if weak is None else weak[train],
        )
        best_epochs.append(max(1, res.best_epoch))
        return predict_frames(res.state_dict, x[held], "cpu")

    oof = out_of_fold(y, fit_predict, k=k, seed=seed)
    epochs = int(np.median(best_epochs))

    def on_final(epoch: int, valid_map: float) -> None:
        if progress is not None:
            progress(k, k, epoch, valid_map)

    final = train_frame_classifier(
        x, y, x, y, replace(cfg, max_epochs=epochs, keep_last=True), on_final, weak=weak
    )
    if weak is not None and bool(np.any(weak)):
        clip_scores = oof.scores.max(axis=1, keepdims=True)
        clip_y = y.max(axis=1, keepdims=True)
        threshold, f1 = best_global_threshold(clip_scores, clip_y)
        oof = OutOfFold(oof.scores, threshold, f1, oof.n_labels)
        est, _ = frame_map(clip_scores, clip_y)
        return SelfValidated(
            state_dict=final.state_dict,
            oof=oof,
            est_map=float(est),
            est_map_std=bootstrap_map_std(clip_scores, clip_y, seed=seed),
            epochs=epochs,
            k=k,
        )
    est, _ = frame_map(oof.scores, y)
    return SelfValidated(
        state_dict=final.state_dict,
        oof=oof,
        est_map=float(est),
        est_map_std=bootstrap_map_std(oof.scores, y, seed=seed),
        epochs=epochs,
        k=k,
    )
