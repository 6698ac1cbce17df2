"""A folder of the user's own recordings -> one prepared split for ``extract``.

Every audio file under the source folder is cut into clips of ``clip`` seconds every ``hop``
seconds (``1 + max(0, ceil((d - clip) / hop))`` clips, the last zero-padded by ``extract``); clip
ids are ``<path relative to the source>@<offset>``. ``clips.csv`` points at the source files with
the offset (no audio is copied). Annotations (Raven selection tables, Audacity label files, or a
CSV ``file,onset,offset,label``) give (N, T, C) frame targets: frame ``j`` of a clip covers
``[offset + j * clip / T, offset + (j + 1) * clip / T)`` and is 1 where an event overlaps it.
Clips of recordings without annotations are unknown: ``labelled.npy`` (N,) bool marks the others.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from iml_tui.audio import io as audio_io
from iml_tui.data.corpus import ClipRow, SplitInfo, SummaryTable, write_split
from iml_tui.errors import UserError

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
LABEL_FORMATS = ("raven", "audacity", "csv")


@dataclass(frozen=True)
class Event:
    """One annotated event: recording key (path relative to the source or its stem), seconds."""

    recording: str
    onset: float
    offset: float
    label: str
    where: str


def n_clips(duration: float, clip: float, hop: float) -> int:
    """Clips of a recording of ``duration`` seconds."""
    return 1 + max(0, math.ceil((duration - clip) / hop - 1e-9))


def parse_classes(text: str) -> list[str]:
    """Comma-separated class names; UserError on an empty or repeated name."""
    names = [c.strip() for c in text.split(",")]
    if not names or any(not c for c in names):
        raise UserError(
            f"empty class name in {text!r}", None, 'give --classes as "A,B,C" without empty entries'
        )
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise UserError(
            f"class named more than once: {', '.join(dup)}",
            None,
            "list each class once in --classes",
        )
    return names


def audio_files(source: Path) -> list[Path]:
    """Audio files under ``source`` (sorted, hidden files skipped)."""
    return sorted(
        p
        for p in source.rglob("*")
        if p.is_file()
        and p.suffix.lower() in AUDIO_EXTS
        and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )


def detect_format(path: Path) -> str:
    """``raven``, ``audacity`` or ``csv`` from the file's first line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.readline()
    if "\t" in head and "Begin Time" in head:
        return "raven"
    if "," in head and "onset" in head.lower():
        return "csv"
    cells = head.rstrip("\n").split("\t")
    if len(cells) in (2, 3):
        try:
            float(cells[0])
            float(cells[1])
            return "audacity"
        except ValueError:
            pass
    raise UserError(
        "cannot tell the annotation format", path, "give --labels-format raven|audacity|csv"
    )


_RAVEN_SUFFIX = re.compile(r"\.Table\.\d+\.selections$", re.IGNORECASE)


def table_stem(path: Path) -> str:
    """The recording a Raven or Audacity file names: its stem without Raven's
    ``.Table.N.selections`` (``dawn.Table.1.selections.txt`` -> ``dawn``)."""
    return _RAVEN_SUFFIX.sub("", path.stem)


def is_empty_table(path: Path) -> bool:
    """Whether an annotation file holds nothing (an Audacity file of a recording with no
    events)."""
    return not path.read_text(encoding="utf-8", errors="replace").strip()


def names_its_recording(path: Path, fmt: str | None = None) -> bool:
    """Whether the file stands for one recording (Raven, Audacity, an empty file), not a CSV
    naming its recordings per row."""
    if fmt is not None:
        return fmt != "csv"
    if is_empty_table(path):
        return path.suffix.lower() != ".csv"
    return detect_format(path) != "csv"


def read_annotations(path: Path, fmt: str | None = None) -> list[Event]:
    """Events of one annotation file; Raven/Audacity files name their recording by their stem
    (:func:`table_stem`); an empty file holds none."""
    import crowsetta

    if is_empty_table(path):
        return []
    fmt = fmt or detect_format(path)
    if fmt not in LABEL_FORMATS:
        raise UserError(
            f"unknown annotation format {fmt!r}", path, "use --labels-format raven|audacity|csv"
        )
    where = str(path)
    try:
        if fmt == "csv":
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                need = {"file", "onset", "offset", "label"}
                if not need <= set(reader.fieldnames or []):
                    raise UserError(
                        "CSV needs the columns file,onset,offset,label",
                        path,
                        "add the header line file,onset,offset,label",
                    )
                return [
                    Event(
                        r["file"],
                        float(r["onset"]),
                        float(r["offset"]),
                        r["label"].strip(),
                        f"{where}:{i + 2}",
                    )
                    for i, r in enumerate(reader)
                ]
        stem = table_stem(path)
        if fmt == "raven":
            return [Event(stem, a, b, lab, where) for a, b, lab in _raven_rows(path)]
        seq = crowsetta.formats.seq.AudSeq.from_file(path)
        return [
            Event(stem, float(a), float(b), str(lab).strip(), where)
            for a, b, lab in zip(seq.start_times, seq.end_times, seq.labels, strict=True)
        ]
    except UserError:
        raise
    except Exception as exc:  # crowsetta and pandas raise many kinds
        raise UserError(
            f"cannot read {fmt} annotations ({exc})", path, "check the file or give --labels-format"
        ) from exc


