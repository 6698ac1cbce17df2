"""Train the per-frame classifier of one active-learning round, predict and evaluate (SPEC A.3/A.6).

Shapes: N clips, T frames per clip, D embedding size, C classes. Embeddings are float32
(N, T, D); targets are 0/1 (N, T, C); probabilities are float32 sigmoid outputs (N, T, C).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F

from iml_tui.devices import resolve_device
from iml_tui.engine.metrics import f1_per_class, frame_map
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.engine.train_settings import TrainSettings

ProgressFn = Callable[[int, float], None]
"""Called once per epoch with (epoch number from 1, validation frame mAP in [0, 1])."""

# Frames per forward chunk when predicting (validation each epoch, predict_frames). Large enough
# to keep the matrix multiply efficient, small enough that the (frames, hidden) activations of one
# chunk stay ~128 MB.
_EVAL_FRAMES = 32768
_POS_WEIGHT_EPS = 1e-5
EVAL_PRECISIONS = ("fp32", "bf16")
"""Arithmetic of validation and scoring passes: float32 (the paper), or bfloat16 autocast."""


def eval_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Context for one scoring pass: bfloat16 autocast on ``device`` for ``"bf16"``, else none.

    Matrix products inside it return bfloat16; callers cast what they keep to float32.
    """
    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"eval precision {precision!r} is not one of {EVAL_PRECISIONS}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@dataclass(frozen=True)
class TrainConfig(TrainSettings):
    """Hyper-parameters of one pool classifier training (defaults: SPEC A.3): the shared
    :class:`~iml_tui.engine.train_settings.TrainSettings` and the plateau schedule."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lr_factor: float = 0.5
    lr_patience: int = 5  # epochs without relative improvement of valid mAP before lr drops
    lr_threshold: float = 1e-4  # relative improvement that counts
    min_lr: float = 5e-6  # stop once lr falls below this
    hidden: int = 1024
    keep_last: bool = False  # return the last epoch's weights, not the best-validated ones


@dataclass
class TrainResult:
    """Outcome of :func:`train_frame_classifier`.

    state_dict: CPU tensors of the weights with the best validation mAP; seconds: wall time;
    history: one dict per epoch with epoch, train_loss (mean weighted BCE), valid_map, lr (the lr
    used in that epoch); stop_reason: "min_lr" or "max_epochs".
    """

    state_dict: dict[str, torch.Tensor]
    best_valid_map: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""


class EvalResult(TypedDict):
    """Frame-level scores of :func:`evaluate`; fractions in [0, 1]."""

    map: float
    ap_per_class: np.ndarray  # (C,)
    f1: float
    f1_per_class: np.ndarray  # (C,)
    threshold: float


def batch_pos_weight(y_flat: torch.Tensor) -> torch.Tensor:
    """Per-class positive weight #neg / (#pos + 1e-5) -> (C,) from a batch's (M, C) 0/1 frames."""
    pos = y_flat.sum(dim=0)
    neg = y_flat.shape[0] - pos
    return neg / (pos + _POS_WEIGHT_EPS)


