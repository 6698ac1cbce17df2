"""A miniature voice-type discrimination (VTD) corpus: live versus played-back speech in simulated
rooms, in the layout ``iml-tui prepare vtd`` reads (SPEC B, :mod:`iml_tui.data.vtd`).

Each environment is a shoebox room (pyroomacoustics image sources up to ``max_order`` plus a seeded
exponentially decaying noise tail at the room's RT60) with one microphone at a fixed spot. Each
session (one batch of the stream) is a sequence of scenes of realistic lengths:

- ``conversation``: 1-3 live talkers (espeak-ng voices of several languages, variants, rates and
  pitches) taking turns with pauses, each talker at one of its spots in the room, sometimes far
  from the microphone and quiet;
- ``phone_call``: one live talker with long listening pauses;
- ``live_over_tv``: a conversation while the TV / radio keeps playing speech or music;
- ``tv_speech``: other espeak-ng voices through the loudspeaker model (:func:`loudspeaker`:
  broadcast compression, soft clipping, small-speaker resonance and presence peaks, a band-pass of
  about 150-7000 Hz) radiated from the playback spot of the session, sometimes over a music bed;
- ``tv_music``: synthesised music (:func:`synth_music`) through the same loudspeaker;
- ``quiet`` and ``household``: room tone only, or household sounds (:func:`household_sound`: dishes,
  a door, footsteps, a chair) from spots in the room.

Household sounds also occur at random during every scene, and a room tone (pink noise, mains /
fridge hum, sometimes a fan) lies under everything. The live-speech intervals come from the voice
activity of the dry talker signals; segment ``k`` covers ``[5k, 5k + 5)`` s and is labelled 1
when live speech covers at least ``min_live_seconds`` (1 s) of it (:func:`segment_labels`).

Output: ``<out>/<env>/<session>.ogg`` (16 kHz mono Ogg Opus) and ``<session>.csv`` (columns
``segment, start, label, live_seconds, content``), plus ``<out>/README.md``. Every random choice
comes from numpy generators seeded with ``[seed, environment, session]``; the Ogg stream serial
numbers (random in libsndfile) are replaced by fixed ones, so the same seed gives byte-identical
files.
"""

from __future__ import annotations

import argparse
import csv
import io
import struct
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import signal  # type: ignore[import-untyped]

from demo_build.speech import ESPEAK_SR, VARIANTS, Voice, speak

SR = 16000
SEGMENT_SECONDS = 5.0
SPEED_OF_SOUND = 343.0

Xyz = tuple[float, float, float]
Interval = tuple[float, float]
#: progress(done, total, message)
ProgressFn = Callable[[int, int, str], None]


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class RoomSpec:
    """One environment: a shoebox room, its microphone and its playback device."""

    name: str
    dims: Xyz
    rt60: float
    mic: Xyz
    #: candidate spots of the TV / radio / speaker; each session uses one of them
    playback_spots: tuple[Xyz, ...]
    device: str
    #: ranges of the loudspeaker's low cut-off, high cut-off and bass resonance (Hz)
    low_hz: tuple[float, float] = (130.0, 200.0)
    high_hz: tuple[float, float] = (6000.0, 7200.0)
    #: household sounds per minute, on top of the ``household`` scenes
    noise_rate: float = 1.5
    #: room tone level (dBFS RMS) and mains / fridge hum frequency (0: none)
    room_tone_db: float = -58.0
    hum_hz: float = 0.0
    #: mean playback level relative to a live talker at normal effort (dB, before the room)
    playback_db: float = 0.0
    description: str = ""


ROOMS: tuple[RoomSpec, ...] = (
    RoomSpec(
        name="rm1_livingroom",
        dims=(5.0, 4.0, 2.7),
        rt60=0.45,
        mic=(0.6, 2.2, 1.05),
        playback_spots=((4.75, 2.0, 1.0), (4.75, 1.3, 1.1), (3.2, 3.75, 0.9)),
        device="TV",
        low_hz=(120.0, 180.0),
        high_hz=(6500.0, 7400.0),
        noise_rate=1.0,
        room_tone_db=-60.0,
        hum_hz=0.0,
        playback_db=0.0,
        description="living room with a sofa, a TV and a sound bar; moderate absorption",
    ),
    RoomSpec(
        name="apartment_kitchen",
        dims=(3.6, 3.0, 2.5),
        rt60=0.75,
        mic=(0.4, 0.5, 1.4),
        playback_spots=((3.3, 2.6, 1.0), (1.8, 2.75, 1.2), (3.35, 0.4, 1.5)),
        device="radio",
        low_hz=(180.0, 260.0),
        high_hz=(5500.0, 6800.0),
        noise_rate=3.0,
        room_tone_db=-54.0,
        hum_hz=50.0,
        playback_db=-2.0,
        description="tiled kitchen with a fridge and a small kitchen radio; reverberant",
    ),
    RoomSpec(
        name="office_meeting",
        dims=(6.5, 4.5, 3.0),
        rt60=0.55,
        mic=(3.25, 2.25, 0.78),
        playback_spots=((3.9, 2.4, 0.8), (6.2, 2.25, 1.3), (2.5, 2.0, 0.8)),
        device="conference speaker",
        low_hz=(140.0, 220.0),
        high_hz=(6000.0, 7000.0),
        noise_rate=0.8,
        room_tone_db=-52.0,
        hum_hz=60.0,
        playback_db=-1.0,
        description="meeting room with a table, a conference speaker for remote participants "
        "and ventilation",
    ),
)


@dataclass(frozen=True)
class VtdConfig:
    """What :func:`build_vtd` makes."""

    rooms: tuple[RoomSpec, ...] = ROOMS
    sessions_per_env: int = 6
    #: number of 5 s segments of a session, drawn uniformly from this range (inclusive)
    segments: tuple[int, int] = (30, 48)
    seed: int = 2025
    #: a segment is live speech (1) when live speech covers at least this many seconds of it
    min_live_seconds: float = 1.0
    #: range of the share of time given to live scenes, drawn per session
    live_share: tuple[float, float] = (0.38, 0.55)
    #: Opus compression level of libsndfile (0: highest bitrate .. 1: lowest)
    compression_level: float = 0.97
    max_order: int = 40

    def __post_init__(self) -> None:
        if not self.rooms:
            raise ValueError("need at least one room")
        if self.sessions_per_env < 1:
            raise ValueError("sessions_per_env must be >= 1")
        if not 1 <= self.segments[0] <= self.segments[1]:
            raise ValueError("segments must be a range 1 <= lo <= hi")
        if not 0.0 < self.min_live_seconds <= SEGMENT_SECONDS:
            raise ValueError("min_live_seconds must lie in (0, 5]")
        if not 0.0 <= self.compression_level <= 1.0:
            raise ValueError("compression_level must lie in [0, 1]")


# --------------------------------------------------------------------------------------------
# Labelling rule


