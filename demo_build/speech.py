"""Speech from espeak-ng (the Debian package ``espeak-ng``) for the demo corpora.

Only the corpus rebuild needs it; nothing at run time does. Output: mono float32 at
:data:`ESPEAK_SR` Hz, peak-normalised to 0.5.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from iml_tui.errors import UserError

ESPEAK_SR = 22050
#: espeak-ng voice variants used as "speakers" (``+m1`` .. ``+m7``, ``+f1`` .. ``+f4``).
VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4")


@dataclass(frozen=True)
class Voice:
    """One espeak-ng speaker: language code, variant, rate (words per minute), pitch (0..99),
    word gap (units of 10 ms)."""

    language: str
    variant: str = "m1"
    rate: int = 160
    pitch: int = 50
    gap: int = 0

    def flags(self) -> list[str]:
        return [
            "-v",
            f"{self.language}+{self.variant}",
            "-s",
            str(self.rate),
            "-p",
            str(self.pitch),
            "-g",
            str(self.gap),
        ]


def espeak_binary() -> str | None:
    """Path of ``espeak-ng`` on PATH, or None."""
    return shutil.which("espeak-ng")


def require_espeak() -> str:
    """Path of ``espeak-ng``; a :class:`UserError` naming the fix when it is missing."""
    exe = espeak_binary()
    if exe is None:
        raise UserError(
            "espeak-ng is not installed",
            None,
            "install it (Debian/Ubuntu: apt-get install espeak-ng) to rebuild the speech corpora",
        )
    return exe


def speak(text: str, voice: Voice) -> np.ndarray:
    """(n,) float32 waveform at :data:`ESPEAK_SR` Hz of ``text`` spoken by ``voice``."""
    exe = require_espeak()
    with tempfile.TemporaryDirectory(prefix="iml-tui-espeak-") as tmp:
        wav = Path(tmp) / "out.wav"
        proc = subprocess.run(
            [exe, *voice.flags(), "-w", str(wav), text], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not wav.exists():
            raise UserError(
                f"espeak-ng failed for voice {voice.language}+{voice.variant}: "
                f"{proc.stderr.strip()}",
                None,
                "check that espeak-ng speaks this language (espeak-ng --voices)",
            )
        x, sr = sf.read(wav, dtype="float32", always_2d=False)
    if sr != ESPEAK_SR:
        raise UserError(
            f"espeak-ng wrote {sr} Hz, expected {ESPEAK_SR}",
            None,
            "use the espeak-ng of Debian or Ubuntu",
        )
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    peak = float(np.abs(x).max()) if x.size else 0.0
    return x * (0.5 / peak) if peak > 0 else x
