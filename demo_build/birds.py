"""A miniature bioacoustic corpus in the DCASE 2024 Task 5 development-set layout, synthesised.

``python -m demo_build.birds --out demo_data/birds [--seed 2025]`` writes::

    Development_Set/Validation_Set/<SITE>/<name>.ogg, .csv  (Audiofilename,Starttime,Endtime,Q)
    Development_Set/Training_Set/<SITE>/<name>.ogg, .csv    (... ,Endtime,<CODE1>,<CODE2>,...)
    DCASE2024_task5_validation_set_classes.csv              (dataset,recording,class_code,
                                                             class_name)
    DCASE2024_task5_training_set_classes.csv                (dataset,class_code,class_name)
    synthesis_events.csv    every synthesised sound, annotated or not, with its SNR and band
    README.md               how it was made, counts, license

Audio: mono, 22050 Hz, Ogg Vorbis. Five call types (``Tonal_whistle``, ``FM_sweep``, ``Trill``,
``Buzz``, ``Harmonic_stack``) are drawn per individual and per call; each validation recording
annotates one of them (``FM_sweep`` and ``Harmonic_stack`` are rare: one recording each with a
handful of calls), the training recordings annotate several, plus ``Croak`` and ``Drumming``.
Calls are scaled to a drawn SNR against the background in their own band over their own span;
calls below :attr:`BirdsConfig.unk_below_db` are annotated UNK. Backgrounds mix wind, rain,
insects and distant traffic with levels that change over time; unannotated distractors (other
animals, and faint calls of the call types not annotated in that file) are added on top.

Event times are the sample span of the synthesised call envelope, in seconds rounded to 1 ms.
Every random choice comes from ``numpy.random.default_rng`` streams derived from the seed, and
the Ogg stream serial number is derived from the file's path, so a seed gives byte-identical
files on a given platform.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import math
import shutil
import struct
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iml_tui.data.dcase import TRAIN_CLASSES_CSV, VALID_CLASSES_CSV, split_cuts_demo
from iml_tui.errors import UserError

SR = 22050
CALL_TYPES: tuple[str, ...] = ("Tonal_whistle", "FM_sweep", "Trill", "Buzz", "Harmonic_stack")
EXTRA_TYPES: tuple[str, ...] = ("Croak", "Drumming")
RARE_TYPES: tuple[str, ...] = ("FM_sweep", "Harmonic_stack")
OTHER_SOUNDS: tuple[str, ...] = ("caw", "knock")
CODES: dict[str, str] = {
    "Tonal_whistle": "TWH",
    "FM_sweep": "FMS",
    "Trill": "TRL",
    "Buzz": "BUZ",
    "Harmonic_stack": "HST",
    "Croak": "CRK",
    "Drumming": "DRM",
}
BACKGROUNDS: tuple[str, ...] = ("wind", "rain", "insects", "traffic")
#: Probability that a recording of a site has each background (at least two are always present).
SITES: dict[str, dict[str, float]] = {
    "WDL": {"wind": 1.0, "rain": 0.3, "insects": 0.8, "traffic": 0.2},  # woodland
    "MRS": {"wind": 0.6, "rain": 0.6, "insects": 1.0, "traffic": 0.1},  # marsh
    "RDS": {"wind": 0.7, "rain": 0.3, "insects": 0.4, "traffic": 1.0},  # roadside
    "FRS": {"wind": 0.9, "rain": 0.4, "insects": 0.7, "traffic": 0.2},  # forest
    "PND": {"wind": 0.5, "rain": 0.5, "insects": 1.0, "traffic": 0.2},  # pond
    "PRK": {"wind": 0.6, "rain": 0.3, "insects": 0.5, "traffic": 0.9},  # park
}
#: RMS level (dBFS) range of each background over the time it is active.
BACKGROUND_DB: dict[str, tuple[float, float]] = {
    "wind": (-40.0, -27.0),
    "rain": (-42.0, -29.0),
    "insects": (-44.0, -31.0),
    "traffic": (-40.0, -28.0),
}
FLOOR_DB = -72.0
PEAK = 0.95
VALIDATION = "Validation_Set"
TRAINING = "Training_Set"
EVENTS_CSV = "synthesis_events.csv"

ProgressFn = Callable[[str, int, int], None]
Params = dict[str, Any]


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (a quick FFT length)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 << max(0, (n - 1) // p35).bit_length()
            if m >= n:
                best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    """x smoothed by a Gaussian of ``sigma`` samples (zero beyond the ends)."""
    r = max(1, math.ceil(4 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return np.convolve(x, k / k.sum())[r : r + len(x)]


def _knots(values: Sequence[float], u: np.ndarray) -> np.ndarray:
    """A smooth curve through equally spaced knot values at positions u in [0, 1] (cosine
    interpolation: flat at each knot)."""
    v = np.asarray(values, dtype=np.float64)
    pos = np.clip(u, 0.0, 1.0) * (len(v) - 1)
    i = np.minimum(pos.astype(np.int64), len(v) - 2)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
    return np.asarray(v[i] + (v[i + 1] - v[i]) * w)


# --- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordingSpec:
    """One recording to synthesise: its site (the DATASET folder), length and annotated classes.

    events: (low, high) number of POS calls for a sparse (rare-class) recording; None: calls come
    in bouts at the class's natural rate.
    """

    dataset: str
    seconds: float
    classes: tuple[str, ...]
    events: tuple[int, int] | None = None


VALIDATION_PLAN: tuple[RecordingSpec, ...] = (
    RecordingSpec("WDL", 190, ("Tonal_whistle",)),
    RecordingSpec("RDS", 170, ("Tonal_whistle",)),
    RecordingSpec("MRS", 150, ("Tonal_whistle",)),
    RecordingSpec("WDL", 150, ("Tonal_whistle",)),
    RecordingSpec("WDL", 225, ("FM_sweep",), events=(9, 11)),
    RecordingSpec("MRS", 185, ("Trill",)),
    RecordingSpec("WDL", 165, ("Trill",)),
    RecordingSpec("RDS", 150, ("Trill",)),
    RecordingSpec("RDS", 175, ("Buzz",)),
    RecordingSpec("MRS", 160, ("Buzz",)),
    RecordingSpec("WDL", 150, ("Buzz",)),
    RecordingSpec("MRS", 225, ("Harmonic_stack",), events=(9, 11)),
)
TRAINING_PLAN: tuple[RecordingSpec, ...] = (
    RecordingSpec("PRK", 95, ("Tonal_whistle", "FM_sweep", "Buzz")),
    RecordingSpec("PRK", 90, ("Tonal_whistle", "Trill", "Harmonic_stack")),
    RecordingSpec("FRS", 95, ("FM_sweep", "Trill", "Drumming")),
    RecordingSpec("FRS", 90, ("Tonal_whistle", "Buzz", "Harmonic_stack", "Drumming")),
    RecordingSpec("PND", 90, ("FM_sweep", "Buzz", "Harmonic_stack", "Croak")),
    RecordingSpec("PND", 80, ("Trill", "Croak", "Buzz")),
)


@dataclass(frozen=True)
class BirdsConfig:
    """What to synthesise. snr_db: in-band SNR range of annotated calls; calls below
    unk_below_db are annotated UNK; faint_snr_db: unannotated calls of the other call types;
    animal_snr_db: other animals (never annotated); overlap: chance that a bout is joined by a
    second individual; compression_level: Vorbis, 0 (best) .. 1 (smallest)."""

    seed: int = 2025
    validation: tuple[RecordingSpec, ...] = VALIDATION_PLAN
    training: tuple[RecordingSpec, ...] = TRAINING_PLAN
    snr_db: tuple[float, float] = (2.0, 30.0)
    unk_below_db: float = 6.0
    faint_snr_db: tuple[float, float] = (-10.0, 0.0)
    animal_snr_db: tuple[float, float] = (0.0, 20.0)
    overlap: float = 0.2
    compression_level: float = 0.95

    def __post_init__(self) -> None:
        known = set(CALL_TYPES) | set(EXTRA_TYPES)
        for part, specs in ((VALIDATION, self.validation), (TRAINING, self.training)):
            for spec in specs:
                bad = [c for c in spec.classes if c not in known]
                if bad or not spec.classes:
                    raise ValueError(f"{part}: unknown or no classes {bad or spec.classes}")
                if spec.dataset not in SITES:
                    raise ValueError(f"{part}: unknown site {spec.dataset!r} ({', '.join(SITES)})")
                if spec.seconds < 5:
                    raise ValueError(f"{part}: recordings need at least 5 s")
                if part == VALIDATION and len(spec.classes) != 1:
                    raise ValueError("a validation recording annotates exactly one class")
        if not 0.0 <= self.compression_level <= 1.0:
            raise ValueError("compression_level must lie in [0, 1]")


# --- the sound catalogue --------------------------------------------------------------------------
def _lu(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Log-uniform draw in [lo, hi]."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _jit(rng: np.random.Generator, sigma: float) -> float:
    """A multiplicative per-call variation factor exp(N(0, sigma))."""
    return float(math.exp(rng.normal(0.0, sigma)))


def _dur(rng: np.random.Generator, mean: float, lo: float, hi: float, sigma: float = 0.2) -> float:
    return float(np.clip(mean * _jit(rng, sigma), lo, hi))


def _ramp(n: int, attack: float, release: float) -> np.ndarray:
    """Raised-cosine attack and release (seconds): 0 at the first and last sample, 1 between."""
    env = np.ones(n)
    a = max(1, min(n // 2, round(attack * SR)))
    r = max(1, min(n - a, round(release * SR)))
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    env[n - r :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(r) + 1) / r)
    return env


def _phase(freq: np.ndarray) -> np.ndarray:
    return 2.0 * np.pi * np.cumsum(freq) / SR


def _band_noise(rng: np.random.Generator, n: int, fc: float, bw: float) -> np.ndarray:
    """Unit-RMS noise with a Gaussian spectrum centred on fc (standard deviation bw / 2)."""
    m = _fast_len(max(n, 64))
    spec = np.fft.rfft(rng.standard_normal(m))
    f = np.fft.rfftfreq(m, 1.0 / SR)
    spec *= np.exp(-0.5 * ((f - fc) / (0.5 * bw)) ** 2)
    x = np.fft.irfft(spec, m)[:n]
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


# Each sound: individual(rng) -> base parameters; call(rng, ind) -> parameters of one call with
# its length "n" (samples) and "band" (Hz, where most of its energy lies); render(p) -> (n,) array.
def _whistle_ind(rng: np.random.Generator) -> Params:
    k = int(rng.integers(3, 6))
    knots = np.clip(rng.normal(0.0, 0.12, k), -0.25, 0.25)
    knots[0] = 0.0
    return {
        "f": rng.uniform(2200, 4000),
        "knots": knots.tolist(),
        "vib": rng.uniform(5, 12),
        "depth": rng.uniform(0.004, 0.03),
        "dur": rng.uniform(0.4, 1.0),
        "h2": rng.uniform(0.05, 0.2),
    }


def _whistle_call(rng: np.random.Generator, ind: Params) -> Params:
    knots = (np.array(ind["knots"]) + rng.normal(0.0, 0.03, len(ind["knots"]))).tolist()
    f = ind["f"] * _jit(rng, 0.03)
    depth = ind["depth"] * _jit(rng, 0.2)
    lo, hi = f * (1 + min(knots)) * (1 - depth), f * (1 + max(knots)) * (1 + depth)
    return {
        "n": round(_dur(rng, ind["dur"], 0.25, 1.5) * SR),
        "f": f,
        "knots": knots,
        "vib": ind["vib"] * _jit(rng, 0.08),
        "depth": depth,
        "h2": ind["h2"],
        "phi": rng.uniform(0, 2 * np.pi),
        "trem": rng.uniform(2, 5),
        "attack": rng.uniform(0.02, 0.06),
        "release": rng.uniform(0.04, 0.15),
        "band": (lo - 150.0, hi + 150.0),
    }


def _whistle(p: Params) -> np.ndarray:
    n = p["n"]
    t = np.arange(n) / SR
    u = np.linspace(0.0, 1.0, n)
    contour = _knots(p["knots"], u)
    f = p["f"] * (1 + contour) * (1 + p["depth"] * np.sin(2 * np.pi * p["vib"] * t + p["phi"]))
    ph = _phase(f)
    x = np.sin(ph) + p["h2"] * np.sin(2 * ph)
    return x * _ramp(n, p["attack"], p["release"]) * (1 + 0.15 * np.sin(2 * np.pi * p["trem"] * t))


def _sweep_ind(rng: np.random.Generator) -> Params:
    return {
        "hi": rng.uniform(4500, 8500),
        "lo": rng.uniform(1500, 3000),
        "down": bool(rng.random() < 0.75),
        "gamma": _lu(rng, 0.4, 2.5),
        "dur": rng.uniform(0.06, 0.16),
    }


def _sweep_call(rng: np.random.Generator, ind: Params) -> Params:
    hi, lo = ind["hi"] * _jit(rng, 0.04), ind["lo"] * _jit(rng, 0.04)
    return {
        "n": round(_dur(rng, ind["dur"], 0.03, 0.25) * SR),
        "hi": hi,
        "lo": lo,
        "down": ind["down"],
        "gamma": ind["gamma"] * _jit(rng, 0.1),
        "band": (lo - 250.0, hi + 250.0),
    }


def _sweep(p: Params) -> np.ndarray:
    n = p["n"]
    u = np.linspace(0.0, 1.0, n)
    a, b = (p["hi"], p["lo"]) if p["down"] else (p["lo"], p["hi"])
    f = a + (b - a) * u ** p["gamma"]
    dur = n / SR
    return np.sin(_phase(f)) * _ramp(n, 0.15 * dur, 0.45 * dur)


def _trill_ind(rng: np.random.Generator) -> Params:
    return {
        "fc": rng.uniform(3000, 6000),
        "rate": rng.uniform(12, 35),
        "delta": rng.uniform(300, 1400),
        "duty": rng.uniform(0.35, 0.7),
        "accel": rng.uniform(-0.25, 0.25),
        "dur": rng.uniform(0.6, 1.5),
    }


def _trill_call(rng: np.random.Generator, ind: Params) -> Params:
    rate, fc = ind["rate"] * _jit(rng, 0.05), ind["fc"] * _jit(rng, 0.03)
    target = _dur(rng, ind["dur"], 0.35, 2.0, 0.25)
    plen = min(ind["duty"] / rate, 0.03)
    onsets = [0.0]
    while True:
        k = len(onsets)
        nxt = onsets[-1] + 1.0 / (rate * (1 + ind["accel"] * min(1.0, k * plen / target)))
        if nxt + plen > target and k >= 3:
            break
        onsets.append(nxt)
    half = 0.5 * ind["delta"]
    return {
        "n": round((onsets[-1] + plen) * SR),
        "onsets": onsets,
        "plen": plen,
        "fc": fc,
        "delta": ind["delta"],
        "band": (fc - half - 300.0, fc + half + 300.0),
    }


def _trill(p: Params) -> np.ndarray:
    n, plen = p["n"], p["plen"]
    x = np.zeros(n)
    m = round(plen * SR)
    u = np.linspace(0.0, 1.0, m)
    f = p["fc"] + p["delta"] * (0.5 - u)
    pulse = np.sin(_phase(f)) * np.sin(np.pi * u) ** 2
    k = len(p["onsets"])
    for i, t0 in enumerate(p["onsets"]):
        s = min(round(t0 * SR), n - m)
        x[s : s + m] += pulse * (0.5 + 0.5 * np.sin(np.pi * (i + 0.5) / k))
    return x


def _buzz_ind(rng: np.random.Generator) -> Params:
    return {
        "fc": rng.uniform(1200, 3500),
        "bw": rng.uniform(400, 1500),
        "am": rng.uniform(25, 90),
        "depth": rng.uniform(0.6, 0.95),
        "dur": rng.uniform(0.3, 0.9),
    }


def _buzz_call(rng: np.random.Generator, ind: Params) -> Params:
    fc, bw = ind["fc"] * _jit(rng, 0.04), ind["bw"] * _jit(rng, 0.1)
    return {
        "n": round(_dur(rng, ind["dur"], 0.15, 1.2) * SR),
        "fc": fc,
        "bw": bw,
        "am": ind["am"] * _jit(rng, 0.05),
        "depth": ind["depth"],
        "attack": rng.uniform(0.01, 0.03),
        "release": rng.uniform(0.05, 0.2),
        "seed": int(rng.integers(2**32)),
        "band": (fc - bw, fc + bw),
    }


def _buzz(p: Params) -> np.ndarray:
    n = p["n"]
    t = np.arange(n) / SR
    x = _band_noise(np.random.default_rng(p["seed"]), n, p["fc"], p["bw"])
    am = 1 - p["depth"] + p["depth"] * (0.5 + 0.5 * np.cos(2 * np.pi * p["am"] * t))
    return x * am * _ramp(n, p["attack"], p["release"])


def _stack_ind(rng: np.random.Generator) -> Params:
    f0 = rng.uniform(350, 800)
    return {
        "f0": f0,
        "formant": rng.uniform(1000, 2800),
        "fbw": rng.uniform(500, 1200),
        "k": int(min(14, 7000 // f0)),
        "drop": rng.uniform(0.03, 0.15),
        "dur": rng.uniform(0.15, 0.4),
    }


def _stack_call(rng: np.random.Generator, ind: Params) -> Params:
    f0 = ind["f0"] * _jit(rng, 0.03)
    lo = 0.9 * f0 * (1 - ind["drop"])
    hi = min(ind["formant"] + 2 * ind["fbw"], (ind["k"] + 0.5) * f0)
    return {
        "n": round(_dur(rng, ind["dur"], 0.1, 0.6) * SR),
        "f0": f0,
        "formant": ind["formant"] * _jit(rng, 0.05),
        "fbw": ind["fbw"],
        "k": ind["k"],
        "drop": ind["drop"],
        "attack": rng.uniform(0.008, 0.02),
        "release": rng.uniform(0.02, 0.06),
        "band": (lo, hi),
    }


def _stack(p: Params) -> np.ndarray:
    n = p["n"]
    u = np.linspace(0.0, 1.0, n)
    ph = _phase(p["f0"] * (1 - p["drop"] * u))
    x = np.zeros(n)
    for k in range(1, p["k"] + 1):
        amp = 0.15 / k + math.exp(-0.5 * ((k * p["f0"] - p["formant"]) / p["fbw"]) ** 2)
        x += amp * np.sin(k * ph)
    return x * _ramp(n, p["attack"], p["release"])


def _croak_ind(rng: np.random.Generator) -> Params:
    return {"f0": rng.uniform(120, 350), "rate": rng.uniform(8, 25), "dur": rng.uniform(0.3, 0.8)}


def _croak_call(rng: np.random.Generator, ind: Params) -> Params:
    rate, f0 = ind["rate"] * _jit(rng, 0.05), ind["f0"] * _jit(rng, 0.04)
    target = _dur(rng, ind["dur"], 0.2, 1.0)
    plen = 0.6 / rate
    k = max(2, int((target - plen) * rate) + 1)
    return {
        "n": round(((k - 1) / rate + plen) * SR),
        "rate": rate,
        "f0": f0,
        "k": k,
        "plen": plen,
        "band": (0.8 * f0, min(2500.0, 8.5 * f0)),
    }


def _croak(p: Params) -> np.ndarray:
    n = p["n"]
    m = round(p["plen"] * SR)
    t = np.arange(m) / SR
    ph = 2 * np.pi * p["f0"] * t
    pulse = sum(np.sin(k * ph) / k for k in range(1, 9)) * _ramp(m, 0.004, 0.5 * p["plen"])
    pulse *= np.exp(-t / (0.4 * p["plen"]))
    x = np.zeros(n)
    for i in range(p["k"]):
        s = min(round(i / p["rate"] * SR), n - m)
        x[s : s + m] += pulse
    return np.asarray(x)


def _drum_ind(rng: np.random.Generator) -> Params:
    return {
        "rate": rng.uniform(12, 25),
        "decel": rng.uniform(0.1, 0.35),
        "res": rng.uniform(800, 3000),
        "dur": rng.uniform(0.6, 1.6),
    }


def _drum_call(rng: np.random.Generator, ind: Params) -> Params:
    rate, target = ind["rate"] * _jit(rng, 0.05), _dur(rng, ind["dur"], 0.4, 2.0)
    onsets = [0.0]
    while onsets[-1] < target - 0.01:
        onsets.append(onsets[-1] + 1.0 / (rate * (1 - ind["decel"] * onsets[-1] / target)))
    onsets = onsets[:-1] if len(onsets) > 3 else onsets
    return {
        "n": round((onsets[-1] + 0.01) * SR),
        "onsets": onsets,
        "res": ind["res"],
        "seed": int(rng.integers(2**32)),
        "band": (300.0, 6000.0),
    }


def _drum(p: Params) -> np.ndarray:
    n = p["n"]
    rng = np.random.default_rng(p["seed"])
    m = round(0.01 * SR)
    t = np.arange(m) / SR
    x = np.zeros(n)
    k = len(p["onsets"])
    for i, t0 in enumerate(p["onsets"]):
        click = rng.standard_normal(m) + 2 * np.sin(2 * np.pi * p["res"] * t)
        click *= np.exp(-t / 0.0015)
        s = min(round(t0 * SR), n - m)
        x[s : s + m] += click * (1 - 0.4 * i / k)
    return x * _ramp(n, 0.0005, 0.002)


def _caw_ind(rng: np.random.Generator) -> Params:
    return {"f0": rng.uniform(250, 450), "dur": rng.uniform(0.2, 0.45)}


def _caw_call(rng: np.random.Generator, ind: Params) -> Params:
    return {
        "n": round(_dur(rng, ind["dur"], 0.15, 0.5) * SR),
        "f0": ind["f0"] * _jit(rng, 0.04),
        "seed": int(rng.integers(2**32)),
        "band": (300.0, 4000.0),
    }


def _caw(p: Params) -> np.ndarray:
    n = p["n"]
    rng = np.random.default_rng(p["seed"])
    walk = _gauss(rng.standard_normal(int(n)), 200.0)
    walk /= np.abs(walk).max() + 1e-12
    ph = _phase(p["f0"] * (1 + 0.04 * walk))
    x = sum(np.sin(k * ph) / k**0.5 for k in range(1, int(4000 // p["f0"]) + 1))
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12)
    rough = _gauss(rng.standard_normal(int(n)), 1.5)
    rough = 1 + 0.9 * rough / (rough.std() + 1e-12)
    hoarse = _band_noise(rng, int(n), 1800.0, 2400.0)
    return np.asarray((x * rough + 1.2 * hoarse) * _ramp(n, 0.02, 0.06))


def _knock_ind(rng: np.random.Generator) -> Params:
    return {"tau": rng.uniform(0.01, 0.03)}


def _knock_call(rng: np.random.Generator, ind: Params) -> Params:
    return {
        "n": round(rng.uniform(0.06, 0.15) * SR),
        "tau": ind["tau"] * _jit(rng, 0.1),
        "seed": int(rng.integers(2**32)),
        "band": (50.0, 1500.0),
    }


def _knock(p: Params) -> np.ndarray:
    n = p["n"]
    t = np.arange(n) / SR
    x = _band_noise(np.random.default_rng(p["seed"]), n, 300.0, 900.0)
    return x * np.exp(-t / p["tau"]) * _ramp(n, 0.001, 0.02)


@dataclass(frozen=True)
class Sound:
    """A synthesiser of one kind of sound and how its calls group in bouts (count, gap in s)."""

    individual: Callable[[np.random.Generator], Params]
    call: Callable[[np.random.Generator, Params], Params]
    render: Callable[[Params], np.ndarray]
    bout: tuple[int, int]
    gap: tuple[float, float]


SOUNDS: dict[str, Sound] = {
    "Tonal_whistle": Sound(_whistle_ind, _whistle_call, _whistle, (1, 4), (0.25, 1.2)),
    "FM_sweep": Sound(_sweep_ind, _sweep_call, _sweep, (2, 5), (0.06, 0.35)),
    "Trill": Sound(_trill_ind, _trill_call, _trill, (1, 3), (0.4, 1.6)),
    "Buzz": Sound(_buzz_ind, _buzz_call, _buzz, (1, 5), (0.12, 0.7)),
    "Harmonic_stack": Sound(_stack_ind, _stack_call, _stack, (2, 5), (0.08, 0.35)),
    "Croak": Sound(_croak_ind, _croak_call, _croak, (2, 6), (0.25, 0.9)),
    "Drumming": Sound(_drum_ind, _drum_call, _drum, (1, 2), (1.5, 4.0)),
    "caw": Sound(_caw_ind, _caw_call, _caw, (1, 4), (0.2, 0.6)),
    "knock": Sound(_knock_ind, _knock_call, _knock, (1, 3), (0.15, 0.5)),
}


# --- the schedule of one recording ----------------------------------------------------------------
@dataclass
class SoundEvent:
    """One synthesised sound: its kind, annotation (POS / UNK, or "" when not annotated), sample
    span, in-band SNR (dB) and the individual that made it."""

    kind: str
    label: str
    start: int
    params: Params
    snr_db: float
    individual: str

    @property
    def n(self) -> int:
        return int(self.params["n"])

    @property
    def band(self) -> tuple[float, float]:
        lo, hi = self.params["band"]
        return max(20.0, float(lo)), min(0.5 * SR - 50.0, float(hi))

    @property
    def t0(self) -> float:
        return round(self.start / SR, 3)

    @property
    def t1(self) -> float:
        return round((self.start + self.n) / SR, 3)


@dataclass
class RecordingPlan:
    """Everything about one recording except its audio."""

    part: str
    dataset: str
    name: str
    seconds: float
    classes: tuple[str, ...]
    events: list[SoundEvent]
    seed: np.random.SeedSequence

    @property
    def n(self) -> int:
        return round(self.seconds * SR)

    def annotated(self) -> list[SoundEvent]:
        return [e for e in self.events if e.label]


def _streams(seed: int, part: str, index: int) -> list[np.random.SeedSequence]:
    """Independent seed sequences of one recording: schedule, background, rendering."""
    key = (0 if part == VALIDATION else 1, index)
    return np.random.SeedSequence(seed, spawn_key=key).spawn(3)


def _bouts(
    rng: np.random.Generator,
    kind: str,
    ind: Params,
    t: float,
    seconds: float,
    most: int | None = None,
) -> list[tuple[float, Params]]:
    """A bout of calls of one individual from time t: (start s, call parameters); ``most``: at
    most that many calls, drawn from 1..most."""
    snd = SOUNDS[kind]
    out: list[tuple[float, Params]] = []
    lo, hi = (1, most) if most is not None else snd.bout
    for _ in range(int(rng.integers(lo, hi + 1))):
        p = snd.call(rng, ind)
        if t + p["n"] / SR > seconds - 0.05:
            break
        out.append((t, p))
        t += p["n"] / SR + rng.uniform(*snd.gap)
    return out


def _target_events(
    rng: np.random.Generator,
    cfg: BirdsConfig,
    spec: RecordingSpec,
    kind: str,
) -> list[SoundEvent]:
    """Annotated calls of one class: bouts of 2-3 individuals, some overlapped by a second one."""
    inds = [SOUNDS[kind].individual(rng) for _ in range(int(rng.integers(2, 4)))]
    seconds = spec.seconds
    starts: list[float] = []
    if spec.events is None:
        mean_gap = 14.0 if len(spec.classes) == 1 else 6.0 * len(spec.classes)
        t = rng.uniform(0.3, min(6.0, 0.3 * seconds))
        while t < seconds - 0.5:
            starts.append(t)
            long = rng.random() < 0.2
            t += rng.uniform(25, 60) if long else 1.5 + rng.exponential(mean_gap)
    else:
        nb = max(2, round((spec.events[0] + spec.events[1]) / 4))
        slot = (seconds - 3.0) / nb
        starts = [0.5 + slot * (k + rng.uniform(0.0, 0.6)) for k in range(nb)]
    events: list[SoundEvent] = []
    cap = 3 if spec.events is not None else None
    for t in starts:
        who = int(rng.integers(len(inds)))
        bout = _bouts(rng, kind, inds[who], t, seconds, cap)
        events.extend(_label(rng, cfg, kind, s, p, f"{kind}#{who}", True) for s, p in bout)
        if bout and len(inds) > 1 and rng.random() < cfg.overlap:
            end = bout[-1][0] + bout[-1][1]["n"] / SR
            other = (who + 1 + int(rng.integers(len(inds) - 1))) % len(inds)
            t2 = rng.uniform(max(0.05, t - 0.3), max(t, end - 0.1))
            extra = _bouts(rng, kind, inds[other], t2, seconds, 2 if cap else None)
            events.extend(_label(rng, cfg, kind, s, p, f"{kind}#{other}", True) for s, p in extra)
    return events


def _label(
    rng: np.random.Generator,
    cfg: BirdsConfig,
    kind: str,
    t: float,
    p: Params,
    who: str,
    annotated: bool,
    snr: tuple[float, float] | None = None,
) -> SoundEvent:
    lo, hi = snr or cfg.snr_db
    db = round(float(rng.uniform(lo, hi)), 2)
    label = ("POS" if db >= cfg.unk_below_db else "UNK") if annotated else ""
    return SoundEvent(kind, label, round(t * SR), p, db, who)


def _al_split_counts(events: Sequence[SoundEvent], seconds: float) -> list[int]:
    """POS events inside each piece of a 70 / 15 / 15 temporal split by the demo recipe's rule
    (:func:`~iml_tui.data.dcase.split_cuts_demo`, not the importer's); all zero when a cut
    crosses a POS event or a piece is shorter than min(10 s, 10 % of the recording)."""
    pos = [(e.t0, e.t1) for e in events if e.label == "POS"]
    cuts = [0.0, *split_cuts_demo(pos, seconds, (0.70, 0.85)), seconds]
    short = min(10.0, 0.1 * seconds)
    if any(b - a < short for a, b in itertools.pairwise(cuts)):
        return [0, 0, 0]
    if any(s < c < e for c in cuts for s, e in pos):
        return [0, 0, 0]
    return [sum(1 for s, e in pos if a <= s and e <= b) for a, b in itertools.pairwise(cuts)]


def _sl_split_counts(events: Sequence[SoundEvent], seconds: float, kind: str) -> list[int]:
    """POS events of ``kind`` inside each piece of an 80 / 20 split by the demo recipe's rule."""
    pos = [(e.t0, e.t1) for e in events if e.label == "POS"]
    cut = split_cuts_demo(pos, seconds, (0.80,))[0]
    mine = [(e.t0, e.t1) for e in events if e.label == "POS" and e.kind == kind]
    return [sum(1 for _, e in mine if e <= cut), sum(1 for s, _ in mine if s >= cut)]


def _acceptable(targets: Sequence[SoundEvent], spec: RecordingSpec, attempt: int) -> bool:
    """Whether a draw of a recording's annotated calls is kept (see :func:`plan_recording`)."""
    if spec.events is not None:
        n_pos = sum(e.label == "POS" for e in targets)
        counts = _al_split_counts(targets, spec.seconds)
        need = (math.ceil(spec.events[0] / 2), 1, 2) if attempt < 250 else (1, 1, 1)
        return spec.events[0] <= n_pos <= spec.events[1] and all(
            c >= k for c, k in zip(counts, need, strict=True)
        )
    if len(spec.classes) > 1 and attempt < 200:
        return all(min(_sl_split_counts(targets, spec.seconds, c)) >= 1 for c in spec.classes)
    return True


def _distractors(
    rng: np.random.Generator,
    cfg: BirdsConfig,
    spec: RecordingSpec,
    part: str,
    targets: Sequence[SoundEvent],
) -> list[SoundEvent]:
    """Unannotated sounds: other animals, and (validation) faint calls of the other call types;
    some of them placed over an annotated call."""
    animals = list(OTHER_SOUNDS) + (list(EXTRA_TYPES) if part == VALIDATION else [])
    faint = [c for c in CALL_TYPES if c not in spec.classes] if part == VALIDATION else []
    out: list[SoundEvent] = []
    groups = [(animals, spec.seconds / 20.0, cfg.animal_snr_db)]
    if faint:
        groups.append((faint, spec.seconds / 40.0, cfg.faint_snr_db))
    for kinds, rate, snr in groups:
        for j in range(int(rng.poisson(rate))):
            kind = kinds[int(rng.integers(len(kinds)))]
            ind = SOUNDS[kind].individual(rng)
            if targets and rng.random() < 0.3:
                hit = targets[int(rng.integers(len(targets)))]
                t = hit.start / SR + rng.uniform(-0.3, 0.6 * hit.n / SR)
            else:
                t = rng.uniform(0.1, spec.seconds - 1.0)
            for s, p in _bouts(rng, kind, ind, max(0.05, t), spec.seconds):
                out.append(_label(rng, cfg, kind, s, p, f"{kind}~{j}", False, snr))
    return out


def plan_recording(cfg: BirdsConfig, part: str, index: int) -> RecordingPlan:
    """The schedule of recording ``index`` of ``part`` (Validation_Set / Training_Set).

    Recordings of a rare class are redrawn until their POS count lies in ``spec.events`` and
    each piece of a 70 / 15 / 15 split holds POS calls: at least half the minimum count in
    train, one in valid and two in test (after 250 draws: one in each). Recordings of several
    classes are redrawn (up to 200 times) until both sides of an 80 / 20 SL split hold a POS
    call of each class. Both splits use the demo recipe's rule
    (:func:`~iml_tui.data.dcase.split_cuts_demo`), which the bundled corpus was drawn with.
    """
    spec = (cfg.validation if part == VALIDATION else cfg.training)[index]
    seq_plan, _, _ = _streams(cfg.seed, part, index)
    rng = np.random.default_rng(seq_plan)
    day = int(rng.integers(0, 120))
    date = time.strftime("%Y%m%d", time.gmtime(1711929600 + 86400 * day))
    clock = int(rng.integers(4 * 3600, 20 * 3600))
    name = f"{spec.dataset}_{date}_{clock // 3600:02d}{clock // 60 % 60:02d}{clock % 60:02d}"
    for attempt in range(500):
        targets = [e for kind in spec.classes for e in _target_events(rng, cfg, spec, kind)]
        if _acceptable(targets, spec, attempt):
            break
    else:
        raise ValueError(f"cannot place {spec.events} {spec.classes} calls in {spec.seconds} s")
    events = targets + _distractors(rng, cfg, spec, part, targets)
    events.sort(key=lambda e: (e.start, e.kind, e.individual))
    return RecordingPlan(
        part,
        spec.dataset,
        name,
        float(spec.seconds),
        spec.classes,
        events,
        _streams(cfg.seed, part, index)[1],
    )


# --- backgrounds ----------------------------------------------------------------------------------
def _smooth(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """A smooth unit-variance random process over n samples with correlation time ``scale`` s."""
    step = scale / 4.0
    m = math.ceil(n / SR / step) + 12
    z = _gauss(rng.standard_normal(m), 2.0)
    z = (z - z.mean()) / (z.std() + 1e-12)
    return np.interp(np.arange(n, dtype=np.float64) / SR, (np.arange(m) - 6) * step, z)


def _shaped(
    rng: np.random.Generator, n: int, amp: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Unit-RMS noise with amplitude spectrum ``amp(f)``; float32."""
    m = _fast_len(n)
    spec = np.fft.rfft(rng.standard_normal(m, dtype=np.float32))
    f = np.fft.rfftfreq(m, 1.0 / SR).astype(np.float32)
    spec *= amp(f).astype(np.float32)
    x = np.fft.irfft(spec, m)[:n].astype(np.float32)
    return x / np.float32(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def _lp(f: np.ndarray, fc: float, order: int = 4) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (f / fc) ** order)


def _hp(f: np.ndarray, fc: float, order: int = 4) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (fc / np.maximum(f, 1e-3)) ** order)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 + 0.5 * np.tanh(0.5 * x))


def _wind(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    fc = rng.uniform(150, 500)
    low = _shaped(rng, n, lambda f: _hp(f, 15) * _lp(f, fc) / np.maximum(f, 10.0))
    rustle = _shaped(rng, n, lambda f: _hp(f, 1500) * _lp(f, 7000) / np.sqrt(np.maximum(f, 1)))
    gust = np.exp(
        rng.uniform(0.5, 0.9) * _smooth(rng, n, rng.uniform(2, 6))
        + 0.4 * _smooth(rng, n, rng.uniform(30, 80))
    )
    gust = (gust / gust.mean()).astype(np.float32)
    x = low * gust + rng.uniform(0.05, 0.2) * rustle * gust**2
    return x, np.ones(n, dtype=bool)


def _rain(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    seconds = n / SR
    z = _smooth(rng, n, rng.uniform(20, 60))
    level = _sigmoid((z - rng.uniform(-0.8, 0.6)) / 0.12).astype(np.float32)
    if level.mean() < 0.15:
        level = np.maximum(level, np.float32(0.3))
    rate = rng.uniform(40, 250)
    cand = rng.uniform(0, seconds, int(rng.poisson(rate * seconds)))
    idx = np.minimum((cand * SR).astype(np.int64), n - 1)
    idx = np.sort(idx[rng.random(idx.size) < level[idx]])
    amps = rng.lognormal(0.0, 0.7, idx.size).astype(np.float32)
    m = round(0.03 * SR)
    t = np.arange(m) / SR
    f = np.fft.rfftfreq(m, 1.0 / SR)
    impacts = []  # broadband impacts of varied colour and length
    for _ in range(32):
        tilt = rng.uniform(-1.2, 0.4)
        shape = (np.maximum(f, 100.0) / 1000.0) ** tilt * _lp(f, _lu(rng, 2e3, 1e4))
        burst = np.fft.irfft(np.fft.rfft(rng.standard_normal(m)) * shape, m)
        burst *= np.exp(-t / _lu(rng, 0.0003, 0.002))
        impacts.append((burst / np.abs(burst).max()).astype(np.float32))
    which = rng.integers(0, len(impacts), idx.size)
    plink = rng.random(idx.size) < 0.12  # some drops ring: a short rising bubble tone
    pf = np.exp(rng.uniform(math.log(1500), math.log(9000), idx.size))
    ptau = rng.uniform(0.002, 0.008, idx.size)
    drops = np.zeros(n + m, dtype=np.float32)
    for j, (i, k) in enumerate(zip(idx.tolist(), which.tolist(), strict=True)):
        drops[i : i + m] += amps[j] * impacts[k]
        if plink[j]:
            ring = np.sin(_phase(pf[j] * (1 + 0.15 * t / 0.03))) * np.exp(-t / ptau[j])
            drops[i : i + m] += (0.5 * amps[j] * ring).astype(np.float32)
    drops = drops[:n]
    drops /= np.float32(np.sqrt(np.mean(drops.astype(np.float64) ** 2)) + 1e-12)
    hiss = _shaped(rng, n, lambda f: _hp(f, 500) * _lp(f, 9000, 2) / np.sqrt(np.maximum(f, 1)))
    return 0.8 * drops + 0.6 * hiss * level, level > 0.5


def _insects(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n, dtype=np.float64) / SR
    m = _fast_len(n)
    white = np.fft.rfft(rng.standard_normal(m, dtype=np.float32))
    f = np.fft.rfftfreq(m, 1.0 / SR).astype(np.float32)
    x = np.zeros(n, dtype=np.float32)
    active = np.zeros(n, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        fc, bw = rng.uniform(4500, 9500), rng.uniform(100, 500)
        car = np.fft.irfft(white * np.exp(-0.5 * ((f - fc) / (0.5 * bw)) ** 2), m)[:n]
        car /= np.float32(np.sqrt(np.mean(car.astype(np.float64) ** 2)) + 1e-12)
        rate = rng.uniform(20, 70) * (1 + 0.05 * _smooth(rng, n, 20.0))
        pulses = (0.5 - 0.5 * np.cos(2 * np.pi * np.cumsum(rate) / SR)) ** rng.uniform(1, 4)
        if rng.random() < 0.5:
            cr, on = rng.uniform(0.8, 3.0), rng.uniform(0.3, 0.7)
            pulses *= _sigmoid((np.cos(2 * np.pi * cr * t) - math.cos(math.pi * on)) / 0.05)
        gate = np.exp(0.5 * _smooth(rng, n, rng.uniform(20, 60)))
        if rng.random() < 0.5:
            gate *= _sigmoid((_smooth(rng, n, 40.0) - rng.uniform(-1.0, 0.3)) / 0.1)
        x += (car * (pulses * gate * _jit(rng, 0.5))).astype(np.float32)
        active |= gate > 0.3
    return x, active


def _traffic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    seconds = n / SR
    fc = rng.uniform(120, 300)
    rumble = _shaped(rng, n, lambda f: _hp(f, 20) * _lp(f, fc) / np.maximum(f, 20.0))
    mid = _shaped(rng, n, lambda f: _hp(f, 250) * _lp(f, 1500) / np.sqrt(np.maximum(f, 1)))
    coarse = np.arange(0.0, seconds + 0.01, 0.01)
    swell = np.ones_like(coarse)
    for _ in range(int(rng.poisson(seconds / rng.uniform(12, 35)))):
        c, w = rng.uniform(-5, seconds + 5), rng.uniform(3, 9)
        swell += rng.uniform(0.5, 2.5) * np.exp(-0.5 * ((coarse - c) / w) ** 2)
    t = np.arange(n, dtype=np.float64) / SR
    sw = np.interp(t, coarse, swell) * np.exp(0.3 * _smooth(rng, n, 60.0))
    hum = np.zeros(n)
    for _ in range(int(rng.integers(1, 3))):
        f0 = rng.uniform(35, 110) * (1 + 0.03 * _smooth(rng, n, 15.0))
        ph = _phase(f0)
        hum += rng.uniform(0.1, 0.4) * (np.sin(ph) + 0.5 * np.sin(2 * ph))
    x = rumble * sw + rng.uniform(0.2, 0.5) * mid * np.maximum(sw - 1, 0) ** 1.5 + hum * sw
    return x.astype(np.float32), np.ones(n, dtype=bool)


_BEDS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "wind": _wind,
    "rain": _rain,
    "insects": _insects,
    "traffic": _traffic,
}


def render_background(plan: RecordingPlan) -> tuple[np.ndarray, dict[str, float]]:
    """The background of a recording (float32) and the RMS level (dBFS, while active) of each of
    its components."""
    rng = np.random.default_rng(plan.seed)
    n = plan.n
    probs = SITES[plan.dataset]
    chosen = [b for b in BACKGROUNDS if rng.random() < probs[b]]
    for b in sorted(BACKGROUNDS, key=lambda b: -probs[b]):
        if len(chosen) >= 2:
            break
        if b not in chosen:
            chosen.append(b)
    bed = (10 ** (FLOOR_DB / 20) * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
    levels: dict[str, float] = {}
    for b in BACKGROUNDS:
        if b not in chosen:
            continue
        db = round(float(rng.uniform(*BACKGROUND_DB[b])), 1)
        x, active = _BEDS[b](rng, n)
        ref = x[active] if active.any() else x
        rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2))) + 1e-12
        bed += (x * np.float32(10 ** (db / 20) / rms)).astype(np.float32)
        levels[b] = db
    return bed, levels


def band_power(x: np.ndarray, band: tuple[float, float]) -> float:
    """Mean power of ``x`` (22050 Hz) between band[0] and band[1] Hz."""
    n = len(x)
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64))) ** 2
    f = np.fft.rfftfreq(n, 1.0 / SR)
    sel = (f >= band[0]) & (f <= band[1])
    return float(spec[sel].sum()) * 2.0 / (n * n)


def render_recording(plan: RecordingPlan) -> tuple[np.ndarray, dict[str, float]]:
    """The audio of a recording (float32 in [-PEAK, PEAK]) and its background levels."""
    bed, levels = render_background(plan)
    mix = bed.astype(np.float64)
    for ev in plan.events:
        x = SOUNDS[ev.kind].render(ev.params)
        s, e = ev.start, ev.start + ev.n
        pb = band_power(bed[s:e], ev.band)
        pc = band_power(x, ev.band)
        mix[s:e] += x * math.sqrt(pb * 10 ** (ev.snr_db / 10) / max(pc, 1e-20))
    peak = float(np.abs(mix).max())
    if peak > PEAK:
        mix *= PEAK / peak
    return mix.astype(np.float32), levels


# --- files ----------------------------------------------------------------------------------------
_OGG_BLOCK = 1 << 15
_REV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, init 0)."""
    reg = zlib.crc32(page.translate(_REV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reg:032b}"[::-1], 2)


def fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """The Ogg stream with every page's serial number set to ``serial`` (checksums redone).

    libsndfile draws the serial from the clock; a fixed one makes the file reproducible.
    """
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos : pos + 4] != b"OggS" or pos + 27 > len(out):
            raise ValueError(f"not an Ogg page at byte {pos}")
        nseg = out[pos + 26]
        size = 27 + nseg + sum(out[pos + 27 : pos + 27 + nseg])
        out[pos + 14 : pos + 18] = struct.pack("<I", serial & 0xFFFFFFFF)
        out[pos + 22 : pos + 26] = b"\0\0\0\0"
        out[pos + 22 : pos + 26] = struct.pack("<I", _ogg_crc(bytes(out[pos : pos + size])))
        pos += size
    return bytes(out)


def encode_ogg(x: np.ndarray, serial: int, compression_level: float) -> bytes:
    """Mono Ogg Vorbis bytes of ``x`` at 22050 Hz with a fixed stream serial number."""
    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(
        buf, "w", SR, 1, "VORBIS", format="OGG", compression_level=compression_level
    ) as f:
        for i in range(0, len(x), _OGG_BLOCK):  # one large write crashes libsndfile 1.2
            f.write(x[i : i + _OGG_BLOCK])
    return fix_ogg_serial(buf.getvalue(), serial)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _annotation_rows(plan: RecordingPlan) -> tuple[list[str], list[list[object]]]:
    audio = f"{plan.name}.ogg"
    rows: list[list[object]] = []
    if plan.part == VALIDATION:
        for e in plan.annotated():
            rows.append([audio, f"{e.t0:.3f}", f"{e.t1:.3f}", e.label])
        return ["Audiofilename", "Starttime", "Endtime", "Q"], rows
    for e in plan.annotated():
        rows.append(
            [
                audio,
                f"{e.t0:.3f}",
                f"{e.t1:.3f}",
                *(e.label if c == e.kind else "NEG" for c in plan.classes),
            ]
        )
    return ["Audiofilename", "Starttime", "Endtime", *(CODES[c] for c in plan.classes)], rows


@dataclass
class RecordingInfo:
    """What was written for one recording."""

    part: str
    dataset: str
    name: str
    seconds: float
    classes: tuple[str, ...]
    pos: dict[str, int]
    unk: dict[str, int]
    distractors: int
    backgrounds: dict[str, float]
    bytes: int


@dataclass
class BirdsSummary:
    """What :func:`build_birds` wrote."""

    out: Path
    seed: int
    recordings: list[RecordingInfo] = field(default_factory=list)
    total_bytes: int = 0
    elapsed_s: float = 0.0

    def seconds(self, part: str) -> float:
        return sum(r.seconds for r in self.recordings if r.part == part)

    def events(self, part: str, label: str = "POS") -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.recordings:
            if r.part == part:
                for c, k in (r.pos if label == "POS" else r.unk).items():
                    out[c] = out.get(c, 0) + k
        return out

    def lines(self) -> list[str]:
        out = [f"birds corpus in {self.out} (seed {self.seed})"]
        for part in (VALIDATION, TRAINING):
            recs = [r for r in self.recordings if r.part == part]
            pos, unk = self.events(part), self.events(part, "UNK")
            plural = "" if len(recs) == 1 else "s"
            out.append(
                f"{part}: {len(recs)} recording{plural}, {self.seconds(part) / 60:.1f} min; "
                + ", ".join(
                    f"{c} {pos.get(c, 0)} POS / {unk.get(c, 0)} UNK"
                    for c in (*CALL_TYPES, *EXTRA_TYPES)
                    if c in pos
                )
            )
        out.append(f"total size {self.total_bytes / 1e6:.2f} MB, {self.elapsed_s:.1f} s")
        return out


def _check_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / EVENTS_CSV).exists():
        raise UserError(
            "the folder exists and does not hold a synthesised birds corpus",
            out,
            "choose another --out or remove that folder",
        )


def build_birds(
    out: str | Path, cfg: BirdsConfig = BirdsConfig(), progress: ProgressFn | None = None
) -> BirdsSummary:
    """Synthesise the corpus of ``cfg`` into ``out`` (replaced when it holds an earlier one)."""
    import soundfile as sf

    t_start = time.perf_counter()
    out = Path(out)
    _check_out(out)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    summary = BirdsSummary(out, cfg.seed)
    jobs = [(VALIDATION, i) for i in range(len(cfg.validation))]
    jobs += [(TRAINING, i) for i in range(len(cfg.training))]
    log_rows: list[list[object]] = []
    valid_table: list[tuple[int, list[str]]] = []
    train_table: dict[tuple[str, str], str] = {}
    names: set[tuple[str, str]] = set()
    for done, (part, i) in enumerate(jobs):
        plan = plan_recording(cfg, part, i)
        while (part, plan.name) in names:
            plan.name += "b"
        names.add((part, plan.name))
        x, levels = render_recording(plan)
        folder = tmp / "Development_Set" / part / plan.dataset
        folder.mkdir(parents=True, exist_ok=True)
        rel = f"Development_Set/{part}/{plan.dataset}/{plan.name}.ogg"
        data = encode_ogg(x, zlib.crc32(f"{cfg.seed}/{rel}".encode()), cfg.compression_level)
        (folder / f"{plan.name}.ogg").write_bytes(data)
        info = sf.info(str(folder / f"{plan.name}.ogg"))
        if info.frames != plan.n or info.samplerate != SR or info.channels != 1:
            raise RuntimeError(f"{rel} reads back as {info.frames} frames at {info.samplerate} Hz")
        header, rows = _annotation_rows(plan)
        (folder / f"{plan.name}.csv").write_text(_csv_text(header, rows), encoding="utf-8")
        if part == VALIDATION:
            c = plan.classes[0]
            valid_table.append(
                (
                    CALL_TYPES.index(c) if c in CALL_TYPES else 99,
                    [plan.dataset, f"{plan.name}.ogg", CODES[c], c],
                )
            )
        else:
            for c in plan.classes:
                train_table[(plan.dataset, c)] = CODES[c]
        for e in plan.events:
            lo, hi = e.band
            log_rows.append(
                [
                    part,
                    plan.dataset,
                    plan.name,
                    e.kind,
                    e.label or "none",
                    e.individual,
                    f"{e.t0:.3f}",
                    f"{e.t1:.3f}",
                    f"{e.snr_db:.2f}",
                    f"{lo:.0f}",
                    f"{hi:.0f}",
                ]
            )
        ann = plan.annotated()
        summary.recordings.append(
            RecordingInfo(
                part,
                plan.dataset,
                plan.name,
                plan.seconds,
                plan.classes,
                {c: sum(e.kind == c and e.label == "POS" for e in ann) for c in plan.classes},
                {c: sum(e.kind == c and e.label == "UNK" for e in ann) for c in plan.classes},
                len(plan.events) - len(ann),
                levels,
                len(data),
            )
        )
        if progress is not None:
            progress("birds recordings", done + 1, len(jobs))
    valid_table.sort(key=lambda r: (r[0], r[1][0], r[1][1]))
    (tmp / VALID_CLASSES_CSV).write_text(
        _csv_text(
            ["dataset", "recording", "class_code", "class_name"], [r for _, r in valid_table]
        ),
        encoding="utf-8",
    )
    order = {c: k for k, c in enumerate((*CALL_TYPES, *EXTRA_TYPES))}
    (tmp / TRAIN_CLASSES_CSV).write_text(
        _csv_text(
            ["dataset", "class_code", "class_name"],
            [
                [d, code, c]
                for (d, c), code in sorted(
                    train_table.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])
                )
            ],
        ),
        encoding="utf-8",
    )
    (tmp / EVENTS_CSV).write_text(
        _csv_text(
            [
                "part",
                "dataset",
                "recording",
                "sound",
                "label",
                "individual",
                "start",
                "end",
                "snr_db",
                "band_low_hz",
                "band_high_hz",
            ],
            log_rows,
        ),
        encoding="utf-8",
    )
    summary.elapsed_s = time.perf_counter() - t_start
    for _ in range(2):  # the README states the folder size, which includes the README
        summary.total_bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        (tmp / "README.md").write_text(readme(cfg, summary), encoding="utf-8")
    summary.total_bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    if out.exists():
        _check_out(out)
        shutil.rmtree(out)
    tmp.replace(out)
    summary.elapsed_s = time.perf_counter() - t_start
    return summary


