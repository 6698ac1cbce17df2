"""Raven and Audacity tables written through crowsetta read back through crowsetta."""

from pathlib import Path

from crowsetta.formats.bbox.raven import Raven
from crowsetta.formats.seq.audseq import AudSeq

from iml_tui.data.detection_tables import write_audacity, write_raven

EVENTS = [(0.5, 1.25, "a"), (2.0, 3.0, "b")]


def test_raven_header_and_round_trip(tmp_path: Path) -> None:
    path = write_raven(tmp_path / "rec.Table.1.selections.txt", EVENTS, 8000.0)
    header = path.read_text().splitlines()[0].split("\t")
    assert header == [
        "Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
        "Low Freq (Hz)", "High Freq (Hz)", "Annotation",
    ]  # fmt: skip
    back = Raven.from_file(path, annot_col="Annotation")
    assert list(back.df["annotation"]) == ["a", "b"]
    assert list(back.df["begin_time_s"]) == [0.5, 2.0]
    assert list(back.df["end_time_s"]) == [1.25, 3.0]


def test_audacity_round_trip(tmp_path: Path) -> None:
    path = write_audacity(tmp_path / "rec.txt", EVENTS)
    back = AudSeq.from_file(path)
    assert list(back.labels) == ["a", "b"]
    assert list(back.start_times) == [0.5, 2.0]
    assert list(back.end_times) == [1.25, 3.0]
