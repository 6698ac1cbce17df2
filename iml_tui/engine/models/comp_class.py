"""The streaming paradigm's binary detector: compression MLP + classifier MLP (SPEC B.4).

x (B, D) -> input BatchNorm -> compression [Linear, BN(momentum 0.05), LeakyReLU] x
len(comp_hidden) -> Linear (H, H), no activation -> Linear -> embedding (B, E) -> classifier
[Linear, BN, LeakyReLU] x len(cls_hidden) -> Linear -> logits (B, 2) -> LogSoftmax (SPEC D.2).
Class 1 is the target. Decision: argmax (threshold 0.5).

:func:`fit_stream_model` warm-starts from the current weights on the whole labelled pool with
Adam until the epoch training loss has not improved for ``patience`` epochs (or ``max_epochs``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from iml_tui.engine.losses import LossConfig, loss_weights, stream_loss
from iml_tui.engine.train_settings import TrainSettings

N_CLASSES = 2
BN_MOMENTUM = 0.05
_PREDICT_CHUNK = 8192


def _mlp(sizes: Sequence[int], slope: float) -> nn.Sequential:
    """[Linear, BatchNorm1d(momentum 0.05), LeakyReLU] for each consecutive pair of ``sizes``."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b, momentum=BN_MOMENTUM), nn.LeakyReLU(slope)]
    return nn.Sequential(*layers)


