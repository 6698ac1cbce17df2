"""The prepared-corpus format shared by ``prepare`` (DCASE, Common Voice, VTD) and ``extract``.

A prepared corpus is a folder with ``manifest.json`` and one or more **split folders**. A split
folder is what ``iml-tui extract`` turns into one pool store; it holds:

- ``clips.csv``  — one row per clip: ``id,audio,offset,duration`` (``audio`` relative to the split
  folder unless absolute; ``offset`` / ``duration`` in seconds of that file; an empty duration means
  "to the end of the file", i.e. a whole utterance);
- ``labels.npy`` — (N, T, C) uint8 frame targets (T = 32 for DCASE clips, 1 for utterances and
  segments), rows in the order of ``clips.csv``;
- ``split.json`` — written last (its presence marks a complete split): kind, class list, frames T,
  fixed clip length (clips shorter than it are zero-padded; null = variable length), hop, sample
  rate of the audio when uniform, channel rule, frame layout and free-form extras.

Where the pool goes: ``extract`` writes one store per split folder, at ``<out>/<path of the split
folder relative to the input>.h5`` (e.g. ``al/train.h5``), or at ``--out`` itself when the input is
one split folder.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iml_tui.atomic import atomic_save_npy, atomic_write_text
from iml_tui.errors import UserError

MANIFEST = "manifest.json"
SPLIT_FILE = "split.json"
CLIPS_FILE = "clips.csv"
LABELS_FILE = "labels.npy"
KNOWN_FILE = "labelled.npy"
CLIP_COLUMNS = ("id", "audio", "offset", "duration")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ClipRow:
    """One clip: ``offset`` and ``duration`` (None = to the end) in seconds of ``audio``."""

    id: str
    audio: str
    offset: float = 0.0
    duration: float | None = None


@dataclass
class SplitInfo:
    """Description of a split folder (the content of ``split.json``)."""

    kind: str
    class_list: list[str]
    frames: int
    clip_seconds: float | None = None
    hop_seconds: float | None = None
    sample_rate: int | None = None
    mono: str = "first"
    frame_layout: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Split:
    """A loaded split folder: its info, clip rows and (N, T, C) uint8 labels.

    known: (N,) bool, which clips' labels are known (``labelled.npy``; None = all of them).
    """

    folder: Path
    info: SplitInfo
    rows: list[ClipRow]
    labels: np.ndarray
    known: np.ndarray | None = None

    def audio_path(self, row: ClipRow) -> Path:
        """Absolute path of a clip's audio file."""
        p = Path(row.audio)
        return p if p.is_absolute() else self.folder / p


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_split(
    folder: str | Path,
    info: SplitInfo,
    rows: Sequence[ClipRow],
    labels: np.ndarray,
    known: np.ndarray | None = None,
) -> Path:
    """Write a split folder (clip table, labels, then ``split.json``); labels (N, T, C) 0/1;
    known: optional (N,) bool mask of the clips whose labels are known (``labelled.npy``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lab = np.asarray(labels)
    if (
        lab.ndim != 3
        or lab.shape[0] != len(rows)
        or lab.shape[1] != info.frames
        or lab.shape[2] != len(info.class_list)
    ):
        raise ValueError(
            f"labels {lab.shape} do not match {len(rows)} clips, T={info.frames}, "
            f"C={len(info.class_list)}"
        )
    (folder / SPLIT_FILE).unlink(missing_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CLIP_COLUMNS)
    for r in rows:
        w.writerow([r.id, r.audio, _num(r.offset), "" if r.duration is None else _num(r.duration)])
    atomic_write_text(folder / CLIPS_FILE, buf.getvalue())
    atomic_save_npy(folder / LABELS_FILE, lab.astype(np.uint8))
    if known is not None:
        mask = np.asarray(known, dtype=bool)
        if mask.shape != (len(rows),):
            raise ValueError(f"known {mask.shape} does not match {len(rows)} clips")
        atomic_save_npy(folder / KNOWN_FILE, mask)
    else:
        (folder / KNOWN_FILE).unlink(missing_ok=True)
    write_json(folder / SPLIT_FILE, {"format": FORMAT_VERSION, **asdict(info), "n": len(rows)})
    return folder


def _num(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def is_split(folder: Path) -> bool:
    return (folder / SPLIT_FILE).is_file()


def find_splits(root: str | Path) -> list[Path]:
    """Split folders at or under ``root`` (sorted); UserError when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            "input folder not found", root, "point --input at a folder made by `iml-tui prepare`"
        )
    if is_split(root):
        return [root]
    found = sorted(p.parent for p in root.rglob(SPLIT_FILE))
    if not found:
        raise UserError(
            f"no prepared split ({SPLIT_FILE}) in this folder",
            root,
            "run `iml-tui prepare dcase|lid|vtd --out <folder>` first and point "
            "--input at its output",
        )
    return found


