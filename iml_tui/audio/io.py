"""Reading, writing and resampling audio: soundfile for files, soxr for sample-rate conversion.

Never torchaudio.load/save (they need torchcodec, a CUDA build on PyPI). soundfile reads wav, flac,
ogg (vorbis/opus), mp3 and the other libsndfile formats. Samples are float32 in [-1, 1]; mono
signals are 1-D arrays of shape (n,). Any audio a user can get wrong (missing, empty, corrupt,
zero-length) raises :class:`~iml_tui.errors.UserError` naming the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from iml_tui.errors import UserError

Mono = Literal["first", "mix"]

#: soxr quality used everywhere ("HQ": 20-bit precision, passband to 91 % of Nyquist).
QUALITY = "HQ"
_FIX = "re-export it as wav/flac"
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
_READ_ERRORS = (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError, EOFError)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: sample rate (Hz), length in frames (samples per channel), channels."""

    path: str
    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _unreadable(path: Path, reason: object) -> UserError:
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return UserError(f"cannot read audio: {text}", path, _FIX)


def _open(path: str | Path) -> sf.SoundFile:
    """Open ``path`` for reading; every failure becomes a UserError naming the file."""
    p = Path(path)
    if not p.exists():
        raise UserError("cannot read audio: no such file", p, "check the path")
    if p.is_dir():
        raise UserError("cannot read audio: this is a folder, not a file", p, "give an audio file")
    if p.stat().st_size == 0:
        raise UserError("cannot read audio: the file is empty (0 bytes)", p, _FIX)
    try:
        f = sf.SoundFile(str(p))
    except _READ_ERRORS as err:
        raise _unreadable(p, err) from err
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise _unreadable(p, "invalid header (no sample rate or channels)")
    return f


def info(path: str | Path) -> AudioInfo:
    """Sample rate, frames, channels and duration of an audio file (header only)."""
    with _open(path) as f:
        return AudioInfo(
            str(path), int(f.samplerate), int(f.frames), int(f.channels), f.format, f.subtype
        )


def _to_mono(x: np.ndarray, mono: Mono) -> np.ndarray:
    """(n, channels) -> (n,): channel 0 (``"first"``) or the mean of all channels (``"mix"``)."""
    if mono == "first":
        return np.ascontiguousarray(x[:, 0], dtype=np.float32)
    if mono == "mix":
        return np.ascontiguousarray(x.mean(axis=1, dtype=np.float64), dtype=np.float32)
    raise ValueError(f"mono must be 'first' or 'mix', got {mono!r}")


def _chunks(f: sf.SoundFile, path: Path, size: int) -> Iterator[tuple[np.ndarray, bool]]:
    """Consecutive (frames, channels) float32 chunks of ``size`` frames and whether each is last.

    MP3 is decoded in one read call and then cut: libsndfile 1.2's MP3 decoder returns different
    samples depending on how reads are split (measured on a 440 Hz tone: chunked reads and seeks
    drift by hundreds of samples from a single read), so MP3 is never read piecewise or seeked.
    """
    try:
        if f.format == "MP3":
            data = f.read(dtype="float32", always_2d=True)
            n = data.shape[0]
            for i in range(0, max(n, 1), size):
                yield data[i : i + size], i + size >= n
            return
        while True:
            data = f.read(size, dtype="float32", always_2d=True)
            yield data, data.shape[0] < size
            if data.shape[0] < size:
                return
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from err


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (n,) or (n, channels) from ``sr_in`` to ``sr_out`` Hz with soxr (HQ); float32.

    Output length is ``round(n * sr_out / sr_in)``. Returns the input (as float32) when the rates
    are equal.
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out or x.shape[0] == 0:
        return x
    return np.asarray(soxr.resample(x, sr_in, sr_out, quality=QUALITY), dtype=np.float32)


