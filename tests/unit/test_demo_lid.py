"""The synthetic spoken-language corpus: degradations, Ogg output, layout, importer, determinism."""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demo_build import degrade
from demo_build.lid import (
    ENCODER,
    MANIFEST,
    LidConfig,
    build_lid,
    canonical_ogg,
    opus_bytes,
    sentence,
)
from demo_build.wordlists import LANGUAGE_NAMES, WORDS
from iml_tui.data.commonvoice import language_from_name, prepare_lid

SR = 16000
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
needs_rooms = pytest.mark.skipif(
    importlib.util.find_spec("pyroomacoustics") is None,
    reason="pyroomacoustics is not installed (pip install -e '.[rebuild]')",
)
TINY = LidConfig(
    regions=(("caucasus", ("hy", "sr")), ("africa", ("am", "sw"))),
    extra_encoder_languages=("ka",),
    n_train=1,
    n_dev=1,
    n_test=1,
    n_encoder_train=1,
    n_encoder_dev=1,
    babble_sentences=3,
    workers=1,
    seed=7,
)


# --------------------------------------------------------------------------- degradations


def _speechlike(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (env * rng.standard_normal(n)).astype(np.float32)


def _noise(kind: str, m: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return degrade.white_noise(m, rng)
    if kind == "pink":
        return degrade.pink_noise(m, rng)
    if kind == "brown":
        return degrade.brown_noise(m, rng)
    if kind == "hum":
        return degrade.hum(m, SR, rng)
    return degrade.babble([_speechlike(5000, rng) for _ in range(4)], m, rng)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum", "babble"])
def test_add_noise_hits_the_requested_snr(kind: str) -> None:
    rng = np.random.default_rng(0)
    for n, snr in [(8000, 0.0), (12345, 7.5), (16000, 30.0), (3000, -5.0)]:
        x = _speechlike(n, rng)
        m = n // 2 if kind != "babble" else n
        noise = _noise(kind, m, rng)
        assert noise.dtype == np.float32 and noise.shape == (m,)
        assert degrade.rms(noise) == pytest.approx(1.0, rel=1e-4)
        y = degrade.add_noise(x, noise, snr, rng)
        assert y.shape == x.shape and y.dtype == np.float32
        assert abs(degrade.snr_db(x, y) - snr) < 0.1


def test_noise_colours_and_reproducibility() -> None:
    def low_high(x: np.ndarray) -> float:
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        return float(p[(f > 50) & (f < 500)].mean() / p[(f > 4000) & (f < 7000)].mean())

    white = low_high(degrade.white_noise(SR, np.random.default_rng(1)))
    pink = low_high(degrade.pink_noise(SR, np.random.default_rng(1)))
    brown = low_high(degrade.brown_noise(SR, np.random.default_rng(1)))
    assert white < 2 < 5 < pink < brown
    a = degrade.pink_noise(1000, np.random.default_rng(3))
    assert np.array_equal(a, degrade.pink_noise(1000, np.random.default_rng(3)))
    assert degrade.fit_length(
        np.arange(5, dtype=np.float32), 12, np.random.default_rng(0)
    ).shape == (12,)


def _late_energy(y: np.ndarray, after_s: float) -> float:
    k = round(after_s * SR)
    return float(np.sum(y[k:].astype(np.float64) ** 2) / np.sum(y.astype(np.float64) ** 2))


@needs_rooms
def test_reverb_lengthens_the_energy_decay() -> None:
    rng = np.random.default_rng(5)
    x = np.zeros(SR, dtype=np.float32)
    x[:800] = rng.standard_normal(800)
    short = degrade.room_reverb(x, SR, np.random.default_rng(1), rt60=0.2, tail_s=0)
    long = degrade.room_reverb(x, SR, np.random.default_rng(1), rt60=0.7, tail_s=0)
    assert short.shape == long.shape == x.shape
    assert degrade.rms(long) == pytest.approx(degrade.rms(x), rel=1e-3)
    assert _late_energy(x, 0.1) == 0.0
    assert 0.0 < _late_energy(short, 0.1) < _late_energy(long, 0.1)
    h, t60 = degrade.room_impulse_response(SR, np.random.default_rng(2), rt60_range=(0.3, 0.4))
    assert 0.3 <= t60 <= 0.4 and np.abs(h).max() == pytest.approx(1.0)
    assert np.argmax(np.abs(h)) < 32
    full = degrade.room_reverb(x, SR, np.random.default_rng(1), rt60=0.5)
    assert full.size > x.size


def test_channels_and_gain() -> None:
    rng = np.random.default_rng(0)
    x = degrade.white_noise(SR, rng)
    spec = np.abs(np.fft.rfft(degrade.band_limit(x, SR, 300, 3400))) ** 2
    f = np.fft.rfftfreq(SR, 1 / SR)
    assert spec[(f > 5000)].mean() < 1e-3 * spec[(f > 800) & (f < 2500)].mean()
    assert spec[(f < 80)].mean() < 1e-2 * spec[(f > 800) & (f < 2500)].mean()
    tel = degrade.telephone(x, SR)
    assert tel.shape == x.shape and np.isfinite(tel).all()
    assert np.array_equal(degrade.band_limit(x, SR), x)
    y = degrade.set_peak_db(x, -6.0)
    assert 20 * np.log10(np.abs(y).max()) == pytest.approx(-6.0, abs=1e-4)
    assert not degrade.set_peak_db(np.zeros(4, np.float32), -3).any()


# --------------------------------------------------------------------------- Ogg Opus


def test_opus_bytes_are_reproducible_and_readable() -> None:
    x = 0.3 * _speechlike(SR * 2, np.random.default_rng(0))
    a, b = opus_bytes(x, SR, 0.985, serial=42), opus_bytes(x, SR, 0.985, serial=42)
    assert a == b and a.startswith(b"OggS")
    assert a[14:18] == (42).to_bytes(4, "little")
    y, sr = sf.read(io.BytesIO(a), dtype="float32")
    assert sr == SR and y.shape == x.shape
    plain = io.BytesIO()
    sf.write(plain, x, SR, format="OGG", subtype="OPUS", compression_level=0.985)
    assert len(a) < len(plain.getvalue())
    assert canonical_ogg(a, 42) == a
    with pytest.raises(ValueError):
        canonical_ogg(b"RIFF" + a[4:], 1)


def test_word_lists_and_sentences() -> None:
    assert set(WORDS) == set(LANGUAGE_NAMES)
    for lang, vocab in WORDS.items():
        assert 80 <= len(vocab) <= 150, lang
        assert len(set(vocab)) == len(vocab)
    assert sentence("sr", ["мајка,", "отац,"], ".") == "Мајка, отац."
    assert sentence("ka", ["დედა", "მამა"], "?") == "დედა მამა?"


# --------------------------------------------------------------------------- corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    pytest.importorskip("pyroomacoustics", reason="the rebuild extra: pip install -e '.[rebuild]'")
    out = tmp_path_factory.mktemp("lid") / "lid"
    build_lid(out, TINY)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / MANIFEST, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@needs_espeak
def test_layout_names_and_audio(corpus: Path) -> None:
    assert (corpus / "README.md").read_text(encoding="utf-8").count("CC0-1.0") == 1
    for name, langs in TINY.corpora():
        counts = TINY.counts(name)
        for split, n in counts.items():
            files = sorted((corpus / name / split).glob("*.ogg"))
            found = [language_from_name(f.name) for f in files]
            assert sorted(found) == sorted(lang for lang in langs for _ in range(n))
            for f in files:
                assert f.name.startswith("common_voice_") and len(f.stem.split("_")[3]) == 6
        rows = _manifest(corpus / name)
        assert len(rows) == sum(counts.values()) * len(langs)
        assert all((corpus / name / r["file"]).is_file() for r in rows)
    x, sr = sf.read(next((corpus / "caucasus" / "train").glob("*.ogg")), dtype="float32")
    assert sr == SR and x.ndim == 1 and 1.0 < x.size / SR < 6.0
    assert 0.0 < np.abs(x).max() < 1.0


@needs_espeak
def test_prepare_lid_reads_the_pools(corpus: Path, tmp_path: Path) -> None:
    for name, langs in TINY.regions:
        table = prepare_lid(corpus / name, tmp_path / name)
        assert table.columns == ["language", "train", "dev", "test"]
        assert [row[0] for row in table.rows] == [*sorted(langs), "utterances"]
        assert table.rows[-1][1:] == [len(langs)] * 3
    table = prepare_lid(corpus / ENCODER, tmp_path / ENCODER)
    assert [row[0] for row in table.rows[:-1]] == sorted(TINY.encoder_languages)


@needs_espeak
def test_encoder_corpus_shares_no_sentence_with_the_pools(corpus: Path) -> None:
    def prefixes(rows: list[dict[str, str]]) -> set[tuple[str, str]]:
        return {
            (r["language"], " ".join(re.sub(r"[,.?!։።፣]", "", r["text"].lower()).split()[:4]))
            for r in rows
        }

    pools = [r for name, _ in TINY.regions for r in _manifest(corpus / name)]
    enc = _manifest(corpus / ENCODER)
    assert {r["text"] for r in pools}.isdisjoint(r["text"] for r in enc)
    assert prefixes(pools).isdisjoint(prefixes(enc))
    assert len(prefixes(pools + enc)) == len(pools) + len(enc)


@needs_espeak
def test_same_seed_gives_identical_bytes(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_lid(again, replace(TINY, workers=2))
    assert _files(again) == _files(corpus)