def read_split(folder: str | Path) -> Split:
    """Load and validate a split folder."""
    folder = Path(folder)
    fix = "re-create it with `iml-tui prepare`"
    try:
        meta = json.loads((folder / SPLIT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(
            f"{SPLIT_FILE} is missing (unfinished or not a split folder)", folder, fix
        ) from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{SPLIT_FILE} is not valid JSON ({exc})", folder, fix) from exc
    try:
        info = SplitInfo(
            kind=str(meta["kind"]),
            class_list=[str(c) for c in meta["class_list"]],
            frames=int(meta["frames"]),
            clip_seconds=meta.get("clip_seconds"),
            hop_seconds=meta.get("hop_seconds"),
            sample_rate=meta.get("sample_rate"),
            mono=str(meta.get("mono", "first")),
            frame_layout=str(meta.get("frame_layout", "")),
            extra=dict(meta.get("extra", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{SPLIT_FILE} lacks or garbles key {exc}", folder, fix) from exc
    rows = read_clip_table(folder / CLIPS_FILE)
    try:
        labels = np.load(folder / LABELS_FILE, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{LABELS_FILE} is missing or unreadable ({exc})", folder, fix) from exc
    want = (len(rows), info.frames, len(info.class_list))
    if labels.shape != want:
        raise UserError(f"{LABELS_FILE} has shape {labels.shape}, expected {want}", folder, fix)
    known = None
    if (folder / KNOWN_FILE).exists():
        try:
            known = np.load(folder / KNOWN_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"{KNOWN_FILE} is unreadable ({exc})", folder, fix) from exc
        if known.shape != (len(rows),) or known.dtype != np.bool_:
            raise UserError(
                f"{KNOWN_FILE} has shape {known.shape} and dtype {known.dtype}, "
                f"expected ({len(rows)},) bool",
                folder,
                fix,
            )
    return Split(
        folder=folder, info=info, rows=rows, labels=labels.astype(np.uint8, copy=False), known=known
    )


def read_clip_table(path: Path) -> list[ClipRow]:
    """Rows of a ``clips.csv``; UserError naming the file and line when malformed."""
    fix = "re-create it with `iml-tui prepare`"
    try:
        f = open(path, newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UserError(f"cannot read the clip table ({exc.strerror})", path, fix) from exc
    rows: list[ClipRow] = []
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != CLIP_COLUMNS:
            raise UserError(f"header {header}, expected {','.join(CLIP_COLUMNS)}", path, fix)
        for line, rec in enumerate(reader, start=2):
            if len(rec) != len(CLIP_COLUMNS):
                raise UserError(
                    f"line {line}: {len(rec)} fields, expected {len(CLIP_COLUMNS)}", path, fix
                )
            try:
                offset = float(rec[2])
                duration = None if rec[3].strip() == "" else float(rec[3])
            except ValueError as exc:
                raise UserError(f"line {line}: bad number ({exc})", path, fix) from exc
            rows.append(ClipRow(rec[0], rec[1], offset, duration))
    return rows


def clean_name(name: str) -> str:
    """File and class names as the pool uses them: spaces and '-' become '_'."""
    return name.strip().replace(" ", "_").replace("-", "_")


@dataclass
class SummaryTable:
    """A small table for the CLI to print: a title, column names and rows of cells."""

    title: str
    columns: list[str]
    rows: list[list[str | int | float]]