def merge_intervals(intervals: Sequence[Interval]) -> list[Interval]:
    """Sorted union of ``(start, end)`` intervals in seconds (empty ones dropped)."""
    out: list[Interval] = []
    for s, e in sorted((float(s), float(e)) for s, e in intervals if e > s):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def coverage(
    intervals: Sequence[Interval], n_segments: int, segment_seconds: float = SEGMENT_SECONDS
) -> np.ndarray:
    """(n_segments,) seconds of each segment ``[k * seg, (k + 1) * seg)`` covered by the union of
    ``intervals``."""
    cov = np.zeros(n_segments, dtype=np.float64)
    for s, e in merge_intervals(intervals):
        k0 = max(0, int(np.floor(s / segment_seconds)))
        k1 = min(n_segments - 1, int(np.ceil(e / segment_seconds)) - 1)
        for k in range(k0, k1 + 1):
            lo, hi = k * segment_seconds, (k + 1) * segment_seconds
            cov[k] += max(0.0, min(e, hi) - max(s, lo))
    return cov


def segment_labels(
    live: Sequence[Interval],
    n_segments: int,
    min_live_seconds: float = 1.0,
    segment_seconds: float = SEGMENT_SECONDS,
) -> np.ndarray:
    """(n_segments,) int64 labels: 1 where live speech covers at least ``min_live_seconds`` of the
    segment, else 0 (TV speech, music, noise and silence never count)."""
    cov = coverage(live, n_segments, segment_seconds)
    return (cov >= min_live_seconds - 1e-9).astype(np.int64)


def speech_activity(
    x: np.ndarray, sr: int = SR, offset: float = 0.0, floor_db: float = 35.0, bridge: float = 0.3
) -> list[Interval]:
    """Active stretches of a dry (noise-free) signal in seconds, shifted by ``offset``: 10 ms
    frames within ``floor_db`` of the loudest frame, gaps shorter than ``bridge`` s bridged,
    bursts under 50 ms dropped."""
    hop = max(1, sr // 100)
    n = len(x) // hop
    if n == 0:
        return []
    e = np.mean(np.square(x[: n * hop].astype(np.float64)).reshape(n, hop), axis=1)
    if e.max() <= 0:
        return []
    on = 10 * np.log10(e + 1e-20) > 10 * np.log10(e.max()) - floor_db
    spans: list[Interval] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        s, t = a * hop / sr, b * hop / sr
        if spans and s - spans[-1][1] < bridge:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((s, t))
    return [(offset + s, offset + t) for s, t in spans if t - s >= 0.05]


# --------------------------------------------------------------------------------------------
# Signal helpers: loudspeaker, music, household sounds, room tone


def _peaking(f0: float, gain_db: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_, -2 * np.cos(w0), 1 - alpha * a_])
    a = np.array([1 + alpha / a_, -2 * np.cos(w0), 1 - alpha / a_])
    return b / a[0], a / a[0]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def loudspeaker(
    x: np.ndarray,
    sr: int = SR,
    low_hz: float = 150.0,
    high_hz: float = 7000.0,
    resonance_hz: float | None = None,
    resonance_db: float = 6.0,
    presence_hz: float = 2500.0,
    presence_db: float = 3.0,
    drive: float = 2.5,
    ratio: float = 4.0,
) -> np.ndarray:
    """Playback through a TV / radio: broadcast compression (``ratio`` above the signal's RMS,
    30 ms smoothing), ``tanh`` soft clipping with ``drive``, a small-speaker bass resonance
    (``resonance_hz``, default 1.3 x ``low_hz``) and a presence peak, then a band-pass
    ``low_hz``-``high_hz`` (6th-order Butterworth high-pass, 4th-order low-pass). The output
    has the RMS of the input; float32."""
    y = np.asarray(x, dtype=np.float64)
    level = _rms(y)
    if level <= 0:
        return np.zeros(len(y), dtype=np.float32)
    y = y / level
    smooth = np.exp(-1.0 / (0.03 * sr))
    env = np.sqrt(signal.lfilter([1 - smooth], [1, -smooth], y * y) + 1e-12)
    y = y * np.minimum(1.0, env ** (1.0 / ratio - 1.0))
    y = y / max(_rms(y), 1e-12)
    y = np.tanh(drive * 0.5 * y) / (drive * 0.5)
    b, a = _peaking(resonance_hz or 1.3 * low_hz, resonance_db, 2.0, sr)
    y = signal.lfilter(b, a, y)
    b, a = _peaking(presence_hz, presence_db, 1.0, sr)
    y = signal.lfilter(b, a, y)
    sos = np.vstack(
        [
            signal.butter(6, low_hz, "highpass", fs=sr, output="sos"),
            signal.butter(4, min(high_hz, 0.45 * sr), "lowpass", fs=sr, output="sos"),
        ]
    )
    y = signal.sosfilt(sos, y)
    return (y * (level / max(_rms(y), 1e-12))).astype(np.float32)


_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 0, 3, 4), (0, 6, 5, 4))


def _hz(midi: float) -> float:
    return float(440.0 * 2 ** ((midi - 69) / 12))


def _tone(
    freq: float,
    dur: float,
    sr: int,
    partials: Sequence[float],
    attack: float,
    decay: float,
    rng: np.random.Generator,
    vibrato: float = 0.0,
) -> np.ndarray:
    n = max(1, int(dur * sr))
    t = np.arange(n) / sr
    phase = 2 * np.pi * freq * t
    if vibrato:
        phase = phase + vibrato * np.sin(2 * np.pi * 5.5 * t) * freq / 5.5 * 2 * np.pi / 100
    out = np.zeros(n)
    for k, amp in enumerate(partials, start=1):
        if k * freq < 0.45 * sr:
            out += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    env = np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)
    rel = min(n, int(0.02 * sr))
    env[n - rel :] *= np.linspace(1, 0, rel)
    return out * env


def _add(buf: np.ndarray, x: np.ndarray, start: int) -> None:
    if start >= len(buf) or start + len(x) <= 0:
        return
    a = max(0, start)
    b = min(len(buf), start + len(x))
    buf[a:b] += x[a - start : b - start]


