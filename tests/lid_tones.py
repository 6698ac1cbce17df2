"""A tiny separable language-ID corpus: three "languages" of tone and noise bursts.

``aa``: harmonic bursts (f0 120-180 Hz); ``bb``: band noise bursts at 2-3.5 kHz; ``cc``: rising
chirps from 600-900 Hz. Bursts of 0.1-0.3 s with short pauses, so that each language has its own
pattern over the mel bands even after per-utterance mean normalisation. Files are named
``common_voice_<lang>_<id>.wav`` (16 kHz) in ``train/``, ``dev/`` and ``test/``, the layout
``prepare_lid`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

LANGS = ("aa", "bb", "cc")
SR = 16000


def _burst(lang: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    if lang == "aa":
        f0 = rng.uniform(120, 180)
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 8))
    elif lang == "bb":
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SR)
        spec[(f < 2000) | (f > 3500)] = 0
        x = np.fft.irfft(spec, n)
    else:
        f1 = rng.uniform(600, 900)
        x = np.sin(2 * np.pi * (f1 * t + 1500 * t**2))
    env = np.hanning(n)
    y = np.asarray(x, dtype=np.float64) * env
    return y / (np.abs(y).max() + 1e-9)


def utterance(lang: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 at 16 kHz: bursts of ``lang`` over a faint noise floor."""
    n = round(seconds * SR)
    out = 0.002 * rng.standard_normal(n)
    pos = int(rng.integers(0, SR // 20))
    while pos < n:
        length = int(rng.uniform(0.1, 0.3) * SR)
        seg = _burst(lang, length, rng) * rng.uniform(0.2, 0.6)
        take = min(length, n - pos)
        out[pos : pos + take] += seg[:take]
        pos += length + int(rng.uniform(0.05, 0.15) * SR)
    return out.astype(np.float32)


def make_lid_tones(root: Path, per_split: tuple[int, int, int] = (8, 4, 2), seed: int = 0) -> Path:
    """``root/{train,dev,test}/common_voice_<lang>_<id>.wav``: ``per_split`` clips per language
    (1.0-1.5 s each)."""
    rng = np.random.default_rng(seed)
    k = 0
    for split, count in zip(("train", "dev", "test"), per_split, strict=True):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for lang in LANGS:
            for _ in range(count):
                x = utterance(lang, float(rng.uniform(1.0, 1.5)), rng)
                sf.write(folder / f"common_voice_{lang}_{1000 + k}.wav", x, SR)
                k += 1
    return root
