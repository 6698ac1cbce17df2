"""The streaming paradigm's binary detector: compression MLP + classifier MLP (SPEC B.4).

x (B, D) -> input BatchNorm -> compression [Linear, BN(momentum 0.05), LeakyReLU] x
len(comp_hidden) -> Linear (H, H), no activation -> Linear -> embedding (B, E) -> classifier
[Linear, BN, LeakyReLU] x len(cls_hidden) -> Linear -> logits (B, 2) -> LogSoftmax (SPEC D.2).
Class 1 is the target. Decision: argmax (threshold 0.5).

Sequence features (``rnn_layers`` > 0, the original's GRU): a row (B, F * d) holds F frames of d
values, frame-major. It is viewed as (B, F, d), each frame batch-normalised over d (the input
BatchNorm), read by a bidirectional GRU of ``rnn_layers`` layers and ``rnn_hidden`` units; the
last layer's final forward and backward states, concatenated (B, 2 rnn_hidden), enter the
compression MLP in place of the raw row.

:func:`fit_stream_model` warm-starts from the current weights on the whole labelled pool with
Adam until the epoch training loss has not improved for ``patience`` epochs (or ``max_epochs``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from iml_tui.engine.losses import LossConfig, LossParams, loss_weights, stream_loss
from iml_tui.engine.train_settings import TrainSettings

if TYPE_CHECKING:
    from iml_tui.engine.models.arf import ArfDetector

N_CLASSES = 2
BN_MOMENTUM = 0.05
_PREDICT_CHUNK = 8192
MONITORS: tuple[str, ...] = ("train/loss", "train/acc")
MODES: tuple[str, ...] = ("min", "max")
LR_DROP = 0.1  # ReduceLROnPlateau's default factor, as the original


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
    ``rnn_layers`` > 0: rows are ``dim // frame_dim`` frames of ``frame_dim`` values, read by
    the bidirectional GRU (``rnn``) before the compression.
    """

    def __init__(
        self,
        dim: int,
        comp_hidden: Sequence[int] = (1024, 1024),
        emb_dim: int = 256,
        cls_hidden: Sequence[int] = (1024, 1024, 1024),
        negative_slope: float = 0.01,
        seed: int | None = 0,
        rnn_layers: int = 0,
        rnn_hidden: int = 256,
        frame_dim: int | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or emb_dim < 1 or any(h < 1 for h in (*comp_hidden, *cls_hidden)):
            raise ValueError("CompClassModel sizes must be positive")
        if rnn_layers < 0 or rnn_hidden < 1:
            raise ValueError("rnn_layers must be >= 0 and rnn_hidden >= 1")
        fd = dim if frame_dim is None else int(frame_dim)
        if fd < 1 or dim % fd:
            raise ValueError(f"frame_dim {fd} does not divide dim {dim}")
        self.dim = dim
        self.frame_dim = fd
        self.frames = dim // fd
        self.rnn_layers = int(rnn_layers)
        self.rnn_hidden = int(rnn_hidden)
        self.comp_hidden = tuple(int(h) for h in comp_hidden)
        self.emb_dim = emb_dim
        self.cls_hidden = tuple(int(h) for h in cls_hidden)
        self.negative_slope = negative_slope
        self.seed = seed
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.rnn: nn.GRU | None = None
            comp_in = dim
            if self.rnn_layers:
                self.input_bn = nn.BatchNorm1d(fd, momentum=BN_MOMENTUM)
                self.rnn = nn.GRU(
                    fd, self.rnn_hidden, self.rnn_layers, batch_first=True, bidirectional=True
                )
                comp_in = 2 * self.rnn_hidden
            else:
                self.input_bn = nn.BatchNorm1d(dim, momentum=BN_MOMENTUM)
            last = self.comp_hidden[-1] if self.comp_hidden else comp_in
            self.compress = _mlp((comp_in, *self.comp_hidden), negative_slope)
            if self.comp_hidden:
                self.compress.append(nn.Linear(last, last))
            self.embed_out = nn.Linear(last, emb_dim)
            self.classify = _mlp((emb_dim, *self.cls_hidden), negative_slope)
            self.head = nn.Linear(self.cls_hidden[-1] if self.cls_hidden else emb_dim, N_CLASSES)
        self.log_softmax = nn.LogSoftmax(dim=1)

    def front(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> the compression's input: the normalised row (B, D), or with the GRU the
        final states of its last layer, forward then backward (B, 2 rnn_hidden)."""
        if self.rnn is None:
            out: torch.Tensor = self.input_bn(x)
            return out
        seq = x.reshape(x.shape[0], self.frames, self.frame_dim)
        seq = self.input_bn(seq.transpose(1, 2)).transpose(1, 2)
        _, h = self.rnn(seq)  # (layers * 2, B, H): the last layer's forward, backward last
        return torch.cat([h[-2], h[-1]], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> embedding (B, E)."""
        out: torch.Tensor = self.embed_out(self.compress(self.front(x)))
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
    # what patience, the LR schedule and load_best watch: the epoch's mean training loss or
    # accuracy (item-weighted; accuracy of the items' own decisions, p_target > 0.5)
    monitor: str = "train/loss"
    mode: str = "min"  # min | max: which direction improves
    schedule_lr: bool = False  # ReduceLROnPlateau(mode, lrs_patience, threshold 0, factor 0.1)
    lrs_patience: int = 10
    load_best: bool = False  # end with the weights of the best monitored epoch

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor {self.monitor!r}: use one of {', '.join(MONITORS)}")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: use min or max")


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_stream_model`: per-epoch mean training losses and why it stopped."""

    epochs: int
    best_loss: float
    best_epoch: int
    losses: tuple[float, ...]
    stop_reason: str  # "patience" | "max_epochs"
    seconds: float
    monitored: tuple[float, ...] = ()  # per epoch, the monitored value
    loss_state: dict[str, float] = field(default_factory=dict)  # LossParams.state() at the end
    lr: float = 0.0  # the learning rate at the end (below cfg.lr after schedule_lr drops)


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
    *,
    loss_state: dict[str, float] | None = None,
    load_best: bool | None = None,
) -> FitResult:
    """Train ``model`` in place from its current weights on the pool x (n, D), y (n,) in {0, 1}.

    Each epoch visits every item once in a random order (minibatches of ``batch_size``); with the
    default loss each item gets a random partner from the pool. A fresh Adam is made per call.
    Stops when the monitored epoch value (``cfg.monitor``: mean loss or accuracy) has not
    improved (``cfg.mode``) by more than ``min_delta`` for ``patience`` epochs, or at
    ``max_epochs``; the weights of the last epoch are kept unless ``load_best`` (default
    ``cfg.load_best``) restores those of the best epoch (strictly better, as a checkpoint on the
    monitor). ``loss_state``: the loss's learned parameters from the previous fit
    (:class:`LossParams`); the result carries them on. All randomness comes from ``rng``.
    """
    cfg = cfg or StreamFitConfig()
    keep_best = cfg.load_best if load_best is None else load_best
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
    lp = LossParams(cfg.loss, loss_state).to(device)
    trained = list(model.parameters()) + [p for p in lp.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trained, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="min" if cfg.mode == "min" else "max",
            factor=LR_DROP,
            patience=cfg.lrs_patience,
            threshold=0.0,
        )
        if cfg.schedule_lr
        else None
    )
    sign = 1.0 if cfg.mode == "min" else -1.0  # compare sign * value: lower is better
    n = len(ya)
    losses: list[float] = []
    monitored: list[float] = []
    best, best_epoch, since = float("inf"), 0, 0
    best_kept: float = float("inf")
    best_state: dict[str, torch.Tensor] | None = None
    best_lp: dict[str, float] = {}
    stop = "max_epochs"
    model.train()
    for epoch in range(1, cfg.max_epochs + 1):
        perm = torch.randperm(n, generator=gen).to(device)
        partners = torch.randint(0, n, (n,), generator=gen).to(device) if cfg.loss.paired else None
        total = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
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
                    params=lp,
                )
            else:
                logp1, _ = model(xt[idx])
                loss = stream_loss(cfg.loss, logp1, yt[idx], wt, params=lp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total = total + loss.detach() * len(idx)
            correct = correct + ((logp1.detach()[:, 1].exp() > 0.5).long() == yt[idx]).sum()
        epoch_loss = float(total) / n
        losses.append(epoch_loss)
        value = epoch_loss if cfg.monitor == "train/loss" else float(correct) / n
        monitored.append(value)
        if sched is not None:
            sched.step(value)
        if keep_best and sign * value < best_kept:
            best_kept = sign * value
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_lp = lp.state()
        if sign * value < best - cfg.min_delta:
            best, best_epoch, since = sign * value, epoch, 0
        else:
            since += 1
            if since >= cfg.patience:
                stop = "patience"
                break
    if best_state is not None:
        model.load_state_dict(best_state)
        lp = LossParams(cfg.loss, best_lp)
    model.eval()
    return FitResult(
        epochs=len(losses),
        best_loss=min(losses) if losses else float("inf"),
        best_epoch=best_epoch,
        losses=tuple(losses),
        stop_reason=stop,
        seconds=time.perf_counter() - t0,
        monitored=tuple(monitored),
        loss_state=lp.state(),
        lr=float(opt.param_groups[0]["lr"]),
    )


@torch.inference_mode()
def predict(
    model: CompClassModel | ArfDetector, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