def _raven_rows(path: Path) -> list[tuple[float, float, str]]:
    """(begin s, end s, annotation) of a Raven selection table, validated by crowsetta's schema;
    whole-number times and frequencies are read as the floats Raven means, and a table with a
    header and no selections has no events."""
    import pandas as pd
    from crowsetta.formats.bbox.raven import Raven, RavenSchema

    df = pd.read_csv(path, sep="\t")
    if df.empty:
        return []
    df = df.rename(columns={**Raven.COLUMNS_MAP, "Annotation": "annotation"})
    for col in ("begin_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"):
        if col in df.columns:
            df[col] = df[col].astype(float)
    df = RavenSchema.validate(df)
    col = "annotation" if "annotation" in df.columns else df.columns[-1]
    return [
        (float(a), float(b), str(lab).strip())
        for a, b, lab in zip(df["begin_time_s"], df["end_time_s"], df[col], strict=True)
    ]


def label_files(labels: Path, where: str = "--labels") -> list[Path]:
    """The annotation files of ``labels`` (a file, or the .txt / .csv files under a folder);
    ``where`` names the option or argument in errors."""
    if labels.is_dir():
        found = sorted(
            p
            for p in labels.rglob("*")
            if p.is_file() and p.suffix.lower() in (".txt", ".csv") and not p.name.startswith(".")
        )
        if not found:
            raise UserError(
                "no .txt or .csv annotation files in this folder",
                labels,
                f"point {where} at a Raven/Audacity/CSV file or a folder of them",
            )
        return found
    if not labels.is_file():
        raise UserError("annotation file not found", labels, f"check the {where} path")
    return [labels]


def frame_targets(
    events: Sequence[Event],
    offsets: Sequence[float],
    clip: float,
    frames: int,
    class_list: Sequence[str],
) -> np.ndarray:
    """(len(offsets), frames, C) uint8: 1 where an event overlaps a frame slot."""
    out = np.zeros((len(offsets), frames, len(class_list)), dtype=np.uint8)
    step = clip / frames
    for e in events:
        c = class_list.index(e.label)
        for i, off in enumerate(offsets):
            lo = np.arange(frames) * step + off
            hit = (lo < e.offset) & (lo + step > e.onset)
            out[i, hit, c] = 1
    return out


def prepare_recordings(
    source: str | Path,
    out: str | Path,
    classes: str | Sequence[str],
    clip: float = 10.0,
    hop: float = 5.0,
    labels: str | Path | None = None,
    labels_format: str | None = None,
    channel: str = "0",
    frames: int = 32,
) -> SummaryTable:
    """Write ``out`` as one split folder of clips of the recordings under ``source``."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise UserError("source folder not found", source, "point --source at your recordings")
    class_list = (
        parse_classes(classes) if isinstance(classes, str) else parse_classes(",".join(classes))
    )
    if clip <= 0 or hop <= 0:
        raise UserError(
            f"--clip {clip:g} and --hop {hop:g} must be > 0", None, "give positive seconds"
        )
    if channel not in ("0", "mix"):
        raise UserError(f"--channel {channel!r} is not 0 or mix", None, "use --channel 0|mix")
    files = audio_files(source)
    if not files:
        raise UserError(
            "no audio files (wav, flac, ogg, mp3) under this folder",
            source,
            "point --source at the folder holding your recordings",
        )
    rel = [f.relative_to(source).as_posix() for f in files]
    by_key: dict[str, int] = {}
    for i, r in enumerate(rel):
        by_key[r] = i
        by_key.setdefault(PurePosixPath(r).stem, i)
    events: dict[int, list[Event]] = {}
    if labels is not None:
        for lf in label_files(Path(labels)):
            found = read_annotations(lf, labels_format)
            if names_its_recording(lf, labels_format):  # annotated, with or without events
                idx = by_key.get(table_stem(lf))
                if idx is None:
                    raise UserError(
                        f"annotation names recording {table_stem(lf)!r}, not found under {source}",
                        lf,
                        "fix the file name or add the recording to --source",
                    )
                events.setdefault(idx, [])
            for e in found:
                idx = by_key.get(e.recording, by_key.get(PurePosixPath(e.recording).stem))
                if idx is None:
                    raise UserError(
                        f"annotation names recording {e.recording!r}, not found under {source}",
                        e.where,
                        "fix the file name or add the recording to --source",
                    )
                if e.label not in class_list:
                    raise UserError(
                        f"class {e.label!r} is not in --classes",
                        e.where,
                        f"add it to --classes (now {','.join(class_list)})",
                    )
                events.setdefault(idx, []).append(e)
    rows: list[ClipRow] = []
    targets: list[np.ndarray] = []
    known: list[bool] = []
    per_file: list[list[str | int | float]] = []
    for i, (f, r) in enumerate(zip(files, rel, strict=True)):
        d = audio_io.info(f).duration
        offsets = [k * hop for k in range(n_clips(d, clip, hop))]
        rows += [ClipRow(f"{r}@{_fmt(o)}", os.path.abspath(f), o, clip) for o in offsets]
        targets.append(frame_targets(events.get(i, []), offsets, clip, frames, class_list))
        known += [i in events] * len(offsets)
        per_file.append(
            [r, round(d, 3), len(offsets), len(events.get(i, [])) if i in events else "-"]
        )
    lab = np.concatenate(targets, axis=0)
    info = SplitInfo(
        kind="recordings",
        class_list=class_list,
        frames=frames,
        clip_seconds=clip,
        hop_seconds=hop,
        mono="mix" if channel == "mix" else "first",
        frame_layout=f"{frames} equal slots of the clip; 1 where an event overlaps",
        extra={"source": str(source.resolve()), "labelled": int(sum(known))},
    )
    write_split(out, info, rows, lab, known=np.asarray(known, dtype=bool))
    return SummaryTable(
        f"Recordings: clips per file ({out})", ["file", "seconds", "clips", "events"], per_file
    )


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))
