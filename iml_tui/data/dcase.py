"""DCASE 2024 Task 5 development set -> the prepared SL and AL divisions of SPEC A.1.

Source: the Zenodo zip (``Development_Set/...`` inside, or the record's files-archive holding
``Development_set.zip`` next to the two class tables), or an unpacked folder. Annotation CSVs are
found wherever they lie as ``.../{Training_Set,Validation_Set}/<DATASET>/<name>.csv`` with the
audio ``<name>.wav`` next to them; the class tables
``DCASE2024_task5_{training,validation}_set_classes.csv`` anywhere in the source.

Output folder (see :mod:`iml_tui.data.corpus` for the split-folder format)::

    manifest.json                   what was made, from what, with which rules
    al/ | sl/                       one folder per division
      class_list.txt  norm_stats.json  summary.csv  cuts.csv
      train/ valid/ [test/]         split folders for `iml-tui extract`
        audio/<DATASET>/<name>.flac the split's piece of each recording: channel 0, 32 kHz, PCM16
        clips.csv                   10 s clips every 5 s: offsets into the piece audio
        labels.npy                  (N, 32, C) uint8 frame targets from POS events only
        events.csv                  the piece's events (POS and UNK), clipped and shifted
        split.json

Decisions beyond the SPEC, all recorded in the manifest:
- Pieces rather than clips are stored (clips overlap by half: half the disk), as FLAC PCM16.
- Split cuts follow SPEC D.1 (:func:`plan_cuts`) in both divisions, one cut per file and ratio
  (SL: per class after the class drop and merge). A file without POS events is cut at 70 % / 85 %
  (80 %) of its duration. ``cuts.csv`` records each cut's kind (the rule or a fallback) and
  whether it lies inside overlapping events; the summary counts them.
- Events starting after the end of the audio are dropped (noted); ends past it are clipped.
- Class order: AL the SPEC's seven, then any other class in order of the class table; SL the order
  of the training class table. A class code missing from the table keeps its cleaned code as name.
- File names colliding after cleaning: the first (sorted) is kept, the other noted and dropped.
- Normalisation statistics: global mean / std (and per mel bin) of the log-mel (SPEC front end) of
  every train piece, computed in 60 s blocks (frames at block edges see reflect padding).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from iml_tui.audio import io as audio_io
from iml_tui.callbacks import ProgressFn
from iml_tui.data.corpus import (
    MANIFEST,
    ClipRow,
    SplitInfo,
    SummaryTable,
    atomic_write_text,
    clean_name,
    write_json,
    write_split,
)
from iml_tui.errors import UserError
from iml_tui.provenance import write_manifest

AL_CLASSES: tuple[str, ...] = (
    "Mosquito",
    "Red_Deer",
    "Meerkat_alarm_call",
    "Meerkat_move_call",
    "Song_thrush_call",
    "Blackbird_call",
    "Pilot_whale_foraging_buzzes",
)
SL_DROPPED_CLASSES: tuple[str, ...] = ("Anas_platyrhynchos_song",)
AL_DROPPED_FILES: tuple[tuple[str, str], ...] = (("PB", "BUK5_20180921_015906a"),)
TRAIN_CLASSES_CSV = "DCASE2024_task5_training_set_classes.csv"
VALID_CLASSES_CSV = "DCASE2024_task5_validation_set_classes.csv"
SAMPLE_RATE = 32000
CLIP_SECONDS = 10.0
HOP_SECONDS = 5.0
FRAMES = 32
SLOT_SAMPLES = 32 * 320
SLOT_SHIFT = 160
DIVISIONS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "al": (("train", "valid", "test"), (0.70, 0.85)),
    "sl": (("train", "valid"), (0.80,)),
}
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
FRAME_LAYOUT = (
    "32 slots per 10 s clip; slot k = [(k*10240-160)/32000, ((k+1)*10240-160)/32000] s"
    " clipped to [0, 10]; 1 where a POS event overlaps the slot"
)
VALUES = {"POS", "NEG", "UNK", ""}
HEAD = ("Audiofilename", "Starttime", "Endtime")
_ANNOT = re.compile(r"(?:^|/)(Training_Set|Validation_Set)/([^/]+)/([^/]+)\.csv$")
_BLOCK_SECONDS = 60.0

SPLIT_RULE = (
    "per class, POS events in time order, cum = cumulative POS duration, gap = ratio x "
    "total: S = events with cum < gap; |S| >= 2: slot [end of the one before the last "
    "of S, start of the last of S]; else >= 2 events: slot [end of the second-to-last "
    "event, start of the last]; else start of the event + gap; cut = midpoint of "
    "(latest slot start, earliest slot end), or the largest slot midpoint when those do "
    "not meet; no POS events: ratio x duration"
)

MIN_SECONDS = SLOT_SAMPLES / SAMPLE_RATE
"""Recordings shorter than one frame slot (0.32 s) hold no usable frame: reported and skipped."""


class SkippedRecording(Exception):
    """A recording that cannot be cut (too short, NaN or inf samples): reported and skipped."""


# --- clip and slot arithmetic (SPEC A.1) --------------------------------------------------------
def n_clips(duration: float) -> int:
    """Clips of a piece of ``duration`` s: ``1 + max(0, ceil((d - 10) / 5))``."""
    return 1 + max(0, math.ceil((duration - CLIP_SECONDS) / HOP_SECONDS - 1e-9))


def slot_bounds() -> np.ndarray:
    """(32, 2) start / end of each frame slot in seconds of the clip, clipped to [0, 10]."""
    k = np.arange(FRAMES, dtype=np.float64)
    lo = (k * SLOT_SAMPLES - SLOT_SHIFT) / SAMPLE_RATE
    hi = ((k + 1) * SLOT_SAMPLES - SLOT_SHIFT) / SAMPLE_RATE
    return np.clip(np.stack([lo, hi], axis=1), 0.0, CLIP_SECONDS)


@dataclass(frozen=True)
class Event:
    """An annotated event: seconds, class index, POS (True) or UNK (False)."""

    start: float
    end: float
    cls: int
    positive: bool


def piece_frame_labels(events: Sequence[Event], duration: float, n_classes: int) -> np.ndarray:
    """(n_clips(duration), 32, C) uint8 frame targets of a piece; only POS events count.

    A slot is 1 for class c when a POS event of c overlaps it (a zero-length event: lies in it).
    """
    n = n_clips(duration)
    lab = np.zeros((n, FRAMES, n_classes), dtype=np.uint8)
    bounds = slot_bounds()
    lo, hi = bounds[:, 0], bounds[:, 1]
    for ev in events:
        if not ev.positive:
            continue
        j0 = max(0, math.floor((ev.start - CLIP_SECONDS) / HOP_SECONDS))
        j1 = min(n - 1, math.floor(ev.end / HOP_SECONDS))
        for j in range(j0, j1 + 1):
            s, e = ev.start - j * HOP_SECONDS, ev.end - j * HOP_SECONDS
            hit = (s < hi) & (e > lo) if e > s else (lo <= s) & (s < hi)
            lab[j, hit, ev.cls] = 1
    return lab


FALLBACK_KINDS: tuple[str, ...] = ("last-gap", "one-event", "no-pos")
"""Cut kinds other than the rule of SPEC D.1: the gap before a file's (class's) last event, a
single event, a file without POS events."""


@dataclass(frozen=True)
class SplitCut:
    """One cut of a file: its time (s), how it was found and whether it lies inside overlapping
    events.

    kinds: the distinct kinds over the file's classes, sorted: "rule" (SPEC D.1) and / or the
    :data:`FALLBACK_KINDS`. overlap: some class's slot ends before it starts (End(j) > Start(k)).
    """

    time: float
    kinds: tuple[str, ...]
    overlap: bool

    @property
    def fallback(self) -> bool:
        """Whether some class of the file was cut by a fallback."""
        return any(k != "rule" for k in self.kinds)


def _class_slot(events: Sequence[tuple[float, float]], ratio: float) -> tuple[float, float, str]:
    """Slot (start, end, kind) of one class's POS events (in time order) for one ratio (D.1)."""
    cum = list(itertools.accumulate(e - s for s, e in events))
    gap = ratio * cum[-1]
    below = sum(1 for c in cum if c < gap)  # cum never decreases: the events below form a prefix
    if below >= 2:
        j, k = below - 2, below - 1
        return events[j][1], events[k][0], "rule"
    if len(events) >= 2:
        return events[-2][1], events[-1][0], "last-gap"
    t = events[0][0] + gap
    return t, t, "one-event"


