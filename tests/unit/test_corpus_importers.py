"""Common Voice and VTD importers, the split-folder format and the label matching of extract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iml_tui.data.commonvoice import language_from_name, prepare_lid, read_language_table
from iml_tui.data.corpus import ClipRow, SplitInfo, find_splits, read_split, write_split
from iml_tui.data.vtd import prepare_vtd, read_segment_labels
from iml_tui.errors import UserError
from iml_tui.features.extract import adapt_labels, output_paths


@pytest.mark.parametrize(
    ("name", "lang"),
    [
        ("common_voice_hy-AM_123.mp3", "hy-AM"),
        ("common_voice_ckb_20.wav", "ckb"),
        ("train/common_voice_bas_1_extra.mp3", "bas"),
        ("clip_42.mp3", None),
        ("a_b_c", None),
    ],
)
def test_language_from_the_third_token(name: str, lang: str | None) -> None:
    assert language_from_name(name) == lang


def test_language_table_csv_and_common_voice_tsv(tmp_path: Path) -> None:
    csv_path = tmp_path / "langs.csv"
    csv_path.write_text("Path,Language\ntrain/x.mp3,ha\ny.mp3,yo\n")
    assert read_language_table(csv_path) == {"train/x.mp3": "ha", "x.mp3": "ha", "y.mp3": "yo"}
    tsv = tmp_path / "validated.tsv"
    tsv.write_text("client_id\tpath\tsentence\tlocale\nabc\tz.mp3\thello\tkmr\n")
    assert read_language_table(tsv) == {"z.mp3": "kmr"}
    bad = tmp_path / "bad.csv"
    bad.write_text("file,lang\nq.mp3,\n")
    with pytest.raises(UserError, match="line 2: empty file or language"):
        read_language_table(bad)
    bad.write_text("name,code\nq.mp3,ha\n")
    with pytest.raises(UserError, match="line 1: columns"):
        read_language_table(bad)


def _tone(path: Path, seconds: float, sr: int = 16000) -> None:
    t = np.arange(round(seconds * sr)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)


def test_prepare_lid_with_mapping_table_and_missing_language(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "train").mkdir(parents=True)
    (src / "test").mkdir()
    for name in ("a.wav", "b.wav"):
        _tone(src / "train" / name, 0.5)
    _tone(src / "test" / "c.ogg", 0.5)
    table = tmp_path / "map.csv"
    table.write_text("file,lang\ntrain/a.wav,yo\nb.wav,ha\nc.ogg,yo\n")
    summary = prepare_lid(src, tmp_path / "out", table)
    assert summary.columns == ["language", "train", "test"]
    assert summary.rows == [["ha", 1, 0], ["yo", 1, 1], ["utterances", 2, 1]]
    train = read_split(tmp_path / "out" / "train")
    assert [r.id for r in train.rows] == ["train/a.wav", "train/b.wav"]
    assert train.labels[:, 0, :].tolist() == [[0, 1], [1, 0]]
    assert train.rows[0].duration is None and Path(train.rows[0].audio).is_absolute()
    with pytest.raises(UserError, match="no language in the file name"):
        prepare_lid(src, tmp_path / "out2")


def test_segment_labels_npy_and_csv(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.array([0, 1, 1]))
    assert read_segment_labels(tmp_path / "a.npy").tolist() == [0, 1, 1]
    (tmp_path / "b.csv").write_text("segment,start,label\n0,0,1\n1,5,0\n")
    assert read_segment_labels(tmp_path / "b.csv").tolist() == [1, 0]
    (tmp_path / "c.csv").write_text("1\n0\n\n1\n")
    assert read_segment_labels(tmp_path / "c.csv").tolist() == [1, 0, 1]
    (tmp_path / "d.csv").write_text("label\n1\n2\n")
    with pytest.raises(UserError, match=r"d\.csv: line 3: label '2', expected 0 or 1"):
        read_segment_labels(tmp_path / "d.csv")
    np.save(tmp_path / "e.npy", np.array([0, 0.5]))
    with pytest.raises(UserError, match="segment 1 has label"):
        read_segment_labels(tmp_path / "e.npy")


def test_prepare_vtd_rejects_more_labels_than_segments(tmp_path: Path) -> None:
    env = tmp_path / "src" / "rm1_mc20"
    env.mkdir(parents=True)
    _tone(env / "s0.wav", 9.0)  # two 5 s segments, the second partial
    np.save(env / "s0.npy", np.array([1, 0]))
    summary = prepare_vtd(tmp_path / "src", tmp_path / "out")
    assert summary.rows == [["rm1_mc20", 1, 2, 1]]
    split = read_split(tmp_path / "out" / "rm1_mc20")
    assert [(r.id, r.offset, r.duration) for r in split.rows] == [
        ("s0/0000", 0.0, 5.0),
        ("s0/0001", 5.0, 5.0),
    ]
    np.save(env / "s0.npy", np.array([1, 0, 1]))
    with pytest.raises(UserError, match="3 labels but the audio has 2 segments"):
        prepare_vtd(tmp_path / "src", tmp_path / "out")
    (env / "s0.npy").unlink()
    with pytest.raises(UserError, match="no labels for this session"):
        prepare_vtd(tmp_path / "src", tmp_path / "out")


def test_split_folder_round_trip_and_errors(tmp_path: Path) -> None:
    info = SplitInfo(kind="x", class_list=["a", "b"], frames=2, clip_seconds=1.5)
    rows = [ClipRow("c0", "audio/x.flac", 0.25, 1.5), ClipRow("c1", "/abs/y.wav")]
    lab = np.array([[[1, 0], [0, 0]], [[0, 1], [1, 1]]], dtype=np.uint8)
    write_split(tmp_path / "s", info, rows, lab)
    split = read_split(tmp_path / "s")
    assert split.rows == rows and split.info == info
    np.testing.assert_array_equal(split.labels, lab)
    assert split.audio_path(rows[0]) == tmp_path / "s" / "audio" / "x.flac"
    assert find_splits(tmp_path) == [tmp_path / "s"]
    with pytest.raises(ValueError, match="do not match"):
        write_split(tmp_path / "t", info, rows[:1], lab)
    (tmp_path / "s" / "clips.csv").write_text("id,audio,offset,duration\nc0,a,zero,1\n")
    with pytest.raises(UserError, match=r"clips\.csv: line 2: bad number"):
        read_split(tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no prepared split"):
        find_splits(tmp_path / "empty")


def test_adapt_labels_and_output_paths(tmp_path: Path) -> None:
    lab = np.zeros((2, 4, 1), dtype=np.uint8)
    lab[0, 3, 0] = 1
    assert adapt_labels(lab, 1)[:, 0, 0].tolist() == [1, 0]
    assert adapt_labels(lab, 2)[0, :, 0].tolist() == [0, 1]
    assert adapt_labels(lab[:, :1], 3).shape == (2, 3, 1)
    with pytest.raises(UserError, match="T = 3"):
        adapt_labels(lab, 3)
    info = SplitInfo(kind="x", class_list=["a"], frames=1)
    for name in ("al/train", "al/valid"):
        write_split(
            tmp_path / "corpus" / name, info, [ClipRow("c", "a.wav")], np.zeros((1, 1, 1), np.uint8)
        )
    assert output_paths(tmp_path / "corpus", tmp_path / "pools") == [
        (tmp_path / "corpus" / "al" / "train", tmp_path / "pools" / "al" / "train.h5"),
        (tmp_path / "corpus" / "al" / "valid", tmp_path / "pools" / "al" / "valid.h5"),
    ]
    assert output_paths(tmp_path / "corpus" / "al" / "train", tmp_path / "p.h5") == [
        (tmp_path / "corpus" / "al" / "train", tmp_path / "p.h5")
    ]
    with pytest.raises(UserError, match="--out must be a folder"):
        output_paths(tmp_path / "corpus", tmp_path / "pool.h5")
