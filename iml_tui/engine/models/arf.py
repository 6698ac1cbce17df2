"""The stream detector as an adaptive random forest (the original's ``--ensemble``).

river's :class:`~river.forest.ARFClassifier` (its defaults: 10 Hoeffding trees, sqrt features,
ADWIN drift and warning detectors), seeded. It learns one item at a time (``learn_one``), so a fit
is epochs of passes over the labelled pool as in the original, where every training step learns
the minibatch's items and then decides them; the epoch's accuracy of those decisions is what
patience watches (the original's forest logs no loss, so it ran on ``train/acc``, mode max).

Shapes: x (n, D) float32 rows; ``logits`` gives log-probabilities (n, 2), a class the forest has
not seen yet at probability 0 (floored at 1e-7), both at 0.5 before it has learned anything.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import torch
from river.forest import ARFClassifier
from torch import nn

from iml_tui.engine.models.comp_class import FitResult, StreamFitConfig

_FLOOR = 1e-7


def _row(x: np.ndarray) -> dict[int, float]:
    return {j: float(v) for j, v in enumerate(x)}


class ArfDetector(nn.Module):
    """A river adaptive random forest behind the detector's interface (``logits``, state dict).

    The forest travels in the state dict as pickled bytes (a uint8 tensor, ``_extra_state``),
    so checkpoints and ``model.pt`` hold it; ``reset_parameters`` starts a fresh forest.
    """

    def __init__(self, dim: int, seed: int | None = 0) -> None:
        super().__init__()
        self.dim = dim
        self.seed = seed
        self.forest = ARFClassifier(seed=seed)

    def reset_parameters(self) -> None:
        """A fresh, untrained forest with the same seed."""
        self.forest = ARFClassifier(seed=self.seed)

    def get_extra_state(self) -> torch.Tensor:
        return torch.frombuffer(bytearray(pickle.dumps(self.forest)), dtype=torch.uint8)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.forest = pickle.loads(state.numpy().tobytes())  # our own checkpoint

    def learn(self, x: np.ndarray, y: np.ndarray) -> None:
        """learn_one on each row of x (n, D) with its label y (n,), in order."""
        for row, label in zip(np.asarray(x, np.float64), np.asarray(y), strict=True):
            self.forest.learn_one(_row(row), int(label))

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 2) float64 of the forest's weighted vote."""
        out = np.zeros((len(x), 2), dtype=np.float64)
        for i, row in enumerate(np.asarray(x, np.float64)):
            p = self.forest.predict_proba_one(_row(row))
            if not p:
                out[i] = 0.5
                continue
            for k, v in p.items():
                if int(k) in (0, 1):
                    out[i, int(k)] = float(v)
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) -> log-probabilities (n, 2) (argmax = the forest's decision, ties: class 0)."""
        p = self.proba(x.detach().cpu().numpy())
        return torch.from_numpy(np.log(np.maximum(p, _FLOOR))).float()


def fit_arf(
    model: ArfDetector,
    x: np.ndarray,
    y: np.ndarray,
    cfg: StreamFitConfig,
    rng: np.random.Generator,
) -> FitResult:
    """Train the forest on the pool x (n, D), y (n,) as the original's ensemble fit.

    Each epoch visits the pool in a random order in minibatches of ``batch_size``: every item
    of a minibatch is learned, then the minibatch is decided; the epoch's accuracy (items
    decided right / n) must beat the best so far by more than ``min_delta`` within ``patience``
    epochs, up to ``max_epochs``. The forest keeps what it learned (no load_best)."""
    t0 = time.perf_counter()
    xa = np.asarray(x, dtype=np.float32)
    ya = np.asarray(y).astype(np.int64).ravel()
    n = len(ya)
    accs: list[float] = []
    best, best_epoch, since = -np.inf, 0, 0
    stop = "max_epochs"
    for epoch in range(1, cfg.max_epochs + 1):
        perm = rng.permutation(n)
        correct = 0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            model.learn(xa[idx], ya[idx])
            correct += int((model.proba(xa[idx]).argmax(axis=1) == ya[idx]).sum())
        acc = correct / max(n, 1)
        accs.append(acc)
        if acc > best + cfg.min_delta:
            best, best_epoch, since = acc, epoch, 0
        else:
            since += 1
            if since >= cfg.patience:
                stop = "patience"
                break
    return FitResult(
        epochs=len(accs),
        best_loss=float("nan"),
        best_epoch=best_epoch,
        losses=(),
        stop_reason=stop,
        seconds=time.perf_counter() - t0,
        monitored=tuple(accs),
    )