def readme(cfg: BirdsConfig, s: BirdsSummary) -> str:
    """The corpus README: how it was made, what it holds, its license."""

    def part_lines(part: str) -> list[str]:
        recs = [r for r in s.recordings if r.part == part]
        out = [
            f"| {r.dataset} | {r.name} | {r.seconds:.0f} | "
            f"{', '.join(f'{c} {r.pos[c]}/{r.unk[c]}' for c in r.classes)} | {r.distractors} | "
            f"{', '.join(f'{b} {v:.0f}' for b, v in r.backgrounds.items())} |"
            for r in recs
        ]
        return [
            "| site | recording | s | class POS/UNK | unannotated sounds | backgrounds (dBFS) |",
            "|---|---|---|---|---|---|",
            *out,
        ]

    level = (
        ""
        if cfg.compression_level == BirdsConfig.compression_level
        else f" --compression-level {cfg.compression_level:g}"
    )
    n_val = sum(r.part == VALIDATION for r in s.recordings)
    n_tr = len(s.recordings) - n_val
    lo, hi = cfg.snr_db
    return "\n".join(
        [
            "# Synthetic bird-call corpus (DCASE 2024 Task 5 layout)",
            "",
            "Every sound in this folder is synthetic. It was generated by `demo_build.birds`:",
            "",
            f"    python -m demo_build.birds --out demo_data/birds --seed {cfg.seed}{level}",
            "",
            "The same seed gives byte-identical files on a given platform.",
            "",
            "## Layout",
            "",
            "- `Development_Set/Validation_Set/<SITE>/<name>.ogg` + `.csv` "
            "(`Audiofilename,Starttime,Endtime,Q`, POS / UNK): one annotated class per recording.",
            "- `Development_Set/Training_Set/<SITE>/<name>.ogg` + `.csv` "
            "(`Audiofilename,Starttime,Endtime,<CODE...>`, POS / NEG / UNK): several classes per "
            "recording.",
            f"- `{VALID_CLASSES_CSV}`, `{TRAIN_CLASSES_CSV}`: the class tables.",
            f"- `{EVENTS_CSV}`: every synthesised sound with its in-band SNR and frequency band, "
            "annotated or not (label `none`).",
            "",
            "Audio: mono, 22050 Hz, Ogg Vorbis (libsndfile, compression level "
            f"{cfg.compression_level}). Event times are the sample span of the synthesised call "
            "envelope, rounded to 1 ms; POS events may overlap.",
            "",
            "## Sounds",
            "",
            "Each recording has 2-3 individuals per annotated class; an individual's base "
            "parameters "
            "are drawn once, each call varies around them. Calls come in bouts separated by "
            "silences (sometimes 25-60 s); with probability "
            f"{cfg.overlap} a bout is joined by a second individual (overlapping POS events).",
            "",
            "- `Tonal_whistle` (TWH): 2.2-4 kHz tone, slow pitch contour of 3-5 knots (up to "
            "+-25 %), vibrato 5-12 Hz, weak second harmonic; 0.25-1.5 s.",
            "- `FM_sweep` (FMS): fast sweep between 1.5-3 kHz and 4.5-8.5 kHz (mostly downwards), "
            "curvature varies; 0.03-0.25 s, bouts of 2-5. Rare in the validation set: one "
            "recording "
            "with a handful of calls in bouts of 1-3.",
            "- `Trill` (TRL): pulse train of short down-chirps, 3-6 kHz carrier, 12-35 pulses/s, "
            "accelerating or slowing; 0.35-2 s.",
            "- `Buzz` (BUZ): band-limited noise (1.2-3.5 kHz centre, 0.4-1.5 kHz wide), amplitude "
            "modulated at 25-90 Hz; 0.15-1.2 s.",
            "- `Harmonic_stack` (HST): nasal call, fundamental 350-800 Hz falling 3-15 %, "
            "harmonics "
            "up to 7 kHz shaped by a 1-2.8 kHz formant; 0.1-0.6 s, bouts of 2-5. Rare in the "
            "validation set, like `FM_sweep`.",
            "- Training set only, as annotated classes: `Croak` (CRK; pulsed low harmonic sound, "
            "120-350 Hz, 8-25 pulses/s) and `Drumming` (DRM; decelerating broadband click train).",
            "",
            f"Annotated calls have an SNR drawn uniformly in [{lo:g}, {hi:g}] dB, measured against "
            "the background in the call's band over the call's span; calls below "
            f"{cfg.unk_below_db:g} dB are annotated UNK.",
            "",
            "Unannotated sounds in every recording: other animals (a harsh corvid-like `caw`, "
            "`knock` thumps; in the validation set also `Croak` and `Drumming`) at "
            f"{cfg.animal_snr_db[0]:g}..{cfg.animal_snr_db[1]:g} dB, and in the validation set "
            "faint "
            "calls of the four call types that the file does not annotate at "
            f"{cfg.faint_snr_db[0]:g}..{cfg.faint_snr_db[1]:g} dB. About 30 % of them are placed "
            "over an annotated call.",
            "",
            "Backgrounds (at least two per recording, levels drifting over time): wind (gusty "
            "low-frequency noise with leaf rustle in gusts), rain (showers of random drops plus "
            "hiss), insects (1-3 stridulating insects at 4.5-9.5 kHz, pulsed at 20-70 Hz, some "
            "chirping, coming and going), distant traffic (low rumble, engine hum, swells of "
            "passing "
            f"vehicles); plus a sensor noise floor at {FLOOR_DB:g} dBFS. Sites: WDL woodland, MRS "
            "marsh, RDS roadside (validation); FRS forest, PND pond, PRK park (training).",
            "",
            "## Contents",
            "",
            f"Validation_Set: {n_val} recordings, {s.seconds(VALIDATION) / 60:.1f} min. "
            f"Training_Set: {n_tr} recordings, {s.seconds(TRAINING) / 60:.1f} min. "
            f"Folder size: {s.total_bytes / 1e6:.2f} MB.",
            "",
            "Validation_Set:",
            "",
            *part_lines(VALIDATION),
            "",
            "Training_Set:",
            "",
            *part_lines(TRAINING),
            "",
            "## License",
            "",
            "CC0-1.0: the audio and annotations are synthetic and dedicated to the public domain.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo_build.birds",
        description="Synthesise the demo bird-call corpus (DCASE 2024 Task 5 layout).",
    )
    parser.add_argument("--out", type=Path, default=Path("demo_data/birds"))
    parser.add_argument("--seed", type=int, default=BirdsConfig.seed)
    parser.add_argument("--compression-level", type=float, default=BirdsConfig.compression_level)
    args = parser.parse_args(argv)

    def progress(what: str, done: int, total: int) -> None:
        print(
            f"\r{what}: {done}/{total}",
            end="\n" if done == total else "",
            file=sys.stderr,
            flush=True,
        )

    try:
        cfg = BirdsConfig(seed=args.seed, compression_level=args.compression_level)
        summary = build_birds(args.out, cfg, progress)
    except (UserError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
