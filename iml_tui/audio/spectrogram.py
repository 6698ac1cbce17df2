"""The log-mel front end (SPEC A.1), as a batched torch module and as a numpy function.

Front end of the bioacoustic task (PANNs CNN14 at 32 kHz): n_fft = win = 1024, hop 320, 64 mel
bands 50-14000 Hz, periodic Hann window, centred frames with reflect padding, power spectrum,
``10 log10(max(P, amin)) - 10 log10(max(ref, amin))`` with ref 1.0, amin 1e-10 and no top_db
clipping; then ``(x - mean) / std`` with the global statistics of the training split.

The mel filterbank is librosa's ``filters.mel(htk=False, norm="slaney")`` (the Slaney / Auditory
Toolbox mel scale: linear below 1 kHz, logarithmic above; each triangle scaled to unit area in Hz),
which is what PANNs' torchlibrosa uses. It is computed here in numpy; the STFT is ``torch.stft``
(or ``numpy.fft.rfft`` in :func:`log_mel`). Neither needs torchaudio or librosa.

Frame count: ``1 + n // hop`` for ``n`` samples (centred); a 10 s clip at 32 kHz gives 1001 frames.
Signals shorter than ``n_fft // 2 + 1`` samples are zero-padded to that length first (reflect
padding needs at least that many).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from iml_tui.audio.framing import frames

__all__ = [
    "PANNS_32K",
    "LogMel",
    "MelConfig",
    "RunningStats",
    "hz_to_mel",
    "log_mel",
    "mel_filterbank",
    "mel_to_hz",
    "n_frames",
    "normalise",
    "power_to_db",
]


@dataclass(frozen=True)
class MelConfig:
    """Parameters of a log-mel front end. Frequencies in Hz, lengths in samples."""

    sample_rate: int = 32000
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float | None = 14000.0
    win_length: int | None = None
    center: bool = True
    pad_mode: str = "reflect"
    ref: float = 1.0
    amin: float = 1e-10
    top_db: float | None = None

    @property
    def win(self) -> int:
        """Window length (defaults to n_fft)."""
        return self.n_fft if self.win_length is None else self.win_length

    @property
    def f_max(self) -> float:
        """Upper edge of the top mel band (defaults to Nyquist)."""
        return self.sample_rate / 2.0 if self.fmax is None else float(self.fmax)

    @property
    def min_samples(self) -> int:
        """Shortest input handled without zero-padding first."""
        return self.n_fft // 2 + 1


#: SPEC A.1 / PANNs CNN14 front end.
PANNS_32K = MelConfig()


# --- mel scale --------------------------------------------------------------------------------

_F_SP = 200.0 / 3.0  # Hz per mel below 1 kHz (Slaney)
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mel
_LOGSTEP = math.log(6.4) / 27.0  # 27 mel per factor 6.4 above 1 kHz


def hz_to_mel(f: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Hz -> mel (Slaney scale, or HTK ``2595 log10(1 + f/700)``), float64."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return np.asarray(2595.0 * np.log10(1.0 + f / 700.0))
    mel = f / _F_SP
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.asarray(np.where(f >= _MIN_LOG_HZ, log_part, mel))


def mel_to_hz(m: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """mel -> Hz, the inverse of :func:`hz_to_mel`, float64."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return np.asarray(700.0 * (10.0 ** (m / 2595.0) - 1.0))
    lin = m * _F_SP
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.asarray(np.where(m >= _MIN_LOG_MEL, log_part, lin))


