"""A miniature Common Voice style spoken-language corpus spoken by espeak-ng.

``python -m demo_build.lid --out demo_data/lid [--seed N]`` writes::

    <out>/caucasus/{train,dev,test}/common_voice_<lang>_<NNNNNN>.ogg   hy tt cv ky sr ku
    <out>/africa/{train,dev,test}/common_voice_<lang>_<NNNNNN>.ogg     af am sw om tn
    <out>/encoder/{train,dev}/common_voice_<lang>_<NNNNNN>.ogg         all of them + ka az ru tr
    <out>/<corpus>/sentences.csv                                       text and settings per file
    <out>/README.md

The region folders are the stream pools (``iml-tui prepare lid --source <out>/caucasus``); the
encoder corpus is for training an utterance-level language encoder and never shares a sentence
with the pools (no two utterances of a language start with the same four words), and its voices
come from another seed stream.

Each utterance: a random 4-10 word sequence from :mod:`demo_build.wordlists` (about 1.5-4 s of
speech), a random speaker (espeak-ng voice variant, rate, pitch, word gap), then degradations drawn
independently of the language (:mod:`demo_build.degrade`): room reverberation, additive noise
(pink, brown, babble of all the languages, mains hum), a band-limited or telephone channel, a
random level. Audio: 16 kHz mono Ogg Opus. Every utterance has its own seeded generator and the
Ogg stream serial numbers are fixed, so the same seed gives byte-identical files (with the same
espeak-ng and libopus).
"""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from demo_build import degrade
from demo_build.speech import ESPEAK_SR, VARIANTS, Voice, require_espeak, speak
from demo_build.wordlists import CASELESS, LANGUAGE_NAMES, words

SR = 16000
SPLITS: tuple[str, ...] = ("train", "dev", "test")
ENCODER_SPLITS: tuple[str, ...] = ("train", "dev")
ENCODER = "encoder"
REGIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("caucasus", ("hy", "tt", "cv", "ky", "sr", "ku")),
    ("africa", ("af", "am", "sw", "om", "tn")),
)
#: Languages only in the encoder corpus.
EXTRA_ENCODER_LANGUAGES: tuple[str, ...] = ("ka", "az", "ru", "tr")
NOISES: tuple[str, ...] = ("pink", "brown", "babble", "hum")
MANIFEST = "sentences.csv"
MANIFEST_COLUMNS: tuple[str, ...] = (
    "file",
    "language",
    "voice",
    "rate",
    "pitch",
    "gap",
    "duration_s",
    "rt60",
    "noise",
    "snr_db",
    "channel",
    "peak_db",
    "text",
)

ProgressFn = Callable[[str, int, int], None]
"""``progress(corpus, utterances_done, utterances_total)``."""

_STREAM_POOL, _STREAM_ENCODER, _STREAM_BABBLE, _STREAM_IDS = 0, 1, 2, 3
_FULL_STOP = {"hy": "։", "am": "።"}
_COMMA = {"am": "፣"}


