"""Event tables into a pool project (``iml-tui import-labels PROJECT TABLES``): Raven selection
tables, Audacity label files or a CSV ``file,onset,offset,label``, a file or a folder of them,
e.g. ``detect``'s tables after a review, or another annotator's work.

A table names its recording (a CSV per row; a Raven or Audacity file by its path under the
folder, ``.Table.N.selections`` and the extension dropped, else by its stem) and is taken as the
whole truth for that recording: every clip of the recording in the pool is labelled with the
classes of the events that overlap it (none: a negative), and each overlapping event becomes an
extent of the clip (clipped to it), so the clip trains on its frames. Events of a class that
overlap or touch are one event (a table exported clip by clip holds a call as pieces). An empty
table is a recording without events. A clip's extents in force before the import are withdrawn
(the table replaces them); everything is one journal transaction, so an import is all or
nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from iml_tui.data.recordings import Event as TableEvent
from iml_tui.data.recordings import (
    label_files,
    names_its_recording,
    read_annotations,
    table_stem,
)
from iml_tui.data.store import PoolStore
from iml_tui.engine.journal import NewEvent
from iml_tui.engine.pool_identity import check_project_pool
from iml_tui.engine.project import Project
from iml_tui.errors import UserError


@dataclass(frozen=True)
class ClipSpan:
    """A pool clip: its index, id, recording (path under the source) and start (s)."""

    index: int
    id: str
    recording: str
    offset: float


@dataclass
class EventImport:
    """What an event import wrote: clips labelled (of them negatives), extents, recordings,
    and recordings named by a table that the pool does not hold."""

    clips: int
    negatives: int
    extents: int
    recordings: int
    replaced_extents: int
    unknown: list[str]
    annotator: str


def pool_clips(ids: Sequence[str]) -> dict[str, list[ClipSpan]]:
    """Recording -> its clips, from ids ``<recording>@<offset>`` (``prepare recordings``)."""
    out: dict[str, list[ClipSpan]] = defaultdict(list)
    for i, item_id in enumerate(ids):
        rec, sep, off = item_id.rpartition("@")
        try:
            start = float(off)
        except ValueError:
            continue
        if sep and rec:
            out[rec].append(ClipSpan(i, item_id, rec, start))
    return dict(out)


def _keys(recording: str) -> list[str]:
    """The names a table may give ``recording`` by: its path, without the extension, its stem."""
    p = PurePosixPath(recording)
    return [recording, str(p.with_suffix("")), p.stem]


def recording_index(recordings: Sequence[str]) -> dict[str, str]:
    """Name -> recording for every name of :func:`_keys` that is unique among ``recordings``."""
    seen: dict[str, set[str]] = defaultdict(set)
    for rec in recordings:
        for key in _keys(rec):
            seen[key].add(rec)
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


def table_recording(path: Path, root: Path) -> str:
    """The recording a Raven or Audacity file is for: its path under ``root`` without
    ``.Table.N.selections`` and the extension."""
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    name = table_stem(rel)
    return (rel.parent / name).as_posix() if str(rel.parent) != "." else name


def read_tables(
    tables: Path, labels_format: str | None
) -> tuple[dict[str, list[TableEvent]], dict[str, str]]:
    """(recording name -> its events, recording name -> the file that named it) of every table
    under ``tables``; an empty file is a recording with no events."""
    root = tables if tables.is_dir() else tables.parent
    events: dict[str, list[TableEvent]] = defaultdict(list)
    where: dict[str, str] = {}
    for f in label_files(tables, "the LABELS argument"):
        rows = read_annotations(f, labels_format)
        if names_its_recording(f, labels_format):
            name = table_recording(f, root)
            events.setdefault(name, [])
            where.setdefault(name, str(f))
            rows = [TableEvent(name, e.onset, e.offset, e.label, e.where) for e in rows]
        for e in rows:
            events[e.recording].append(e)
            where.setdefault(e.recording, e.where)
    return dict(events), where


def is_clip_csv(path: Path) -> bool:
    """Whether ``path`` is a label CSV of clip ids (a header with ``id``), not an event table."""
    if not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        head = f.readline()
    return "id" in [h.strip() for h in head.split(",")]


def merge_events(events: Sequence[TableEvent]) -> list[TableEvent]:
    """Events of one recording with those of a class that overlap or touch joined into one
    (a table exported clip by clip holds a long call as overlapping pieces), by onset."""
    out: list[TableEvent] = []
    for label in sorted({e.label for e in events}):
        for e in sorted((e for e in events if e.label == label), key=lambda e: e.onset):
            last = out[-1] if out and out[-1].label == label else None
            if last is not None and e.onset <= last.offset:
                out[-1] = TableEvent(
                    last.recording, last.onset, max(last.offset, e.offset), label, last.where
                )
            else:
                out.append(e)
    return sorted(out, key=lambda e: (e.onset, e.label))


def import_event_tables(
    project_dir: str | Path,
    tables: str | Path,
    annotator: str | None = None,
    skip_unknown: bool = False,
    labels_format: str | None = None,
) -> EventImport:
    """Label the clips of every recording the tables cover (see the module doc)."""
    project = Project.load(project_dir)
    if project.mode != "pool":
        raise UserError(
            "event tables label pool (bioacoustic) projects",
            project.dir,
            "import a label CSV (id, labels) into a stream project",
        )
    tables = Path(tables)
    store = PoolStore(Path(project.config.pool_dir) / "train.h5")
    clip = store.clip_seconds()
    class_list = list(store.class_list)
    check_project_pool(project, list(store.ids))
    by_recording = pool_clips(list(store.ids))
    if not by_recording:
        raise UserError(
            "the pool's clip ids do not name their recordings (<recording>@<offset>)",
            store.path,
            "import a label CSV (id, labels), or prepare the audio with `iml-tui prepare "
            "recordings`",
        )
    names = recording_index(list(by_recording))
    events, where = read_tables(tables, labels_format)
    unknown = sorted(n for n in events if n not in names)
    if unknown and not skip_unknown:
        raise UserError(
            f"{len(unknown)} recording(s) named by the tables are not in the pool, e.g. "
            f"{unknown[0]!r}",
            where[unknown[0]],
            "fix the name, prepare that recording into the pool, or pass --skip-unknown",
        )
    for evs in events.values():
        for e in evs:
            if e.label not in class_list:
                raise UserError(
                    f"class {e.label!r} is not a class of the project",
                    e.where,
                    f"use one of {', '.join(class_list)}",
                )
            if not e.offset > e.onset:
                raise UserError(
                    f"an event from {e.onset:g} s to {e.offset:g} s ends before it starts",
                    e.where,
                    "fix its times",
                )
    who = annotator or f"import:{tables.name}"
    new: list[NewEvent] = []
    n_clips = n_neg = n_ext = 0
    by_rec: dict[str, list[TableEvent]] = defaultdict(list)
    for n, es in events.items():
        if n in names:
            by_rec[names[n]].extend(es)
    covered = sorted(by_rec)
    with project.open_journal() as j, j.transaction():
        live = j.current_extents()
        replaced = 0
        for rec in covered:
            evs = merge_events(by_rec[rec])
            ons = np.asarray([e.onset for e in evs], dtype=np.float64)
            offs = np.asarray([e.offset for e in evs], dtype=np.float64)
            for c in by_recording[rec]:
                lo, hi = c.offset, c.offset + clip
                inside = [evs[k] for k in np.flatnonzero((ons < hi) & (offs > lo))]
                for old in live.get(c.index, []):
                    new.append(
                        NewEvent(
                            "extent_removed",
                            item=c.index,
                            item_id=c.id,
                            labels=list(old.labels or (0,)),
                            annotator=who,
                            ref=old.id,
                        )
                    )
                    replaced += 1
                for e in inside:
                    new.append(
                        NewEvent(
                            "extent",
                            item=c.index,
                            item_id=c.id,
                            labels=[class_list.index(e.label)],
                            annotator=who,
                            payload={
                                "onset": round(max(e.onset - lo, 0.0), 6),
                                "offset": round(min(e.offset - lo, clip), 6),
                            },
                        )
                    )
                labels = sorted({class_list.index(e.label) for e in inside})
                new.append(
                    NewEvent(
                        "labelled",
                        item=c.index,
                        item_id=c.id,
                        labels=labels,
                        annotator=who,
                        payload={"kind": "import"},
                    )
                )
                n_clips += 1
                n_neg += not labels
                n_ext += len(inside)
        j.append(
            NewEvent(
                "imported",
                annotator=who,
                payload={
                    "file": str(tables.resolve()),
                    "recordings": len(covered),
                    "clips": n_clips,
                    "extents": n_ext,
                    "unknown": len(unknown),
                },
            ),
            *new,
        )
    return EventImport(n_clips, n_neg, n_ext, len(covered), replaced, unknown, who)
