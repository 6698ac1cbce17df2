"""Detections -> Raven selection tables and Audacity label files, written through crowsetta.

Raven tables are tab-separated with the standard header (Selection, View, Channel,
Begin Time (s), End Time (s), Low Freq (Hz), High Freq (Hz), Annotation); times in seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from crowsetta.formats.bbox.raven import Raven
from crowsetta.formats.seq.audseq import AudSeq

from iml_tui.atomic import atomic_write_bytes


def _write_via_tmp(path: Path, write: object) -> Path:
    """Let a crowsetta writer fill a temporary file, then move its bytes in atomically."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / path.name
        write(tmp_path)  # type: ignore[operator]
        return atomic_write_bytes(path, tmp_path.read_bytes())


Row = tuple[float, float, str]
"""One event: onset (s), offset (s), class name."""


def write_raven(path: str | Path, events: Sequence[Row], high_freq_hz: float) -> Path:
    """One Raven selection table (``.txt``) of ``events``; the band spans 0..high_freq_hz."""
    path = Path(path)
    df = pd.DataFrame(
        {
            "Selection": np.arange(1, len(events) + 1, dtype=np.int64),
            "View": ["Spectrogram 1"] * len(events),
            "Channel": np.ones(len(events), dtype=np.int64),
            "begin_time_s": [e[0] for e in events],
            "end_time_s": [e[1] for e in events],
            "low_freq_hz": np.zeros(len(events)),
            "high_freq_hz": np.full(len(events), float(high_freq_hz)),
            "annotation": [e[2] for e in events],
        }
    )
    raven = Raven(df=df, annot_path=path, annot_col="Annotation")
    return _write_via_tmp(path, raven.to_file)


def write_audacity(path: str | Path, events: Sequence[Row]) -> Path:
    """One Audacity label file (``.txt``, onset<TAB>offset<TAB>label) of ``events``."""
    path = Path(path)
    aud = AudSeq(
        start_times=np.array([e[0] for e in events], dtype=np.float64),
        end_times=np.array([e[1] for e in events], dtype=np.float64),
        labels=np.array([e[2] for e in events], dtype=object),
        annot_path=path,
    )
    return _write_via_tmp(path, aud.to_file)