def plan_cuts(
    pos_by_class: Sequence[Sequence[tuple[float, float]]], duration: float, ratios: Sequence[float]
) -> list[SplitCut]:
    """The temporal split of one file (SPEC D.1), one cut per ratio.

    pos_by_class: the POS events (start, end) s of each class, in any order; events starting at
    or after ``duration`` are dropped, ends past it clipped. Per class, in time order, with
    ``cum[k]`` the cumulative POS duration after event k and ``gap = ratio x total``: S = the
    events with ``cum[k] < gap``; with |S| >= 2 the slot is [End(j), Start(k)] for k the last of
    S and j the one before; else, with >= 2 events, [End(second-to-last), Start(last)]; else
    [Start + gap, Start + gap]. The cut is the midpoint of (latest slot start, earliest slot
    end), or, when those do not meet, the largest slot midpoint. A file without POS events is cut
    at ``ratio x duration``.
    """
    classes = [
        sorted((max(0.0, s), min(e, duration)) for s, e in evs if s < duration)
        for evs in pos_by_class
    ]
    classes = [evs for evs in classes if evs]
    out: list[SplitCut] = []
    for r in ratios:
        if not classes:
            out.append(SplitCut(r * duration, ("no-pos",), False))
            continue
        slots = [_class_slot(evs, r) for evs in classes]
        lo, hi = max(s[0] for s in slots), min(s[1] for s in slots)
        time = (lo + hi) / 2.0 if lo <= hi else max((a + b) / 2.0 for a, b, _ in slots)
        out.append(
            SplitCut(time, tuple(sorted({k for _, _, k in slots})), any(a > b for a, b, _ in slots))
        )
    return out


def split_cuts(
    pos_by_class: Sequence[Sequence[tuple[float, float]]], duration: float, ratios: Sequence[float]
) -> list[float]:
    """Cut times (s) of :func:`plan_cuts`, one per ratio."""
    return [c.time for c in plan_cuts(pos_by_class, duration, ratios)]


def split_cuts_demo(
    intervals: Sequence[tuple[float, float]], duration: float, ratios: Sequence[float]
) -> list[float]:
    """The demo recipe's split rule (:mod:`demo_build.birds` draws its bundled corpus with it,
    so the checksummed files stay as they are); ``prepare dcase`` uses :func:`plan_cuts`.

    All POS events of a file together, in start order; event k is the first whose cumulative
    duration share reaches the ratio; the cut is the midpoint between the latest end among events
    1..k and the start of event k+1 (the file's end when there is none). No events:
    ``ratio * duration``.
    """
    ev = sorted((max(0.0, s), min(e, duration)) for s, e in intervals if s < duration)
    cuts: list[float] = []
    if not ev:
        return [r * duration for r in ratios]
    lengths = np.array([e - s for s, e in ev])
    if lengths.sum() <= 0:
        lengths = np.ones(len(ev))
    share = np.cumsum(lengths) / lengths.sum()
    ends = np.maximum.accumulate(np.array([e for _, e in ev]))
    for r in ratios:
        k = int(np.searchsorted(share, r - 1e-9, side="left"))
        k = min(k, len(ev) - 1)
        nxt = ev[k + 1][0] if k + 1 < len(ev) else duration
        cut = (float(ends[k]) + nxt) / 2.0
        cuts.append(min(duration, max(cut, cuts[-1] if cuts else 0.0)))
    return cuts