@dataclass(frozen=True)
class LidConfig:
    """What :func:`build_lid` writes. Counts are utterances per language and split."""

    seed: int = 2025
    regions: tuple[tuple[str, tuple[str, ...]], ...] = REGIONS
    extra_encoder_languages: tuple[str, ...] = EXTRA_ENCODER_LANGUAGES
    n_train: int = 40
    n_dev: int = 96
    n_test: int = 48
    n_encoder_train: int = 60
    n_encoder_dev: int = 15
    rate: tuple[int, int] = (110, 220)
    pitch: tuple[int, int] = (20, 80)
    gap: tuple[int, int] = (0, 4)
    n_words: tuple[int, int] = (4, 10)
    speech_s: tuple[float, float] = (1.5, 3.5)
    pad_s: tuple[float, float] = (0.05, 0.25)
    p_reverb: float = 0.5
    rt60: tuple[float, float] = (0.1, 0.8)
    p_noise: float = 0.9
    snr_db: tuple[float, float] = (0.0, 30.0)
    p_band: float = 0.2
    p_telephone: float = 0.1
    peak_db: tuple[float, float] = (-20.0, -1.0)
    babble_sentences: int = 30
    opus_level: float = 0.985
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("n_train", "n_dev", "n_test", "n_encoder_train", "n_encoder_dev"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 1 <= self.n_words[0] <= self.n_words[1]:
            raise ValueError("n_words must be (lo, hi) with 1 <= lo <= hi")
        for name in ("p_reverb", "p_noise", "p_band", "p_telephone", "opus_level"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if self.p_band + self.p_telephone > 1.0:
            raise ValueError("p_band + p_telephone must be <= 1")
        names = [name for name, _ in self.regions]
        if len(set(names)) != len(names) or ENCODER in names:
            raise ValueError(f"region names must be unique and not {ENCODER!r}")
        for lang in self.encoder_languages:
            words(lang)

    @property
    def encoder_languages(self) -> tuple[str, ...]:
        """The pool languages of all regions, then the extra encoder languages."""
        langs = [lang for _, region in self.regions for lang in region]
        return tuple(dict.fromkeys([*langs, *self.extra_encoder_languages]))

    def counts(self, corpus: str) -> dict[str, int]:
        """Utterances per language of each split of ``corpus`` (a region or ``encoder``)."""
        if corpus == ENCODER:
            return {"train": self.n_encoder_train, "dev": self.n_encoder_dev}
        return {"train": self.n_train, "dev": self.n_dev, "test": self.n_test}

    def corpora(self) -> list[tuple[str, tuple[str, ...]]]:
        """(folder name, languages) of every corpus: the regions, then the encoder corpus."""
        return [*self.regions, (ENCODER, self.encoder_languages)]


@dataclass
class LidBuild:
    """What :func:`build_lid` wrote: utterances per corpus, split and language; bytes; seconds."""

    out: Path
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    total_bytes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Job:
    path: str
    file: str
    language: str
    words: tuple[str, ...]
    end: str
    n_words: int
    voice: Voice
    speech_s: float
    seed: tuple[int, ...]


# --------------------------------------------------------------------------- Ogg Opus output


def _ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, MSB first, no inversion)."""
    reflected = ~zlib.crc32(data.translate(_BIT_REVERSE), 0xFFFFFFFF) & 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


_BIT_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def canonical_ogg(data: bytes, serial: int) -> bytes:
    """An Ogg stream with a fixed stream serial number and, for Opus, a comment header holding
    only the vendor string (libsndfile pads it to about 800 bytes). Checksums are recomputed."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_seg = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + n_seg]
        start = pos + 27 + n_seg
        body = data[start : start + sum(lacing)]
        header = bytearray(data[pos : pos + 27])
        if body.startswith(b"OpusTags") and lacing and lacing[-1] < 255 and len(body) >= 12:
            vlen = int.from_bytes(body[8:12], "little")
            body = body[: 12 + vlen] + b"\0\0\0\0"
            lacing = bytes([255] * (len(body) // 255) + [len(body) % 255])
            header[26] = len(lacing)
        header[14:18] = serial.to_bytes(4, "little")
        header[22:26] = b"\0\0\0\0"
        page = bytes(header) + lacing + body
        out += page[:22] + _ogg_crc(page).to_bytes(4, "little") + page[26:]
        pos = start + sum(data[pos + 27 : pos + 27 + n_seg])
    return bytes(out)


def opus_bytes(x: np.ndarray, sr: int = SR, level: float = 0.98, serial: int = 0) -> bytes:
    """``x`` (mono float) as reproducible Ogg Opus bytes (:func:`canonical_ogg`); a higher
    ``level`` (0..1) gives a lower bit rate (16 kHz: 0.98 ~ 12 kbit/s, still wide band)."""
    buf = io.BytesIO()
    sf.write(
        buf,
        np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0),
        sr,
        format="OGG",
        subtype="OPUS",
        compression_level=level,
    )
    return canonical_ogg(buf.getvalue(), serial)


# --------------------------------------------------------------------------- sentences, voices


def _code(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def sentence(language: str, tokens: Sequence[str], end: str) -> str:
    """The text of ``tokens`` (words, some ending in a comma) as a sentence: a capital first
    letter where the script has case, no comma at the end, then ``end``."""
    text = " ".join(tokens).rstrip(",፣")
    if language not in CASELESS and text:
        text = text[0].upper() + text[1:]
    return text + end


def _draw_words(language: str, n: int, rng: np.random.Generator) -> tuple[tuple[str, ...], str]:
    vocab = words(language)
    picks = rng.choice(len(vocab), size=min(n, len(vocab)), replace=False)
    comma = _COMMA.get(language, ",")
    tokens = tuple(vocab[int(i)] + (comma if rng.random() < 0.12 else "") for i in picks)
    u = rng.random()
    end = "?" if u < 0.15 else "!" if u < 0.22 else _FULL_STOP.get(language, ".")
    return tokens, end


def _draw_voice(language: str, cfg: LidConfig, rng: np.random.Generator) -> Voice:
    return Voice(
        language,
        str(VARIANTS[int(rng.integers(len(VARIANTS)))]),
        int(rng.integers(cfg.rate[0], cfg.rate[1] + 1)),
        int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
        int(rng.integers(cfg.gap[0], cfg.gap[1] + 1)),
    )


def _unique_words(
    language: str, cfg: LidConfig, rng: np.random.Generator, used: dict[str, set[tuple[str, ...]]]
) -> tuple[tuple[str, ...], str]:
    """Words whose first ``n_words[0]`` (the shortest sentence) no other utterance of the
    language starts with, so no two sentences of a build are the same."""
    seen = used.setdefault(language, set())
    k = cfg.n_words[0]
    for _ in range(1000):
        tokens, end = _draw_words(language, cfg.n_words[1], rng)
        key = tuple(t.rstrip(",፣") for t in tokens[:k])
        if key not in seen:
            seen.add(key)
            return tokens, end
    raise ValueError(f"{language}: vocabulary too small for this many distinct sentences")


def _jobs(
    out: Path, cfg: LidConfig, used: dict[str, set[tuple[str, ...]]]
) -> dict[str, list[_Job]]:
    jobs: dict[str, list[_Job]] = {}
    for corpus, langs in cfg.corpora():
        stream = _STREAM_ENCODER if corpus == ENCODER else _STREAM_POOL
        counts = cfg.counts(corpus)
        total = sum(counts.values()) * len(langs)
        ids = (
            np.random.default_rng([cfg.seed, _STREAM_IDS, _code(corpus)]).choice(
                900_000, size=total, replace=False
            )
            + 100_000
        )
        rows: list[_Job] = []
        for split_index, (split, n) in enumerate(counts.items()):
            for lang in langs:
                for k in range(n):
                    seed = (cfg.seed, stream, _code(corpus), split_index, _code(lang), k)
                    rng = np.random.default_rng(seed)
                    voice = _draw_voice(lang, cfg, rng)
                    speech_s = float(rng.uniform(*cfg.speech_s))
                    tokens, end = _unique_words(lang, cfg, rng, used)
                    n_words = int(np.clip(round(speech_s * voice.rate / 60), *cfg.n_words))
                    file = f"{split}/common_voice_{lang}_{int(ids[len(rows)]):06d}.ogg"
                    rows.append(
                        _Job(
                            str(out / corpus / file),
                            file,
                            lang,
                            tokens,
                            end,
                            n_words,
                            voice,
                            speech_s,
                            (*seed, 1),
                        )
                    )
        jobs[corpus] = rows
    return jobs


# --------------------------------------------------------------------------- rendering


def trim_silence(
    x: np.ndarray, sr: int, threshold_db: float = -40.0, margin_s: float = 0.02
) -> np.ndarray:
    """``x`` without the leading and trailing frames (10 ms) quieter than ``threshold_db``
    below the loudest frame, keeping ``margin_s`` around the speech."""
    hop = max(sr // 100, 1)
    n = x.size // hop
    if n == 0:
        return x
    energy = (x[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1)
    active = np.flatnonzero(energy > energy.max() * 10 ** (threshold_db / 10))
    margin = round(margin_s * sr)
    return x[max(active[0] * hop - margin, 0) : min((active[-1] + 1) * hop + margin, x.size)]


def _speech(job: _Job, n: int) -> np.ndarray:
    return trim_silence(speak(sentence(job.language, job.words[:n], job.end), job.voice), ESPEAK_SR)


class _Renderer:
    def __init__(self, cfg: LidConfig, babble: list[np.ndarray]) -> None:
        self.cfg, self.babble = cfg, babble

    def __call__(self, job: _Job) -> dict[str, str]:
        cfg = self.cfg
        rng = np.random.default_rng(job.seed)
        n = job.n_words
        x = _speech(job, n)
        dur = x.size / ESPEAK_SR
        if dur > 0 and abs(dur - job.speech_s) > 0.2 * job.speech_s:
            better = int(np.clip(round(n * job.speech_s / dur), cfg.n_words[0], len(job.words)))
            if better != n:
                n = better
                x = _speech(job, n)
        y = soxr.resample(x, ESPEAK_SR, SR).astype(np.float32)
        y = np.concatenate(
            [
                np.zeros(round(rng.uniform(*cfg.pad_s) * SR), np.float32),
                y,
                np.zeros(round(rng.uniform(*cfg.pad_s) * SR), np.float32),
            ]
        )
        rt60 = ""
        if rng.random() < cfg.p_reverb:
            t60 = float(rng.uniform(*cfg.rt60))
            y = degrade.room_reverb(y, SR, rng, rt60=t60, tail_s=0.25)
            rt60 = f"{t60:.2f}"
        noise, snr = "", ""
        if rng.random() < cfg.p_noise:
            kind = NOISES[int(rng.integers(len(NOISES)))]
            level = float(rng.uniform(*cfg.snr_db))
            y = degrade.add_noise(y, self._noise(kind, y.size, rng), level, rng)
            noise, snr = kind, f"{level:.1f}"
        u = rng.random()
        if u < cfg.p_telephone:
            channel = "telephone"
            y = degrade.telephone(y, SR)
        elif u < cfg.p_telephone + cfg.p_band:
            low, high = float(rng.uniform(80, 300)), float(rng.uniform(3000, 7000))
            channel = f"band {low:.0f}-{high:.0f} Hz"
            y = degrade.band_limit(y, SR, low, high)
        else:
            channel = "full"
        peak = float(rng.uniform(*cfg.peak_db))
        y = degrade.set_peak_db(y, peak)
        Path(job.path).write_bytes(opus_bytes(y, SR, cfg.opus_level, _code(job.file)))
        v = job.voice
        return {
            "file": job.file,
            "language": job.language,
            "voice": f"{v.language}+{v.variant}",
            "rate": str(v.rate),
            "pitch": str(v.pitch),
            "gap": str(v.gap),
            "duration_s": f"{y.size / SR:.2f}",
            "rt60": rt60,
            "noise": noise,
            "snr_db": snr,
            "channel": channel,
            "peak_db": f"{peak:.1f}",
            "text": sentence(job.language, job.words[:n], job.end),
        }

    def _noise(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        if kind == "pink":
            return degrade.pink_noise(n, rng)
        if kind == "brown":
            return degrade.brown_noise(n, rng)
        if kind == "hum":
            return degrade.hum(n, SR, rng)
        return degrade.babble(self.babble, n, rng)


_WORKER: _Renderer | None = None


def _init_worker(cfg: LidConfig, babble: list[np.ndarray]) -> None:
    global _WORKER
    _WORKER = _Renderer(cfg, babble)


def _render(job: _Job) -> dict[str, str]:
    assert _WORKER is not None
    return _WORKER(job)


def _babble_bank(cfg: LidConfig, used: dict[str, set[tuple[str, ...]]]) -> list[np.ndarray]:
    """Long sentences of all the languages (at 16 kHz), the talkers of babble noise."""
    langs = cfg.encoder_languages
    bank = []
    for i in range(cfg.babble_sentences):
        lang = langs[i % len(langs)]
        rng = np.random.default_rng([cfg.seed, _STREAM_BABBLE, i])
        voice = _draw_voice(lang, cfg, rng)
        tokens, end = _unique_words(lang, cfg, rng, used)
        x = trim_silence(speak(sentence(lang, tokens, end), voice), ESPEAK_SR)
        bank.append(soxr.resample(x, ESPEAK_SR, SR).astype(np.float32))
    return bank


def _run(
    jobs: list[_Job], renderer: _Renderer, cfg: LidConfig, babble: list[np.ndarray]
) -> Iterator[dict[str, str]]:
    if cfg.workers <= 1 or len(jobs) < 8:
        yield from map(renderer, jobs)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        cfg.workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg, babble)
    ) as pool:
        yield from pool.map(_render, jobs, chunksize=8)


# --------------------------------------------------------------------------- build


def espeak_version() -> str:
    """``espeak-ng --version`` without the data path, e.g. ``eSpeak NG text-to-speech: 1.51``."""
    proc = subprocess.run(
        [require_espeak(), "--version"], capture_output=True, text=True, check=False
    )
    text = proc.stdout.strip()
    return text.splitlines()[0].split("  Data at")[0].strip() if text else "unknown"


def _clear(folder: Path, splits: Iterable[str]) -> None:
    for split in splits:
        for f in (folder / split).glob("common_voice_*.ogg"):
            f.unlink()
    (folder / MANIFEST).unlink(missing_ok=True)


def build_lid(
    out: str | Path, cfg: LidConfig = LidConfig(), progress: ProgressFn | None = None
) -> LidBuild:
    """Write the corpus (module docstring) into ``out``, replacing earlier generated files."""
    require_espeak()
    start = time.perf_counter()
    out = Path(out)
    used: dict[str, set[tuple[str, ...]]] = {}
    jobs = _jobs(out, cfg, used)
    babble = _babble_bank(cfg, used)
    renderer = _Renderer(cfg, babble)
    result = LidBuild(out)
    for corpus, corpus_jobs in jobs.items():
        folder = out / corpus
        splits = list(cfg.counts(corpus))
        _clear(folder, splits)
        for split in splits:
            (folder / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for row in _run(corpus_jobs, renderer, cfg, babble):
            rows.append(row)
            if progress is not None:
                progress(corpus, len(rows), len(corpus_jobs))
        rows.sort(key=lambda r: r["file"])
        with open(folder / MANIFEST, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        per: dict[str, Counter[str]] = {s: Counter() for s in splits}
        for row in rows:
            per[row["file"].split("/", 1)[0]][row["language"]] += 1
        result.counts[corpus] = {s: dict(sorted(c.items())) for s, c in per.items()}
    (out / "README.md").write_text(readme(cfg, result), encoding="utf-8")
    result.total_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    result.seconds = time.perf_counter() - start
    return result


def readme(cfg: LidConfig, build: LidBuild) -> str:
    """The README of a built corpus."""
    lines = [
        "# Synthetic spoken-language corpus (Common Voice layout)",
        "",
        "Made by `python -m demo_build.lid --out demo_data/lid "
        f"--seed {cfg.seed}` with {espeak_version()} (Debian package `espeak-ng`) and "
        f"libsndfile {sf.__libsndfile_version__}.",
        "Rebuilding with the same seed, espeak-ng and libopus gives byte-identical files.",
        "",
        "## Folders",
        "",
        "- Stream pools, one per region: `<region>/{train,dev,test}/common_voice_<lang>_<id>.ogg` "
        "(`iml-tui prepare lid --source demo_data/lid/<region> --out ...`).",
        "- `encoder/{train,dev}/`: a separate corpus for training an utterance-level language "
        "encoder. Other sentences (no two utterances of a language share their first "
        f"{cfg.n_words[0]} words) and other speaker draws (another seed stream) than the pools, "
        "plus languages the pools do not have.",
        f"- `<corpus>/{MANIFEST}`: one row per file: "
        + ", ".join(f"`{c}`" for c in MANIFEST_COLUMNS)
        + ".",
        "",
        "## Languages (espeak-ng codes; the third `_` token of a file name)",
        "",
        "| corpus | languages |",
        "|---|---|",
    ]
    for corpus, langs in cfg.corpora():
        lines.append(
            f"| {corpus} | "
            + ", ".join(f"{lang} ({LANGUAGE_NAMES[lang]})" for lang in langs)
            + " |"
        )
    lines += [
        "",
        "## Utterances per language",
        "",
        "| corpus | split | per language | total |",
        "|---|---|---|---|",
    ]
    for corpus, splits in build.counts.items():
        for split, per in splits.items():
            values = sorted(set(per.values()))
            each = (
                str(values[0])
                if len(values) == 1
                else ", ".join(f"{k} {v}" for k, v in per.items())
            )
            lines.append(f"| {corpus} | {split} | {each} | {sum(per.values())} |")
    lines += [
        "",
        "## How an utterance is made",
        "",
        f"1. Text: {cfg.n_words[0]}-{cfg.n_words[1]} distinct random words from a list of "
        "about 115-120 common words of the language (`demo_build/wordlists.py`), sometimes "
        "commas, ending in a full stop, question or exclamation mark; the word count aims at "
        f"{cfg.speech_s[0]:g}-{cfg.speech_s[1]:g} s of speech.",
        f"2. Speaker, drawn per utterance: espeak-ng voice variant ({', '.join(VARIANTS)}), "
        f"rate {cfg.rate[0]}-{cfg.rate[1]} words/min, pitch {cfg.pitch[0]}-{cfg.pitch[1]}, "
        f"word gap {cfg.gap[0]}-{cfg.gap[1]} (x 10 ms).",
        "3. Silence trimmed (-40 dB), resampled 22050 -> 16000 Hz (soxr), "
        f"{cfg.pad_s[0]:g}-{cfg.pad_s[1]:g} s of silence before and after.",
        f"4. Degradations, drawn independently of the language: room reverberation with "
        f"probability {cfg.p_reverb:g} (random shoebox room, image-source impulse response by "
        f"pyroomacoustics, RT60 {cfg.rt60[0]:g}-{cfg.rt60[1]:g} s); additive noise with "
        f"probability {cfg.p_noise:g} (pink, brown, babble of 3-6 talkers of all the languages, "
        f"or mains hum) at SNR {cfg.snr_db[0]:g}-{cfg.snr_db[1]:g} dB; channel: telephone "
        f"(300-3400 Hz, 8-bit mu-law) with probability {cfg.p_telephone:g}, a random band-pass "
        f"(80-300 Hz to 3-7 kHz) with probability {cfg.p_band:g}, else full band; peak level "
        f"{cfg.peak_db[0]:g} to {cfg.peak_db[1]:g} dBFS.",
        f"5. 16 kHz mono Ogg Opus (libsndfile, compression level {cfg.opus_level:g}: about "
        "10 kbit/s, wide band), fixed stream serial number, minimal comment header.",
        "",
        f"Seed {cfg.seed}; each utterance has its own generator seeded with (seed, corpus, split, "
        "language, index). Files: "
        f"{sum(sum(per.values()) for s in build.counts.values() for per in s.values())}.",
        "",
        "## License",
        "",
        "The audio and the sentence lists are synthetic and dedicated to the public domain "
        "(CC0-1.0). They were spoken by espeak-ng (GPL-3.0-or-later software); its output is "
        "not covered by its license. The sentences are random word sequences and mean nothing.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_build.lid``: build the corpus and print what was written."""
    base = LidConfig()
    parser = argparse.ArgumentParser(
        prog="python -m demo_build.lid", description="Build the synthetic spoken-language corpus."
    )
    parser.add_argument("--out", type=Path, default=Path("demo_data/lid"))
    parser.add_argument("--seed", type=int, default=base.seed)
    parser.add_argument("--workers", type=int, default=base.workers)
    for name in ("n_train", "n_dev", "n_test", "n_encoder_train", "n_encoder_dev"):
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(base, name),
            help="utterances per language",
        )
    args = parser.parse_args(argv)
    cfg = replace(
        base,
        seed=args.seed,
        workers=args.workers,
        n_train=args.n_train,
        n_dev=args.n_dev,
        n_test=args.n_test,
        n_encoder_train=args.n_encoder_train,
        n_encoder_dev=args.n_encoder_dev,
    )

    def progress(corpus: str, done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            print(f"  {corpus}: {done}/{total}", file=sys.stderr, flush=True)

    build = build_lid(args.out, cfg, progress)
    for corpus, splits in build.counts.items():
        for split, per in splits.items():
            print(
                f"{corpus:9s} {split:5s} {sum(per.values()):5d}  "
                + " ".join(f"{k}:{v}" for k, v in per.items())
            )
    print(f"total {build.total_bytes / 1e6:.2f} MB in {build.out}, {build.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
