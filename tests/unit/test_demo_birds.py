"""The synthetic bird-call corpus: reproducible bytes, annotations that parse and mark real sound,
rare classes that survive the importer's temporal split, and a corpus the DCASE importer reads."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demo_build.birds import (
    CALL_TYPES,
    EVENTS_CSV,
    EXTRA_TYPES,
    RARE_TYPES,
    SR,
    TRAINING,
    VALIDATION,
    BirdsConfig,
    RecordingSpec,
    build_birds,
    fix_ogg_serial,
    plan_recording,
)
from iml_tui.data.dcase import n_clips, parse_annotation, prepare_dcase
from iml_tui.errors import UserError

TINY = BirdsConfig(
    seed=7,
    validation=(
        RecordingSpec("WDL", 20, ("Tonal_whistle",)),
        RecordingSpec("MRS", 24, ("Harmonic_stack",), events=(4, 6)),
    ),
    training=(RecordingSpec("PND", 20, ("Buzz", "Trill", "Croak")),),
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("birds") / "birds"
    build_birds(out, TINY)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _annotations(root: Path) -> list[tuple[str, Path]]:
    dev = root / "Development_Set"
    return [
        (part, p) for part in (VALIDATION, TRAINING) for p in sorted((dev / part).glob("*/*.csv"))
    ]


def _log(root: Path) -> list[dict[str, str]]:
    with open(root / EVENTS_CSV, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_same_seed_gives_identical_bytes(corpus: Path, tmp_path: Path) -> None:
    again = build_birds(tmp_path / "again", TINY)
    a, b = _files(corpus), _files(tmp_path / "again")
    assert sorted(a) == sorted(b)
    assert len([k for k in a if k.endswith(".ogg")]) == 3
    assert all(a[k] == b[k] for k in a)
    assert again.total_bytes == sum(len(v) for v in b.values())
    other = build_birds(
        tmp_path / "other", BirdsConfig(seed=8, validation=TINY.validation[:1], training=())
    )
    name = other.recordings[0].name
    oggs = [k for k in _files(tmp_path / "other") if k.endswith(".ogg")]
    assert oggs == [f"Development_Set/Validation_Set/WDL/{name}.ogg"]
    assert all(not k.endswith(".ogg") or k not in a for k in oggs)


def test_ogg_serial_is_rewritten_with_valid_checksums(corpus: Path, tmp_path: Path) -> None:
    src = next((corpus / "Development_Set").rglob("*.ogg"))
    data = src.read_bytes()
    fixed = fix_ogg_serial(data, 0xABCDEF01)
    diff = np.flatnonzero(np.frombuffer(data, np.uint8) != np.frombuffer(fixed, np.uint8))
    assert diff.size > 0
    assert fixed[14:18] == bytes.fromhex("01efcdab")
    (tmp_path / "x.ogg").write_bytes(fixed)
    a, _ = sf.read(src, dtype="float32")
    b, _ = sf.read(tmp_path / "x.ogg", dtype="float32")  # libogg drops pages with bad checksums
    assert a.shape == b.shape and np.array_equal(a, b)


def test_audio_format_and_annotations(corpus: Path) -> None:
    found = _annotations(corpus)
    assert [(part, p.parent.name) for part, p in found] == [
        (VALIDATION, "MRS"),
        (VALIDATION, "WDL"),
        (TRAINING, "PND"),
    ]
    for part, path in found:
        audio = path.with_suffix(".ogg")
        info = sf.info(audio)
        assert (info.samplerate, info.channels, info.format, info.subtype) == (
            SR,
            1,
            "OGG",
            "VORBIS",
        )
        ann = parse_annotation(
            path.read_text(encoding="utf-8"), str(path), validation=part == VALIDATION
        )
        if part == TRAINING:
            assert ann.columns == ["BUZ", "TRL", "CRK"]
        assert len(ann.rows) >= 4
        for _, s, e, values in ann.rows:
            assert 0.0 < s < e <= info.duration
            assert values.count("NEG") == len(values) - 1
            assert {v for v in values} - {"NEG"} <= {"POS", "UNK"}
        with open(path, newline="", encoding="utf-8") as f:
            assert {r["Audiofilename"] for r in csv.DictReader(f)} == {audio.name}
    table = (corpus / "DCASE2024_task5_validation_set_classes.csv").read_text().splitlines()
    assert table[0] == "dataset,recording,class_code,class_name"
    assert [r.split(",")[::2] for r in table[1:]] == [["WDL", "TWH"], ["MRS", "HST"]]


def test_annotations_match_the_synthesis_log(corpus: Path) -> None:
    log = _log(corpus)
    for part, path in _annotations(corpus):
        ann = parse_annotation(
            path.read_text(encoding="utf-8"), str(path), validation=part == VALIDATION
        )
        got = sorted((s, e, v) for _, s, e, vals in ann.rows for v in vals if v != "NEG")
        want = sorted(
            (float(r["start"]), float(r["end"]), r["label"])
            for r in log
            if r["recording"] == path.stem and r["label"] != "none"
        )
        assert got == want
        unk = [r for r in log if r["recording"] == path.stem and r["label"] == "UNK"]
        pos = [r for r in log if r["recording"] == path.stem and r["label"] == "POS"]
        assert all(float(r["snr_db"]) < BirdsConfig.unk_below_db for r in unk)
        assert all(float(r["snr_db"]) >= BirdsConfig.unk_below_db for r in pos)
    assert any(r["label"] == "none" for r in log)  # distractors exist


def _band_energy(x: np.ndarray, band: tuple[float, float]) -> tuple[np.ndarray, float]:
    """Band power per 10 ms frame (512-point Hann STFT) and the frame rate."""
    hop, nfft = 220, 512
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::hop] * np.hanning(nfft)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / SR)
    sel = (f >= band[0]) & (f <= band[1])
    return spec[:, sel].sum(axis=1), SR / hop


def test_annotated_calls_are_louder_in_their_band_than_around_them(corpus: Path) -> None:
    log = _log(corpus)
    ratios: list[float] = []
    for _, path in _annotations(corpus):
        x, _ = sf.read(path.with_suffix(".ogg"), dtype="float64")
        sounds = [(float(r["start"]), float(r["end"])) for r in log if r["recording"] == path.stem]
        for r in log:
            if r["recording"] != path.stem or r["label"] != "POS" or float(r["snr_db"]) < 3:
                continue
            s, e = float(r["start"]), float(r["end"])
            energy, rate = _band_energy(x, (float(r["band_low_hz"]), float(r["band_high_hz"])))
            w = min(0.3, max(0.1, e - s))
            flanks = [(s - 0.03 - w, s - 0.03), (e + 0.03, e + 0.03 + w)]
            clean = [
                (a, b)
                for a, b in flanks
                if a > 0
                and b * rate < len(energy) - 1
                and not any(a < e2 and b > s2 for s2, e2 in sounds)
            ]
            if not clean:
                continue
            inside = energy[int(s * rate) : int(e * rate) - 1].mean()
            outside = np.mean([energy[int(a * rate) : int(b * rate)].mean() for a, b in clean])
            ratios.append(float(inside / outside))
    assert len(ratios) >= 5
    assert min(ratios) > 1.2, sorted(ratios)[:5]
    assert float(np.median(ratios)) > 3.0


def test_rare_classes_survive_the_temporal_split() -> None:
    from demo_build.birds import _al_split_counts

    cfg = BirdsConfig()
    assert {s.classes[0] for s in cfg.validation} == set(CALL_TYPES)
    assert {c for s in cfg.training for c in s.classes} == set(CALL_TYPES) | set(EXTRA_TYPES)
    per_class: dict[str, int] = {}
    for i, spec in enumerate(cfg.validation):
        plan = plan_recording(cfg, VALIDATION, i)
        pos = [e for e in plan.annotated() if e.label == "POS"]
        assert all(e.kind == spec.classes[0] for e in plan.annotated())
        assert all(0 < e.t0 < e.t1 <= spec.seconds for e in plan.events)
        per_class[spec.classes[0]] = per_class.get(spec.classes[0], 0) + len(pos)
        if spec.classes[0] in RARE_TYPES:
            assert spec.events is not None and spec.events[0] <= len(pos) <= spec.events[1]
            train, valid, test = _al_split_counts(pos, spec.seconds)
            assert train >= 5 and valid >= 1 and test >= 1
    minutes = sum(s.seconds for s in cfg.validation) / 60
    assert 33 <= minutes <= 40
    assert all(8 <= per_class[c] <= 12 for c in RARE_TYPES)
    assert all(per_class[c] >= 40 for c in CALL_TYPES if c not in RARE_TYPES)


def test_prepare_dcase_reads_the_corpus(corpus: Path, tmp_path: Path) -> None:
    res = prepare_dcase(corpus, tmp_path / "prep")
    al = next(d for d in res.divisions if d.division == "al")
    sl = next(d for d in res.divisions if d.division == "sl")
    assert al.class_list == ["Tonal_whistle", "Harmonic_stack"]
    assert sl.class_list == ["Trill", "Buzz", "Croak"]
    log = _log(corpus)
    for div in (al, sl):
        pos = sum(sum(s.pos_events.values()) for s in div.splits.values())
        part = VALIDATION if div is al else TRAINING
        assert pos >= sum(1 for r in log if r["part"] == part and r["label"] == "POS")
    assert sum(s.clips for s in al.splits.values()) >= n_clips(20) + n_clips(24)
    hst = {k: v.pos_events["Harmonic_stack"] for k, v in al.splits.items()}
    assert all(v >= 1 for v in hst.values()), hst
    assert not res.notes


def test_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="does not hold"):
        build_birds(tmp_path, TINY)
    assert (tmp_path / "keep.txt").read_text() == "mine"