def clip_events(events: Sequence[Event], a: float, b: float) -> list[Event]:
    """Events overlapping [a, b) s, clipped to it and shifted to start at 0."""
    out = []
    for ev in events:
        inside = (ev.end > a and ev.start < b) if ev.end > ev.start else a <= ev.start < b
        if inside:
            out.append(Event(max(ev.start, a) - a, min(ev.end, b) - a, ev.cls, ev.positive))
    return out


# --- the source: a folder, a zip, or a zip holding the development zip ---------------------------
class Source:
    """Files of a folder or zip (nested zips opened too), named by POSIX paths."""

    def __init__(self, path: str | Path, workdir: Path) -> None:
        self.path = Path(path)
        self.workdir = workdir
        self._zips: list[zipfile.ZipFile] = []
        self.members: dict[str, int] = {}  # name -> zip index, -1 = folder
        if self.path.is_dir():
            for p in sorted(self.path.rglob("*")):
                if p.is_file() and not _hidden(p.relative_to(self.path).as_posix()):
                    self.members[p.relative_to(self.path).as_posix()] = -1
        elif self.path.is_file():
            self._add_zip(self.path, None)
        else:
            raise UserError(
                "source not found",
                self.path,
                "point --source at the DCASE 2024 Task 5 development zip or folder",
            )

    def _add_zip(self, path: Path, inner: str | None) -> None:
        try:
            if inner is None:
                zf = zipfile.ZipFile(path)
            else:
                outer = self._zips[self.members[inner]]
                if outer.getinfo(inner).compress_type == zipfile.ZIP_STORED:
                    zf = zipfile.ZipFile(outer.open(inner))
                else:
                    self.workdir.mkdir(parents=True, exist_ok=True)
                    target = self.workdir / PurePosixPath(inner).name
                    with outer.open(inner) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
                    zf = zipfile.ZipFile(target)
        except (zipfile.BadZipFile, OSError) as exc:
            where = path if inner is None else f"{path}:{inner}"
            raise UserError(
                f"not a readable zip file ({exc})",
                where,
                "point --source at the development zip or an unpacked folder",
            ) from exc
        self._zips.append(zf)
        index = len(self._zips) - 1
        names = [n for n in zf.namelist() if not n.endswith("/") and not _hidden(n)]
        for name in names:
            self.members.setdefault(name, index)
        if not any(_ANNOT.search(n) for n in names):
            for name in names:
                if name.lower().endswith(".zip"):
                    self._add_zip(path, name)

    def where(self, member: str) -> str:
        """The member as a user can find it: a path, or ``zip:member``."""
        if self.members.get(member, -1) == -1:
            return str(self.path / member)
        return f"{self.path}:{member}"

    def read_text(self, member: str) -> str:
        index = self.members[member]
        data = (self.path / member).read_bytes() if index == -1 else self._zips[index].read(member)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("latin-1")

    @contextmanager
    def local(self, member: str) -> Iterator[Path]:
        """A file-system path of the member (zip members are extracted for the duration)."""
        index = self.members[member]
        if index == -1:
            yield self.path / member
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=PurePosixPath(member).suffix, dir=self.workdir)
        try:
            with open(fd, "wb") as dst, self._zips[index].open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 22)
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def find(self, basename: str) -> str | None:
        """First member (shortest path) whose file name is ``basename`` (case-insensitive)."""
        hits = [m for m in self.members if PurePosixPath(m).name.lower() == basename.lower()]
        return min(hits, key=lambda m: (m.count("/"), m)) if hits else None

    def close(self) -> None:
        for zf in reversed(self._zips):
            zf.close()


def _hidden(name: str) -> bool:
    return name.startswith("__MACOSX/") or any(p.startswith(".") for p in name.split("/"))


# --- annotations ---------------------------------------------------------------------------------
@dataclass
class Annotation:
    """One per-file CSV: its class columns and rows ``(line, start, end, values)``."""

    where: str
    columns: list[str]
    rows: list[tuple[int, float, float, list[str]]]


def parse_annotation(text: str, where: str, validation: bool) -> Annotation:
    """Parse ``Audiofilename,Starttime,Endtime,<CLASS...>`` (Validation_Set: the class is ``Q``).

    UserError naming the file and line for missing columns, bad times, end < start, bad values.
    """
    fix = "fix the annotation CSV (columns Audiofilename,Starttime,Endtime,<classes>)"
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    missing = [h for h in HEAD if h not in header]
    if missing:
        raise UserError(f"line 1: missing column(s) {', '.join(missing)}", where, fix)
    idx = [header.index(h) for h in HEAD]
    columns = [h for i, h in enumerate(header) if i not in idx and h]
    if not columns:
        raise UserError("line 1: no class column after Audiofilename,Starttime,Endtime", where, fix)
    if validation and columns != ["Q"]:
        raise UserError(
            f"line 1: class columns {columns}, expected the single column Q",
            where,
            "Validation_Set CSVs have the columns Audiofilename,Starttime,Endtime,Q",
        )
    cidx = [header.index(c) for c in columns]
    rows: list[tuple[int, float, float, list[str]]] = []
    for line, rec in enumerate(reader, start=2):
        if not any(cell.strip() for cell in rec):
            continue
        if len(rec) < len(header):
            raise UserError(f"line {line}: {len(rec)} fields, expected {len(header)}", where, fix)
        start = _time(rec[idx[1]], "Starttime", line, where)
        end = _time(rec[idx[2]], "Endtime", line, where)
        if end < start:
            raise UserError(
                f"line {line}: Endtime {end:g} < Starttime {start:g}",
                where,
                "swap or correct the times of that event",
            )
        values = [rec[i].strip().upper() for i in cidx]
        for col, v in zip(columns, values, strict=True):
            if v not in VALUES:
                raise UserError(
                    f"line {line}: value {v!r} in column {col}, expected POS, NEG or UNK",
                    where,
                    fix,
                )
        rows.append((line, start, end, values))
    return Annotation(where, columns, rows)


