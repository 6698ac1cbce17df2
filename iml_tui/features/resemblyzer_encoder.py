"""Resemblyzer's GE2E speaker encoder (256-d, 16 kHz) with the weights inside its wheel.

``resemblyzer.VoiceEncoder`` loads ``resemblyzer/pretrained.pt`` from the installed package (no
download); its 3-layer LSTM (hidden 256) + linear + ReLU runs on the registry's device. One
utterance (n samples at 16 kHz) gives one vector, as ``VoiceEncoder.embed_utterance`` computes it:

1. ``preprocess=True`` (resemblyzer's ``preprocess_wav`` without its resampling, which
   :class:`~iml_tui.features.encoders.Encoder` does): raise the volume to -30 dBFS (never lower
   it; skipped for an all-zero input), then cut silences longer than 6 x 30 ms found by
   webrtcvad; when the VAD keeps less than 0.1 s the volume-normalised signal is used whole.
2. 40-band mel power spectrogram (25 ms windows, 10 ms hop, librosa); partial utterances of
   160 frames (1.6 s), ``rate`` of them per second (1.3), the last kept when it covers at least
   ``min_coverage`` (0.75) of its frames (the signal zero-padded to it); at least one.
3. Each partial: final LSTM hidden state -> linear -> ReLU -> L2 norm; the utterance embedding is
   the L2-normalised mean of the partials (an all-zero vector stays zero instead of NaN).

Each utterance is embedded on its own, so its vector never depends on the rest of the batch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from iml_tui.features.encoders import _UtteranceEncoder, checkpoint_hash, require_extra

__all__ = ["ResemblyzerEncoder"]

SR = 16000
#: The shortest VAD-trimmed signal used as it is (0.1 s); shorter falls back to the untrimmed one.
MIN_TRIMMED = SR // 10


def _import_resemblyzer() -> Any:
    """``import resemblyzer`` (webrtcvad imports pkg_resources, which warns on import)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return require_extra("resemblyzer", "resemblyzer", "resemblyzer", "resemblyzer")


def _l2(x: np.ndarray, axis: int = -1) -> np.ndarray:
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.asarray(x / np.where(norm > 0, norm, 1.0), dtype=np.float32)


class ResemblyzerEncoder(_UtteranceEncoder):
    """GE2E speaker embeddings (B, 1, 256) at 16 kHz; the recipe is in the module doc."""

    def __init__(
        self,
        device: torch.device,
        preprocess: bool = True,
        rate: float = 1.3,
        min_coverage: float = 0.75,
    ) -> None:
        from iml_tui.errors import UserError

        if not 0 < float(min_coverage) <= 1:
            raise UserError(f"resemblyzer min_coverage {min_coverage}: must be in (0, 1]")
        if not 0.625 <= float(rate) <= 100:
            raise UserError(
                f"resemblyzer rate {rate}: must be in [0.625, 100] partials per s",
                fix="use the default 1.3",
            )
        mod = _import_resemblyzer()
        self._audio = mod.audio
        self.model = mod.VoiceEncoder(device=device, verbose=False).eval()
        weights = _weights_path(mod)
        self.name = "resemblyzer"
        self.device = device
        self.sample_rate = SR
        self.dim = int(self.model.linear.out_features)
        self.checkpoint_hash = checkpoint_hash(weights)
        self.preprocess = bool(preprocess)
        self.rate = float(rate)
        self.min_coverage = float(min_coverage)
        self.settings = {
            "weights": "resemblyzer/pretrained.pt",
            "preprocess": self.preprocess,
            "rate": self.rate,
            "min_coverage": self.min_coverage,
        }

    def _prepare_wave(self, wav: np.ndarray) -> np.ndarray:
        wav = np.asarray(wav, dtype=np.float32)
        if not self.preprocess:
            return wav
        if np.any(wav):
            wav = np.asarray(
                self._audio.normalize_volume(wav, -30, increase_only=True), dtype=np.float32
            )
        trimmed = np.asarray(self._audio.trim_long_silences(wav), dtype=np.float32)
        return trimmed if trimmed.shape[0] >= MIN_TRIMMED else wav

    def embed_one(self, wav: np.ndarray) -> np.ndarray:
        """(n,) float32 at 16 kHz -> (256,) L2-normalised (zeros when the net gives zeros)."""
        wav = self._prepare_wave(wav)
        wav_slices, mel_slices = self.model.compute_partial_slices(
            len(wav), self.rate, self.min_coverage
        )
        need = wav_slices[-1].stop
        if need >= len(wav):
            wav = np.pad(wav, (0, need - len(wav)))
        mel = self._audio.wav_to_mel_spectrogram(wav)
        mels = torch.from_numpy(np.stack([mel[s] for s in mel_slices])).to(self.device)
        with torch.inference_mode():
            _, (hidden, _) = self.model.lstm(mels)
            raw = self.model.relu(self.model.linear(hidden[-1])).float().cpu().numpy()
        return _l2(_l2(raw, axis=1).mean(axis=0))

    def _encode(self, waves: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(waves), 1, self.dim), dtype=np.float32)
        for i, w in enumerate(waves):
            out[i, 0] = self.embed_one(w)
        return out

    def _embed(self, x: torch.Tensor) -> torch.Tensor:  # _encode handles each utterance
        return torch.from_numpy(self._encode(list(x.cpu().numpy()))[:, 0])


def _weights_path(mod: Any) -> Any:
    from pathlib import Path

    return Path(mod.__file__).resolve().parent / "pretrained.pt"