def _float_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 tensor on ``device``; shares memory with ``x`` on the CPU when already float32."""
    arr = np.ascontiguousarray(x, dtype=np.float32)
    with warnings.catch_warnings():  # read-only arrays (memmaps) are fine: we never write to them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr).to(device)


def _check_shapes(
    train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray
) -> tuple[int, int]:
    """Validate the four arrays; return (D, C)."""
    for name, arr in (
        ("train_x", train_x),
        ("train_y", train_y),
        ("valid_x", valid_x),
        ("valid_y", valid_y),
    ):
        if arr.ndim != 3:
            raise ValueError(f"{name} must be (N, T, D|C), got shape {arr.shape}")
    if train_x.shape[:2] != train_y.shape[:2] or valid_x.shape[:2] != valid_y.shape[:2]:
        raise ValueError(
            f"embeddings and targets disagree on (N, T): train {train_x.shape} vs "
            f"{train_y.shape}, valid {valid_x.shape} vs {valid_y.shape}"
        )
    if train_x.shape[2] != valid_x.shape[2] or train_y.shape[2] != valid_y.shape[2]:
        raise ValueError(
            f"train and valid disagree on D or C: {train_x.shape}/{train_y.shape} vs "
            f"{valid_x.shape}/{valid_y.shape}"
        )
    if train_x.shape[0] == 0 or valid_x.shape[0] == 0:
        raise ValueError("training needs at least one train clip and one valid clip")
    return int(train_x.shape[2]), int(train_y.shape[2])


@torch.inference_mode()
def _predict_into(
    model: FrameMLP, x: torch.Tensor, out: torch.Tensor, clips: int, precision: str = "fp32"
) -> None:
    """Sigmoid probabilities of x (n, T, D) written into float32 out (n, T, C), ``clips`` per
    chunk, the forward pass in ``precision`` (:data:`EVAL_PRECISIONS`)."""
    with eval_autocast(x.device, precision):
        for start in range(0, x.shape[0], clips):
            stop = min(x.shape[0], start + clips)
            out[start:stop] = torch.sigmoid(model(x[start:stop]).float())


def _eval_clips(t: int) -> int:
    return max(1, _EVAL_FRAMES // max(1, t))


def train_frame_classifier(
    train_x: np.ndarray,
    train_y: np.ndarray,
    valid_x: np.ndarray,
    valid_y: np.ndarray,
    cfg: TrainConfig | None = None,
    progress: ProgressFn | None = None,
    weak: np.ndarray | None = None,
) -> TrainResult:
    """Train a fresh :class:`FrameMLP` (same init for the same seed) and keep its best weights.

    train_x (n, T, D) float32, train_y (n, T, C) 0/1; valid_x/valid_y likewise. Loss: BCE with
    logits, per-class pos_weight from each batch's frames; Adam; ReduceLROnPlateau (max) on the
    validation frame mAP after every epoch; stops when lr < min_lr or after max_epochs. An
    exception raised by ``progress`` aborts training (use it to cancel).

    weak: optional (n,) bool, clips whose labels say only whether each class occurs somewhere in
    the clip (clip-level annotations). They train by multiple-instance learning: the clip's logit
    per class is the max over its frames, scored by BCE against the clip label (max over
    ``train_y``'s frames), so a positive clip asks for one positive frame, not for all of them.
    The batch loss is the clip-weighted mean of the frame BCE of the other clips and the clip
    BCE of the weak ones. None (or all False): every clip trains on its frames, as above.
    """
    cfg = cfg or TrainConfig()
    d_in, n_classes = _check_shapes(train_x, train_y, valid_x, valid_y)
    if cfg.batch_size < 1 or cfg.max_epochs < 1:
        raise ValueError("batch_size and max_epochs must be at least 1")
    if cfg.eval_precision not in EVAL_PRECISIONS:
        raise ValueError(
            f"eval_precision {cfg.eval_precision!r} is not one of {', '.join(EVAL_PRECISIONS)}"
        )
    device = resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(max(1, cfg.threads))
    try:
        if weak is not None and np.shape(weak) != (train_x.shape[0],):
            raise ValueError(f"weak has shape {np.shape(weak)}, expected ({train_x.shape[0]},)")
        weak_mask = None if weak is None or not np.any(weak) else np.asarray(weak, dtype=bool)
        return _train(
            train_x, train_y, valid_x, valid_y, cfg, progress, device, d_in, n_classes, weak_mask
        )
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(old_threads)


def _train(
    train_x: np.ndarray,
    train_y: np.ndarray,
    valid_x: np.ndarray,
    valid_y: np.ndarray,
    cfg: TrainConfig,
    progress: ProgressFn | None,
    device: torch.device,
    d_in: int,
    n_classes: int,
    weak: np.ndarray | None = None,
) -> TrainResult:
    t0 = time.perf_counter()
    n = train_x.shape[0]
    model = FrameMLP(d_in, n_classes, cfg.hidden, seed=cfg.seed).to(device)
    xt = _float_tensor(train_x, device)
    yt = _float_tensor(train_y, device)
    wt = None if weak is None else torch.as_tensor(weak, dtype=torch.bool, device=device)
    xv = _float_tensor(valid_x, device)  # the whole valid set, one tensor on the device
    yv = np.asarray(valid_y).reshape(-1, n_classes)
    probs_v = torch.empty((valid_x.shape[0], valid_x.shape[1], n_classes), device=device)
    eval_clips = _eval_clips(valid_x.shape[1])

    opt = torch.optim.Adam(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="max",
        factor=cfg.lr_factor,
        patience=cfg.lr_patience,
        threshold=cfg.lr_threshold,
        threshold_mode="rel",
    )
    gen = torch.Generator().manual_seed(cfg.seed)

    best_map, best_epoch = -math.inf, 0
    best_state: dict[str, torch.Tensor] = {}
    history: list[dict[str, float]] = []
    stop_reason = "max_epochs"
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        lr = float(opt.param_groups[0]["lr"])
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for start in range(0, n, cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            if wt is None:
                logits = model(xt[idx]).reshape(-1, n_classes)
                y_flat = yt[idx].reshape(-1, n_classes)
                loss = F.binary_cross_entropy_with_logits(
                    logits, y_flat, pos_weight=batch_pos_weight(y_flat)
                )
            else:
                loss = _mixed_loss(model(xt[idx]), yt[idx], wt[idx], n_classes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.shape[0]

        model.eval()
        _predict_into(model, xv, probs_v, eval_clips, cfg.eval_precision)
        valid_map, _ = frame_map(probs_v.reshape(-1, n_classes).cpu().numpy(), yv)
        history.append(
            {
                "epoch": float(epoch),
                "train_loss": float(loss_sum) / n,
                "valid_map": valid_map,
                "lr": lr,
            }
        )
        if valid_map > best_map:
            best_map, best_epoch = valid_map, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if progress is not None:
            progress(epoch, valid_map)
        sched.step(valid_map)
        if float(opt.param_groups[0]["lr"]) < cfg.min_lr:
            stop_reason = "min_lr"
            break
    if cfg.keep_last:
        best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return TrainResult(
        state_dict=best_state,
        best_valid_map=float(best_map),
        best_epoch=best_epoch,
        epochs_run=epoch,
        seconds=time.perf_counter() - t0,
        history=history,
        stop_reason=stop_reason,
    )


def _mixed_loss(
    logits: torch.Tensor, y: torch.Tensor, weak: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Clip-weighted mean of frame BCE (strong clips) and max-over-frames clip BCE (weak clips).

    logits, y: (B, T, C); weak: (B,) bool."""
    total = torch.zeros((), device=logits.device)
    strong = ~weak
    if bool(strong.any()):
        s_logits = logits[strong].reshape(-1, n_classes)
        s_y = y[strong].reshape(-1, n_classes)
        loss_s = F.binary_cross_entropy_with_logits(s_logits, s_y, pos_weight=batch_pos_weight(s_y))
        total = total + loss_s * strong.sum()
    if bool(weak.any()):
        clip_logits = logits[weak].max(dim=1).values  # (W, C)
        clip_y = y[weak].max(dim=1).values
        loss_w = F.binary_cross_entropy_with_logits(
            clip_logits, clip_y, pos_weight=batch_pos_weight(clip_y)
        )
        total = total + loss_w * weak.sum()
    return total / logits.shape[0]


def _as_model(model: FrameMLP | Mapping[str, torch.Tensor], device: torch.device) -> FrameMLP:
    if isinstance(model, FrameMLP):
        return model.to(device)
    return FrameMLP.from_state_dict(model).to(device)


def predict_frames(
    model: FrameMLP | Mapping[str, torch.Tensor],
    x: np.ndarray | Iterable[tuple[int, np.ndarray]],
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Sigmoid probabilities (N, T, C) float32 for embeddings x (N, T, D).

    ``model`` is a FrameMLP or its state dict; ``x`` an array or an iterable of (start, block)
    pairs (e.g. ``PoolReader.iter_blocks()``), block (b, T, D) holding clips start..start+b.
    Runs ``batch_size`` clips at a time under inference mode (default: 32768 frames, i.e. 1024
    clips at T = 32, the chunking validation uses during training, so predicting the valid set
    reproduces the training-time valid mAP bit for bit). A FrameMLP is moved to ``device``.
    ``precision``: "fp32", or "bf16" for a bfloat16-autocast forward pass (outputs float32).
    """
    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(EVAL_PRECISIONS)}")
    dev = resolve_device(device)
    net = _as_model(model, dev)
    was_training = net.training
    net.eval()
    try:
        if isinstance(x, np.ndarray):
            return _predict_array(net, x, dev, batch_size, precision)
        pieces = [
            (int(start), _predict_array(net, block, dev, batch_size, precision))
            for start, block in x
        ]
    finally:
        net.train(was_training)
    if not pieces:
        return np.zeros((0, 0, net.n_classes), dtype=np.float32)
    n = max(start + p.shape[0] for start, p in pieces)
    out = np.zeros((n, pieces[0][1].shape[1], net.n_classes), dtype=np.float32)
    for start, p in pieces:
        out[start : start + p.shape[0]] = p
    return out


def _predict_array(
    net: FrameMLP,
    x: np.ndarray,
    device: torch.device,
    batch_size: int | None,
    precision: str = "fp32",
) -> np.ndarray:
    """(n, T, D) array -> (n, T, C) float32 probabilities, ``batch_size`` clips per transfer."""
    if x.ndim != 3:
        raise ValueError(f"embeddings must be (N, T, D), got shape {x.shape}")
    if x.shape[2] != net.d_in:
        raise ValueError(f"embeddings have D={x.shape[2]} but the model expects {net.d_in}")
    out = np.empty((x.shape[0], x.shape[1], net.n_classes), dtype=np.float32)
    step = _eval_clips(x.shape[1]) if batch_size is None else max(1, batch_size)
    for start in range(0, x.shape[0], step):
        stop = min(x.shape[0], start + step)
        xb = _float_tensor(x[start:stop], device)
        pb = torch.empty((stop - start, x.shape[1], net.n_classes), device=device)
        _predict_into(net, xb, pb, step, precision)
        out[start:stop] = pb.cpu().numpy()
    return out


def evaluate(probs: np.ndarray, targets: np.ndarray, threshold: float) -> EvalResult:
    """Frame-level mAP, per-class AP, mean F1 and per-class F1 of probs vs targets (N, T, C)."""
    map_, ap = frame_map(probs, targets)
    f1 = f1_per_class(probs, targets, threshold)
    return EvalResult(
        map=map_,
        ap_per_class=ap,
        f1=float(f1.mean()) if f1.size else 0.0,
        f1_per_class=f1,
        threshold=float(threshold),
    )


__all__ = [
    "EVAL_PRECISIONS",
    "EvalResult",
    "FrameMLP",
    "ProgressFn",
    "TrainConfig",
    "TrainResult",
    "batch_pos_weight",
    "eval_autocast",
    "evaluate",
    "predict_frames",
    "train_frame_classifier",
]