def _time(cell: str, name: str, line: int, where: str) -> float:
    try:
        t = float(cell)
    except ValueError:
        t = float("nan")
    if not math.isfinite(t) or t < 0:
        raise UserError(
            f"line {line}: bad {name} {cell.strip()!r} (seconds >= 0 expected)",
            where,
            "fix the time of that event",
        )
    return t


def _read_table(source: Source, name: str, columns: Sequence[str]) -> list[dict[str, str]]:
    member = source.find(name)
    if member is None:
        raise UserError(
            f"{name} not found in the source",
            source.path,
            f"put {name} (from the Zenodo record 10829604) into the folder or zip",
        )
    where = source.where(member)
    reader = csv.DictReader(io.StringIO(source.read_text(member)))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    missing = [c for c in columns if c not in fields]
    if missing:
        raise UserError(
            f"line 1: missing column(s) {', '.join(missing)}",
            where,
            f"the class table needs the columns {','.join(columns)}",
        )
    out = []
    for line, rec in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in rec.items() if k is not None}
        if any(not row.get(c) for c in columns):
            raise UserError(
                f"line {line}: empty field in {','.join(columns)}",
                where,
                "fill in or delete that row",
            )
        out.append(row)
    return out


# --- divisions -----------------------------------------------------------------------------------
@dataclass
class Recording:
    """One annotated file of a division: events carry class indices of the division."""

    dataset: str
    name: str
    ext: str
    csv_member: str
    audio_member: str
    events: list[Event]
    pos_intervals: list[tuple[float, float]]

    def pos_by_class(self) -> list[list[tuple[float, float]]]:
        """POS events (start, end) s of each class that has any, in class-index order."""
        by: dict[int, list[tuple[float, float]]] = {}
        for ev in self.events:
            if ev.positive:
                by.setdefault(ev.cls, []).append((ev.start, ev.end))
        return [by[c] for c in sorted(by)]


@dataclass
class Plan:
    """What a division is made of, before any audio is touched."""

    division: str
    splits: tuple[str, ...]
    ratios: tuple[float, ...]
    class_list: list[str]
    recordings: list[Recording]
    notes: list[str] = field(default_factory=list)
    dropped_files: list[str] = field(default_factory=list)
    dropped_classes: list[str] = field(default_factory=list)
    merged_classes: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "<file>: why; skipped" per recording


def _annotation_files(
    source: Source, part: str, notes: list[str]
) -> list[tuple[str, str, str, str, str]]:
    """(dataset, clean name, ext, csv member, audio member) of one part, sorted, deduplicated;
    dropped duplicates are appended to ``notes``."""
    found: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    for member in sorted(source.members):
        m = _ANNOT.search(member)
        if not m or m.group(1) != part:
            continue
        dataset, stem = m.group(2), m.group(3)
        folder = member[: -len(stem) - 4]
        audio = next(
            (
                folder + stem + e
                for e in (*AUDIO_EXTS, *(x.upper() for x in AUDIO_EXTS))
                if folder + stem + e in source.members
            ),
            "",
        )
        key = (dataset, clean_name(stem))
        if key in found and (found[key][4] or not audio):
            notes.append(
                f"{source.where(member)}: same name as {found[key][3]} after cleaning; dropped"
            )
            continue
        found[key] = (dataset, key[1], PurePosixPath(audio).suffix, member, audio)
    for dataset, name, _, member, audio in found.values():
        if not audio:
            raise UserError(
                f"audio of {dataset}/{name} not found next to its CSV",
                source.where(member),
                "use the development zip with audio (Development_set.zip), not the "
                "annotations-only one",
            )
    return [found[k] for k in sorted(found)]


def plan_al(source: Source) -> Plan:
    """The AL division (Validation_Set): one class per file from the validation class table."""
    splits, ratios = DIVISIONS["al"]
    plan = Plan("al", splits, ratios, [], [])
    files = _annotation_files(source, "Validation_Set", plan.notes)
    if not files:
        raise UserError(
            "no Validation_Set annotation CSVs in the source",
            source.path,
            "point --source at the DCASE 2024 Task 5 development set",
        )
    table = _read_table(source, VALID_CLASSES_CSV, ("dataset", "recording", "class_name"))
    by_key = {
        (r["dataset"], clean_name(_strip_ext(r["recording"]))): _al_class(r["class_name"])
        for r in table
    }
    order = list(dict.fromkeys(_al_class(r["class_name"]) for r in table))
    chosen: list[tuple[tuple[str, str, str, str, str], str]] = []
    for f in files:
        dataset, name, _, member, _ = f
        if (dataset, name) in AL_DROPPED_FILES:
            plan.dropped_files.append(f"{dataset}/{name}")
            continue
        cls = by_key.get((dataset, name))
        if cls is None:
            raise UserError(
                f"recording {dataset}/{name} is not listed in {VALID_CLASSES_CSV}",
                source.where(member),
                "add its row (dataset,recording,class_code,class_name) or remove the file",
            )
        chosen.append((f, cls))
    used = {c for _, c in chosen}
    plan.class_list = [c for c in AL_CLASSES if c in used] + [
        c for c in order if c in used and c not in AL_CLASSES
    ]
    for (dataset, name, ext, member, audio), cls in chosen:
        ann = parse_annotation(source.read_text(member), source.where(member), validation=True)
        k = plan.class_list.index(cls)
        events = [
            Event(s, e, k, v[0] == "POS") for _, s, e, v in ann.rows if v[0] in ("POS", "UNK")
        ]
        pos = [(ev.start, ev.end) for ev in events if ev.positive]
        plan.recordings.append(Recording(dataset, name, ext, member, audio, events, pos))
    return plan


