"""Supervised fine-tuning of the CNN14 encoder on the SL division (SPEC A.5).

``finetune_encoder(data, out, cfg)`` trains a :class:`~iml_tui.features.encoders.Cnn14` and a
per-frame head (:class:`~iml_tui.engine.models.frame_mlp.FrameMLP`, Linear(D->hidden), ReLU,
Linear(hidden->C)) end to end on ``<data>/sl/train`` (made by ``iml-tui prepare dcase --division
sl``), validates the frame mAP on ``<data>/sl/valid`` after every epoch and keeps the encoder with
the best valid mAP. Shapes: B cuts per batch, n = 320000 samples (10 s at 32 kHz), T = 32 frames,
D = widths[-1], C classes (45 on the real SL division).

One training step:

1. **Balanced random cuts** (:class:`BalancedCuts`): B cuts of 10 s drawn from the train pieces.
2. **Targets** of each cut from the split's ``events.csv``: (T, C) with 1 where a POS event of the
   class overlaps the frame slot (SPEC A.1 slots), -1 where only an UNK event does (the SL rule
   UNK -> -1; masked out of the loss), else 0. ``labels.npy`` stores UNK as 0, so the events table
   is the only place UNK survives.
3. **Additive noise** (:func:`add_noise`, waveform): per cut with probability 0.5, Gaussian noise
   of standard deviation u * std(cut), u ~ U[0.1, 0.3].
4. **Frequency masking** (:func:`draw_freq_stripes`, normalised log-mel): per cut with probability
   0.5, 2 stripes, each of width w ~ U{1..8} mel bins at a start ~ U{0..64-w}, set to 0 (the mean
   of the normalised log-mel).
5. **Weighted BCE** (SPEC A.3) on the flattened frames of the batch, UNK entries masked:
   ``pos_weight[c] = #neg / (#pos + 1e-5)`` over the unmasked frames of class c; the loss is the
   mean over the unmasked entries. Adam.

All randomness (cuts, noise, masks: a numpy Generator; dropout: torch's RNG, forked so the caller's
is untouched) comes from ``cfg.seed``, and its state is saved with the model and optimizer after
every epoch in ``<out>/finetune_state.pt`` (temporary file + rename): running the same command
again continues after the last finished epoch, bit for bit as if never stopped (on the CPU).

Outputs in ``out``: ``encoder_best.pt`` (our CNN14 format, :func:`save_checkpoint`; loadable by
``get_encoder("cnn14", checkpoint=...)``; ``extra`` holds the head's state dict, the class list,
the epoch and its valid mAP per class), ``finetune_state.pt`` (resume), ``history.json``.
The encoder's front end normalises with the global log-mel mean / std of the SL train part
(``split.json``), whatever the initial checkpoint carried.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iml_tui.atomic import atomic_torch_save, atomic_write_text
from iml_tui.audio import io as audio_io
from iml_tui.audio.spectrogram import MelConfig
from iml_tui.callbacks import ProgressFn
from iml_tui.data.corpus import ClipRow, Split, is_split, read_split
from iml_tui.data.dcase import CLIP_SECONDS, Event, clip_events, piece_frame_labels
from iml_tui.devices import resolve_device
from iml_tui.engine.metrics import frame_map
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.errors import UserError
from iml_tui.features.encoders import (
    CNN14_FORMAT,
    CNN14_WIDTHS,
    Cnn14,
    build_cnn14,
    checkpoint_hash,
    load_cnn14,
    save_checkpoint,
)

__all__ = [
    "BEST_FILE",
    "STATE_FILE",
    "BalancedCuts",
    "Cut",
    "EncoderEval",
    "EpochLog",
    "FinetuneConfig",
    "FinetuneResult",
    "Region",
    "add_noise",
    "apply_freq_stripes",
    "cut_targets",
    "draw_freq_stripes",
    "evaluate_encoder",
    "finetune_encoder",
    "masked_weighted_bce",
    "read_events",
    "sl_folders",
]

BEST_FILE = "encoder_best.pt"
STATE_FILE = "finetune_state.pt"
HISTORY_FILE = "history.json"
STATE_FORMAT = "iml-tui-finetune-state"
NEGATIVE = "negative"
_POS_WEIGHT_EPS = 1e-5


@dataclass
class FinetuneConfig:
    """Hyper-parameters of the SL phase. Seconds, samples and mel bins as named."""

    epochs: int = 30
    batch_size: int = 32  # cuts per step
    steps_per_epoch: int = 200
    lr: float = 1e-4  # Adam (betas 0.9/0.999, eps 1e-8, wd 0)
    hidden: int = 1024  # width of the head's hidden layer (SPEC A.3)
    widths: tuple[int, ...] = CNN14_WIDTHS  # only with from_scratch (a checkpoint sets its own)
    seed: int = 0
    device: str = "auto"
    freq_mask_p: float = 0.5
    freq_mask_width: int = 8  # widest stripe, mel bins
    freq_mask_stripes: int = 2
    noise_p: float = 0.5
    noise_min: float = 0.1  # noise std relative to the cut's std
    noise_max: float = 0.3
    min_event_seconds: float = 0.1  # shorter events count as this long when drawing cuts
    valid_batch_size: int = 16  # clips per validation forward pass


@dataclass
class EpochLog:
    """One finished epoch: mean training loss, valid frame mAP (macro) and per class, seconds."""

    epoch: int
    train_loss: float
    valid_map: float
    valid_ap: list[float]
    seconds: float
    best: bool


@dataclass
class FinetuneResult:
    """What :func:`finetune_encoder` left in ``out``."""

    best_path: Path
    best_epoch: int
    best_valid_map: float
    epochs_run: int  # epochs finished, this run and earlier ones
    resumed_from: int  # epochs already done when this run started (0 = fresh)
    history: list[EpochLog] = field(default_factory=list)
    class_list: list[str] = field(default_factory=list)


# --- the SL data -------------------------------------------------------------------------------


def sl_folders(data: str | Path) -> tuple[Path, Path]:
    """(train, valid) split folders of an SL division: ``data`` is the ``prepare dcase`` output
    (holding ``sl/``) or the ``sl`` folder itself."""
    root = Path(data)
    for base in (root / "sl", root):
        if is_split(base / "train") and is_split(base / "valid"):
            return base / "train", base / "valid"
    raise UserError(
        "no SL division (sl/train and sl/valid split folders) here",
        root,
        "run `iml-tui prepare dcase --source <zip> --out <folder> --division sl` and "
        "pass that folder as --data",
    )


def read_events(split_folder: Path, class_list: Sequence[str]) -> dict[str, list[Event]]:
    """Events of a split folder's ``events.csv`` by piece id (``<DATASET>/<name>``), classes as
    indices into ``class_list``; POS -> positive, UNK -> not."""
    path = split_folder / "events.csv"
    index = {c: i for i, c in enumerate(class_list)}
    out: dict[str, list[Event]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line, rec in enumerate(csv.DictReader(f), start=2):
                cls = index.get(rec["class"])
                if cls is None:
                    raise UserError(
                        f"line {line}: class {rec['class']!r} not in the split's class list",
                        path,
                        "re-create it with `iml-tui prepare`",
                    )
                ev = Event(
                    float(rec["start"]),
                    float(rec["end"]),
                    cls,
                    rec["value"].strip().upper() == "POS",
                )
                out.setdefault(rec["piece"], []).append(ev)
    except FileNotFoundError as exc:
        raise UserError(
            "events.csv is missing", path, "re-create the SL division with `iml-tui prepare dcase`"
        ) from exc
    except (KeyError, ValueError) as exc:
        raise UserError(
            f"malformed events table ({exc})", path, "re-create it with `iml-tui prepare`"
        ) from exc
    return out


def _piece_id(audio: str) -> str:
    """``audio/<DATASET>/<name>.flac`` -> ``<DATASET>/<name>`` (the events table's piece id)."""
    rel = audio.replace("\\", "/").removeprefix("audio/")
    return rel.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Region:
    """A stretch [start, end) s of piece ``piece`` (an index into the piece list)."""

    piece: int
    start: float
    end: float


@dataclass(frozen=True)
class Cut:
    """A 10 s cut: piece index, start (s), and the category it was drawn for."""

    piece: int
    start: float
    category: str


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


class BalancedCuts:
    """Balanced random 10 s cuts over the pieces of a split (SPEC A.5).

    Categories: every class with at least one POS event, and "negative". The **regions** of class
    c are the union of its POS events per piece (an event shorter than ``min_event`` s counts as
    ``[start, start + min_event]``, clipped to the piece); the regions of "negative" are what is
    left of each piece outside every event (POS or UNK, any class). D_k = total length of the
    regions of category k (s). One draw:

    1. category k with probability ``(1 / D_k) / sum_j (1 / D_j)`` (categories with D_k > 0);
    2. a time t uniform over k's regions (a region with probability proportional to its length);
    3. the cut start a uniform in ``[max(0, t - 10), min(t, d - 10)]`` for a piece of d >= 10 s
       (the cut holds t and lies inside the piece), a = 0 for a shorter piece (zero-padded).

    Targets come from the events wherever the cut falls (a "negative" cut may hold events).
    """

    def __init__(
        self,
        durations: Sequence[float],
        events: Sequence[Sequence[Event]],
        n_classes: int,
        class_list: Sequence[str] | None = None,
        cut_seconds: float = CLIP_SECONDS,
        min_event: float = 0.1,
    ) -> None:
        if len(durations) != len(events):
            raise ValueError("one event list per piece expected")
        self.durations = [float(d) for d in durations]
        self.cut_seconds = float(cut_seconds)
        names = list(class_list) if class_list is not None else [str(c) for c in range(n_classes)]
        per_class: list[list[Region]] = [[] for _ in range(n_classes)]
        negative: list[Region] = []
        for p, (dur, evs) in enumerate(zip(self.durations, events, strict=True)):
            for c in range(n_classes):
                spans = [
                    (ev.start, min(dur, max(ev.end, ev.start + min_event)))
                    for ev in evs
                    if ev.positive and ev.cls == c and ev.start < dur
                ]
                per_class[c].extend(Region(p, s, e) for s, e in _union(spans) if e > s)
            busy = _union(
                [
                    (ev.start, min(dur, max(ev.end, ev.start + min_event)))
                    for ev in evs
                    if ev.start < dur
                ]
            )
            pos = 0.0
            for s, e in [*busy, (dur, dur)]:
                if s > pos:
                    negative.append(Region(p, pos, s))
                pos = max(pos, e)
        cats = [(names[c], regs) for c, regs in enumerate(per_class) if regs]
        if negative:
            cats.append((NEGATIVE, negative))
        if not cats:
            raise UserError(
                "the SL train split has no audio to cut",
                None,
                "re-create the SL division with `iml-tui prepare dcase`",
            )
        self.categories = [name for name, _ in cats]
        self.regions = [regs for _, regs in cats]
        self.totals = np.array([sum(r.end - r.start for r in regs) for regs in self.regions])
        inv = 1.0 / self.totals
        self.probabilities = inv / inv.sum()
        self._cum = [np.cumsum([r.end - r.start for r in regs]) for regs in self.regions]

    def draw(self, rng: np.random.Generator) -> Cut:
        """One cut (see the class docstring)."""
        k = int(rng.choice(len(self.categories), p=self.probabilities))
        cum = self._cum[k]
        u = float(rng.uniform(0.0, float(cum[-1])))
        i = min(int(np.searchsorted(cum, u, side="right")), len(cum) - 1)
        reg = self.regions[k][i]
        t = reg.start + (u - (float(cum[i - 1]) if i else 0.0))
        t = min(max(t, reg.start), reg.end)
        d = self.durations[reg.piece]
        if d <= self.cut_seconds:
            a = 0.0
        else:
            a = float(rng.uniform(max(0.0, t - self.cut_seconds), min(t, d - self.cut_seconds)))
        return Cut(reg.piece, a, self.categories[k])

    def draw_many(self, rng: np.random.Generator, n: int) -> list[Cut]:
        return [self.draw(rng) for _ in range(n)]


def cut_targets(
    events: Sequence[Event], start: float, n_classes: int, seconds: float = CLIP_SECONDS
) -> np.ndarray:
    """(32, C) int8 targets of the cut [start, start + 10) s: 1 POS, -1 UNK only, 0 otherwise."""
    inside = clip_events(events, start, start + seconds)
    pos = piece_frame_labels(inside, seconds, n_classes)[0]
    unk = piece_frame_labels(
        [Event(e.start, e.end, e.cls, True) for e in inside if not e.positive], seconds, n_classes
    )[0]
    out = pos.astype(np.int8)
    out[(unk > 0) & (pos == 0)] = -1
    return out


# --- augmentation ------------------------------------------------------------------------------


def add_noise(
    x: np.ndarray, rng: np.random.Generator, p: float = 0.5, lo: float = 0.1, hi: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Additive Gaussian noise on (B, n) cuts: per cut with probability p, std u * std(cut),
    u ~ U[lo, hi]. Returns (noisy (B, n) float32, u per cut (B,), 0 where untouched)."""
    b = x.shape[0]
    hit = rng.random(b) < p
    level = np.where(hit, rng.uniform(lo, hi, size=b), 0.0)
    out = np.array(x, dtype=np.float32, copy=True)
    for i in np.flatnonzero(hit):
        sd = float(out[i].std())
        if sd > 0:
            out[i] += (level[i] * sd * rng.standard_normal(out.shape[1])).astype(np.float32)
    return out, level


def draw_freq_stripes(
    batch: int,
    n_mels: int,
    rng: np.random.Generator,
    p: float = 0.5,
    width: int = 8,
    stripes: int = 2,
) -> list[tuple[int, int, int]]:
    """Frequency-mask stripes for a batch: per item with probability p, ``stripes`` stripes of
    width w ~ U{1..width} bins starting at U{0..n_mels - w}. Returns (item, start, width) rows."""
    out: list[tuple[int, int, int]] = []
    hit = rng.random(batch) < p
    for i in np.flatnonzero(hit):
        for _ in range(stripes):
            w = int(rng.integers(1, min(width, n_mels) + 1))
            s = int(rng.integers(0, n_mels - w + 1))
            out.append((int(i), s, w))
    return out


def apply_freq_stripes(x: torch.Tensor, stripes: Sequence[tuple[int, int, int]]) -> torch.Tensor:
    """Zero the stripes (item, start, width) of log-mel x (B, frames, n_mels); returns a copy."""
    if not stripes:
        return x
    keep = torch.ones(x.shape[0], x.shape[-1], dtype=x.dtype)
    for i, s, w in stripes:
        keep[i, s : s + w] = 0
    return x * keep.to(x.device)[:, None, :]


def masked_weighted_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Weighted BCE of SPEC A.3 on (..., C) logits and targets in {-1, 0, 1}; -1 is masked.

    pos_weight[c] = #neg / (#pos + 1e-5) over the unmasked frames of class c; the loss is the mean
    over unmasked entries (equal to the plain weighted BCE when nothing is masked).
    """
    c = logits.shape[-1]
    lg = logits.reshape(-1, c)
    y = targets.reshape(-1, c)
    valid = (y >= 0).to(lg.dtype)
    yf = y.clamp(min=0).to(lg.dtype)
    pos = (yf * valid).sum(dim=0)
    neg = ((1 - yf) * valid).sum(dim=0)
    pw = neg / (pos + _POS_WEIGHT_EPS)
    per = F.binary_cross_entropy_with_logits(lg, yf, pos_weight=pw, reduction="none")
    return (per * valid).sum() / valid.sum().clamp(min=1.0)


# --- the model ---------------------------------------------------------------------------------


class _Tagger(nn.Module):
    """Cnn14 encoder + per-frame head: waveform (B, n) -> logits (B, T, C)."""

    def __init__(self, encoder: Cnn14, head: FrameMLP) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self, wave: torch.Tensor, stripes: Sequence[tuple[int, int, int]] = ()
    ) -> torch.Tensor:
        mel = apply_freq_stripes(self.encoder.frontend(wave), stripes)
        out: torch.Tensor = self.head(self.encoder.forward_logmel(mel.unsqueeze(1)))
        return out


def _load_cut(path: Path, start: float, n: int, sr: int, length: int | None = None) -> np.ndarray:
    """``length`` (default n) samples of ``path`` at ``sr`` Hz from ``start`` s, zero-padded to
    (n,) float32."""
    take = n if length is None else min(n, length)
    x, _ = audio_io.read(path, sr=sr, start=start, duration=take / sr)
    out = np.zeros(n, dtype=np.float32)
    out[: min(take, x.shape[0])] = x[:take]
    return out


@dataclass
class _TrainData:
    pieces: list[Path]
    events: list[list[Event]]
    cuts: BalancedCuts
    valid: Split
    class_list: list[str]
    norm: tuple[float, float]


def _train_data(data: str | Path, min_event: float) -> _TrainData:
    train_dir, valid_dir = sl_folders(data)
    train, valid = read_split(train_dir), read_split(valid_dir)
    if train.info.class_list != valid.info.class_list:
        raise UserError(
            "sl/train and sl/valid have different class lists",
            train_dir.parent,
            "re-create the SL division with `iml-tui prepare dcase`",
        )
    classes = train.info.class_list
    by_piece = read_events(train_dir, classes)
    audio = sorted({r.audio for r in train.rows})
    pieces = [train.audio_path(ClipRow(a, a)) for a in audio]
    durations = [audio_io.info(p).duration for p in pieces]
    events = [by_piece.get(_piece_id(a), []) for a in audio]
    mean, std = train.info.extra.get("norm_mean"), train.info.extra.get("norm_std")
    norm = (float(mean), float(std)) if mean is not None and std and float(std) > 0 else (0.0, 1.0)
    cuts = BalancedCuts(durations, events, len(classes), classes, min_event=min_event)
    return _TrainData(pieces, events, cuts, valid, classes, norm)


def _initial_encoder(
    checkpoint: Path | None, from_scratch: bool, cfg: FinetuneConfig
) -> tuple[Cnn14, str]:
    if checkpoint is not None and from_scratch:
        raise UserError("give --checkpoint or --from-scratch, not both")
    if checkpoint is None and not from_scratch:
        raise UserError(
            "the encoder needs a start: --checkpoint <Cnn14*.pth or iml-tui file> "
            "or --from-scratch (random init)"
        )
    if checkpoint is not None:
        model, _ = load_cnn14(checkpoint)
        return model, _origin(checkpoint, cfg)
    if len(cfg.widths) != 6 or min(cfg.widths) < 1:
        raise UserError(
            f"CNN14 needs 6 positive widths, got {list(cfg.widths)}",
            fix="e.g. --widths 64,128,256,512,1024,2048",
        )
    return build_cnn14(cfg.widths, seed=cfg.seed), _origin(None, cfg)


def _origin(checkpoint: Path | None, cfg: FinetuneConfig) -> str:
    """What a run started from: ``<file name>:<hash>`` or ``scratch:<widths>:<seed>``."""
    if checkpoint is not None:
        return f"{Path(checkpoint).name}:{checkpoint_hash(checkpoint)}"
    return f"scratch:{list(cfg.widths)}:{cfg.seed}"


def _atomic_save(obj: Any, path: Path) -> None:
    atomic_torch_save(obj, path)


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


@torch.inference_mode()
def _predict_split(
    model: _Tagger, split: Split, device: torch.device, batch: int, progress: ProgressFn | None
) -> np.ndarray:
    """Sigmoid probabilities (N, T, C) of every clip of a split folder (clips zero-padded)."""
    model.eval()
    sr = model.encoder.mel.sample_rate
    n = round(CLIP_SECONDS * sr)
    out: list[np.ndarray] = []
    rows = split.rows
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        x = np.stack(
            [
                _load_cut(
                    split.audio_path(r),
                    r.offset,
                    n,
                    sr,
                    None if r.duration is None else round(r.duration * sr),
                )
                for r in chunk
            ]
        )
        probs = torch.sigmoid(model(torch.from_numpy(x).to(device))).float().cpu().numpy()
        out.append(probs)
        if progress is not None:
            progress("valid clips", start + len(chunk), len(rows))
    c = len(split.info.class_list)
    return np.concatenate(out) if out else np.zeros((0, split.info.frames, c), np.float32)


def _check_frames(probs: np.ndarray, split: Split) -> None:
    if probs.shape[1] != split.labels.shape[1]:
        raise UserError(
            f"the encoder gives {probs.shape[1]} frames per clip but the split has "
            f"{split.labels.shape[1]}",
            split.folder,
            "use a 32 kHz CNN14 and the 10 s clips of `prepare dcase`",
        )


# --- training ----------------------------------------------------------------------------------


def finetune_encoder(
    data: str | Path,
    out: str | Path,
    cfg: FinetuneConfig | None = None,
    checkpoint: str | Path | None = None,
    from_scratch: bool = False,
    progress: ProgressFn | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> FinetuneResult:
    """Fine-tune CNN14 + head on the SL division at ``data``; write results into ``out``.

    Resumes from ``<out>/finetune_state.pt`` when present (same data classes, start and widths;
    ``epochs`` may grow). An exception raised by ``progress`` or ``on_epoch`` stops the run; the
    epochs finished before it are kept. ``progress`` labels: "train steps" (of the whole run),
    "valid clips".
    """
    cfg = cfg or FinetuneConfig()
    if min(cfg.epochs, cfg.batch_size, cfg.steps_per_epoch, cfg.hidden, cfg.valid_batch_size) < 1:
        raise UserError("epochs, batch size, steps per epoch and hidden must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    td = _train_data(data, cfg.min_event_seconds)
    device = resolve_device(cfg.device)
    state_path = out / STATE_FILE
    saved: dict[str, Any] | None = None
    if state_path.is_file():
        saved = torch.load(str(state_path), map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
            raise UserError(
                "not a fine-tuning state file", state_path, "remove it or choose another --out"
            )
    if saved is not None:
        encoder = Cnn14(tuple(saved["widths"]), MelConfig(**json.loads(saved["mel"])))
        origin = str(saved["origin"])
        if saved["class_list"] != td.class_list:
            raise UserError(
                "the run in this folder trained on other classes",
                out,
                "choose another --out for this data",
            )
        if checkpoint is not None or from_scratch:
            want = _origin(None if checkpoint is None else Path(checkpoint), cfg)
            if want != origin:
                raise UserError(
                    f"the run in this folder started from {origin}, not {want}",
                    out,
                    "choose another --out, or repeat the first command",
                )
    else:
        encoder, origin = _initial_encoder(
            None if checkpoint is None else Path(checkpoint), from_scratch, cfg
        )
    encoder.frontend.set_stats(*td.norm)
    head = FrameMLP(encoder.dim, len(td.class_list), cfg.hidden, seed=cfg.seed)
    model = _Tagger(encoder, head).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    rng = np.random.default_rng(cfg.seed)
    history: list[EpochLog] = []
    best_map, best_epoch, done = -math.inf, 0, 0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed)
        if saved is not None:
            model.encoder.load_state_dict(saved["encoder"])
            model.head.load_state_dict(saved["head"])
            opt.load_state_dict(saved["optimizer"])
            rng.bit_generator.state = json.loads(saved["numpy_rng"])
            torch.set_rng_state(saved["torch_rng"])
            if device.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"], device)
            history = [EpochLog(**h) for h in json.loads(saved["history"])]
            best_map, best_epoch = float(saved["best_map"]), int(saved["best_epoch"])
            done = int(saved["epoch"])
        resumed = done
        with ThreadPoolExecutor(max_workers=1) as pool:
            for epoch in range(done + 1, cfg.epochs + 1):
                log = _run_epoch(model, opt, td, cfg, rng, device, epoch, pool, progress)
                log.best = log.valid_map > best_map
                history.append(log)
                if log.best:
                    best_map, best_epoch = log.valid_map, epoch
                    save_checkpoint(
                        out / BEST_FILE,
                        model.encoder,
                        extra={
                            "head": _cpu_state(model.head),
                            "head_hidden": cfg.hidden,
                            "class_list": list(td.class_list),
                            "epoch": epoch,
                            "valid_map": log.valid_map,
                            "valid_ap": log.valid_ap,
                            "origin": origin,
                            "trained_by": "iml-tui encoder train",
                        },
                    )
                _atomic_save(
                    {
                        "format": STATE_FORMAT,
                        "epoch": epoch,
                        "widths": list(model.encoder.widths),
                        "mel": json.dumps(asdict(model.encoder.mel)),
                        "origin": origin,
                        "class_list": list(td.class_list),
                        "encoder": _cpu_state(model.encoder),
                        "head": _cpu_state(model.head),
                        "optimizer": opt.state_dict(),
                        "numpy_rng": json.dumps(rng.bit_generator.state),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device)
                        if device.type == "cuda"
                        else None,
                        "history": json.dumps([asdict(h) for h in history]),
                        "best_map": best_map,
                        "best_epoch": best_epoch,
                        "config": json.dumps(asdict(cfg)),
                    },
                    state_path,
                )
                atomic_write_text(
                    out / HISTORY_FILE,
                    json.dumps(
                        {
                            "class_list": td.class_list,
                            "origin": origin,
                            "config": asdict(cfg),
                            "epochs": [asdict(h) for h in history],
                        },
                        indent=1,
                    )
                    + "\n",
                )
                if on_epoch is not None:
                    on_epoch(log)
    return FinetuneResult(
        out / BEST_FILE,
        best_epoch,
        float(best_map),
        len(history),
        resumed,
        history,
        list(td.class_list),
    )


def _run_epoch(
    model: _Tagger,
    opt: torch.optim.Optimizer,
    td: _TrainData,
    cfg: FinetuneConfig,
    rng: np.random.Generator,
    device: torch.device,
    epoch: int,
    pool: ThreadPoolExecutor,
    progress: ProgressFn | None,
) -> EpochLog:
    """One epoch of ``steps_per_epoch`` steps, then validation; -> its log (best unset)."""
    t0 = time.perf_counter()
    sr = model.encoder.mel.sample_rate
    n = round(CLIP_SECONDS * sr)
    n_mels = model.encoder.mel.n_mels
    total = cfg.epochs * cfg.steps_per_epoch

    def load(cuts: list[Cut]) -> np.ndarray:
        return np.stack([_load_cut(td.pieces[c.piece], c.start, n, sr) for c in cuts])

    def draw() -> tuple[list[Cut], Future[np.ndarray]]:
        cuts = td.cuts.draw_many(rng, cfg.batch_size)
        return cuts, pool.submit(load, cuts)

    model.train()
    loss_sum = 0.0
    nxt = draw()
    for step in range(cfg.steps_per_epoch):
        cuts, pending = nxt
        # draws for the next step come after this step's augmentation draws (fixed RNG order)
        y = np.stack([cut_targets(td.events[c.piece], c.start, len(td.class_list)) for c in cuts])
        wave, _ = add_noise(pending.result(), rng, cfg.noise_p, cfg.noise_min, cfg.noise_max)
        stripes = draw_freq_stripes(
            len(cuts), n_mels, rng, cfg.freq_mask_p, cfg.freq_mask_width, cfg.freq_mask_stripes
        )
        if step + 1 < cfg.steps_per_epoch:
            nxt = draw()
        logits = model(torch.from_numpy(wave).to(device), stripes)
        loss = masked_weighted_bce(logits, torch.from_numpy(y).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach())
        if progress is not None:
            progress("train steps", (epoch - 1) * cfg.steps_per_epoch + step + 1, total)
    probs = _predict_split(model, td.valid, device, cfg.valid_batch_size, progress)
    _check_frames(probs, td.valid)
    vmap, ap = frame_map(probs, td.valid.labels)
    return EpochLog(
        epoch,
        loss_sum / cfg.steps_per_epoch,
        vmap,
        [float(a) for a in ap],
        time.perf_counter() - t0,
        False,
    )


# --- evaluation --------------------------------------------------------------------------------


@dataclass
class EncoderEval:
    """Frame mAP (macro, NaN -> 0) and AP per class of an encoder + head on a split."""

    class_list: list[str]
    ap: list[float]
    map: float
    clips: int
    positives: list[int]  # positive frames per class
    split: Path


def evaluate_encoder(
    checkpoint: str | Path,
    data: str | Path,
    split: str = "valid",
    device: str = "auto",
    batch_size: int = 16,
    progress: ProgressFn | None = None,
) -> EncoderEval:
    """Valid (or ``split``) frame AP per class of a fine-tuned encoder with its stored head.

    ``data``: the ``prepare dcase`` output, its ``sl`` folder, or a split folder.
    """
    path = Path(checkpoint)
    model, _ = load_cnn14(path)
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    extra: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == CNN14_FORMAT:
        extra = dict(obj.get("extra") or {})
    head_sd = extra.get("head")
    if not isinstance(head_sd, dict):
        raise UserError(
            "the checkpoint has no classifier head",
            path,
            f"give an {BEST_FILE} written by `iml-tui encoder train`",
        )
    root = Path(data)
    folder = root if is_split(root) else None
    if folder is None:
        train_dir, valid_dir = sl_folders(root)
        folder = valid_dir if split == "valid" else train_dir.parent / split
    sp = read_split(folder)
    classes = [str(c) for c in extra.get("class_list", [])]
    if classes != sp.info.class_list:
        raise UserError(
            "the checkpoint was trained on other classes than this split's",
            folder,
            "evaluate on the SL division the encoder was trained on",
        )
    head = FrameMLP.from_state_dict(head_sd)
    dev = resolve_device(device)
    tagger = _Tagger(model, head).to(dev)
    probs = _predict_split(tagger, sp, dev, max(1, batch_size), progress)
    _check_frames(probs, sp)
    m, ap = frame_map(probs, sp.labels)
    pos = sp.labels.reshape(-1, len(classes)).sum(axis=0)
    return EncoderEval(
        classes, [float(a) for a in ap], m, len(sp.rows), [int(v) for v in pos], folder
    )