def mel_filterbank(
    sr: int,
    n_fft: int,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters, (n_mels, n_fft // 2 + 1) float32, librosa ``filters.mel`` semantics.

    Band ``i`` rises from mel point ``i`` to ``i + 1`` and falls to ``i + 2`` (n_mels + 2 points
    evenly spaced in mel between fmin and fmax). ``norm="slaney"`` divides each triangle by half
    its width in Hz (unit area); None leaves peaks at 1.
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_pts[2:] - mel_pts[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    return weights.astype(np.float32)


def n_frames(n_samples: int, hop_length: int = 320, center: bool = True, n_fft: int = 1024) -> int:
    """Number of STFT frames for ``n_samples`` (after the short-input padding of this module)."""
    if center:
        return 1 + max(n_samples, n_fft // 2 + 1) // hop_length
    return 0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop_length


def power_to_db(
    p: torch.Tensor, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = None
) -> torch.Tensor:
    """``10 log10(max(p, amin)) - 10 log10(max(ref, amin))``, optionally floored at max - top_db.

    top_db uses the maximum over all but the leading (batch) axis of each item.
    """
    db = 10.0 * torch.log10(torch.clamp(p, min=amin)) - 10.0 * math.log10(max(amin, ref))
    if top_db is not None:
        peak = db.flatten(1).amax(dim=1) if db.dim() > 1 else db.max().reshape(1)
        shape = (-1,) + (1,) * (db.dim() - 1) if db.dim() > 1 else (1,)
        db = torch.maximum(db, (peak - top_db).reshape(shape))
    return db


# --- torch module -----------------------------------------------------------------------------


def _window(config: MelConfig) -> np.ndarray:
    """Periodic Hann of length win, zero-padded (centred) to n_fft, float64."""
    win = config.win
    if win > config.n_fft:
        raise ValueError(f"win_length {win} > n_fft {config.n_fft}")
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    left = (config.n_fft - win) // 2
    return np.pad(w, (left, config.n_fft - win - left))


class LogMel(nn.Module):
    """Waveform (B, n) or (n,) float -> log-mel (B, frames, n_mels) in dB, frames = 1 + n // hop.

    Works on any device (``.to(device)`` moves the window and filterbank, which are not saved in
    ``state_dict``). Optional normalisation: ``(x - mean) / std`` with scalar or per-band
    statistics given as ``mean``/``std``; set later with :meth:`set_stats`.
    """

    window: torch.Tensor
    mel_fb: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        config: MelConfig = PANNS_32K,
        mean: float | np.ndarray | None = None,
        std: float | np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        c = config
        fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.f_max)
        self.register_buffer("window", torch.from_numpy(_window(c)).float(), persistent=False)
        self.register_buffer("mel_fb", torch.from_numpy(fb.T.copy()), persistent=False)
        self.register_buffer("mean", torch.zeros(c.n_mels), persistent=False)
        self.register_buffer("std", torch.ones(c.n_mels), persistent=False)
        self.normalised = False
        if mean is not None or std is not None:
            self.set_stats(0.0 if mean is None else mean, 1.0 if std is None else std)

    def set_stats(self, mean: float | np.ndarray, std: float | np.ndarray) -> None:
        """Use ``(x - mean) / std`` after the dB conversion; scalar or (n_mels,) statistics."""
        m = np.broadcast_to(np.asarray(mean, dtype=np.float32), (self.config.n_mels,))
        s = np.broadcast_to(np.asarray(std, dtype=np.float32), (self.config.n_mels,))
        if not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("normalisation statistics must be finite with std > 0")
        self.mean.copy_(torch.from_numpy(m.copy()))
        self.std.copy_(torch.from_numpy(s.copy()))
        self.normalised = True

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n) or (n,) -> (B, frames, n_mels) float32 dB (normalised if statistics are set)."""
        c = self.config
        x = wave.unsqueeze(0) if wave.dim() == 1 else wave
        x = x.to(self.window.dtype)
        if c.center and x.shape[-1] < c.min_samples:
            x = torch.nn.functional.pad(x, (0, c.min_samples - x.shape[-1]))
        spec = torch.stft(
            x,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.n_fft,
            window=self.window,
            center=c.center,
            pad_mode=c.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (B, F, frames)
        mel = torch.matmul(power.transpose(1, 2), self.mel_fb)  # (B, frames, n_mels)
        db = power_to_db(mel, c.ref, c.amin, c.top_db)
        if self.normalised:
            db = (db - self.mean) / self.std
        return db


# --- numpy ------------------------------------------------------------------------------------


def log_mel(
    x: np.ndarray,
    sr: int,
    n_fft: int = 1024,
    hop_length: int = 320,
    n_mels: int = 64,
    fmin: float = 50.0,
    fmax: float | None = 14000.0,
    win_length: int | None = None,
    top_db: float | None = None,
    mean: float | np.ndarray | None = None,
    std: float | np.ndarray | None = None,
) -> np.ndarray:
    """Log-mel spectrogram of a mono signal in numpy: (n,) at ``sr`` Hz -> (frames, n_mels) dB.

    Defaults are SPEC A.1's; ``fmax`` above Nyquist is lowered to ``sr / 2`` (None means Nyquist)
    so any sample rate gives a usable picture. ``mean``/``std`` normalise as in :func:`normalise`.
    Float32 output; computed in blocks of frames, so long signals do not need n_fft x n memory.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono (n,) signal, got shape {x.shape}")
    f_hi = sr / 2.0 if fmax is None else min(float(fmax), sr / 2.0)
    config = replace(
        PANNS_32K,
        sample_rate=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        fmin=fmin,
        fmax=f_hi,
        win_length=win_length,
        top_db=top_db,
    )
    if x.shape[0] < config.min_samples:
        x = np.pad(x, (0, config.min_samples - x.shape[0]))
    pad = n_fft // 2
    xp = np.pad(x, (pad, pad), mode="reflect")
    view = frames(xp, n_fft, hop_length)
    n = view.shape[0]
    window = _window(config)
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, f_hi).astype(np.float64).T
    out = np.empty((n, n_mels), dtype=np.float64)
    block = 2048
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        spec = np.fft.rfft(view[b0:b1] * window, axis=1)
        out[b0:b1] = (spec.real**2 + spec.imag**2) @ fb
    db = 10.0 * np.log10(np.maximum(out, config.amin)) - 10.0 * math.log10(
        max(config.amin, config.ref)
    )
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    if mean is not None or std is not None:
        db = normalise(db, 0.0 if mean is None else mean, 1.0 if std is None else std)
    return db.astype(np.float32)


def normalise(x: np.ndarray, mean: float | np.ndarray, std: float | np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` with scalar or per-band (n_mels,) statistics; float32."""
    s = np.asarray(std, dtype=np.float64)
    if np.any(s <= 0):
        raise ValueError("std must be > 0")
    return np.asarray((np.asarray(x, dtype=np.float64) - mean) / s, dtype=np.float32)


class RunningStats:
    """Global mean/std of log-mel frames, accumulated block by block (float64, Chan's merge).

    ``update`` takes (..., n_mels) arrays. ``mean``/``std`` are global scalars over every value;
    ``band_mean``/``band_std`` are per band, (n_mels,).
    """

    def __init__(self, n_mels: int) -> None:
        self.n_mels = n_mels
        self.count = 0
        self._mean = np.zeros(n_mels)
        self._m2 = np.zeros(n_mels)

    def update(self, x: np.ndarray) -> None:
        """Add the frames of ``x`` (..., n_mels)."""
        a = np.asarray(x, dtype=np.float64).reshape(-1, self.n_mels)
        n = a.shape[0]
        if n == 0:
            return
        mean_b = a.mean(axis=0)
        m2_b = ((a - mean_b) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n / total)
        self._m2 = self._m2 + m2_b + delta**2 * (self.count * n / total)
        self.count = total

    def _require(self) -> None:
        if self.count == 0:
            raise ValueError("no frames accumulated")

    @property
    def band_mean(self) -> np.ndarray:
        """Per-band mean, (n_mels,)."""
        self._require()
        return self._mean.copy()

    @property
    def band_std(self) -> np.ndarray:
        """Per-band population standard deviation, (n_mels,)."""
        self._require()
        return np.sqrt(self._m2 / self.count)

    @property
    def mean(self) -> float:
        """Mean over all values."""
        self._require()
        return float(self._mean.mean())

    @property
    def std(self) -> float:
        """Population standard deviation over all values."""
        self._require()
        grand = self._mean.mean()
        var = (self._m2.sum() + self.count * ((self._mean - grand) ** 2).sum()) / (
            self.count * self.n_mels
        )
        return float(math.sqrt(var))