class CompClassModel(nn.Module):
    """Compression + classifier MLP; hidden sizes are arguments (tests use small ones).

    forward: (B, D) -> (log-probabilities (B, 2), embedding (B, E)). ``logits`` gives the raw
    pre-LogSoftmax scores (B, 2); ``head_input`` the input to the last Linear (B, H).
    With ``seed`` set the initial weights depend only on the seed (global RNG untouched).
    """

    def __init__(
        self,
        dim: int,
        comp_hidden: Sequence[int] = (1024, 1024),
        emb_dim: int = 256,
        cls_hidden: Sequence[int] = (1024, 1024, 1024),
        negative_slope: float = 0.01,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if dim < 1 or emb_dim < 1 or any(h < 1 for h in (*comp_hidden, *cls_hidden)):
            raise ValueError("CompClassModel sizes must be positive")
        self.dim = dim
        self.comp_hidden = tuple(int(h) for h in comp_hidden)
        self.emb_dim = emb_dim
        self.cls_hidden = tuple(int(h) for h in cls_hidden)
        self.negative_slope = negative_slope
        self.seed = seed
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.input_bn = nn.BatchNorm1d(dim, momentum=BN_MOMENTUM)
            last = self.comp_hidden[-1] if self.comp_hidden else dim
            self.compress = _mlp((dim, *self.comp_hidden), negative_slope)
            if self.comp_hidden:
                self.compress.append(nn.Linear(last, last))
            self.embed_out = nn.Linear(last, emb_dim)
            self.classify = _mlp((emb_dim, *self.cls_hidden), negative_slope)
            self.head = nn.Linear(self.cls_hidden[-1] if self.cls_hidden else emb_dim, N_CLASSES)
        self.log_softmax = nn.LogSoftmax(dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> embedding (B, E)."""
        out: torch.Tensor = self.embed_out(self.compress(self.input_bn(x)))
        return out

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> input of the last Linear layer (B, H)."""
        out: torch.Tensor = self.classify(self.embed(x))
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> raw scores (B, 2) before LogSoftmax."""
        out: torch.Tensor = self.head(self.head_input(x))
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> (log-probabilities (B, 2), embedding (B, E))."""
        e = self.embed(x)
        logp: torch.Tensor = self.log_softmax(self.head(self.classify(e)))
        return logp, e


def reset_weights(model: nn.Module, seed: int | None = 0) -> None:
    """Re-initialise every layer with ``reset_parameters`` (BN running stats too), seeded."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()


@dataclass(frozen=True)
class StreamFitConfig(TrainSettings):
    """Training of the stream model on the labelled pool (defaults: SPEC B.4; max_epochs ours):
    the shared :class:`~iml_tui.engine.train_settings.TrainSettings`, patience and the loss."""

    lr: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 300
    patience: int = 15
    min_delta: float = 0.0  # an epoch improves when loss < best - min_delta
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_stream_model`: per-epoch mean training losses and why it stopped."""

    epochs: int
    best_loss: float
    best_epoch: int
    losses: tuple[float, ...]
    stop_reason: str  # "patience" | "max_epochs"
    seconds: float


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _chunks(perm: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Minibatches of ``perm``; a trailing single item joins the previous one (BatchNorm)."""
    parts = list(torch.split(perm, size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        last = parts.pop()
        parts[-1] = torch.cat([parts[-1], last])
    return parts


def fit_stream_model(
    model: CompClassModel,
    x: np.ndarray,
    y: np.ndarray,
    cfg: StreamFitConfig | None = None,
    rng: np.random.Generator | None = None,
) -> FitResult:
    """Train ``model`` in place from its current weights on the pool x (n, D), y (n,) in {0, 1}.

    Each epoch visits every item once in a random order (minibatches of ``batch_size``); with the
    default loss each item gets a random partner from the pool. A fresh Adam is made per call.
    Stops when the epoch's mean loss has not improved for ``patience`` epochs or at
    ``max_epochs``; the weights of the last epoch are kept. All randomness comes from ``rng``.
    """
    cfg = cfg or StreamFitConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    xa = np.asarray(x, dtype=np.float32)
    ya = np.asarray(y).astype(np.int64).ravel()
    if xa.ndim != 2 or len(xa) != len(ya):
        raise ValueError(f"x must be (n, D) and y (n,): got {xa.shape} and {ya.shape}")
    if len(ya) < 2:
        raise ValueError("fitting needs at least 2 labelled items (BatchNorm)")
    if cfg.batch_size < 2 or cfg.max_epochs < 1 or cfg.patience < 1:
        raise ValueError("batch_size must be >= 2, max_epochs and patience >= 1")
    if ya.min() < 0 or ya.max() >= N_CLASSES:
        raise ValueError("labels must be 0 or 1")
    t0 = time.perf_counter()
    device = _device_of(model)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(rng.integers(0, 2**63 - 1)))
    xt = torch.from_numpy(np.ascontiguousarray(xa)).to(device)
    yt = torch.from_numpy(ya).to(device)
    w = loss_weights(ya, cfg.loss)
    wt = torch.from_numpy(w).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(ya)
    losses: list[float] = []
    best, best_epoch, since = float("inf"), 0, 0
    stop = "max_epochs"
    model.train()
    for epoch in range(1, cfg.max_epochs + 1):
        perm = torch.randperm(n, generator=gen).to(device)
        partners = torch.randint(0, n, (n,), generator=gen).to(device) if cfg.loss.paired else None
        total = torch.zeros((), device=device)
        for idx in _chunks(perm, cfg.batch_size):
            if partners is not None:
                # Two forward passes: each half gets its own train-mode BatchNorm statistics.
                logp1, emb1 = model(xt[idx])
                logp2, emb2 = model(xt[partners[idx]])
                loss = stream_loss(
                    cfg.loss,
                    logp1,
                    yt[idx],
                    wt,
                    e1=emb1,
                    logp2=logp2,
                    y2=yt[partners[idx]],
                    e2=emb2,
                )
            else:
                logp, _ = model(xt[idx])
                loss = stream_loss(cfg.loss, logp, yt[idx], wt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total = total + loss.detach() * len(idx)
        epoch_loss = float(total) / n
        losses.append(epoch_loss)
        if epoch_loss < best - cfg.min_delta:
            best, best_epoch, since = epoch_loss, epoch, 0
        else:
            since += 1
            if since >= cfg.patience:
                stop = "patience"
                break
    model.eval()
    return FitResult(
        epochs=len(losses),
        best_loss=best,
        best_epoch=best_epoch,
        losses=tuple(losses),
        stop_reason=stop,
        seconds=time.perf_counter() - t0,
    )


@torch.inference_mode()
def predict(model: CompClassModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decisions of ``model`` (eval mode) on x (n, D).

    Returns pred (n,) int64 = argmax, prob_target (n,) float32 = softmax[:, 1], logits (n, 2)
    float32 raw scores. The model's train/eval mode is restored afterwards.
    """
    xa = np.ascontiguousarray(x, dtype=np.float32)
    if xa.ndim != 2:
        raise ValueError(f"x must be (n, D), got {xa.shape}")
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        out = np.empty((len(xa), N_CLASSES), dtype=np.float32)
        for s in range(0, len(xa), _PREDICT_CHUNK):
            chunk = torch.from_numpy(xa[s : s + _PREDICT_CHUNK]).to(device)
            out[s : s + len(chunk)] = model.logits(chunk).float().cpu().numpy()
    finally:
        model.train(was_training)
    z = out - out.max(axis=1, keepdims=True)
    p = np.exp(z)
    prob = (p[:, 1] / p.sum(axis=1)).astype(np.float32)
    return out.argmax(axis=1).astype(np.int64), prob, out
