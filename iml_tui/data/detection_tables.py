"""Detections -> Raven selection tables and Audacity label files, written through crowsetta.

Raven tables are tab-separated with the standard header (Selection, View, Channel,
Begin Time (s), End Time (s), Low Freq (Hz), High Freq (Hz), Annotation); times in seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from crowsetta.formats.bbox.raven import Raven
from crowsetta.formats.seq.audseq import AudSeq

from iml_tui.atomic import atomic_write_bytes


def _render(name: str, write: Callable[[Path], object]) -> bytes:
    """Let a crowsetta writer fill a temporary file named ``name``; its bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / name
        write(tmp_path)
        return tmp_path.read_bytes()


Row = tuple[float, float, str]
"""One event: onset (s), offset (s), class name."""


def raven_bytes(
    events: Sequence[Row],
    high_freq_hz: float,
    extra: Mapping[str, Sequence[object]] | None = None,
    name: str = "table.Table.1.selections.txt",
) -> bytes:
    """A Raven selection table of ``events`` (the band spans 0..high_freq_hz); ``extra``:
    more columns (name -> one value per event), after End Time ... High Freq, around
    Annotation as :data:`EXTRA_BEFORE_ANNOTATION` says."""
    extra = dict(extra or {})
    n = len(events)
    cols: dict[str, object] = {
        "Selection": np.arange(1, n + 1, dtype=np.int64),
        "View": ["Spectrogram 1"] * n,
        "Channel": np.ones(n, dtype=np.int64),
        "begin_time_s": [e[0] for e in events],
        "end_time_s": [e[1] for e in events],
        "low_freq_hz": np.zeros(n),
        "high_freq_hz": np.full(n, float(high_freq_hz)),
    }
    for key in EXTRA_BEFORE_ANNOTATION:
        if key in extra:
            cols[key] = list(extra.pop(key))
    cols["annotation"] = [e[2] for e in events]
    cols.update({k: list(v) for k, v in extra.items()})
    raven = Raven(df=pd.DataFrame(cols), annot_path=Path(name), annot_col="Annotation")
    return _render(name, raven.to_file)


EXTRA_BEFORE_ANNOTATION = ("Begin File", "File Offset (s)")
"""Extra Raven columns that go before Annotation (Raven's own order); others follow it."""


def audacity_bytes(events: Sequence[Row]) -> bytes:
    """An Audacity label file (onset<TAB>offset<TAB>label per line) of ``events``."""
    aud = AudSeq(
        start_times=np.array([e[0] for e in events], dtype=np.float64),
        end_times=np.array([e[1] for e in events], dtype=np.float64),
        labels=np.array([e[2] for e in events], dtype=object),
        annot_path=Path("labels.txt"),
    )
    return _render("labels.txt", aud.to_file)


def write_raven(path: str | Path, events: Sequence[Row], high_freq_hz: float) -> Path:
    """One Raven selection table (``.txt``) of ``events``; the band spans 0..high_freq_hz."""
    path = Path(path)
    return atomic_write_bytes(path, raven_bytes(events, high_freq_hz, name=path.name))


def write_audacity(path: str | Path, events: Sequence[Row]) -> Path:
    """One Audacity label file (``.txt``, onset<TAB>offset<TAB>label) of ``events``."""
    return atomic_write_bytes(Path(path), audacity_bytes(events))
