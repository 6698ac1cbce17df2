"""Drive `iml-tui prepare dcase|lid|vtd` and `iml-tui extract` on small generated corpora in the
real layouts (tests/audio_corpora.py holds the hand-computed facts)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from audio_corpora import (
    AL_CLASSES,
    SL_CLASSES,
    make_commonvoice,
    make_dcase_dev,
    make_vtd,
    zip_folder,
)
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.corpus import read_split
from iml_tui.data.store import PoolStore
from iml_tui.data.stream_data import load_lid_split, load_vtd_env
from iml_tui.errors import UserError
from iml_tui.features.extract import extract_features

runner = CliRunner()


@pytest.fixture(scope="module")
def dcase(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(generated source folder, prepared folder, CLI output) — prepared once, both divisions."""
    root = tmp_path_factory.mktemp("dcase")
    src = make_dcase_dev(root / "src")
    res = runner.invoke(
        app, ["prepare", "dcase", "--source", str(src), "--out", str(root / "prepared")]
    )
    assert res.exit_code == 0, res.output
    return src, root / "prepared", res.output


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _slots(lab: np.ndarray, clip: int, cls: int) -> list[int]:
    return [int(k) for k in np.flatnonzero(lab[clip, :, cls])]


def test_prepare_dcase_counts_labels_and_audio(dcase: tuple[Path, Path, str]) -> None:
    _, out, output = dcase
    assert "AL: positive clips per class and split" in output and "Meerkat_alarm_call" in output
    assert "SL: positive clips per class and split" in output and "Hyena_giggle" in output
    # ME (last gap) and RD (one event) used a fallback; HB's train cut lies in (10,12) (11,13)
    assert "2 of 3 files used a fallback" in output
    cuts = _rows(out / "al" / "cuts.csv")
    assert [
        (
            c["file"],
            c["cut_train_end"],
            c["cut_valid_end"],
            c["rule_train_end"],
            c["rule_valid_end"],
            c["overlap_train_end"],
            c["overlap_valid_end"],
        )
        for c in cuts
    ] == [
        ("HB_one.wav", "11.500000", "16.500000", "rule", "rule", "1", "0"),
        ("ME1.wav", "16.500000", "16.500000", "last-gap", "last-gap", "0", "0"),
        ("rd_1.wav", "2.700000", "2.850000", "one-event", "one-event", "0", "0"),
    ]
    train, valid, test = (read_split(out / "al" / s) for s in ("train", "valid", "test"))
    assert train.info.class_list == AL_CLASSES
    assert (len(train.rows), len(valid.rows), len(test.rows)) == (6, 2, 6)
    assert [r.id for r in train.rows] == [
        "HB/HB_one.wav@0.000",
        "HB/HB_one.wav@5.000",
        "ME/ME1.wav@0.000",
        "ME/ME1.wav@5.000",
        "ME/ME1.wav@10.000",
        "RD/rd_1.wav@0.000",
    ]
    assert [r.id for r in valid.rows] == ["HB/HB_one.wav@11.500", "RD/rd_1.wav@2.700"]
    assert [r.id for r in test.rows] == [
        "HB/HB_one.wav@16.500",
        "HB/HB_one.wav@21.500",
        "HB/HB_one.wav@26.500",
        "HB/HB_one.wav@31.500",
        "ME/ME1.wav@16.500",
        "RD/rd_1.wav@2.850",
    ]
    assert [(r.audio, r.offset, r.duration) for r in test.rows[3:5]] == [
        ("audio/HB/HB_one.flac", 15.0, 10.0),
        ("audio/ME/ME1.flac", 0.0, 10.0),
    ]
    mos, deer, alarm = 0, 1, 2
    # slot k = [0.32 k - 0.005, 0.32 (k + 1) - 0.005] s
    assert _slots(train.labels, 0, mos) == [*range(6, 13), *range(18, 22)]
    # HB@5 of the 11.5 s piece: (6,7) -> (1,2); (10,11.5) -> (5,6.5); (11,11.5) -> (6,6.5)
    assert _slots(train.labels, 1, mos) == [*range(3, 7), *range(15, 21)]
    assert _slots(train.labels, 2, alarm) == list(range(3, 29))  # (1, 9) and (7, 8.5)
    assert _slots(train.labels, 3, alarm) == [*range(0, 13), *range(21, 26)]  # (-4,4) (7,8)
    assert _slots(train.labels, 4, alarm) == [6, 7, 8, 9]  # (12,13) -> (2,3); UNK (5,6) nothing
    assert _slots(train.labels, 5, deer) == [6, 7, 8]  # (2, 2.7)
    assert _slots(valid.labels, 0, mos) == [0, 1, 2, 3, 4]  # (0, 0.5) and (0, 1.5)
    assert _slots(valid.labels, 1, deer) == [0]  # (0, 0.15)
    # HB test piece from 16.5: (20,21) -> (3.5,4.5), (26,28) -> (9.5,11.5); UNK (6.5,7.5)
    assert _slots(test.labels, 0, mos) == [*range(10, 15), 29, 30, 31]
    assert _slots(test.labels, 4, alarm) == [10, 11, 12]  # (20, 20.5) -> (3.5, 4)
    assert _slots(test.labels, 5, deer) == [0]  # (2,3) crosses both cuts: (0, 0.15)
    assert train.labels.max(axis=1).sum(axis=0).tolist() == [2, 1, 3]
    # pieces: 32 kHz mono FLAC, cut at the hand-computed points; ME has no valid piece
    for split, name, seconds in (
        ("train", "HB/HB_one", 11.5),
        ("valid", "HB/HB_one", 5.0),
        ("train", "ME/ME1", 16.5),
        ("test", "ME/ME1", 8.5),
        ("valid", "RD/rd_1", 0.15),
        ("test", "RD/rd_1", 9.15),
    ):
        info = sf.info(str(out / "al" / split / "audio" / f"{name}.flac"))
        assert (info.samplerate, info.channels, info.frames) == (32000, 1, round(seconds * 32000))
    assert not (out / "al" / "valid" / "audio" / "ME").exists()
    me, sr = sf.read(str(out / "al" / "train" / "audio" / "ME" / "ME1.flac"))
    assert np.sqrt(np.mean(me[2 * sr : 7 * sr] ** 2)) > 0.15  # channel 0 has the tone
    events = _rows(out / "al" / "valid" / "events.csv")
    assert [(e["piece"], float(e["start"]), float(e["end"]), e["value"]) for e in events] == [
        ("HB/HB_one", 0.0, 0.5, "POS"),
        ("HB/HB_one", 0.0, 1.5, "POS"),
        ("RD/rd_1", 0.0, 0.15, "POS"),
    ]
    stats = json.loads((out / "al" / "norm_stats.json").read_text())
    # train pieces 11.5 / 16.5 / 2.7 s at 32 kHz, centred frames every 320 samples
    assert stats["frames"] == (1 + 368000 // 320) + (1 + 528000 // 320) + (1 + 86400 // 320)
    assert np.isfinite(stats["mean"]) and stats["std"] > 0 and len(stats["band_mean"]) == 64
    assert train.info.extra["norm_mean"] == stats["mean"]


def test_prepare_dcase_sl_division_and_manifest(dcase: tuple[Path, Path, str]) -> None:
    _, out, _ = dcase
    train, valid = read_split(out / "sl" / "train"), read_split(out / "sl" / "valid")
    assert train.info.class_list == SL_CLASSES
    assert (len(train.rows), len(valid.rows)) == (4, 4)
    assert [r.id for r in valid.rows] == [
        "BV/bv_file_1.wav@13.500",
        "HT/h1.wav@1.800",
        "WMW/w_1.wav@1.750",
        "WMW/w_1.wav@6.750",
    ]
    assert _slots(valid.labels, 0, 0) == list(range(10, 13))  # Bird_one (17, 17.5) -> (3.5, 4)
    assert _slots(valid.labels, 1, 1) == [0]  # Hyena (1, 2) -> (0, 0.2)
    # merged Tachybaptus columns: c_4 (0.5,1.5) in train, c_5 (2,3) -> (0.25,1.25) in valid;
    # c_4 (9,10) -> (7.25, 8.25)
    assert _slots(train.labels, 3, 2) == [*range(1, 5)]
    assert _slots(valid.labels, 2, 2) == [*range(0, 4), *range(22, 26)]
    assert _slots(valid.labels, 3, 2) == [7, 8, 9, 10]
    assert valid.labels[:, :, 0].sum(axis=1).tolist() == [3, 0, 0, 0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["divisions"]["al"]["dropped_files"] == ["PB/BUK5_20180921_015906a"]
    assert manifest["divisions"]["sl"]["dropped_classes"] == ["Anas_platyrhynchos_song"]
    assert manifest["divisions"]["sl"]["merged_classes"] == {
        "Tachybaptus_ruficollis_song": ["WMW/c_4", "WMW/c_5"]
    }
    assert manifest["divisions"]["al"]["counts"]["test"]["none_clips"] == 0
    assert manifest["divisions"]["al"]["split_fallback_files"] == 2
    assert manifest["divisions"]["al"]["split_cuts"]["train|valid"] == {
        "rule": 1,
        "last-gap": 1,
        "one-event": 1,
        "no-pos": 0,
        "fallback": 2,
        "overlap": 1,
        "files": 3,
    }
    assert manifest["divisions"]["sl"]["split_cuts"]["train|valid"] == {
        "rule": 1,
        "last-gap": 1,
        "one-event": 1,
        "no-pos": 0,
        "fallback": 2,
        "overlap": 0,
        "files": 3,
    }
    summary = _rows(out / "al" / "summary.csv")
    # train: (2,4) (6,7) (10,11.5) (11,11.5)
    assert {
        "division": "al",
        "split": "train",
        "class": "Mosquito",
        "positive_clips": "2",
        "pos_events": "4",
    } in summary


def test_prepare_dcase_from_zip_and_nested_zip_match_folder(
    dcase: tuple[Path, Path, str], tmp_path: Path
) -> None:
    src, ref, _ = dcase
    flat = zip_folder(src, tmp_path / "source.zip")
    inner = tmp_path / "inner"
    inner.mkdir()
    zip_folder(src, inner / "Development_set.zip")
    for table in src.glob("*.csv"):
        shutil.copy(table, inner / table.name)
    nested = tmp_path / "files-archive.zip"
    with zipfile.ZipFile(nested, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(inner.iterdir()):
            zf.write(p, p.name)
    for source, name in ((flat, "z1"), (nested, "z2")):
        res = runner.invoke(
            app,
            [
                "prepare",
                "dcase",
                "--source",
                str(source),
                "--out",
                str(tmp_path / name),
                "--division",
                "al",
            ],
        )
        assert res.exit_code == 0, res.output
        for split in ("train", "valid", "test"):
            for f in ("clips.csv", "labels.npy"):
                assert (tmp_path / name / "al" / split / f).read_bytes() == (
                    ref / "al" / split / f
                ).read_bytes()
        assert not (tmp_path / name / "sl").exists()
        assert not (tmp_path / name / ".prepare_tmp").exists()


def test_malformed_csv_is_one_line_exit_2(dcase: tuple[Path, Path, str], tmp_path: Path) -> None:
    src, _, _ = dcase
    bad = tmp_path / "src"
    shutil.copytree(src, bad)
    path = bad / "Development_Set" / "Validation_Set" / "ME" / "ME1.csv"
    lines = path.read_text().splitlines()
    lines[2] = "ME1.wav,9.0,3.0,POS"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "iml_tui.cli",
            "prepare",
            "dcase",
            "--source",
            str(bad),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert f"{path}: line 3: Endtime 3 < Starttime 9" in proc.stderr


def test_unreadable_audio_in_a_zip_is_named_and_nothing_published(
    dcase: tuple[Path, Path, str], tmp_path: Path
) -> None:
    src, _, _ = dcase
    bad = tmp_path / "src"
    shutil.copytree(src, bad)
    (bad / "Development_Set" / "Validation_Set" / "ME" / "ME1.wav").write_bytes(b"RIFFjunkWAVE")
    archive = zip_folder(bad, tmp_path / "bad.zip")
    res = runner.invoke(
        app,
        [
            "prepare",
            "dcase",
            "--source",
            str(archive),
            "--out",
            str(tmp_path / "out"),
            "--division",
            "al",
        ],
    )
    assert isinstance(res.exception, UserError), res.output
    assert str(res.exception).startswith(
        f"{archive}:Development_Set/Validation_Set/ME/ME1.wav: cannot read audio"
    )
    assert not (tmp_path / "out" / "al").exists()
    assert not (tmp_path / "out" / ".prepare_tmp").exists()


@pytest.mark.parametrize("damage", ["one_sample", "nan", "inf"])
def test_short_or_nonfinite_recordings_are_reported_and_skipped(
    dcase: tuple[Path, Path, str], tmp_path: Path, damage: str
) -> None:
    src, good, _ = dcase
    bad = tmp_path / "src"
    shutil.copytree(src, bad)
    wav = bad / "Development_Set" / "Validation_Set" / "RD" / "rd 1.wav"
    if damage == "one_sample":
        sf.write(wav, np.full(1, 0.1, np.float32), 32000, subtype="PCM_16")
    else:
        x, sr = sf.read(wav, dtype="float32")
        x[sr * 3] = np.nan if damage == "nan" else np.inf
        sf.write(wav, x, sr, subtype="FLOAT")
    res = runner.invoke(
        app,
        [
            "prepare",
            "dcase",
            "--source",
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "--division",
            "al",
        ],
    )
    assert res.exit_code == 3, res.output
    why = "1 sample(s)" if damage == "one_sample" else "NaN or inf samples (from 3.000 s)"
    assert f"skipped: {wav}: " in res.output and why in res.output
    assert "1 recording(s) skipped" in res.output
    # the others are prepared as without it; no piece of the skipped one is left
    ids = [
        r.id
        for s in ("train", "valid", "test")
        for r in read_split(tmp_path / "out" / "al" / s).rows
    ]
    assert ids and not any(i.startswith("RD/") for i in ids)
    assert not list((tmp_path / "out" / "al").rglob("rd_1.flac"))
    kept = [r.id for s in ("train", "valid", "test") for r in read_split(good / "al" / s).rows]
    assert ids == [i for i in kept if not i.startswith("RD/")]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["divisions"]["al"]["recordings"] == 2
    assert len(manifest["divisions"]["al"]["skipped_recordings"]) == 1


def test_unknown_class_code_names_the_file(dcase: tuple[Path, Path, str], tmp_path: Path) -> None:
    src, _, _ = dcase
    bad = tmp_path / "src"
    shutil.copytree(src, bad)
    csv_path = bad / "Development_Set" / "Training_Set" / "HT" / "h1.csv"
    text = csv_path.read_text().splitlines()
    text[0] = text[0].replace("AAA", "ZZZ")
    csv_path.write_text("\n".join(text) + "\n")
    res = runner.invoke(
        app,
        [
            "prepare",
            "dcase",
            "--source",
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "--division",
            "sl",
        ],
    )
    assert isinstance(res.exception, UserError), res.output
    msg = str(res.exception)
    assert msg.startswith(f"{csv_path}: class code 'ZZZ' is not in DCASE2024_task5_training_set")
    assert "\n" not in msg and not (tmp_path / "out" / "sl").exists()


def test_extract_resumes_after_an_interrupt(dcase: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, out, _ = dcase
    split = out / "al" / "train"
    store = tmp_path / "train.h5"

    def stop_after_two_chunks(label: str, done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(split, store, "mfcc-stats", batch_size=2, progress=stop_after_two_chunks)
    chunks = tmp_path / "train.h5.chunks"
    assert sorted(p.name for p in chunks.glob("chunk_*.npz")) == [
        "chunk_000000000.npz",
        "chunk_000000002.npz",
    ]
    assert not store.exists()
    res = runner.invoke(
        app, ["extract", "--input", str(split), "--out", str(store), "--batch-size", "5"]
    )
    assert res.exit_code == 0, res.output
    assert "6 of 6 clips, 2 chunk(s) resumed" in res.output and "clips/s" in res.output
    assert not chunks.exists()
    fresh = extract_features(split, tmp_path / "fresh.h5", "mfcc-stats", batch_size=6)
    assert fresh.outputs[0].resumed_chunks == 0
    a, b = PoolStore(store), PoolStore(tmp_path / "fresh.h5")
    np.testing.assert_allclose(a.embeddings(), b.embeddings(), rtol=1e-5, atol=1e-5)
    assert a.ids == b.ids == [r.id for r in read_split(split).rows]
    assert (a.t, a.d, a.class_list) == (1, 120, AL_CLASSES)
    assert a.clip_labels().tolist() == read_split(split).labels.max(axis=1).tolist()
    assert a.attrs["encoder"] == "mfcc-stats" and json.loads(a.attrs["skipped"]) == []


def test_extract_whole_corpus_with_tiny_cnn14(
    dcase: tuple[Path, Path, str], tmp_path: Path
) -> None:
    from iml_tui.features.encoders import build_cnn14, checkpoint_hash, save_checkpoint

    _, out, _ = dcase
    ckpt = save_checkpoint(tmp_path / "tiny.pth", build_cnn14(widths=(4, 4, 8, 8, 8, 8)))
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(out / "al"),
            "--out",
            str(tmp_path / "pools"),
            "--encoder",
            "cnn14",
            "--checkpoint",
            str(ckpt),
            "--batch-size",
            "4",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "pools").iterdir()) == [
        "test.h5",
        "train.h5",
        "valid.h5",
    ]
    test = PoolStore(tmp_path / "pools" / "test.h5")
    assert (test.n, test.t, test.d) == (6, 32, 8)
    assert test.attrs["checkpoint_hash"] == checkpoint_hash(ckpt)
    assert test.frame_labels().tolist() == read_split(out / "al" / "test").labels.tolist()
    described = json.loads(test.attrs["encoder_description"])
    stats = json.loads((out / "al" / "norm_stats.json").read_text())
    assert described["settings"]["normalisation"] == "given"
    assert described["settings"]["norm_mean"][0] == pytest.approx(stats["mean"], rel=1e-6)


def test_lid_corpus_prepare_extract_skip_and_stream_layout(tmp_path: Path) -> None:
    src = make_commonvoice(tmp_path / "cv")
    (src / "dev" / "common_voice_ka_9998.mp3").write_bytes(b"not an mp3 at all" * 10)
    (src / "dev" / "common_voice_tt_9999.mp3").write_bytes(b"")
    res = runner.invoke(
        app, ["prepare", "lid", "--source", str(src), "--out", str(tmp_path / "lid")]
    )
    assert res.exit_code == 0, res.output
    assert "utterances per language" in res.output
    dev = read_split(tmp_path / "lid" / "dev")
    assert dev.info.class_list == ["hy-AM", "ka", "tt"] and len(dev.rows) == 8
    assert dev.rows[0].id == "dev/common_voice_hy-AM_1006.mp3"
    feats = tmp_path / "feats" / "mfcc"
    res = runner.invoke(app, ["extract", "--input", str(tmp_path / "lid"), "--out", str(feats)])
    assert res.exit_code == 3, res.output
    assert "common_voice_ka_9998.mp3" in res.output and "common_voice_tt_9999.mp3" in res.output
    store = PoolStore(feats / "dev.h5")
    assert store.n == 6 and (store.t, store.c) == (1, 3)
    skipped = json.loads(store.attrs["skipped"])
    assert sorted(Path(p).name for p in skipped) == [
        "common_voice_ka_9998.mp3",
        "common_voice_tt_9999.mp3",
    ]
    reasons = json.loads(store.attrs["skipped_reasons"])
    assert any("empty" in r for r in reasons.values())
    table = load_lid_split(tmp_path / "feats", ["mfcc"], "dev")
    assert table.class_list == ["hy-AM", "ka", "tt"] and table.x.shape == (6, 120)
    assert np.bincount(table.classes).tolist() == [2, 2, 2]
    assert PoolStore(feats / "train.h5").n == 6 and PoolStore(feats / "test.h5").n == 3


def test_vtd_corpus_prepare_extract_and_stream_layout(tmp_path: Path) -> None:
    src = make_vtd(tmp_path / "vtd")
    res = runner.invoke(
        app, ["prepare", "vtd", "--source", str(src), "--out", str(tmp_path / "prep")]
    )
    assert res.exit_code == 0, res.output
    rm1 = read_split(tmp_path / "prep" / "rm1_mc20")
    assert [r.id for r in rm1.rows][:5] == [
        "session0/0000",
        "session0/0001",
        "session0/0002",
        "session0/0003",
        "session1/0000",
    ]
    assert rm1.labels[:, 0, 0].tolist() == [1, 0, 1, 1, 1, 0, 1, 1, 0]
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(tmp_path / "prep"),
            "--out",
            str(tmp_path / "feats" / "mfcc"),
            "--batch-size",
            "8",
        ],
    )
    assert res.exit_code == 0, res.output
    table = load_vtd_env(tmp_path / "feats", ["mfcc"], "hotel_mc19")
    assert table.sessions == ["session0", "session1"] and table.x.shape == (10, 120)
    assert table.classes.tolist() == [0, 1, 0, 1, 1] * 2
    with h5py.File(tmp_path / "feats" / "mfcc" / "rm1_mc20.h5") as f:
        assert f.attrs["clip_seconds"] == 5.0