def _al_class(name: str) -> str:
    """Cleaned class name; the SPEC's seven keep their SPEC spelling whatever the case."""
    cleaned = clean_name(name)
    return next((c for c in AL_CLASSES if c.lower() == cleaned.lower()), cleaned)


def plan_sl(source: Source) -> Plan:
    """The SL division (Training_Set): class codes mapped by the training class table, the
    dropped class removed, classes of the same name OR-merged."""
    splits, ratios = DIVISIONS["sl"]
    plan = Plan("sl", splits, ratios, [], [])
    files = _annotation_files(source, "Training_Set", plan.notes)
    if not files:
        raise UserError(
            "no Training_Set annotation CSVs in the source",
            source.path,
            "point --source at the DCASE 2024 Task 5 development set, or use --division al",
        )
    table = _read_table(source, TRAIN_CLASSES_CSV, ("dataset", "class_code", "class_name"))
    by_pair = {(r["dataset"], r["class_code"]): clean_name(r["class_name"]) for r in table}
    by_code: dict[str, set[str]] = {}
    for r in table:
        by_code.setdefault(r["class_code"], set()).add(clean_name(r["class_name"]))
    order = list(dict.fromkeys(clean_name(r["class_name"]) for r in table))
    parsed: list[tuple[tuple[str, str, str, str, str], Annotation, list[str]]] = []
    for f in files:
        ann = parse_annotation(source.read_text(f[3]), source.where(f[3]), validation=False)
        names = []
        for code in ann.columns:
            name = by_pair.get((f[0], code))
            if name is None:
                alts = by_code.get(code, set())
                if len(alts) != 1:
                    raise UserError(
                        f"class code {code!r} is not in {TRAIN_CLASSES_CSV}"
                        + (
                            f" for {f[0]} (and names {len(alts)} classes elsewhere)" if alts else ""
                        ),
                        source.where(f[3]),
                        f"add a row {f[0]},{code},<class name> to {TRAIN_CLASSES_CSV}, or fix the "
                        "column name",
                    )
                name = next(iter(alts))
            names.append(name)
        parsed.append((f, ann, names))
    used = [n for _, _, names in parsed for n in names]
    plan.dropped_classes = sorted({n for n in used if _sl_dropped(n)})
    kept = [n for n in dict.fromkeys(used) if not _sl_dropped(n)]
    plan.class_list = [n for n in order if n in kept] + [n for n in kept if n not in order]
    codes: dict[str, set[str]] = {}
    for f, ann, names in parsed:
        for code, name in zip(ann.columns, names, strict=True):
            codes.setdefault(name, set()).add(f"{f[0]}/{code}")
    plan.merged_classes = {
        n: sorted(c) for n, c in codes.items() if len(c) > 1 and n in plan.class_list
    }
    for (dataset, name, ext, member, audio), ann, names in parsed:
        events: list[Event] = []
        pos: list[tuple[float, float]] = []
        for _, s, e, values in ann.rows:
            merged: dict[str, str] = {}
            for cname, v in zip(names, values, strict=True):
                if _sl_dropped(cname):
                    continue
                old = merged.get(cname, "")
                merged[cname] = (
                    "POS" if "POS" in (old, v) else ("UNK" if "UNK" in (old, v) else "NEG")
                )
            for cname, v in merged.items():
                if v in ("POS", "UNK"):
                    events.append(Event(s, e, plan.class_list.index(cname), v == "POS"))
            if "POS" in merged.values():
                pos.append((s, e))
        plan.recordings.append(Recording(dataset, name, ext, member, audio, events, pos))
    return plan


def _sl_dropped(name: str) -> bool:
    return name.lower() in {c.lower() for c in SL_DROPPED_CLASSES}


def _strip_ext(name: str) -> str:
    p = PurePosixPath(name)
    return p.stem if p.suffix.lower() in (*AUDIO_EXTS, ".csv") else name


# --- writing a division --------------------------------------------------------------------------
@dataclass
class _SplitParts:
    rows: list[ClipRow] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    events: list[tuple[str, str, float, float, str]] = field(default_factory=list)
    seconds: float = 0.0
    pieces: int = 0


@dataclass
class SplitCounts:
    """Counts of one written split: clips, pieces, seconds, clip-level positives and POS events
    per class, clips positive for no class."""

    clips: int
    pieces: int
    seconds: float
    positive_clips: dict[str, int]
    none_clips: int
    pos_events: dict[str, int]


@dataclass
class DivisionResult:
    """What one division holds, per split."""

    division: str
    class_list: list[str]
    splits: dict[str, SplitCounts]
    folder: Path
    cuts: list[list[SplitCut]] = field(default_factory=list)

    def cut_counts(self) -> list[dict[str, int]]:
        """Per cut (train | valid, ...): files per kind (a file of several classes counts once
        per kind it used), ``fallback`` (files with any fallback kind), ``overlap``, ``files``."""
        out = []
        for i in range(len(self.splits) - 1):
            row = {k: 0 for k in ("rule", *FALLBACK_KINDS, "fallback", "overlap", "files")}
            for file_cuts in self.cuts:
                c = file_cuts[i]
                for k in c.kinds:
                    row[k] += 1
                row["fallback"] += c.fallback
                row["overlap"] += c.overlap
                row["files"] += 1
            out.append(row)
        return out

    def fallback_files(self) -> int:
        """Files with at least one cut found by a fallback."""
        return sum(any(c.fallback for c in file_cuts) for file_cuts in self.cuts)


