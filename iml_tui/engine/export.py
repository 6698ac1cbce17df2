"""Labels out of a project (CSV, Raven selection tables, Audacity label files) and into one (a
label CSV that warm-starts a project).

Every export reads the current labels from the journal (the ``current_labels`` view: latest
answer per item, undo applied). Raven and Audacity files are written one per audio file, with
times in seconds of that file (where the project's clips are located, see
:mod:`iml_tui.data.locate`), both written through crowsetta as ``detect`` writes its tables. An
event extent the annotator marked in a clip is one selection (``Extent`` = marked); a class of
the label with no extent gives the whole clip (``Extent`` = clip), one selection per class.
``events`` writes the same events as one CSV (:data:`EVENT_COLUMNS`).

Label CSV (what ``export --format csv`` writes and ``import-labels`` reads): a header, then one
row per item. ``id`` is required; the classes come from one column per class name holding 0/1,
or else from ``labels``: class names separated by ``;`` (empty or ``none`` = none of them).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iml_tui.atomic import atomic_write_files, check_output_path
from iml_tui.data.detection_tables import audacity_bytes, raven_bytes
from iml_tui.data.locate import ClipLocation, Locator
from iml_tui.data.store import PoolStore
from iml_tui.engine.extents import Extent, extent_of
from iml_tui.engine.journal import Event, NewEvent
from iml_tui.engine.pool_identity import check_project_pool
from iml_tui.engine.project import Project
from iml_tui.errors import UserError

FORMATS: tuple[str, ...] = ("csv", "raven", "audacity", "events")
RAVEN_COLUMNS = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Begin File",
    "File Offset (s)",
    "Annotation",
    "Item ID",
    "Annotator",
    "Extent",
)


@dataclass
class Catalog:
    """The items of a project: ids (pool or stream order), class names, where the audio is."""

    ids: list[str]
    class_list: list[str]
    locator: Locator
    _index: dict[str, int] = field(default_factory=dict)

    def index_of(self, item_id: str) -> int | None:
        if not self._index:
            self._index = {v: i for i, v in enumerate(self.ids)}
        return self._index.get(item_id)


def catalog(project: Project) -> Catalog:
    """Read a project's item ids and classes (pool store, or the stream's sample table)."""
    root = project.config.audio_root or None
    if project.mode == "pool":
        store = PoolStore(Path(project.config.pool_dir) / "train.h5")
        return Catalog(list(store.ids), list(store.class_list), Locator(store.attrs, root))
    from iml_tui.engine.paradigms.stream import prepare_inputs
    from iml_tui.engine.session import stream_store_attrs

    scfg = project.config.stream_config()
    inputs = prepare_inputs(scfg, scfg.target if scfg.task == "lid" else scfg.env)
    return Catalog(list(inputs.ids), [inputs.target], Locator(stream_store_attrs(scfg), root))


@dataclass(frozen=True)
class LabelRow:
    """One current label: item, classes present, who, when, how long, which model saw it."""

    index: int
    id: str
    labels: tuple[int, ...]
    annotator: str
    seconds: float
    ts: float
    model_version: int | None
    round: int | None
    kind: str


def current_labels(project: Project) -> list[LabelRow]:
    """The labels in force, in the order they were given."""
    with project.open_journal() as j:
        events = sorted(j.current_labels().values(), key=lambda e: e.id)
    return [_row(e) for e in events]


def _row(e: Event) -> LabelRow:
    return LabelRow(
        index=int(e.item or 0),
        id=str(e.item_id or ""),
        labels=e.labels or (),
        annotator=e.annotator,
        seconds=e.seconds,
        ts=e.ts,
        model_version=e.model_version,
        round=e.round,
        kind=str(e.payload.get("kind", "")),
    )


@dataclass
class ExportResult:
    """Files written, selections / rows written, and items whose audio was not found."""

    paths: list[Path]
    written: int
    unlocated: list[str] = field(default_factory=list)


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds")


def _locate(cat: Catalog, item_id: str) -> ClipLocation | None:
    try:
        return cat.locator.locate(item_id)
    except UserError:
        return None


def export_csv(project: Project, out: str | Path, force: bool = False) -> ExportResult:
    """``out`` (a new file, or an existing one with ``force``) gets one row per labelled item:
    id, labels (names, ``;``-separated), one 0/1 column per class, then index, annotator,
    seconds, labelled_at (UTC), model_version, round, kind and the clip's audio file,
    start and end (empty when not located)."""
    check_output_path(out, force, "file")
    cat = catalog(project)
    rows = current_labels(project)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "id",
            "labels",
            *cat.class_list,
            "index",
            "annotator",
            "seconds",
            "labelled_at",
            "model_version",
            "round",
            "kind",
            "audio",
            "start",
            "end",
        ]
    )
    unlocated = []
    for r in rows:
        loc = _locate(cat, r.id)
        if loc is None:
            unlocated.append(r.id)
        end = "" if loc is None or loc.duration is None else f"{loc.start + loc.duration:.6g}"
        w.writerow(
            [
                r.id,
                ";".join(cat.class_list[c] for c in r.labels),
                *(int(c in r.labels) for c in range(len(cat.class_list))),
                r.index,
                r.annotator,
                f"{r.seconds:.3f}",
                _iso(r.ts),
                "" if r.model_version is None else r.model_version,
                "" if r.round is None else r.round,
                r.kind,
                "" if loc is None else str(loc.path),
                "" if loc is None else f"{loc.start:.6g}",
                end,
            ]
        )
    paths = atomic_write_files({Path(out): buf.getvalue().encode("utf-8")}, force)
    return ExportResult(paths, len(rows), unlocated)


@dataclass(frozen=True)
class _Event:
    """One exported event: seconds of its audio file; ``extent`` = marked | clip."""

    path: Path
    start: float
    end: float
    label: str
    item_id: str
    annotator: str
    extent: str


def current_extents(project: Project) -> dict[int, list[Extent]]:
    """item -> the extents in force the annotators marked in it (seconds of the clip)."""
    with project.open_journal() as j:
        return {i: [extent_of(e) for e in evs] for i, evs in j.current_extents().items()}


def _events(project: Project, include_none: bool) -> tuple[list[_Event], list[str]]:
    """Each labelled item's events in the time of its audio file: an extent the annotator
    marked gives one event ("marked"); a class of the label without any extent gives the whole
    clip ("clip"), as does "none" with ``include_none``."""
    cat = catalog(project)
    marks = current_extents(project)
    out: list[_Event] = []
    unlocated: list[str] = []
    for r in current_labels(project):
        names = [cat.class_list[c] for c in r.labels] or (["none"] if include_none else [])
        if not names:
            continue
        loc = _locate(cat, r.id)
        if loc is None:
            unlocated.append(r.id)
            continue
        duration = loc.duration
        if duration is None:
            from iml_tui.audio import io as audio_io

            duration = audio_io.info(loc.path).duration - loc.start
        kept = [x for x in marks.get(r.index, []) if x.cls in r.labels]
        marked = {cat.class_list[x.cls] for x in kept}
        out += [
            _Event(
                loc.path,
                loc.start + x.onset,
                loc.start + min(x.offset, duration),
                cat.class_list[x.cls],
                r.id,
                r.annotator,
                "marked",
            )
            for x in kept
            if x.onset < duration
        ]
        out += [
            _Event(loc.path, loc.start, loc.start + duration, n, r.id, r.annotator, "clip")
            for n in names
            if n not in marked
        ]
    return out, unlocated


def _file_names(paths: Sequence[Path]) -> dict[Path, str]:
    """A distinct, readable name per audio file: its stem, or parent_stem when stems clash."""
    by_stem: dict[str, set[Path]] = defaultdict(set)
    for p in paths:
        by_stem[p.stem].add(p)
    return {p: p.stem if len(by_stem[p.stem]) == 1 else f"{p.parent.name}_{p.stem}" for p in paths}


def _by_audio(events: Sequence[_Event]) -> dict[Path, list[_Event]]:
    groups: dict[Path, list[_Event]] = defaultdict(list)
    for e in events:
        groups[e.path].append(e)
    return {k: sorted(v, key=lambda e: (e.start, e.label, e.end)) for k, v in groups.items()}


def export_raven(
    project: Project, out_dir: str | Path, include_none: bool = False, force: bool = False
) -> ExportResult:
    """Raven selection tables, ``<audio>.Table.1.selections.txt`` per audio file in the folder
    ``out_dir`` (existing files replaced only with ``force``; all written or none), written by
    crowsetta as ``detect`` writes them, with the columns :data:`RAVEN_COLUMNS` (``Extent``:
    marked = an extent the annotator marked, clip = a clip label, the whole clip)."""
    check_output_path(out_dir, force, "folder")
    events, unlocated = _events(project, include_none)
    groups = _by_audio(events)
    names = _file_names(list(groups))
    files: dict[Path, bytes] = {}
    for audio, evs in groups.items():
        name = f"{names[audio]}.Table.1.selections.txt"
        files[Path(out_dir) / name] = raven_bytes(
            [(e.start, e.end, e.label) for e in evs],
            _nyquist(audio),
            {
                "Begin File": [audio.name] * len(evs),
                "File Offset (s)": [e.start for e in evs],
                "Item ID": [e.item_id for e in evs],
                "Annotator": [e.annotator for e in evs],
                "Extent": [e.extent for e in evs],
            },
            name=name,
        )
    return ExportResult(atomic_write_files(files, force), len(events), unlocated)


def _nyquist(path: Path) -> float:
    from iml_tui.audio import io as audio_io

    try:
        return audio_io.info(path).sample_rate / 2.0
    except UserError:
        return 0.0


def export_audacity(
    project: Project, out_dir: str | Path, include_none: bool = False, force: bool = False
) -> ExportResult:
    """Audacity label tracks (``start<TAB>end<TAB>label``), ``<audio>.txt`` per audio file in
    the folder ``out_dir`` (existing files replaced only with ``force``; all written or none),
    written by crowsetta. The format has no room for the marked / clip flag: use raven or
    events for it."""
    check_output_path(out_dir, force, "folder")
    events, unlocated = _events(project, include_none)
    groups = _by_audio(events)
    names = _file_names(list(groups))
    files = {
        Path(out_dir) / f"{names[audio]}.txt": audacity_bytes(
            [(e.start, e.end, e.label) for e in evs]
        )
        for audio, evs in groups.items()
    }
    return ExportResult(atomic_write_files(files, force), len(events), unlocated)


EVENT_COLUMNS = ("audio", "onset", "offset", "class", "extent", "item_id", "annotator")
"""Columns of ``export --format events`` (onset, offset: seconds of the audio file)."""


def export_event_csv(
    project: Project, out: str | Path, include_none: bool = False, force: bool = False
) -> ExportResult:
    """``out`` (a CSV file) gets one row per event, as the Raven tables hold them, in the
    columns :data:`EVENT_COLUMNS` (``extent``: marked | clip)."""
    check_output_path(out, force, "file")
    events, unlocated = _events(project, include_none)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EVENT_COLUMNS)
    for audio, evs in sorted(_by_audio(events).items()):
        for e in evs:
            w.writerow(
                [
                    str(audio),
                    f"{e.start:.6f}",
                    f"{e.end:.6f}",
                    e.label,
                    e.extent,
                    e.item_id,
                    e.annotator,
                ]
            )
    paths = atomic_write_files({Path(out): buf.getvalue().encode("utf-8")}, force)
    return ExportResult(paths, len(events), unlocated)


def export_labels(
    project_dir: str | Path,
    fmt: str,
    out: str | Path,
    include_none: bool = False,
    force: bool = False,
) -> ExportResult:
    """Export the project's labels as ``fmt`` (csv, events: a file; raven, audacity: a folder);
    existing files are replaced only with ``force``."""
    project = Project.load(project_dir)
    if project.mode == "pool":
        check_project_pool(project, catalog(project).ids)
    if fmt == "csv":
        return export_csv(project, out, force)
    if fmt == "raven":
        return export_raven(project, out, include_none, force)
    if fmt == "audacity":
        return export_audacity(project, out, include_none, force)
    if fmt == "events":
        return export_event_csv(project, out, include_none, force)
    raise UserError(f"unknown export format {fmt!r}", None, f"use one of {', '.join(FORMATS)}")


# --- import --------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    """Labels imported, and ids not found in the project (when skipped)."""

    imported: int
    unknown: list[str]
    annotator: str


def read_label_csv(path: str | Path, class_list: Sequence[str]) -> list[tuple[str, list[int]]]:
    """(id, class indices) per row of a label CSV (see the module docstring)."""
    p = Path(path)
    fix = (
        "write a header with 'id' and either one 0/1 column per class "
        f"({', '.join(class_list)}) or 'labels' (names separated by ';')"
    )
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read the label file ({exc.strerror})", p, fix) from exc
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if "id" not in header:
        raise UserError(f"no 'id' column in the header {header}", p, fix)
    col = {h: k for k, h in enumerate(header)}
    per_class = all(c in col for c in class_list)
    if not per_class and "labels" not in col:
        raise UserError(f"neither a column per class nor a 'labels' column in {header}", p, fix)
    names = {c: k for k, c in enumerate(class_list)}
    out = []
    for line, rec in enumerate(reader, start=2):
        if not any(v.strip() for v in rec):
            continue
        if len(rec) < len(header):
            raise UserError(f"line {line}: {len(rec)} fields, the header has {len(header)}", p, fix)
        item_id = rec[col["id"]].strip()
        if per_class:
            labels = []
            for c in class_list:
                v = rec[col[c]].strip()
                if v not in ("0", "1", ""):
                    raise UserError(f"line {line}: column {c!r} holds {v!r}, not 0 or 1", p, fix)
                if v == "1":
                    labels.append(names[c])
        else:
            cell = rec[col["labels"]].strip()
            parts = [] if cell.lower() in ("", "none") else [v.strip() for v in cell.split(";")]
            bad = [v for v in parts if v not in names]
            if bad:
                raise UserError(
                    f"line {line}: unknown class {bad[0]!r}",
                    p,
                    f"classes are {', '.join(class_list)}",
                )
            labels = sorted({names[v] for v in parts})
        out.append((item_id, labels))
    return out


def import_labels(
    project_dir: str | Path,
    csv_path: str | Path,
    annotator: str | None = None,
    skip_unknown: bool = False,
) -> ImportResult:
    """Add the labels of a CSV to the project's journal (one transaction): they count as
    labelled, and the next selection starts from them (a warm start)."""
    project = Project.load(project_dir)
    cat = catalog(project)
    check_project_pool(project, cat.ids)
    rows = read_label_csv(csv_path, cat.class_list)
    found, unknown = [], []
    for item_id, labels in rows:
        i = cat.index_of(item_id)
        if i is None:
            unknown.append(item_id)
        else:
            found.append((i, item_id, labels))
    if unknown and not skip_unknown:
        raise UserError(
            f"{len(unknown)} id(s) are not items of this project, e.g. {unknown[0]!r}",
            csv_path,
            "fix the ids, or pass --skip-unknown to import the rest",
        )
    who = annotator or f"import:{Path(csv_path).name}"
    with project.open_journal() as j, j.transaction():
        j.append(
            NewEvent(
                "imported",
                annotator=who,
                payload={
                    "file": str(Path(csv_path).resolve()),
                    "rows": len(rows),
                    "unknown": len(unknown),
                },
            ),
            *(
                NewEvent(
                    "labelled",
                    item=i,
                    item_id=item_id,
                    labels=labels,
                    annotator=who,
                    payload={"kind": "import"},
                )
                for i, item_id, labels in found
            ),
        )
    return ImportResult(len(found), unknown, who)
