"""Acoustic degradations for the synthetic speech corpora: noise, room reverberation, channels.

Every function takes and returns mono float32 arrays; randomness comes only from the
``numpy.random.Generator`` passed in, so the same generator state gives the same output.

- Noises (:func:`white_noise`, :func:`pink_noise`, :func:`brown_noise`, :func:`hum`,
  :func:`babble`) have unit RMS; :func:`add_noise` scales a noise to a signal-to-noise ratio.
- :func:`room_reverb` convolves with the image-source impulse response of a random shoebox room
  (pyroomacoustics) of a given or drawn reverberation time.
- Channels: :func:`band_limit` (Butterworth band-pass), :func:`telephone` (300-3400 Hz and
  8-bit mu-law), :func:`set_peak_db` (gain).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal  # type: ignore[import-untyped]

#: Default range of reverberation times (seconds) of :func:`room_reverb`.
RT60_RANGE: tuple[float, float] = (0.1, 0.8)
#: Shoebox room dimensions (metres) drawn by :func:`room_impulse_response`: length, width, height.
ROOM_RANGE: tuple[tuple[float, float], ...] = ((3.0, 10.0), (3.0, 8.0), (2.4, 4.0))
#: Image-source reflection order cap (keeps the impulse response fast to compute).
MAX_ORDER = 40


def rms(x: np.ndarray) -> float:
    """Root mean square of ``x`` (0.0 for an empty array)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def _unit(x: np.ndarray) -> np.ndarray:
    r = rms(x)
    return (x / r if r > 0 else x).astype(np.float32)


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) Gaussian white noise, unit RMS."""
    return _unit(rng.standard_normal(n))


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """(n,) noise with power spectral density ~ 1 / f**exponent, unit RMS (0 white, 1 pink,
    2 brown)."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec = spec / f ** (exponent / 2.0)
    spec[0] = 0.0
    return _unit(np.fft.irfft(spec, n))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) pink noise (1/f), unit RMS."""
    return colored_noise(n, rng, 1.0)


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) brown noise (1/f**2), unit RMS."""
    return colored_noise(n, rng, 2.0)


def hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) mains hum: 50 or 60 Hz with random odd and even harmonics and a little pink noise,
    unit RMS."""
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n, dtype=np.float64) / sr
    out = np.zeros(n, dtype=np.float64)
    for k in range(1, 9):
        amp = rng.uniform(0.1, 1.0) / k
        out += amp * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
    return _unit(_unit(out) + 0.1 * pink_noise(n, rng))


def fit_length(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` cut or looped to n samples, starting at a random offset."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, x.size))
    reps = -(-(start + n) // x.size)
    return np.tile(x, reps)[start : start + n]


def babble(
    sources: Sequence[np.ndarray],
    n: int,
    rng: np.random.Generator,
    talkers: tuple[int, int] = (3, 6),
) -> np.ndarray:
    """(n,) babble: the sum of ``talkers`` (inclusive range) random stretches of ``sources``
    (speech at the target rate), each at a random level within 6 dB, unit RMS."""
    if not sources:
        raise ValueError("babble needs at least one source")
    k = int(rng.integers(talkers[0], talkers[1] + 1))
    out = np.zeros(n, dtype=np.float64)
    for i in rng.choice(len(sources), size=k, replace=k > len(sources)):
        out += 10 ** (rng.uniform(-6.0, 0.0) / 20) * _unit(fit_length(sources[int(i)], n, rng))
    return _unit(out)


def add_noise(
    x: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``x`` plus ``noise`` scaled so that power(x) / power(scaled noise) is ``snr_db`` dB over
    the length of ``x``. A noise of another length is cut or looped (random offset with ``rng``,
    else from its start)."""
    x = np.asarray(x, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if noise.size != x.size:
        noise = (
            fit_length(noise, x.size, rng)
            if rng is not None
            else np.resize(noise, x.size).astype(np.float32)
        )
    px, pn = rms(x), rms(noise)
    if px == 0 or pn == 0:
        return x.copy()
    scale = px / (pn * 10 ** (snr_db / 20))
    return (x.astype(np.float64) + scale * noise.astype(np.float64)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of ``noisy`` = ``clean`` + noise."""
    noise = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return 20 * np.log10(rms(clean) / max(rms(noise), 1e-30))


def room_impulse_response(
    sr: int,
    rng: np.random.Generator,
    rt60: float | None = None,
    rt60_range: tuple[float, float] = RT60_RANGE,
) -> tuple[np.ndarray, float]:
    """Impulse response (direct path at the start, peak 1) of a random shoebox room with one
    source and one microphone, and its target RT60 (``rt60`` or drawn from ``rt60_range``).

    The room is shrunk until Sabine's formula reaches the RT60 with a physical absorption.
    """
    import pyroomacoustics as pra

    if rt60 is None:
        rt60 = float(rng.uniform(*rt60_range))
    dims = np.array([rng.uniform(lo, hi) for lo, hi in ROOM_RANGE])
    src_pos, mic_pos = rng.uniform(0.15, 0.85, 3), rng.uniform(0.15, 0.85, 3)
    for _ in range(40):
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
            break
        except ValueError:
            dims = dims * 0.9
    else:
        raise ValueError(f"no room reaches RT60 {rt60:.2f} s")
    room = pra.ShoeBox(
        dims, fs=sr, materials=pra.Material(float(absorption)), max_order=int(min(order, MAX_ORDER))
    )
    room.add_source(dims * src_pos)
    room.add_microphone(dims * mic_pos)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    onset = int(np.argmax(np.abs(h) > 0.5 * np.abs(h).max()))
    h = h[max(onset - 16, 0) :]
    return (h / np.abs(h).max()).astype(np.float32), rt60


def room_reverb(
    x: np.ndarray,
    sr: int,
    rng: np.random.Generator,
    rt60: float | None = None,
    rt60_range: tuple[float, float] = RT60_RANGE,
    tail_s: float | None = None,
) -> np.ndarray:
    """``x`` as heard in a random room (:func:`room_impulse_response`), with the RMS of ``x``.

    The output keeps ``tail_s`` seconds of reverberation tail after the end of ``x`` (None: the
    whole tail; 0: the length of ``x``).
    """
    x = np.asarray(x, dtype=np.float32)
    h, _ = room_impulse_response(sr, rng, rt60, rt60_range)
    y = signal.fftconvolve(x.astype(np.float64), h.astype(np.float64))
    if tail_s is not None:
        y = y[: x.size + round(tail_s * sr)]
    r = rms(y)
    return (y * (rms(x) / r) if r > 0 else y).astype(np.float32)


def band_limit(
    x: np.ndarray,
    sr: int,
    low_hz: float | None = None,
    high_hz: float | None = None,
    order: int = 4,
) -> np.ndarray:
    """``x`` through a zero-phase Butterworth high-pass (``low_hz``), low-pass (``high_hz``) or
    band-pass (both); unchanged when neither is given."""
    x = np.asarray(x, dtype=np.float32)
    nyq = sr / 2
    if low_hz is not None and high_hz is not None:
        sos = signal.butter(order, [low_hz / nyq, high_hz / nyq], btype="bandpass", output="sos")
    elif low_hz is not None:
        sos = signal.butter(order, low_hz / nyq, btype="highpass", output="sos")
    elif high_hz is not None:
        sos = signal.butter(order, high_hz / nyq, btype="lowpass", output="sos")
    else:
        return x.copy()
    return signal.sosfiltfilt(sos, x.astype(np.float64)).astype(np.float32)


def mu_law(x: np.ndarray, bits: int = 8, mu: float = 255.0) -> np.ndarray:
    """``x`` (peak-normalised to 1 first, then restored) through mu-law companding quantised to
    ``bits``."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0:
        return x.astype(np.float32)
    y = np.sign(x) * np.log1p(mu * np.abs(x / peak)) / np.log1p(mu)
    levels = 2 ** (bits - 1) - 1
    y = np.round(y * levels) / levels
    return (peak * np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(x: np.ndarray, sr: int) -> np.ndarray:
    """A telephone-like channel: 300-3400 Hz band-pass and 8-bit mu-law."""
    return mu_law(band_limit(x, sr, 300.0, min(3400.0, 0.45 * sr)))


def set_peak_db(x: np.ndarray, peak_db: float) -> np.ndarray:
    """``x`` scaled to a peak of ``peak_db`` dB full scale (silence stays silence)."""
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0:
        return x.copy()
    return (x * (10 ** (peak_db / 20) / peak)).astype(np.float32)
