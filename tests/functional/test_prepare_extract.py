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
    res = runner.invoke(app, ["prepare", "dcase", "--source", str(src), "--out",
                              str(root / "prepared")])
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
    train, valid, test = (read_split(out / "al" / s) for s in ("train", "valid", "test"))
    assert train.info.class_list == AL_CLASSES
    assert (len(train.rows), len(valid.rows), len(test.rows)) == (6, 2, 4)
    assert [r.id for r in train.rows] == [
        "HB/HB_one.wav@0.000", "HB/HB_one.wav@5.000", "HB/HB_one.wav@10.000",
        "HB/HB_one.wav@15.000", "ME/ME1.wav@0.000", "RD/rd_1.wav@0.000"]
    assert [r.id for r in test.rows] == [
        "HB/HB_one.wav@31.500", "ME/ME1.wav@10.250", "ME/ME1.wav@15.250", "RD/rd_1.wav@7.500"]
    assert [(r.audio, r.offset, r.duration) for r in test.rows[1:3]] == [
        ("audio/ME/ME1.flac", 0.0, 10.0), ("audio/ME/ME1.flac", 5.0, 10.0)]
    mos, deer, alarm = 0, 1, 2
    assert _slots(train.labels, 0, mos) == [*range(6, 13), *range(18, 22)]
    assert _slots(train.labels, 3, mos) == list(range(15, 19))
    assert _slots(train.labels, 4, alarm) == list(range(3, 24))  # (1, 7.5) and (7, 7.5)
    assert _slots(train.labels, 5, deer) == list(range(6, 10))  # (2, 3)
    assert _slots(valid.labels, 1, alarm) == [0, 1, 2, 3]  # (0, 0.5) and (0, 1.0)
    assert _slots(test.labels, 1, alarm) == [5, 6, 7, 8, 30, 31]
    assert _slots(test.labels, 2, alarm) == [14, 15, 16]  # UNK (4.75, 5.75) gives nothing
    assert test.labels[3].sum() == 0 and valid.labels[:, :, deer].sum() == 0
    assert train.labels.max(axis=1).sum(axis=0).tolist() == [4, 1, 1]
    # pieces: 32 kHz mono FLAC, cut at the hand-computed points; RD has no valid piece
    for split, name, seconds in (("train", "HB/HB_one", 23.5), ("valid", "ME/ME1", 2.75),
                                 ("test", "ME/ME1", 14.75), ("test", "RD/rd_1", 4.5)):
        info = sf.info(str(out / "al" / split / "audio" / f"{name}.flac"))
        assert (info.samplerate, info.channels, info.frames) == (32000, 1, round(seconds * 32000))
    assert not (out / "al" / "valid" / "audio" / "RD").exists()
    me, sr = sf.read(str(out / "al" / "train" / "audio" / "ME" / "ME1.flac"))
    assert np.sqrt(np.mean(me[2 * sr:7 * sr] ** 2)) > 0.15  # channel 0 has the tone
    events = _rows(out / "al" / "valid" / "events.csv")
    assert [(e["piece"], float(e["start"]), float(e["end"]), e["value"]) for e in events] == [
        ("HB/HB_one", 0.0, 0.5, "UNK"), ("HB/HB_one", 2.5, 4.5, "POS"),
        ("ME/ME1", 0.0, 0.5, "POS"), ("ME/ME1", 0.0, 1.0, "POS")]
    stats = json.loads((out / "al" / "norm_stats.json").read_text())
    assert stats["frames"] == (1 + 752000 // 320) + 2 * (1 + 240000 // 320)
    assert np.isfinite(stats["mean"]) and stats["std"] > 0 and len(stats["band_mean"]) == 64
    assert train.info.extra["norm_mean"] == stats["mean"]


def test_prepare_dcase_sl_division_and_manifest(dcase: tuple[Path, Path, str]) -> None:
    _, out, _ = dcase
    train, valid = read_split(out / "sl" / "train"), read_split(out / "sl" / "valid")
    assert train.info.class_list == SL_CLASSES
    assert (len(train.rows), len(valid.rows)) == (5, 3)
    assert [r.id for r in valid.rows] == ["BV/bv_file_1.wav@13.500", "HT/h1.wav@6.500",
                                          "WMW/w_1.wav@11.000"]
    assert _slots(valid.labels, 0, 0) == list(range(10, 13))  # Bird_one (17, 17.5) -> (3.5, 4)
    assert valid.labels[1:].sum() == 0
    assert train.labels[3:, :, 2].max(axis=1).tolist() == [1, 1]  # merged Tachybaptus columns
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["divisions"]["al"]["dropped_files"] == ["PB/BUK5_20180921_015906a"]
    assert manifest["divisions"]["sl"]["dropped_classes"] == ["Anas_platyrhynchos_song"]
    assert manifest["divisions"]["sl"]["merged_classes"] == {
        "Tachybaptus_ruficollis_song": ["WMW/c_4", "WMW/c_5"]}
    assert manifest["divisions"]["al"]["counts"]["test"]["none_clips"] == 1
    summary = _rows(out / "al" / "summary.csv")
    assert {"division": "al", "split": "train", "class": "Mosquito", "positive_clips": "4",
            "pos_events": "5"} in summary


def test_prepare_dcase_from_zip_and_nested_zip_match_folder(
        dcase: tuple[Path, Path, str], tmp_path: Path) -> None:
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
        res = runner.invoke(app, ["prepare", "dcase", "--source", str(source), "--out",
                                  str(tmp_path / name), "--division", "al"])
        assert res.exit_code == 0, res.output
        for split in ("train", "valid", "test"):
            for f in ("clips.csv", "labels.npy"):
                assert (tmp_path / name / "al" / split / f).read_bytes() == \
                    (ref / "al" / split / f).read_bytes()
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
    proc = subprocess.run([sys.executable, "-m", "iml_tui.cli", "prepare", "dcase", "--source",
                           str(bad), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert f"{path}: line 3: Endtime 3 < Starttime 9" in proc.stderr


def test_unreadable_audio_in_a_zip_is_named_and_nothing_published(
        dcase: tuple[Path, Path, str], tmp_path: Path) -> None:
    src, _, _ = dcase
    bad = tmp_path / "src"
    shutil.copytree(src, bad)
    (bad / "Development_Set" / "Validation_Set" / "ME" / "ME1.wav").write_bytes(b"RIFFjunkWAVE")
    archive = zip_folder(bad, tmp_path / "bad.zip")
    res = runner.invoke(app, ["prepare", "dcase", "--source", str(archive), "--out",
                              str(tmp_path / "out"), "--division", "al"])
    assert isinstance(res.exception, UserError), res.output
    assert str(res.exception).startswith(
        f"{archive}:Development_Set/Validation_Set/ME/ME1.wav: cannot read audio")
    assert not (tmp_path / "out" / "al").exists()
    assert not (tmp_path / "out" / ".prepare_tmp").exists()


def test_extract_resumes_after_an_interrupt(dcase: tuple[Path, Path, str],
                                            tmp_path: Path) -> None:
    _, out, _ = dcase
    split = out / "al" / "train"
    store = tmp_path / "train.h5"

    def stop_after_two_chunks(label: str, done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(split, store, "mfcc-stats", batch_size=2,
                         progress=stop_after_two_chunks)
    chunks = tmp_path / "train.h5.chunks"
    assert sorted(p.name for p in chunks.glob("chunk_*.npz")) == [
        "chunk_000000000.npz", "chunk_000000002.npz"]
    assert not store.exists()
    res = runner.invoke(app, ["extract", "--input", str(split), "--out", str(store),
                              "--batch-size", "5"])
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


def test_extract_whole_corpus_with_tiny_cnn14(dcase: tuple[Path, Path, str],
                                              tmp_path: Path) -> None:
    from iml_tui.features.encoders import build_cnn14, checkpoint_hash, save_checkpoint

    _, out, _ = dcase
    ckpt = save_checkpoint(tmp_path / "tiny.pth", build_cnn14(widths=(4, 4, 8, 8, 8, 8)))
    res = runner.invoke(app, ["extract", "--input", str(out / "al"), "--out",
                              str(tmp_path / "pools"), "--encoder", "cnn14", "--checkpoint",
                              str(ckpt), "--batch-size", "4", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "pools").iterdir()) == [
        "test.h5", "train.h5", "valid.h5"]
    test = PoolStore(tmp_path / "pools" / "test.h5")
    assert (test.n, test.t, test.d) == (4, 32, 8)
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
    res = runner.invoke(app, ["prepare", "lid", "--source", str(src), "--out",
                              str(tmp_path / "lid")])
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
    assert sorted(Path(p).name for p in skipped) == ["common_voice_ka_9998.mp3",
                                                     "common_voice_tt_9999.mp3"]
    reasons = json.loads(store.attrs["skipped_reasons"])
    assert any("empty" in r for r in reasons.values())
    table = load_lid_split(tmp_path / "feats", ["mfcc"], "dev")
    assert table.class_list == ["hy-AM", "ka", "tt"] and table.x.shape == (6, 120)
    assert np.bincount(table.classes).tolist() == [2, 2, 2]
    assert PoolStore(feats / "train.h5").n == 6 and PoolStore(feats / "test.h5").n == 3


def test_vtd_corpus_prepare_extract_and_stream_layout(tmp_path: Path) -> None:
    src = make_vtd(tmp_path / "vtd")
    res = runner.invoke(app, ["prepare", "vtd", "--source", str(src), "--out",
                              str(tmp_path / "prep")])
    assert res.exit_code == 0, res.output
    rm1 = read_split(tmp_path / "prep" / "rm1_mc20")
    assert [r.id for r in rm1.rows][:5] == ["session0/0000", "session0/0001", "session0/0002",
                                            "session0/0003", "session1/0000"]
    assert rm1.labels[:, 0, 0].tolist() == [1, 0, 1, 1, 1, 0, 1, 1, 0]
    res = runner.invoke(app, ["extract", "--input", str(tmp_path / "prep"), "--out",
                              str(tmp_path / "feats" / "mfcc"), "--batch-size", "8"])
    assert res.exit_code == 0, res.output
    table = load_vtd_env(tmp_path / "feats", ["mfcc"], "hotel_mc19")
    assert table.sessions == ["session0", "session1"] and table.x.shape == (10, 120)
    assert table.classes.tolist() == [0, 1, 0, 1, 1] * 2
    with h5py.File(tmp_path / "feats" / "mfcc" / "rm1_mc20.h5") as f:
        assert f.attrs["clip_seconds"] == 5.0