def _write_pieces(path: Path, bounds: Sequence[int], targets: Sequence[Path | None]) -> None:
    """Stream channel 0 of ``path``, resampled to 32 kHz, into one FLAC PCM16 file per piece.

    bounds: piece edges in output samples (len = pieces + 1; the last is the total length, the
    stream is cut or zero-padded to it); a None target skips that piece.
    """
    import soundfile as sf

    total = int(bounds[-1])
    writers = []
    for t in targets:
        if t is not None:
            t.parent.mkdir(parents=True, exist_ok=True)
            writers.append(
                sf.SoundFile(str(t), "w", SAMPLE_RATE, 1, subtype="PCM_16", format="FLAC")
            )
        else:
            writers.append(None)
    pos = 0

    def route(y: np.ndarray) -> None:
        nonlocal pos
        y = np.clip(y[: max(0, total - pos)], -1.0, 1.0)
        while y.size:
            i = int(np.searchsorted(bounds, pos, side="right")) - 1
            take = min(y.size, int(bounds[i + 1]) - pos)
            w = writers[i]
            if w is not None:
                w.write(y[:take])
            y, pos = y[take:], pos + take

    try:
        for block in audio_io.iter_blocks(path, _BLOCK_SECONDS, sr=SAMPLE_RATE, mono="first"):
            if not np.isfinite(block).all():
                at = pos + int(np.argmax(~np.isfinite(block)))
                raise SkippedRecording(
                    f"the audio holds NaN or inf samples (from {at / SAMPLE_RATE:.3f} s)"
                )
            route(block)
        if pos < total:
            route(np.zeros(total - pos, dtype=np.float32))
    except BaseException:
        for w, t in zip(writers, targets, strict=True):
            if w is not None and t is not None:
                w.close()
                t.unlink(missing_ok=True)
        raise
    finally:
        for w in writers:
            if w is not None and not w.closed:
                w.close()


def _cut_recording(
    plan: Plan, rec: Recording, source: Source, folder: Path
) -> tuple[audio_io.AudioInfo, list[SplitCut], list[int], list[Path | None]]:
    """Cut one recording into its split pieces (32 kHz FLAC files under ``folder``).

    Returns its audio header, its cuts, the piece edges in 32 kHz samples and the piece files
    (None for an empty piece). Audio errors name the file as the source holds it.
    """
    where = source.where(rec.audio_member)
    try:
        with source.local(rec.audio_member) as path:
            info = audio_io.info(path)
            duration = info.duration
            if info.frames == 0 or duration < MIN_SECONDS:
                raise SkippedRecording(
                    f"{info.frames} sample(s) ({duration:.3f} s), shorter than one frame slot "
                    f"({MIN_SECONDS:.2f} s)"
                )
            late = [ev for ev in rec.events if ev.start >= duration and ev.end > ev.start]
            if late:
                plan.notes.append(
                    f"{rec.dataset}/{rec.name}: {len(late)} event(s) after the end "
                    f"of the audio ({duration:.3f} s) dropped"
                )
            cuts = plan_cuts(rec.pos_by_class(), duration, plan.ratios)
            total_out = round(info.frames * SAMPLE_RATE / info.sample_rate)
            edges = [0, *(min(total_out, round(c.time * SAMPLE_RATE)) for c in cuts), total_out]
            bounds = [int(b) for b in np.maximum.accumulate(np.array(edges, dtype=np.int64))]
            rel = f"audio/{rec.dataset}/{rec.name}.flac"
            targets = [
                folder / s / rel if bounds[i + 1] > bounds[i] else None
                for i, s in enumerate(plan.splits)
            ]
            _write_pieces(path, bounds, targets)
    except UserError as exc:
        if exc.path is None or exc.path == where:
            raise
        text = str(exc).removeprefix(f"{exc.path}: ")
        raise UserError(text, where) from exc
    return info, cuts, bounds, targets


def _prepare_division(
    plan: Plan, source: Source, folder: Path, progress: ProgressFn | None
) -> DivisionResult:
    c = len(plan.class_list)
    parts = {s: _SplitParts() for s in plan.splits}
    cuts_rows: list[list[str]] = []
    stats = _LogMelStats()
    total = len(plan.recordings)
    file_cuts: list[list[SplitCut]] = []
    for done, rec in enumerate(plan.recordings):
        try:
            info, cuts, bounds, targets = _cut_recording(plan, rec, source, folder)
        except SkippedRecording as exc:
            plan.skipped.append(f"{source.where(rec.audio_member)}: {exc}; skipped")
            continue
        file_cuts.append(cuts)
        duration = info.duration
        rel = f"audio/{rec.dataset}/{rec.name}.flac"
        cuts_rows.append(
            [
                rec.dataset,
                rec.name + rec.ext,
                f"{duration:.6f}",
                str(info.sample_rate),
                str(info.channels),
                *(f"{b / SAMPLE_RATE:.6f}" for b in bounds[1:-1]),
                *("+".join(c.kinds) for c in cuts),
                *(str(int(c.overlap)) for c in cuts),
            ]
        )
        for i, split in enumerate(plan.splits):
            target = targets[i]
            if target is None:
                continue
            a, b = bounds[i] / SAMPLE_RATE, bounds[i + 1] / SAMPLE_RATE
            d = b - a
            events = sorted(
                clip_events(rec.events, a, b),
                key=lambda ev: (ev.start, ev.end, ev.cls, not ev.positive),
            )
            lab = piece_frame_labels(events, d, c)
            part = parts[split]
            part.labels.append(lab)
            part.rows.extend(
                ClipRow(
                    f"{rec.dataset}/{rec.name}{rec.ext}@{a + j * HOP_SECONDS:.3f}",
                    rel,
                    j * HOP_SECONDS,
                    CLIP_SECONDS,
                )
                for j in range(lab.shape[0])
            )
            part.events.extend(
                (
                    f"{rec.dataset}/{rec.name}",
                    plan.class_list[ev.cls],
                    ev.start,
                    ev.end,
                    "POS" if ev.positive else "UNK",
                )
                for ev in events
            )
            part.seconds += d
            part.pieces += 1
            if split == "train":
                stats.add_file(target)
        if progress is not None:
            progress(f"{plan.division} files", done + 1, total)
    return _finish_division(plan, folder, parts, cuts_rows, file_cuts, stats)