def synth_music(rng: np.random.Generator, seconds: float, sr: int = SR) -> np.ndarray:
    """(round(seconds * sr),) float32 music, peak 0.5: a chord progression of additive pads, a
    plucked bass, a melody with vibrato over the key's scale and (mostly) a drum kit (sine-sweep
    kick, noise snare, hi-hat), at a random tempo, key and mode."""
    n = round(seconds * sr)
    out = np.zeros(n)
    if n == 0:
        return out.astype(np.float32)
    beat = 60.0 / rng.uniform(72, 138)
    root = int(rng.integers(45, 57))
    scale = _MINOR if rng.random() < 0.4 else _MAJOR
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    bar = 4 * beat

    def note(degree: int, octave: int = 0) -> float:
        o, d = divmod(degree, 7)
        return _hz(root + 12 * (o + octave) + scale[d])

    pad = [1.0, 0.5, 0.33, 0.2, 0.12, 0.08] if rng.random() < 0.5 else [1.0, 0.2, 0.4, 0.1, 0.2]
    n_bars = int(np.ceil(seconds / bar))
    for i in range(n_bars):
        deg = prog[i % len(prog)]
        t0 = int(i * bar * sr)
        for d in (deg, deg + 2, deg + 4):
            _add(out, 0.12 * _tone(note(d, 1), bar, sr, pad, 0.08, 3.0, rng), t0)
        for b in range(0, 4, 2 if rng.random() < 0.5 else 1):
            _add(
                out,
                0.3 * _tone(note(deg, -1), beat * 0.95, sr, [1, 0.6, 0.3, 0.15], 0.005, 0.25, rng),
                t0 + int(b * beat * sr),
            )
    t, deg = 0.0, int(rng.integers(0, 7))
    lead = [1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12]
    while t < seconds:
        dur = beat * float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
        if rng.random() > 0.2:
            _add(
                out,
                0.2 * _tone(note(deg, 2), dur, sr, lead, 0.02, 0.6, rng, vibrato=0.5),
                int(t * sr),
            )
        deg = int(np.clip(deg + rng.choice([-2, -1, -1, 0, 1, 1, 2]), -3, 10))
        t += dur
    if rng.random() < 0.8:
        kick_t = np.arange(int(0.25 * sr)) / sr
        kick = np.sin(2 * np.pi * (50 * kick_t + 70 * 0.04 * (1 - np.exp(-kick_t / 0.04))))
        kick *= np.exp(-kick_t / 0.09)
        snare_sos = signal.butter(2, [1000, 5000], "bandpass", fs=sr, output="sos")
        hat_sos = signal.butter(2, min(7000.0, 0.4 * sr), "highpass", fs=sr, output="sos")
        for k in range(int(seconds / beat) + 1):
            s0 = int(k * beat * sr)
            if k % 2 == 0:
                _add(out, 0.5 * kick, s0)
            else:
                m = int(0.18 * sr)
                noise = signal.sosfilt(snare_sos, rng.standard_normal(m))
                _add(out, 0.6 * noise * np.exp(-np.arange(m) / sr / 0.05), s0)
            for h in (0, 1):
                m = int(0.05 * sr)
                hat = signal.sosfilt(hat_sos, rng.standard_normal(m)) * np.exp(
                    -np.arange(m) / sr / 0.012
                )
                _add(out, 0.15 * hat, s0 + int(h * beat * sr / 2))
    peak = float(np.abs(out).max())
    return (out * (0.5 / peak if peak > 0 else 1.0)).astype(np.float32)


HOUSEHOLD_KINDS: tuple[str, ...] = ("dishes", "door", "footsteps", "chair")


def _burst(
    rng: np.random.Generator,
    sr: int,
    seconds: float,
    tau: float,
    band: tuple[float, float] | None,
    lowpass: float | None = None,
) -> np.ndarray:
    m = max(2, int(seconds * sr))
    x = rng.standard_normal(m)
    if band is not None:
        x = signal.sosfilt(signal.butter(2, band, "bandpass", fs=sr, output="sos"), x)
    if lowpass is not None:
        x = signal.sosfilt(signal.butter(2, lowpass, "lowpass", fs=sr, output="sos"), x)
    return np.asarray(x * np.exp(-np.arange(m) / sr / tau))


def household_sound(kind: str, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """A dry household sound, float32, peak 0.5: ``dishes`` (clinks: damped partials of 1.5-7
    kHz), ``door`` (a latch click, a low thump, sometimes a creak), ``footsteps`` (4-10 low thuds
    about 0.55 s apart) or ``chair`` (a band-passed scrape)."""
    if kind == "dishes":
        parts = []
        for _ in range(int(rng.integers(1, 5))):
            m = int(0.3 * sr)
            t = np.arange(m) / sr
            n_partials = int(rng.integers(3, 6))
            clink = sum(
                rng.uniform(0.3, 1)
                * np.sin(2 * np.pi * rng.uniform(1500, 7000) * t)
                * np.exp(-t / rng.uniform(0.01, 0.08))
                for _ in range(n_partials)
            )
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * sr))
            parts += [np.asarray(clink) + 0.3 * _burst(rng, sr, 0.3, 0.003, (2000, 7000)), gap]
        x = np.concatenate(parts)
    elif kind == "door":
        click = _burst(rng, sr, 0.05, 0.004, (1500, 6000))
        thump = 2.0 * _burst(rng, sr, 0.5, 0.08, None, lowpass=rng.uniform(150, 300))
        pre = np.zeros(int(rng.uniform(0.05, 0.3) * sr))
        x = np.concatenate([click, pre, thump])
        if rng.random() < 0.5:
            m = int(rng.uniform(0.3, 0.8) * sr)
            t = np.arange(m) / sr
            f0 = np.linspace(rng.uniform(150, 250), rng.uniform(300, 500), m)
            f0 = f0 * (1 + 0.05 * rng.standard_normal(m).cumsum() / np.sqrt(m))
            creak = signal.sawtooth(2 * np.pi * np.cumsum(f0) / sr)
            creak = signal.sosfilt(
                signal.butter(2, [500, 3000], "bandpass", fs=sr, output="sos"), creak
            ) * np.sin(np.pi * t / t[-1])
            x = np.concatenate([0.4 * creak, x])
    elif kind == "footsteps":
        step = rng.uniform(0.45, 0.65)
        parts = []
        for _ in range(int(rng.integers(4, 11))):
            thud = _burst(rng, sr, 0.12, 0.03, None, lowpass=rng.uniform(200, 800))
            heel = 0.2 * _burst(rng, sr, 0.12, 0.005, (1000, 5000))
            gap = np.zeros(max(0, int(rng.normal(step, 0.04) * sr) - len(thud)))
            parts += [thud * rng.uniform(0.6, 1.0) + heel, gap]
        x = np.concatenate(parts)
    elif kind == "chair":
        m = int(rng.uniform(0.3, 0.8) * sr)
        t = np.arange(m) / sr
        lo = rng.uniform(250, 600)
        x = signal.sosfilt(
            signal.butter(2, [lo, lo * 4], "bandpass", fs=sr, output="sos"), rng.standard_normal(m)
        )
        x = x * np.sin(np.pi * t / t[-1]) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(8, 20) * t))
    else:
        raise ValueError(f"unknown household sound {kind!r}; one of {HOUSEHOLD_KINDS}")
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.abs(x).max())
    return (x * (0.5 / peak if peak > 0 else 1.0)).astype(np.float32)


