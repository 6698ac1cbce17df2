"""VTD sessions -> prepared 5 s segment splits for ``extract`` (SPEC B, voice-type discrimination).

Source layout: one folder per environment (``rm1_mc20``, ``hotel_mc19``, ...), each holding session
recordings (wav, flac, ogg, mp3) and, next to each, its per-segment labels with the same stem:

- ``<session>.npy``: a 1-D array of 0/1, one value per 5 s segment; or
- ``<session>.csv``: one row per segment, the 0/1 value in a ``label`` column (other columns, such
  as ``segment`` or ``start``, are ignored), or a header-less single column of 0/1.

1 = live human speech, 0 = anything else. Segment k covers ``[5k, 5k + 5)`` s of the session; a
session may carry fewer labels than segments (the rest is unused), never more than it has
(a last, partial segment is zero-padded).

Output: ``<out>/<env>/`` one split folder per environment (:mod:`iml_tui.data.corpus`), sessions in
file-name order, ids ``<session>/<segment:04d>``, labels (N, 1, 1) with the class ``live_speech``;
the audio is not copied. ``iml-tui extract --input <out> --out <feat_root>/<feature>`` then writes
``<feature>/<env>.h5``, the layout ``simulate --task vtd`` reads.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from iml_tui.audio import io as audio_io
from iml_tui.data.corpus import MANIFEST, ClipRow, SplitInfo, SummaryTable, write_split
from iml_tui.errors import UserError
from iml_tui.provenance import write_manifest

SEGMENT_SECONDS = 5.0
AUDIO_EXTS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3")
CLASS_NAME = "live_speech"
_FIX = "give one 0/1 label per 5 s segment in <session>.npy or <session>.csv (column label)"


def read_segment_labels(path: str | Path) -> np.ndarray:
    """(n_segments,) int64 0/1 labels of one session from ``.npy`` or ``.csv``."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the labels ({exc})", path, _FIX) from exc
        arr = np.asarray(arr).reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
        if arr.ndim != 1:
            raise UserError(f"labels have shape {arr.shape}, expected (n_segments,)", path, _FIX)
        if arr.size and not np.isin(arr, (0, 1)).all():
            bad = int(np.flatnonzero(~np.isin(arr, (0, 1)))[0])
            raise UserError(f"segment {bad} has label {arr[bad]!r}, expected 0 or 1", path, _FIX)
        return arr.astype(np.int64)
    return _read_csv_labels(path)


def _read_csv_labels(path: Path) -> np.ndarray:
    try:
        records = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except OSError as exc:
        raise UserError(f"cannot read the labels ({exc.strerror})", path, _FIX) from exc
    lines = [(i, r) for i, r in enumerate(records, start=1) if any(c.strip() for c in r)]
    if not lines:
        return np.zeros(0, dtype=np.int64)
    col = 0
    first = [c.strip().lower() for c in lines[0][1]]
    if "label" in first:
        col, lines = first.index("label"), lines[1:]
    elif len(first) != 1:
        raise UserError(f"line 1: columns {first}, expected a 'label' column", path, _FIX)
    out = []
    for line, rec in lines:
        cell = rec[col].strip() if col < len(rec) else ""
        if cell not in ("0", "1"):
            raise UserError(f"line {line}: label {cell!r}, expected 0 or 1", path, _FIX)
        out.append(int(cell))
    return np.asarray(out, dtype=np.int64)


def prepare_vtd(source: str | Path, out: str | Path) -> SummaryTable:
    """Write one segment split per environment; returns sessions, segments and live-speech
    segments per environment."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise UserError(
            "source folder not found",
            source,
            "point --source at a folder holding one folder per environment",
        )
    envs = sorted(p for p in source.iterdir() if p.is_dir() and _sessions(p))
    if not envs:
        raise UserError(
            "no environment folder with session audio",
            source,
            "put <env>/<session>.wav with <session>.npy or .csv labels in it",
        )
    table: list[list[str | int | float]] = []
    manifest_envs: dict[str, object] = {}
    for env in envs:
        rows: list[ClipRow] = []
        labels: list[int] = []
        sessions = _sessions(env)
        for audio in sessions:
            lab = read_segment_labels(_label_file(audio))
            try:
                n_audio = math.ceil(audio_io.info(audio).duration / SEGMENT_SECONDS - 1e-6)
            except UserError:  # unreadable: `extract` reports it and skips its segments
                n_audio = lab.size
            if lab.size > n_audio:
                raise UserError(
                    f"{lab.size} labels but the audio has {n_audio} segments of "
                    f"{SEGMENT_SECONDS:g} s",
                    _label_file(audio),
                    _FIX,
                )
            rows.extend(
                ClipRow(
                    f"{audio.stem}/{k:04d}",
                    str(audio.resolve()),
                    k * SEGMENT_SECONDS,
                    SEGMENT_SECONDS,
                )
                for k in range(lab.size)
            )
            labels.extend(int(v) for v in lab)
        info = SplitInfo(
            kind="vtd",
            class_list=[CLASS_NAME],
            frames=1,
            clip_seconds=SEGMENT_SECONDS,
            hop_seconds=SEGMENT_SECONDS,
            mono="first",
            frame_layout="one label per 5 s segment",
            extra={
                "environment": env.name,
                "sessions": [a.stem for a in sessions],
                "source": str(env.resolve()),
            },
        )
        lab_arr = np.asarray(labels, dtype=np.uint8).reshape(-1, 1, 1)
        write_split(out / env.name, info, rows, lab_arr)
        live = int(lab_arr.sum())
        table.append([env.name, len(sessions), len(rows), live])
        manifest_envs[env.name] = {
            "sessions": len(sessions),
            "segments": len(rows),
            "live_speech": live,
        }
    write_manifest(
        out / MANIFEST,
        {
            "format": 1,
            "kind": "vtd",
            "source": str(source.resolve()),
            "segment_seconds": SEGMENT_SECONDS,
            "environments": manifest_envs,
        },
    )
    return SummaryTable(
        f"VTD: sessions and 5 s segments per environment ({out})",
        ["environment", "sessions", "segments", "live speech"],
        table,
    )


def _sessions(env: Path) -> list[Path]:
    return sorted(
        p
        for p in env.iterdir()
        if p.is_file() and p.suffix.lower() in AUDIO_EXTS and not p.name.startswith(".")
    )


def _label_file(audio: Path) -> Path:
    for ext in (".npy", ".csv"):
        p = audio.with_suffix(ext)
        if p.is_file():
            return p
    raise UserError(
        "no labels for this session", audio, f"put {audio.stem}.npy or {audio.stem}.csv next to it"
    )