def _finish_division(
    plan: Plan,
    folder: Path,
    parts: dict[str, _SplitParts],
    cuts_rows: list[list[str]],
    file_cuts: list[list[SplitCut]],
    stats: _LogMelStats,
) -> DivisionResult:
    c = len(plan.class_list)
    norm = stats.result()
    write_json(folder / "norm_stats.json", norm)
    atomic_write_text(folder / "class_list.txt", "".join(f"{n}\n" for n in plan.class_list))
    _write_csv(
        folder / "cuts.csv",
        [
            "dataset",
            "file",
            "duration",
            "sample_rate",
            "channels",
            *(f"cut_{s}_end" for s in plan.splits[:-1]),
            *(f"rule_{s}_end" for s in plan.splits[:-1]),
            *(f"overlap_{s}_end" for s in plan.splits[:-1]),
        ],
        cuts_rows,
    )
    result = DivisionResult(plan.division, plan.class_list, {}, folder, file_cuts)
    summary: list[list[object]] = []
    for split, part in parts.items():
        labels = np.concatenate(part.labels) if part.labels else np.zeros((0, FRAMES, c), np.uint8)
        info = SplitInfo(
            kind=f"dcase-{plan.division}",
            class_list=plan.class_list,
            frames=FRAMES,
            clip_seconds=CLIP_SECONDS,
            hop_seconds=HOP_SECONDS,
            sample_rate=SAMPLE_RATE,
            mono="first",
            frame_layout=FRAME_LAYOUT,
            extra={
                "division": plan.division,
                "split": split,
                "norm_stats": "../norm_stats.json",
                "norm_mean": norm["mean"],
                "norm_std": norm["std"],
            },
        )
        _write_csv(
            folder / split / "events.csv",
            ["piece", "class", "start", "end", "value"],
            [[p, k, f"{s:.6f}", f"{e:.6f}", v] for p, k, s, e, v in part.events],
        )
        write_split(folder / split, info, part.rows, labels)
        clip = labels.max(axis=1) if labels.size else np.zeros((0, c), np.uint8)
        pos_clips = [int(v) for v in clip.sum(axis=0)] if clip.size else [0] * c
        pos_events = [
            sum(1 for ev in part.events if ev[1] == n and ev[4] == "POS") for n in plan.class_list
        ]
        none = int((clip.max(axis=1) == 0).sum()) if clip.size else 0
        result.splits[split] = SplitCounts(
            clips=int(labels.shape[0]),
            pieces=part.pieces,
            seconds=round(part.seconds, 3),
            positive_clips=dict(zip(plan.class_list, pos_clips, strict=True)),
            none_clips=none,
            pos_events=dict(zip(plan.class_list, pos_events, strict=True)),
        )
        for name, pc, pe in zip(plan.class_list, pos_clips, pos_events, strict=True):
            summary.append([plan.division, split, name, pc, pe])
        summary.append([plan.division, split, "(none of these)", none, ""])
        summary.append([plan.division, split, "(all clips)", labels.shape[0], ""])
    _write_csv(
        folder / "summary.csv",
        ["division", "split", "class", "positive_clips", "pos_events"],
        summary,
    )
    return result


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


# --- log-mel normalisation statistics -------------------------------------------------------------
class _LogMelStats:
    """Global and per-mel-bin mean / std of the SPEC A.1 log-mel (dB) of whole audio files."""

    def __init__(self) -> None:
        from iml_tui.audio.spectrogram import LogMel, RunningStats

        self.front = LogMel()
        self.stats = RunningStats(self.front.config.n_mels)

    def add_file(self, path: Path) -> None:
        """Add the frames of a 32 kHz file, computed in 60 s blocks (a multiple of the hop)."""
        import torch

        blocks = audio_io.iter_blocks(path, _BLOCK_SECONDS, mono="first")
        prev: np.ndarray | None = None
        for x in blocks:
            if prev is not None:  # not the last block: its final frame is centred on the next
                self.stats.update(self._mel(prev, torch)[:-1])
            prev = x
        if prev is not None:
            self.stats.update(self._mel(prev, torch))

    def _mel(self, x: np.ndarray, torch: Any) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(self.front(torch.from_numpy(x))[0].numpy())

    def result(self) -> dict[str, object]:
        c = self.front.config
        front = {
            "sample_rate": c.sample_rate,
            "n_fft": c.n_fft,
            "win_length": c.win,
            "hop_length": c.hop_length,
            "n_mels": c.n_mels,
            "f_min": c.fmin,
            "f_max": c.f_max,
            "window": "hann (periodic)",
            "center": c.center,
            "pad_mode": c.pad_mode,
            "db_ref": c.ref,
            "amin": c.amin,
            "top_db": c.top_db,
        }
        if self.stats.count == 0:
            return {
                "mean": 0.0,
                "std": 1.0,
                "frames": 0,
                "band_mean": [0.0] * c.n_mels,
                "band_std": [1.0] * c.n_mels,
                "front_end": front,
            }
        return {
            "mean": self.stats.mean,
            "std": self.stats.std,
            "frames": self.stats.count,
            "band_mean": [float(v) for v in self.stats.band_mean],
            "band_std": [float(v) for v in self.stats.band_std],
            "front_end": front,
        }


