"""prepare_recordings on tiny generated wav files: clip counts, ids, frame targets, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iml_tui.data.corpus import read_split
from iml_tui.data.recordings import n_clips, prepare_recordings
from iml_tui.errors import UserError

SR = 8000


def _wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * SR), dtype=np.float32), SR)


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    src = tmp_path / "rec"
    _wav(src / "a.wav", 4.0)  # clip 2, hop 1 -> 1 + ceil(2/1) = 3 clips
    _wav(src / "sub" / "b.wav", 1.5)  # shorter than a clip -> 1 clip
    return src


def test_n_clips_hand_values() -> None:
    assert n_clips(10.0, 10.0, 5.0) == 1
    assert n_clips(10.1, 10.0, 5.0) == 2
    assert n_clips(22.0, 10.0, 5.0) == 4
    assert n_clips(3.0, 10.0, 5.0) == 1


def test_clips_ids_and_frame_targets(rec: Path, tmp_path: Path) -> None:
    ann = tmp_path / "ann.csv"
    with open(ann, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "onset", "offset", "label"])
        w.writerow(["a.wav", 0.5, 1.2, "B"])
        w.writerow(["a.wav", 3.0, 3.4, "A"])
    out = tmp_path / "prep"
    prepare_recordings(rec, out, "A,B", clip=2.0, hop=1.0, labels=ann, frames=4)
    split = read_split(out)
    assert [r.id for r in split.rows] == ["a.wav@0", "a.wav@1", "a.wav@2", "sub/b.wav@0"]
    assert [r.offset for r in split.rows] == [0.0, 1.0, 2.0, 0.0]
    assert all(r.duration == 2.0 for r in split.rows)
    assert Path(split.rows[0].audio) == (rec / "a.wav").resolve()
    lab = split.labels
    assert lab.shape == (4, 4, 2)
    # frames of 0.5 s; B on [0.5, 1.2): clip@0 slots 1,2; clip@1 slot 0 ([1, 1.5))
    assert lab[0, :, 1].tolist() == [0, 1, 1, 0]
    assert lab[1, :, 1].tolist() == [1, 0, 0, 0]
    assert lab[2, :, 1].tolist() == [0, 0, 0, 0]
    # A on [3.0, 3.4): clip@1 slot 2 ([2, 2.5))? no: clip@1 covers [1, 3) -> none; clip@2 slot 2
    assert lab[1, :, 0].tolist() == [0, 0, 0, 0]
    assert lab[2, :, 0].tolist() == [0, 0, 1, 0]
    assert np.load(out / "labelled.npy").tolist() == [True, True, True, False]


def test_audacity_by_stem(rec: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "b.txt").write_text("0.0\t0.4\tA\n", encoding="utf-8")
    out = tmp_path / "prep"
    prepare_recordings(rec, out, "A,B", clip=2.0, hop=1.0, labels=labels, frames=4)
    split = read_split(out)
    assert split.labels[3, :, 0].tolist() == [1, 0, 0, 0]
    assert np.load(out / "labelled.npy").tolist() == [False, False, False, True]


RAVEN_HEADER = (
    "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
    "High Freq (Hz)\tAnnotation\n"
)


def test_raven_named_as_raven_names_it_with_whole_numbers(rec: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.Table.1.selections.txt").write_text(
        RAVEN_HEADER + "1\tSpectrogram 1\t1\t3\t4\t0\t4000\tA\n", encoding="utf-8"
    )
    out = tmp_path / "prep"
    prepare_recordings(rec, out, "A,B", clip=2.0, hop=1.0, labels=labels, frames=4)
    split = read_split(out)
    # A on [3, 4): clip@2 ([2, 4)) slots 2 and 3
    assert split.labels[2, :, 0].tolist() == [0, 0, 1, 1]
    assert np.load(out / "labelled.npy").tolist() == [True, True, True, False]


@pytest.mark.parametrize("table", ["b.txt", "b.Table.1.selections.txt"])
def test_an_empty_table_is_a_recording_without_events(
    rec: Path, tmp_path: Path, table: str
) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / table).write_text("" if table == "b.txt" else RAVEN_HEADER, encoding="utf-8")
    out = tmp_path / "prep"
    prepare_recordings(rec, out, "A,B", clip=2.0, hop=1.0, labels=labels, frames=4)
    split = read_split(out)
    assert not split.labels.any()  # known, and negative
    assert np.load(out / "labelled.npy").tolist() == [False, False, False, True]


@pytest.mark.parametrize(
    ("classes", "text"), [("A,,B", "empty class"), ("A,B,A", "more than once")]
)
def test_bad_classes(rec: Path, tmp_path: Path, classes: str, text: str) -> None:
    with pytest.raises(UserError, match=text):
        prepare_recordings(rec, tmp_path / "p", classes)


def test_no_audio(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio"):
        prepare_recordings(tmp_path / "empty", tmp_path / "p", "A")


def test_unknown_recording_and_class(rec: Path, tmp_path: Path) -> None:
    ann = tmp_path / "ann.csv"
    ann.write_text("file,onset,offset,label\nzzz.wav,0,1,A\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"zzz\.wav"):
        prepare_recordings(rec, tmp_path / "p", "A", labels=ann)
    ann.write_text("file,onset,offset,label\na.wav,0,1,Q\n", encoding="utf-8")
    with pytest.raises(UserError, match="'Q' is not in --classes"):
        prepare_recordings(rec, tmp_path / "p", "A", labels=ann)