def read(
    path: str | Path,
    sr: int | None = None,
    mono: Mono = "first",
    start: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``[start, start + duration)`` seconds of ``path`` as mono float32 (n,).

    sr: resample to this rate (Hz); None keeps the file's rate. mono: ``"first"`` takes channel 0,
    ``"mix"`` averages the channels. Returns (samples, sample rate). A segment past the end of the
    file is shorter (possibly empty); a file without any samples is a UserError.
    """
    if start < 0 or (duration is not None and duration < 0):
        raise ValueError(f"start and duration must be >= 0, got {start}, {duration}")
    p = Path(path)
    with _open(p) as f:
        sr_file = int(f.samplerate)
        if f.frames == 0:
            raise UserError("cannot read audio: the file holds no samples (zero length)", p, _FIX)
        first = round(start * sr_file)
        count = -1 if duration is None else round(duration * sr_file)
        try:
            if count == 0 or first >= f.frames:
                data = np.zeros((0, f.channels), dtype=np.float32)
            elif f.format == "MP3":  # one read call, then slice (see _chunks)
                stop = -1 if count < 0 else first + count
                data = f.read(stop, dtype="float32", always_2d=True)[first:]
            else:
                if first > 0:
                    f.seek(first)
                data = f.read(count, dtype="float32", always_2d=True)
        except _READ_ERRORS as err:
            raise _unreadable(p, err) from err
    if data.shape[0] == 0 and first == 0 and count != 0:
        raise UserError("cannot read audio: the file holds no samples (zero length)", p, _FIX)
    x = _to_mono(data, mono)
    if sr is not None and sr != sr_file:
        x = resample(x, sr_file, sr)
        sr_file = sr
    return x, sr_file


def iter_blocks(
    path: str | Path,
    block_seconds: float,
    sr: int | None = None,
    mono: Mono = "first",
) -> Iterator[np.ndarray]:
    """Stream ``path`` as consecutive mono float32 blocks of ``block_seconds`` at ``sr`` Hz.

    Holds about two blocks in memory, so hours at 48 kHz are fine (except MP3, which is decoded
    whole: libsndfile's MP3 decoding depends on read sizes; convert long MP3s to FLAC). Every block
    has exactly ``round(block_seconds * sr)`` samples except the last, which holds the remainder;
    block ``i`` starts at ``i * block_seconds`` s. Resampling is stateful (soxr.ResampleStream), so
    the concatenated blocks equal whole-file resampling up to soxr's numerical noise.
    """
    if block_seconds <= 0:
        raise ValueError(f"block_seconds must be > 0, got {block_seconds}")
    p = Path(path)
    with _open(p) as f:
        sr_in = int(f.samplerate)
        sr_out = sr_in if sr is None else int(sr)
        out_len = max(1, round(block_seconds * sr_out))
        in_len = max(1, math.ceil(block_seconds * sr_in))
        stream = (
            soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality=QUALITY)
            if sr_out != sr_in
            else None
        )
        pending: list[np.ndarray] = []
        n_pending = 0
        total_in = 0
        for data, last in _chunks(f, p, in_len):
            total_in += data.shape[0]
            x = _to_mono(data, mono) if data.shape[0] else np.zeros(0, dtype=np.float32)
            if stream is not None:
                x = np.asarray(stream.resample_chunk(x, last=last), dtype=np.float32)
            if x.shape[0]:
                pending.append(x)
                n_pending += x.shape[0]
            while n_pending >= out_len:
                buf = np.concatenate(pending)
                yield buf[:out_len]
                rest = buf[out_len:]
                pending = [rest] if rest.shape[0] else []
                n_pending = rest.shape[0]
        if total_in == 0:
            raise UserError("cannot read audio: the file holds no samples (zero length)", p, _FIX)
        if n_pending:
            yield np.concatenate(pending)


_WRITE_BLOCK = 32768


def write(path: str | Path, x: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write (n,) or (n, channels) float samples to a .wav, .flac or .ogg file; returns the path.

    subtype: libsndfile subtype (default: PCM_16 for wav/flac, VORBIS for ogg). Samples are clipped
    to [-1, 1] for integer subtypes. The file is written beside the target and renamed into place.
    """
    p = Path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UserError(
            f"cannot write audio with extension {p.suffix!r}", p, "use .wav, .flac or .ogg"
        )
    data = np.asarray(x, dtype=np.float32)
    if data.ndim not in (1, 2) or data.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n,) or (n, channels) array, got {data.shape}")
    st = subtype or ("VORBIS" if fmt == "OGG" else "PCM_16")
    if st.startswith("PCM") or fmt == "OGG":
        data = np.clip(data, -1.0, 1.0)
    tmp = p.with_name(f".{p.stem}.partial{p.suffix}")
    kwargs: dict[str, Any] = {"format": fmt, "subtype": st}
    try:
        # libsndfile 1.2 can crash on one long Vorbis write: feed it in blocks.
        with sf.SoundFile(
            str(tmp), "w", int(sr), 1 if data.ndim == 1 else data.shape[1], **kwargs
        ) as f:
            for start in range(0, data.shape[0], _WRITE_BLOCK):
                f.write(data[start : start + _WRITE_BLOCK])
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p