# --- the recipe ----------------------------------------------------------------------------------
@dataclass
class PrepareResult:
    """What ``prepare_dcase`` wrote: one result per division, and the summary tables."""

    out: Path
    divisions: list[DivisionResult]
    notes: list[str]
    skipped: list[str] = field(default_factory=list)  # recordings left out, and why

    def tables(self) -> list[SummaryTable]:
        """Per division: positive clips per class (rows) and split (columns); then files per
        kind of cut (rows: the cuts between consecutive splits), titled with how many files
        used a fallback."""
        out = []
        for d in self.divisions:
            splits = list(d.splits)
            rows: list[list[str | int | float]] = []
            for name in d.class_list:
                rows.append([name, *(d.splits[s].positive_clips[name] for s in splits)])
            rows.append(["none of these", *(d.splits[s].none_clips for s in splits)])
            rows.append(["clips", *(d.splits[s].clips for s in splits)])
            out.append(
                SummaryTable(
                    f"{d.division.upper()}: positive clips per class and split ({d.folder})",
                    ["class", *splits],
                    rows,
                )
            )
            cut_rows: list[list[str | int | float]] = [
                [f"{a} | {b}", c["rule"], c["last-gap"], c["one-event"], c["no-pos"], c["overlap"]]
                for (a, b), c in zip(itertools.pairwise(splits), d.cut_counts(), strict=True)
            ]
            out.append(
                SummaryTable(
                    f"{d.division.upper()}: split cuts, files per kind; {d.fallback_files()} of "
                    f"{len(d.cuts)} files used a fallback",
                    [
                        "cut",
                        "rule",
                        "fallback: last gap",
                        "fallback: one event",
                        "fallback: no POS",
                        "inside overlapping events",
                    ],
                    cut_rows,
                )
            )
        return out


def prepare_dcase(
    source: str | Path, out: str | Path, division: str = "both", progress: ProgressFn | None = None
) -> PrepareResult:
    """Prepare the AL and / or SL division of a DCASE 2024 Task 5 development set into ``out``.

    division: "al", "sl" or "both". Each division is built in a hidden folder and moved into
    place when complete; ``manifest.json`` keeps the entries of divisions prepared earlier.
    """
    if division not in ("al", "sl", "both"):
        raise UserError(f"unknown division {division!r}", None, "use al, sl or both")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".prepare_tmp"
    src = Source(source, work)
    wanted = ["al", "sl"] if division == "both" else [division]
    results: list[DivisionResult] = []
    notes: list[str] = []
    skipped: list[str] = []
    manifest = _read_manifest(out)
    try:
        plans = [plan_al(src) if d == "al" else plan_sl(src) for d in wanted]
        for plan in plans:
            final = out / plan.division
            if final.exists() and not (final / "class_list.txt").exists():
                raise UserError(
                    f"{final} exists and is not a prepared division",
                    final,
                    "choose another --out or remove that folder",
                )
            partial = out / f".{plan.division}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            res = _prepare_division(plan, src, partial, progress)
            shutil.rmtree(final, ignore_errors=True)
            partial.replace(final)
            res.folder = final
            results.append(res)
            notes.extend(plan.notes)
            skipped.extend(plan.skipped)
            manifest["divisions"][plan.division] = _division_manifest(plan, res)
            manifest["source"] = str(Path(source).resolve())
            write_manifest(out / MANIFEST, manifest)
    finally:
        src.close()
        shutil.rmtree(work, ignore_errors=True)
    return PrepareResult(out, results, notes, skipped)


def _read_manifest(out: Path) -> dict[str, Any]:
    import json

    base: dict[str, Any] = {
        "format": 1,
        "kind": "dcase2024-task5",
        "sample_rate": SAMPLE_RATE,
        "clip_seconds": CLIP_SECONDS,
        "hop_seconds": HOP_SECONDS,
        "frames": FRAMES,
        "frame_layout": FRAME_LAYOUT,
        "audio_layout": "<division>/<split>/audio/<DATASET>/<name>.flac: the split's piece of "
        "each recording, channel 0, 32 kHz, FLAC PCM16; clips.csv rows are 10 s windows at "
        "offsets into it (the last zero-padded)",
        "divisions": {},
    }
    path = out / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("kind") == base["kind"] and isinstance(old.get("divisions"), dict):
                base["divisions"] = old["divisions"]
        except (json.JSONDecodeError, AttributeError):
            pass
    return base


def _division_manifest(plan: Plan, res: DivisionResult) -> dict[str, object]:
    return {
        "folder": plan.division,
        "splits": list(plan.splits),
        "ratios": list(plan.ratios),
        "class_list": plan.class_list,
        "recordings": len(plan.recordings) - len(plan.skipped),
        "skipped_recordings": plan.skipped,
        "dropped_files": plan.dropped_files,
        "dropped_classes": plan.dropped_classes,
        "merged_classes": plan.merged_classes,
        "notes": plan.notes,
        "split_rule": SPLIT_RULE,
        "split_fallback_files": res.fallback_files(),
        "split_cuts": dict(
            zip(
                (f"{a}|{b}" for a, b in itertools.pairwise(plan.splits)),
                res.cut_counts(),
                strict=True,
            )
        ),
        "norm_stats": f"{plan.division}/norm_stats.json",
        "counts": {k: asdict(v) for k, v in res.splits.items()},
    }