def room_tone(
    rng: np.random.Generator,
    n: int,
    level_db: float,
    hum_hz: float = 0.0,
    fan_db: float | None = None,
    sr: int = SR,
) -> np.ndarray:
    """(n,) float64 background at the microphone: pink noise at ``level_db`` dBFS RMS, a hum
    (``hum_hz`` and harmonics, 12 dB below) and optionally a fan (band-passed noise at
    ``fan_db`` dBFS RMS, slowly modulated)."""
    pink = signal.lfilter(
        [0.049922035, -0.095993537, 0.050612699, -0.004408786],
        [1, -2.494956002, 2.017265875, -0.522189400],
        rng.standard_normal(n),
    )
    out = pink / max(_rms(pink), 1e-12) * 10 ** (level_db / 20)
    t = np.arange(n) / sr
    if hum_hz > 0:
        hum = sum(np.sin(2 * np.pi * k * hum_hz * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
        out += np.asarray(hum) / max(_rms(np.asarray(hum)), 1e-12) * 10 ** ((level_db - 12) / 20)
    if fan_db is not None:
        fan = signal.sosfilt(
            signal.butter(2, [80, 1500], "bandpass", fs=sr, output="sos"), rng.standard_normal(n)
        )
        fan *= 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t)
        out += fan / max(_rms(fan), 1e-12) * 10 ** (fan_db / 20)
    return np.asarray(out)


def soft_limit(x: np.ndarray, knee: float = 0.7, ceiling: float = 0.98) -> np.ndarray:
    """Identity below ``knee``; above it, ``tanh`` compression that never exceeds ``ceiling``
    (a microphone preamp's limiter)."""
    y = np.asarray(x, dtype=np.float64).copy()
    over = np.abs(y) > knee
    room = ceiling - knee
    y[over] = np.sign(y[over]) * (knee + room * np.tanh((np.abs(y[over]) - knee) / room))
    return y


# --------------------------------------------------------------------------------------------
# Rooms


def room_impulse_responses(
    room: RoomSpec,
    sources: Sequence[Xyz],
    rng: np.random.Generator,
    max_order: int = 40,
    sr: int = SR,
) -> list[np.ndarray]:
    """One RIR (float64) per source to the room's microphone: image sources up to ``max_order``
    (absorption from Sabine's formula for ``room.rt60``), then, from the time the image sources
    stop being complete, a seeded noise tail decaying at ``room.rt60`` whose level is fitted to
    the image-source energy just before it (20 ms cross-fade); lengths to direct path +
    1.2 x RT60."""
    import pyroomacoustics as pra

    absorption, _ = pra.inverse_sabine(room.rt60, list(room.dims))
    box = pra.ShoeBox(
        list(room.dims),
        fs=sr,
        materials=pra.Material(absorption),
        max_order=max_order,
        air_absorption=False,
    )
    box.add_microphone(np.asarray(room.mic, dtype=np.float64))
    for s in sources:
        box.add_source(list(s))
    box.compute_rir()
    complete = 0.5 * max_order * min(room.dims) / SPEED_OF_SOUND
    decay = 13.8 / room.rt60
    hf_sos = signal.butter(1, 4000, "lowpass", fs=sr, output="sos")
    out = []
    for i, s in enumerate(sources):
        h = np.asarray(box.rir[0][i], dtype=np.float64)
        direct = float(np.linalg.norm(np.subtract(s, room.mic))) / SPEED_OF_SOUND
        n_c = int(complete * sr)
        n0 = int((direct + 0.5 * max(complete - direct, 0.0)) * sr)
        n_end = max(int((direct + 1.2 * room.rt60) * sr), n_c + 1)
        t = np.arange(n_end) / sr
        model = np.exp(-decay * t)
        early = np.zeros(n_end)
        early[: min(len(h), n_end)] = h[:n_end]
        win = slice(min(n0, n_c - 1), n_c)
        amp = float(np.mean(early[win] ** 2) / np.mean(model[win]))
        noise = signal.sosfilt(hf_sos, rng.standard_normal(n_end))
        noise = 0.5 * (noise / max(_rms(noise), 1e-12)) + 0.5 * rng.standard_normal(n_end)
        noise /= max(_rms(noise), 1e-12)
        tail = noise * np.sqrt(amp * model)
        ramp = np.clip((np.arange(n_end) - n_c) / (0.02 * sr), 0.0, 1.0)
        out.append(early * (1 - ramp) + tail * ramp)
    return out


def measured_rt60(h: np.ndarray, sr: int = SR) -> float:
    """RT60 of an impulse response from Schroeder's backward integral (T30 extrapolated)."""
    edc = np.cumsum(np.square(h[::-1]))[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    i5 = int(np.argmax(edc_db <= -5))
    i35 = int(np.argmax(edc_db <= -35))
    if i35 <= i5:
        return float("nan")
    return float(2.0 * (i35 - i5) / sr)


# --------------------------------------------------------------------------------------------
# Speech material

_TEXTS: dict[str, tuple[str, ...]] = {
    "en": (
        "Did you remember to buy milk on the way home?",
        "I think the meeting got moved to Thursday afternoon.",
        "Can you pass me the salt, please?",
        "We should really fix that window before the winter.",
        "My sister called this morning, she is coming over on Sunday.",
        "Honestly, I have no idea where I put my keys.",
        "Let's order something, I'm too tired to cook tonight.",
        "Have you seen the weather forecast for tomorrow?",
        "The kids need to be at school by eight.",
        "That's a good point, but I'm not sure it will work.",
        "Wait, say that again, I didn't catch it.",
        "I'll take the dog out after dinner.",
        "Is the kettle on? I could use a cup of tea.",
        "The train was late again, twenty minutes this time.",
        "Yes, yes, I know, I'll call them back later.",
        "Where did you park the car?",
        "We could paint this wall a lighter colour.",
        "Hmm, that's strange, it was working yesterday.",
        "Could you turn that down a little?",
        "I read an interesting article about bees the other day.",
        "Do we still have some of that bread left?",
        "Right, so the plan is to leave at nine.",
        "I'm not really hungry yet, maybe in an hour.",
        "Okay, I'll send you the numbers by email.",
        "No, the blue one, the one on the top shelf.",
        "It's getting cold in here, shall I close the door?",
        "I've been thinking about taking a few days off next month.",
        "Did anyone water the plants this week?",
    ),
    "en_tv": (
        "Good evening, and welcome to the news at six.",
        "Heavy rain is expected across the north of the country tonight.",
        "The government announced a new plan for public transport on Monday.",
        "Stay with us, after the break we have the latest sports results.",
        "Scientists say the new bridge will be finished by next spring.",
        "And now, the weather, with clouds clearing later in the week.",
        "Tonight on the show, three families try to live without electricity.",
        "Shares rose slightly in early trading this morning.",
        "Police are asking drivers to avoid the city centre this weekend.",
        "Thank you for joining us, we'll be right back after these messages.",
        "The home team scored twice in the final ten minutes.",
        "Call now and get a second one completely free.",
        "Our reporter spoke to people waiting at the station.",
        "Temperatures will reach twenty five degrees by Saturday.",
        "In other news, the museum reopens its doors after two years.",
    ),
    "de": (
        "Hast du schon die Zeitung von heute gelesen?",
        "Ich glaube, wir müssen morgen früher losfahren.",
        "Kannst du bitte das Fenster zumachen?",
        "Das Essen ist gleich fertig, deckst du den Tisch?",
        "Heute Abend kommt ein guter Film im Fernsehen.",
        "Die Wettervorhersage sagt Regen für das ganze Wochenende.",
        "Guten Abend, meine Damen und Herren, hier sind die Nachrichten.",
    ),
    "fr": (
        "Tu as pensé à acheter du pain ce matin?",
        "Je crois que le train part à dix heures.",
        "On pourrait aller au marché samedi matin.",
        "Attends, je cherche mes lunettes depuis une heure.",
        "Il fait vraiment froid dans cette cuisine.",
        "Bonsoir à tous, voici les informations de la journée.",
        "Demain, le soleil reviendra sur tout le pays.",
    ),
    "es": (
        "¿Has visto mis llaves en algún sitio?",
        "Mañana tenemos que levantarnos muy temprano.",
        "La cena está casi lista, ¿puedes poner la mesa?",
        "No sé si vamos a llegar a tiempo al cine.",
        "Llámame cuando salgas del trabajo, por favor.",
        "Buenas noches, estas son las noticias de hoy.",
        "El partido terminó con un empate a dos goles.",
    ),
    "it": (
        "Hai già chiamato tua madre oggi?",
        "Secondo me dovremmo partire dopo pranzo.",
        "Mi passi il sale, per favore?",
        "Questa settimana ho lavorato troppo.",
        "Stasera preparo la pasta con i pomodori.",
        "Buonasera, ecco le notizie della sera.",
        "Domani è previsto sole su tutta la penisola.",
    ),
    "nl": (
        "Heb jij de boodschappen al gedaan?",
        "Ik denk dat het morgen gaat regenen.",
        "Zullen we vanavond buiten eten?",
        "Waar heb je de sleutels neergelegd?",
        "Goedenavond, dit is het journaal van acht uur.",
    ),
}
#: languages of live talkers and of playback voices, with their probabilities
_LANGUAGES: tuple[tuple[str, float], ...] = (
    ("en", 0.6),
    ("de", 0.1),
    ("fr", 0.1),
    ("es", 0.08),
    ("it", 0.07),
    ("nl", 0.05),
)


def _pick_language(rng: np.random.Generator) -> str:
    langs, p = zip(*_LANGUAGES, strict=True)
    return str(rng.choice(langs, p=np.asarray(p) / sum(p)))


def _voices(rng: np.random.Generator, k: int, rate: tuple[int, int]) -> list[Voice]:
    variants = rng.choice(len(VARIANTS), size=k, replace=False)
    return [
        Voice(
            _pick_language(rng),
            VARIANTS[int(v)],
            int(rng.integers(rate[0], rate[1] + 1)),
            int(rng.integers(20, 80)),
            int(rng.integers(0, 4)),
        )
        for v in variants
    ]


class _SpeechBank:
    """espeak-ng utterances at :data:`SR`, cached per (text, voice)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Voice], np.ndarray] = {}

    def say(self, text: str, voice: Voice) -> np.ndarray:
        key = (text, voice)
        if key not in self._cache:
            x = speak(text, voice).astype(np.float64)
            y = np.asarray(soxr.resample(x, ESPEAK_SR, SR, quality="HQ"), dtype=np.float64)
            nz = np.flatnonzero(np.abs(y) > 1e-4)
            y = y[nz[0] : nz[-1] + 1] if nz.size else y
            self._cache[key] = y / max(_rms(y), 1e-12)
        return self._cache[key]

    def sentence(self, rng: np.random.Generator, voice: Voice, broadcast: bool = False) -> str:
        bank = _TEXTS["en_tv"] if broadcast and voice.language == "en" else _TEXTS[voice.language]
        k = 2 if rng.random() < 0.3 else 1
        picks = rng.choice(len(bank), size=k, replace=False)
        return " ".join(bank[int(i)] for i in picks)


# --------------------------------------------------------------------------------------------
# Sessions

#: scene kind -> (weight, duration range in seconds, live?)
SCENES: dict[str, tuple[float, tuple[float, float], bool]] = {
    "conversation": (3.0, (15.0, 45.0), True),
    "phone_call": (0.7, (15.0, 35.0), True),
    "live_over_tv": (1.6, (12.0, 35.0), True),
    "tv_speech": (2.6, (12.0, 45.0), False),
    "tv_music": (1.3, (10.0, 35.0), False),
    "quiet": (1.0, (5.0, 20.0), False),
    "household": (0.8, (6.0, 18.0), False),
}


@dataclass
class _Talker:
    voice: Voice
    spots: list[str]
    effort_db: float


@dataclass
class _Session:
    n: int
    placements: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    spots: dict[str, Xyz] = field(default_factory=dict)
    intervals: dict[str, list[Interval]] = field(
        default_factory=lambda: {"live": [], "tv_speech": [], "tv_music": [], "noise": []}
    )
    scenes: list[tuple[str, float, float]] = field(default_factory=list)

    def place(self, spot: str, x: np.ndarray, t: float) -> tuple[float, float]:
        start = round(t * SR)
        if start >= self.n or x.size == 0:
            return (t, t)
        x = x[: self.n - start]
        self.placements.setdefault(spot, []).append((start, x))
        return (start / SR, (start + len(x)) / SR)


def _random_spot(
    rng: np.random.Generator,
    room: RoomSpec,
    z: tuple[float, float],
    avoid: Sequence[Xyz],
    min_dist: float,
) -> Xyz:
    dims = np.asarray(room.dims)
    for _ in range(200):
        p = np.array(
            [rng.uniform(0.35, dims[0] - 0.35), rng.uniform(0.35, dims[1] - 0.35), rng.uniform(*z)]
        )
        if all(np.linalg.norm(p - np.asarray(a)) >= min_dist for a in avoid):
            break
    return (round(float(p[0]), 3), round(float(p[1]), 3), round(float(p[2]), 3))


class _Director:
    """Writes the scenes of one session into a :class:`_Session`."""

    def __init__(
        self,
        room: RoomSpec,
        rng: np.random.Generator,
        bank: _SpeechBank,
        n_segments: int,
        live_target: float,
    ) -> None:
        self.room, self.rng, self.bank = room, rng, bank
        self.duration = n_segments * SEGMENT_SECONDS
        self.s = _Session(n=round(self.duration * SR))
        self.live_target = live_target
        r = rng
        spot = np.asarray(room.playback_spots[int(r.integers(len(room.playback_spots)))])
        spot = np.clip(spot + r.uniform(-0.1, 0.1, 3), 0.15, np.asarray(room.dims) - 0.15)
        self.s.spots["playback"] = (float(spot[0]), float(spot[1]), float(spot[2]))
        self.speaker = {
            "low_hz": float(r.uniform(*room.low_hz)),
            "high_hz": float(r.uniform(*room.high_hz)),
            "resonance_db": float(r.uniform(3, 9)),
            "presence_hz": float(r.uniform(1800, 3500)),
            "presence_db": float(r.uniform(0, 5)),
            "drive": float(r.uniform(1.5, 4.0)),
            "ratio": float(r.uniform(2.0, 6.0)),
        }
        self.speaker["resonance_hz"] = self.speaker["low_hz"] * float(r.uniform(1.1, 1.6))
        self.playback_db = room.playback_db + float(r.normal(0, 3))
        n_talk = int(r.choice([1, 2, 3], p=[0.25, 0.45, 0.3]))
        avoid = [room.mic, self.s.spots["playback"]]
        self.talkers: list[_Talker] = []
        for i, v in enumerate(_voices(r, n_talk, (130, 190))):
            names = []
            for j in range(2):
                name = f"talker{i}.{j}"
                self.s.spots[name] = _random_spot(r, room, (1.0, 1.75), avoid, 0.7)
                names.append(name)
            self.talkers.append(_Talker(v, names, float(r.normal(0, 3))))
        self.tv_voices = _voices(r, int(r.integers(2, 4)), (145, 200))
        for k in range(3):
            self.s.spots[f"noise{k}"] = _random_spot(r, room, (0.05, 1.2), [room.mic], 0.5)
        self.fan_db = (
            room.room_tone_db + float(r.choice([12, 16, 20])) if r.random() < 0.3 else None
        )
        self.tone_db = room.room_tone_db + float(r.uniform(-3, 3))

    # -- content -------------------------------------------------------------------------

    def _conversation(
        self, t0: float, t1: float, talkers: list[_Talker], phone: bool = False
    ) -> float:
        r = self.rng
        spots = {id(tk): tk.spots[int(r.integers(len(tk.spots)))] for tk in talkers}
        t, last = t0 + r.uniform(0.0, 1.0), -1
        while t < t1:
            i = int(r.integers(len(talkers)))
            if len(talkers) > 1 and i == last:
                i = (i + 1) % len(talkers)
            tk = talkers[i]
            x = self.bank.say(self.bank.sentence(r, tk.voice), tk.voice)
            gain_db = tk.effort_db + float(r.normal(0, 2)) - (10.0 if r.random() < 0.12 else 0.0)
            x = x * 0.05 * 10 ** (gain_db / 20)
            start, end = self.s.place(spots[id(tk)], x, t)
            self.s.intervals["live"] += speech_activity(x, SR, start)
            last = i
            if phone:
                pause = r.uniform(1.5, 6.0)
            elif r.random() < 0.12:
                pause = r.uniform(2.0, 5.0)
            else:
                pause = r.uniform(-0.2, 1.2)
            t = max(t + 0.3, end + pause)
        return t

    def _playback(self, t0: float, t1: float, content: str, level_db: float) -> float:
        r = self.rng
        seconds = t1 - t0
        dry = np.zeros(int(seconds * SR) + 30 * SR)
        speech: list[Interval] = []
        music: list[Interval] = []
        if content == "music":
            x = synth_music(r, seconds, SR).astype(np.float64)
            dry[: len(x)] += x / max(_rms(x), 1e-12)
            music.append((0.0, len(x) / SR))
            end = len(x) / SR
        else:
            t = r.uniform(0.0, 0.5)
            voices = self.tv_voices[: int(r.integers(1, len(self.tv_voices) + 1))]
            while t < seconds:
                v = voices[int(r.integers(len(voices)))]
                x = self.bank.say(self.bank.sentence(r, v, broadcast=True), v)
                x = x * 10 ** (r.normal(0, 1.5) / 20)
                s0 = int(t * SR)
                dry[s0 : s0 + len(x)] += x[: len(dry) - s0]
                speech += speech_activity(x, SR, t)
                t += len(x) / SR + (r.uniform(0.1, 0.7) if r.random() < 0.85 else r.uniform(1, 3))
            end = min(t, len(dry) / SR)
            if r.random() < 0.3:
                bed = synth_music(r, end, SR).astype(np.float64)
                dry[: len(bed)] += bed / max(_rms(bed), 1e-12) * 10 ** (r.uniform(-20, -10) / 20)
                music.append((0.0, end))
        dry = dry[: int(end * SR)]
        y = loudspeaker(dry, SR, **self.speaker).astype(np.float64)
        _, stop = self.s.place("playback", y * 0.05 * 10 ** (level_db / 20), t0)
        clip = self.s.n / SR
        self.s.intervals["tv_speech"] += [(t0 + a, min(t0 + b, clip)) for a, b in speech]
        self.s.intervals["tv_music"] += [(t0 + a, min(t0 + b, clip)) for a, b in music]
        return stop

    def _noise(self, t: float, kind: str | None = None) -> float:
        r = self.rng
        kind = kind or str(r.choice(HOUSEHOLD_KINDS))
        x = household_sound(kind, r, SR).astype(np.float64)
        spot = f"noise{int(r.integers(3))}"
        x = x * 0.6 * 10 ** (r.uniform(-12, 4) / 20)
        start, end = self.s.place(spot, x, t)
        self.s.intervals["noise"].append((start, end))
        return end

    # -- the session ---------------------------------------------------------------------

    def run(self) -> _Session:
        r = self.rng
        kinds = list(SCENES)
        t, live_time, prev = 0.0, 0.0, ""
        while t < self.duration - 1.0:
            w = np.array([SCENES[k][0] for k in kinds])
            live = np.array([SCENES[k][2] for k in kinds])
            if t > 0:
                boost = 4.0 if live_time / t < self.live_target else 0.15
                w = w * np.where(live, boost, 1.0)
            w = w * np.array([0.3 if k == prev else 1.0 for k in kinds])
            kind = kinds[int(r.choice(len(kinds), p=w / w.sum()))]
            lo, hi = SCENES[kind][1]
            t1 = min(self.duration, t + r.uniform(lo, hi))
            level = self.playback_db + float(r.normal(0, 3)) + (8.0 if r.random() < 0.15 else 0.0)
            if kind == "conversation":
                talkers = self.talkers
                if len(talkers) > 2 and r.random() < 0.4:
                    talkers = [talkers[int(i)] for i in r.choice(len(talkers), 2, replace=False)]
                end = self._conversation(t, t1, talkers)
            elif kind == "phone_call":
                end = self._conversation(
                    t, t1, [self.talkers[int(r.integers(len(self.talkers)))]], phone=True
                )
            elif kind == "live_over_tv":
                content = "music" if r.random() < 0.35 else "speech"
                end_tv = self._playback(t, t1, content, level - 3.0)
                end = max(self._conversation(t + r.uniform(0, 3), t1, self.talkers), end_tv)
            elif kind in ("tv_speech", "tv_music"):
                end = self._playback(t, t1, kind[3:], level)
            elif kind == "household":
                u = t + r.uniform(0.2, 1.5)
                while u < t1:
                    u = self._noise(u) + r.uniform(0.2, 3.0)
                end = max(t1, u)
            else:
                end = t1
            end = min(end, self.duration)
            self.s.scenes.append((kind, t, end))
            if SCENES[kind][2]:
                live_time += end - t
            t = end + (r.uniform(0.3, 3.0) if r.random() < 0.7 else 0.0)
        n_events = int(r.poisson(self.room.noise_rate * self.duration / 60))
        for u in np.sort(r.uniform(0, self.duration, n_events)):
            self._noise(float(u))
        return self.s


@dataclass(frozen=True)
class SessionResult:
    """One written session: its name, labels, per-segment content and the scenes."""

    name: str
    labels: np.ndarray
    live_seconds: np.ndarray
    content: list[str]
    scenes: list[tuple[str, float, float]]
    rt60: float


def _content(intervals: dict[str, list[Interval]], n_segments: int) -> list[str]:
    cov = {k: coverage(v, n_segments) for k, v in intervals.items()}
    out = []
    for k in range(n_segments):
        parts = [
            name for name in ("live", "tv_speech", "tv_music", "noise") if cov[name][k] >= 0.25
        ]
        out.append("+".join(parts) if parts else "silence")
    return out


def render_session(
    room: RoomSpec,
    cfg: VtdConfig,
    env_index: int,
    session_index: int,
    bank: _SpeechBank | None = None,
) -> tuple[np.ndarray, SessionResult]:
    """Audio (float32 at :data:`SR`, 5 s x n segments) and labels of one session."""
    rng = np.random.default_rng([cfg.seed, env_index, session_index])
    n_seg = int(rng.integers(cfg.segments[0], cfg.segments[1] + 1))
    director = _Director(
        room, rng, bank or _SpeechBank(), n_seg, float(rng.uniform(*cfg.live_share))
    )
    s = director.run()
    names = sorted(s.placements)
    rirs = dict(
        zip(
            names,
            room_impulse_responses(room, [s.spots[k] for k in names], rng, cfg.max_order),
            strict=True,
        )
    )
    mix = room_tone(rng, s.n, director.tone_db, room.hum_hz, director.fan_db)
    for key in names:
        track = np.zeros(s.n)
        for start, x in s.placements[key]:
            _add(track, x, start)
        mix += signal.oaconvolve(track, rirs[key])[: s.n] * 12.0
    mix += rng.standard_normal(s.n) * 10 ** (-75 / 20)
    mix = soft_limit(mix)
    labels = segment_labels(s.intervals["live"], n_seg, cfg.min_live_seconds)
    result = SessionResult(
        name=f"session{session_index + 1:02d}",
        labels=labels,
        live_seconds=coverage(s.intervals["live"], n_seg),
        content=_content(s.intervals, n_seg),
        scenes=s.scenes,
        rt60=float(np.nanmedian([measured_rt60(h) for h in rirs.values()])),
    )
    return mix.astype(np.float32), result


# --------------------------------------------------------------------------------------------
# Writing

_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, no final xor)."""
    r = zlib.crc32(page.translate(_BITREV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{r:032b}"[::-1], 2)


def fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """``data`` (an Ogg stream) with every page's stream serial number set to ``serial`` and its
    checksum recomputed; libsndfile draws the serial at random."""
    b = bytearray(data)
    pos = 0
    while pos < len(b):
        if b[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_seg = b[pos + 26]
        end = pos + 27 + n_seg + sum(b[pos + 27 : pos + 27 + n_seg])
        struct.pack_into("<I", b, pos + 14, serial & 0xFFFFFFFF)
        struct.pack_into("<I", b, pos + 22, 0)
        struct.pack_into("<I", b, pos + 22, _ogg_crc(bytes(b[pos:end])))
        pos = end
    return bytes(b)


def write_opus(path: Path, x: np.ndarray, compression_level: float, serial: int) -> None:
    """16 kHz mono Ogg Opus with a fixed stream serial number (byte-reproducible)."""
    buf = io.BytesIO()
    sf.write(
        buf,
        np.clip(x, -1.0, 1.0).astype(np.float32),
        SR,
        format="OGG",
        subtype="OPUS",
        compression_level=compression_level,
    )
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(fix_ogg_serial(buf.getvalue(), serial))
    tmp.replace(path)


def _write_csv(path: Path, res: SessionResult) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["segment", "start", "label", "live_seconds", "content"])
        for k, (lab, cov, cont) in enumerate(
            zip(res.labels, res.live_seconds, res.content, strict=True)
        ):
            w.writerow([k, f"{k * SEGMENT_SECONDS:.1f}", int(lab), f"{cov:.2f}", cont])


def build_vtd(
    out: Path, cfg: VtdConfig = VtdConfig(), progress: ProgressFn | None = None
) -> dict[str, list[SessionResult]]:
    """Write the corpus to ``out`` (``<env>/<session>.ogg`` + ``.csv`` and ``README.md``);
    returns the sessions per environment."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bank = _SpeechBank()
    results: dict[str, list[SessionResult]] = {}
    total = len(cfg.rooms) * cfg.sessions_per_env
    done = 0
    for e, room in enumerate(cfg.rooms):
        env_dir = out / room.name
        env_dir.mkdir(parents=True, exist_ok=True)
        results[room.name] = []
        for i in range(cfg.sessions_per_env):
            audio, res = render_session(room, cfg, e, i, bank)
            serial = zlib.crc32(f"{cfg.seed}/{room.name}/{res.name}".encode())
            write_opus(env_dir / f"{res.name}.ogg", audio, cfg.compression_level, serial)
            _write_csv(env_dir / f"{res.name}.csv", res)
            results[room.name].append(res)
            done += 1
            if progress is not None:
                progress(done, total, f"{room.name}/{res.name}")
    size = sum(dir_size(out / room.name) for room in cfg.rooms)
    (out / "README.md").write_text(readme_text(cfg, results, size), encoding="utf-8")
    return results


def readme_text(
    cfg: VtdConfig, results: dict[str, list[SessionResult]], size_bytes: int | None = None
) -> str:
    """The corpus README: how it was made, the labelling rule, counts and the license."""
    n_all = sum(r.labels.size for res in results.values() for r in res)
    live_all = sum(int(r.labels.sum()) for res in results.values() for r in res)
    sessions_all = sum(len(res) for res in results.values())
    size = f", {size_bytes / 1e6:.1f} MB" if size_bytes is not None else ""
    rows = []
    for room in cfg.rooms:
        res = results.get(room.name, [])
        n = sum(r.labels.size for r in res)
        live = sum(int(r.labels.sum()) for r in res)
        rt = np.nanmedian([r.rt60 for r in res]) if res else float("nan")
        rows.append(
            f"| `{room.name}` | {room.dims[0]:g} x {room.dims[1]:g} x {room.dims[2]:g} | "
            f"{room.rt60:.2f} ({rt:.2f}) | {room.mic} | {room.device}: "
            f"{', '.join(str(p) for p in room.playback_spots)} | {len(res)} | {n} | "
            f"{live} ({100 * live / max(n, 1):.0f} %) |"
        )
    scene_rows = [
        f"- `{k}`: weight {w:g}, {lo:g}-{hi:g} s{' (live)' if live else ''}"
        for k, (w, (lo, hi), live) in SCENES.items()
    ]
    lines = [
        "# Miniature VTD corpus: live versus played-back speech in simulated rooms",
        "",
        "Synthetic sessions for voice-type discrimination (is a 5 s segment live human speech in "
        "the room, 1, or anything else, 0: speech or music from a TV / radio / conference "
        "speaker, household sounds, silence). Layout as `iml-tui prepare vtd --source "
        "demo_data/vtd` reads it: one folder per environment, each session an Ogg Opus file "
        "(16 kHz mono) and `<session>.csv` with one row per 5 s segment "
        "(`segment, start, label, live_seconds, content`; segment k covers [5k, 5k + 5) s).",
        "",
        f"Rebuild: `python -m demo_build.vtd_sessions --out demo_data/vtd --seed {cfg.seed}` "
        "(needs espeak-ng and pyroomacoustics). Same seed, same bytes.",
        "",
        "## Environments",
        "",
        "Names follow the original corpora: `rm*` rooms form one corpus (like the SRI rooms), "
        "the others the second (like LB), so out-of-domain bootstrapping has a source.",
        "",
        "| environment | room (m) | RT60 nominal (measured) s | microphone (m) | "
        "playback device and spots (m) | sessions | segments | live speech |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"In all: {sessions_all} sessions, {n_all} segments ({n_all * SEGMENT_SECONDS / 60:.0f} "
        f"min), {live_all} live ({100 * live_all / max(n_all, 1):.0f} %){size}; Opus at "
        f"libsndfile compression level {cfg.compression_level:g} (about 14 kbit/s).",
        "",
        *[
            f"- `{r.name}`: {r.description}; household sounds {r.noise_rate:g} per minute "
            f"besides the household scenes; room tone {r.room_tone_db:g} dBFS"
            f"{f', {r.hum_hz:g} Hz hum' if r.hum_hz else ''}; loudspeaker low cut "
            f"{r.low_hz[0]:g}-{r.low_hz[1]:g} Hz, high cut {r.high_hz[0]:g}-{r.high_hz[1]:g} Hz."
            for r in cfg.rooms
        ],
        "",
        "## How a session is made",
        "",
        f"- Length: {cfg.segments[0]}-{cfg.segments[1]} segments of 5 s (uniform). Each session "
        "is one batch of the stream.",
        "- Room acoustics: pyroomacoustics `ShoeBox`, absorption from Sabine's formula for the "
        f"nominal RT60, image sources up to order {cfg.max_order}, then a seeded noise tail "
        "decaying at the nominal RT60 (level fitted to the image-source energy where the image "
        "sources are still complete, 20 ms cross-fade). The measured RT60 is the median T30 of "
        "the session's impulse responses. One microphone at a fixed spot per environment.",
        "- Live talkers: 1-3 per session (espeak-ng voices: English 60 %, German, French, "
        "Spanish, Italian, Dutch; variants m1-m7 / f1-f4, 130-190 words per minute, pitch "
        "20-79, word gap 0-3), each with two random spots (height 1.0-1.75 m, at least 0.7 m "
        "from the microphone and the playback device, anywhere in the room: some far from the "
        "microphone). A talker's level varies by session (+-3 dB) and utterance (+-2 dB); 12 % "
        "of utterances are 10 dB quieter. Turns: pauses of -0.2-1.2 s (overlaps), 12 % lulls "
        "of 2-5 s; phone calls: one talker, pauses of 1.5-6 s.",
        "- Playback (TV / radio / conference speaker), at one spot per session (a candidate spot "
        "+-0.1 m): 2-3 other espeak-ng voices (same languages and variants, 145-200 words per "
        "minute, broadcast texts), 30 % of the time over a music bed 10-20 dB down, or "
        "synthesised music (chord pads with harmonics, plucked bass, a melody with vibrato, a "
        "drum kit in 80 %; random tempo, key, mode). Loudspeaker model per session: broadcast "
        "compression (ratio 2-6, 30 ms), tanh soft clipping (drive 1.5-4), a bass resonance "
        "(+3-9 dB at 1.1-1.6 x the low cut), a presence peak (0-5 dB at 1.8-3.5 kHz), a "
        "6th-order high-pass at the low cut and a 4th-order low-pass at the high cut. Its level "
        "varies by session (+-3 dB) and scene (+-3 dB), 15 % of scenes 8 dB louder; under live "
        "talk 3 dB down.",
        "- Household sounds (dishes, door, footsteps, chair) from three spots per session "
        "(height 0.05-1.2 m), peak 0.3 x -12..+4 dB (live utterances: RMS 0.05 x talker "
        "gain), during `household` scenes and at random in all scenes.",
        "- Room tone at the microphone: pink noise (+-3 dB per session), mains / fridge hum, "
        "in 30 % of sessions a fan 12-20 dB above the room tone (lower SNR), and -75 dBFS "
        "sensor noise. Peaks above 0.7 pass a tanh soft limiter (ceiling 0.98).",
        "- Scenes, with the chance of a live scene raised (x 4) while the live share of the "
        f"session is below its target ({cfg.live_share[0]:g}-{cfg.live_share[1]:g}, drawn per "
        "session) and lowered (x 0.15) above it; scene boundaries do not align with segments:",
        *scene_rows,
        "",
        "## Labels",
        "",
        "Live speech = the voice activity of the dry live-talker signals (10 ms frames within "
        "35 dB of the utterance's loudest frame, gaps under 0.3 s bridged), whether or not it is "
        "loud at the microphone. **A segment is 1 when live speech covers at least "
        f"{cfg.min_live_seconds:g} s of it**, else 0; TV / radio speech never counts, so live "
        "speech over the TV is 1 and TV speech alone is 0. `live_seconds` is that coverage; "
        "`content` lists what covers at least 0.25 s of the segment (`live`, `tv_speech`, "
        "`tv_music`, `noise`, joined with `+`; `silence` when none), so a segment can list "
        "`live` and still be 0.",
        "",
        f"Seed {cfg.seed}; every random choice comes from numpy generators seeded with "
        "[seed, environment index, session index]; the Ogg serial numbers are fixed.",
        "",
        "## License",
        "",
        "CC0-1.0 (public domain dedication): the corpus is synthetic. The speech was made with "
        "espeak-ng, which is GPL-3.0 software; its output is not covered by that license.",
        "",
    ]
    return "\n".join(lines)


def dir_size(path: Path) -> int:
    """Total bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_build.vtd_sessions --out demo_data/vtd [--seed N]``."""
    ap = argparse.ArgumentParser(
        prog="python -m demo_build.vtd_sessions", description="Synthesise the miniature VTD corpus."
    )
    ap.add_argument("--out", type=Path, default=Path("demo_data/vtd"))
    ap.add_argument("--seed", type=int, default=VtdConfig.seed)
    ap.add_argument(
        "--sessions", type=int, default=VtdConfig.sessions_per_env, help="sessions per environment"
    )
    args = ap.parse_args(argv)
    cfg = replace(VtdConfig(), seed=args.seed, sessions_per_env=args.sessions)
    t0 = time.perf_counter()

    def report(done: int, total: int, msg: str) -> None:
        print(f"[{done}/{total}] {msg} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    results = build_vtd(args.out, cfg, report)
    for env, res in results.items():
        n = sum(r.labels.size for r in res)
        live = sum(int(r.labels.sum()) for r in res)
        print(f"{env}: {len(res)} sessions, {n} segments, {live} live ({100 * live / n:.0f} %)")
    print(
        f"total size: {dir_size(args.out) / 1e6:.2f} MB; "
        f"build time: {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
