"""The miniature VTD corpus synthesiser: labelling rule, loudspeaker model, music and household
sounds, reproducible Ogg files, and a tiny corpus read by ``prepare_vtd``."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal  # type: ignore[import-untyped]

from demo_build.vtd_sessions import (
    HOUSEHOLD_KINDS,
    ROOMS,
    SR,
    VtdConfig,
    build_vtd,
    coverage,
    fix_ogg_serial,
    loudspeaker,
    measured_rt60,
    merge_intervals,
    segment_labels,
    soft_limit,
    speech_activity,
    synth_music,
)
from iml_tui.data.corpus import read_split
from iml_tui.data.vtd import prepare_vtd, read_segment_labels

_NO_ESPEAK = shutil.which("espeak-ng") is None


# -- labelling rule --------------------------------------------------------------------------


def test_merge_intervals_unions_overlaps_and_drops_empty() -> None:
    assert merge_intervals([(3, 4), (0, 1), (0.5, 2), (5, 5), (2, 2.5)]) == [(0.0, 2.5), (3.0, 4.0)]


def test_coverage_splits_intervals_over_segments() -> None:
    cov = coverage([(4.0, 6.5), (6.0, 7.0), (12.0, 30.0)], n_segments=4)
    np.testing.assert_allclose(cov, [1.0, 2.0, 3.0, 5.0])


def test_segment_label_needs_one_second_of_live_speech() -> None:
    # segment 0: 0.9 s live (0); 1: exactly 1 s spread over two bursts (1);
    # 2: 4 s (1); 3: none (0); 4: 0.5 s from an interval starting in segment 3 (0)
    live = [(1.0, 1.9), (5.0, 5.4), (8.0, 8.6), (10.5, 14.5), (19.8, 20.5)]
    np.testing.assert_array_equal(segment_labels(live, 5), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(segment_labels(live, 5, min_live_seconds=0.4), [1, 1, 1, 0, 1])


def test_segment_labels_ignore_speech_past_the_end_and_overlaps_count_once() -> None:
    live = [(0.0, 0.8), (0.2, 0.9), (9.5, 40.0)]
    np.testing.assert_array_equal(segment_labels(live, 2), [0, 0])
    np.testing.assert_array_equal(segment_labels([(0.0, 1.0), (0.5, 1.2)], 1), [1])


def test_speech_activity_finds_bursts_and_bridges_short_gaps() -> None:
    x = np.zeros(3 * SR)
    rng = np.random.default_rng(0)
    x[int(0.5 * SR) : int(1.0 * SR)] = rng.standard_normal(SR // 2)
    x[int(1.1 * SR) : int(1.5 * SR)] = rng.standard_normal(int(0.4 * SR))
    x[int(2.2 * SR) : int(2.6 * SR)] = rng.standard_normal(int(0.4 * SR))
    spans = speech_activity(x, SR, offset=10.0)
    assert len(spans) == 2
    np.testing.assert_allclose(spans, [(10.5, 11.5), (12.2, 12.6)], atol=0.011)
    assert speech_activity(np.zeros(SR)) == []


# -- signal helpers --------------------------------------------------------------------------


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = signal.welch(x, SR, nperseg=4096)
    return float(10 * np.log10(p[(f >= lo) & (f < hi)].mean()))


def test_loudspeaker_removes_energy_below_150_hz() -> None:
    x = np.random.default_rng(1).standard_normal(4 * SR) * 0.1
    y = loudspeaker(x, SR, low_hz=150.0, high_hz=7000.0)
    assert y.dtype == np.float32 and y.shape == x.shape
    low = _band_db(y, 20, 100) - _band_db(x, 20, 100)
    mid = _band_db(y, 500, 3000) - _band_db(x, 500, 3000)
    assert low < mid - 30.0
    assert _band_db(y, 7600, 8000) < _band_db(y, 500, 3000) - 15.0
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=0.05)
    assert not np.any(loudspeaker(np.zeros(100)))


def test_loudspeaker_compresses_the_dynamic_range() -> None:
    t = np.arange(2 * SR) / SR
    x = np.sin(2 * np.pi * 1000 * t) * np.where(t < 1.0, 0.02, 0.5)
    y = loudspeaker(x, SR)
    ratio_in = np.abs(x[SR + 4000 :]).max() / np.abs(x[4000:SR]).max()
    ratio_out = np.abs(y[SR + 4000 :]).max() / np.abs(y[4000:SR]).max()
    assert ratio_out < ratio_in / 2


def test_synth_music_is_seeded_tonal_and_rhythmic() -> None:
    a = synth_music(np.random.default_rng(5), 6.0, SR)
    b = synth_music(np.random.default_rng(5), 6.0, SR)
    c = synth_music(np.random.default_rng(6), 6.0, SR)
    assert a.dtype == np.float32 and a.shape == (6 * SR,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.isfinite(a)) and np.abs(a).max() == pytest.approx(0.5, rel=1e-5)
    # energy in the bass / chords and in the upper harmonics
    assert _band_db(a, 60, 400) > _band_db(a, 2000, 4000) > _band_db(a, 60, 400) - 60
    assert synth_music(np.random.default_rng(0), 0.0, SR).size == 0


@pytest.mark.parametrize("kind", HOUSEHOLD_KINDS)
def test_household_sounds_are_finite_short_and_seeded(kind: str) -> None:
    from demo_build.vtd_sessions import household_sound

    a = household_sound(kind, np.random.default_rng(2), SR)
    b = household_sound(kind, np.random.default_rng(2), SR)
    np.testing.assert_array_equal(a, b)
    assert 0.05 * SR < a.size < 8 * SR
    assert np.all(np.isfinite(a)) and np.abs(a).max() == pytest.approx(0.5, rel=1e-5)


def test_household_sound_rejects_unknown_kinds() -> None:
    from demo_build.vtd_sessions import household_sound

    with pytest.raises(ValueError, match="unknown household sound"):
        household_sound("vacuum", np.random.default_rng(0))


def test_soft_limit_keeps_small_samples_and_bounds_large_ones() -> None:
    x = np.array([0.1, -0.5, 0.7, 1.5, -30.0])
    y = soft_limit(x)
    np.testing.assert_array_equal(y[:3], x[:3])
    assert np.all(np.abs(y) <= 0.98) and y[3] > 0.7 and y[4] < -0.7


def test_measured_rt60_of_an_exponential_decay() -> None:
    t = np.arange(SR) / SR
    h = np.random.default_rng(0).standard_normal(SR) * np.exp(-6.9 * t / 0.5)
    assert measured_rt60(h) == pytest.approx(0.5, rel=0.1)


def test_fixed_serial_makes_ogg_bytes_reproducible() -> None:
    x = (np.random.default_rng(3).standard_normal(SR) * 0.1).astype(np.float32)
    blobs = []
    for _ in range(2):
        buf = io.BytesIO()
        sf.write(buf, x, SR, format="OGG", subtype="OPUS", compression_level=0.9)
        blobs.append(fix_ogg_serial(buf.getvalue(), 1234))
    assert blobs[0] == blobs[1]
    y, sr = sf.read(io.BytesIO(blobs[0]), dtype="float32")
    assert sr == SR and y.shape == x.shape
    with pytest.raises(ValueError, match="not an Ogg page"):
        fix_ogg_serial(b"RIFF0000", 1)


# -- rooms and a tiny corpus (need pyroomacoustics and espeak-ng) -----------------------------


def test_room_impulse_responses_reach_the_nominal_rt60() -> None:
    pytest.importorskip("pyroomacoustics", reason="pyroomacoustics is not installed")
    from demo_build.vtd_sessions import room_impulse_responses

    room = ROOMS[1]
    near, far = room_impulse_responses(
        room, [(1.0, 1.0, 1.4), (3.2, 2.6, 1.5)], np.random.default_rng(0)
    )
    assert measured_rt60(near) == pytest.approx(room.rt60, rel=0.2)
    assert measured_rt60(far) == pytest.approx(room.rt60, rel=0.2)
    assert np.abs(near).max() > np.abs(far).max()


TINY = VtdConfig(rooms=(ROOMS[0],), sessions_per_env=1, segments=(4, 4), seed=11)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("pyroomacoustics", reason="pyroomacoustics is not installed")
    if _NO_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    a = tmp_path_factory.mktemp("vtd_a")
    b = tmp_path_factory.mktemp("vtd_b")
    seen: list[str] = []
    build_vtd(a, TINY, progress=lambda done, total, msg: seen.append(f"{done}/{total} {msg}"))
    build_vtd(b, TINY)
    assert seen == ["1/1 rm1_livingroom/session01"]
    return a, b


def test_tiny_corpus_is_read_by_prepare_vtd(tiny_corpus: tuple[Path, Path], tmp_path: Path) -> None:
    src, _ = tiny_corpus
    env = src / "rm1_livingroom"
    audio = env / "session01.ogg"
    info = sf.info(str(audio))
    assert (info.samplerate, info.channels, info.frames) == (SR, 1, 4 * 5 * SR)
    assert info.subtype == "OPUS"
    with (env / "session01.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["segment"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["start"] for r in rows] == ["0.0", "5.0", "10.0", "15.0"]
    for r in rows:
        assert r["label"] == str(int(float(r["live_seconds"]) >= 1.0))
        assert r["content"]
    labels = read_segment_labels(env / "session01.csv")

    summary = prepare_vtd(src, tmp_path / "prep")
    assert summary.rows == [["rm1_livingroom", 1, 4, int(labels.sum())]]
    split = read_split(tmp_path / "prep" / "rm1_livingroom")
    assert [r.id for r in split.rows] == [f"session01/{k:04d}" for k in range(4)]
    np.testing.assert_array_equal(split.labels.reshape(-1), labels)
    assert "CC0-1.0" in (src / "README.md").read_text(encoding="utf-8")


def test_same_seed_gives_identical_bytes(tiny_corpus: tuple[Path, Path]) -> None:
    a, b = tiny_corpus

    def digests(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    da = digests(a)
    assert set(da) == {"README.md", "rm1_livingroom/session01.ogg", "rm1_livingroom/session01.csv"}
    assert da == digests(b)
