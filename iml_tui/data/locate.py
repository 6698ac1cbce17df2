"""Where a pool item's audio is: item id + the store's attributes (+ an audio root) -> a clip.

Stores written by ``iml-tui extract`` carry ``source_split``, the prepared split folder whose
``clips.csv`` maps every id to ``audio, offset, duration`` (see :mod:`iml_tui.data.corpus`). That
table is the first source. Otherwise the id itself is read: ``<relative audio path>@<offset>``
(``@12.5`` or ``@12.5s``; DCASE and synthetic pools) or a bare relative audio path (a whole
utterance, e.g. Common Voice), resolved against the audio root, with the store's
``clip_seconds`` as the duration.

``audio_root`` is for audio that moved since the pool was made: relative paths are taken from it
first (then from the split folder), and absolute paths that no longer exist are looked up under it
by their last two and then one path components.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iml_tui.errors import UserError

_AT_OFFSET = re.compile(r"^(?P<path>.+)@(?P<offset>\d+(?:\.\d+)?)s?$")


@dataclass(frozen=True)
class ClipLocation:
    """A clip: ``duration`` seconds (None = to the end of the file) from ``start`` in ``path``."""

    path: Path
    start: float
    duration: float | None

    def describe(self) -> str:
        end = "end" if self.duration is None else f"{self.start + self.duration:g} s"
        return f"{self.path} [{self.start:g} s - {end}]"


class Locator:
    """Maps item ids of one pool store to their audio.

    attrs: the store's attributes (``PoolStore.attrs``); audio_root: see the module docstring.
    """

    def __init__(self, attrs: Mapping[str, Any], audio_root: str | Path | None = None) -> None:
        self.attrs = dict(attrs)
        self.root = Path(audio_root).expanduser() if audio_root else None
        split = str(self.attrs.get("source_split") or "")
        self.split_dir = Path(split) if split else None
        self.clip_seconds = float(self.attrs.get("clip_seconds") or 0.0) or None
        self._table: dict[str, tuple[str, float, float | None]] | None = None
        self._table_error = ""

    def _clip_table(self) -> dict[str, tuple[str, float, float | None]]:
        if self._table is not None:
            return self._table
        self._table = {}
        folders = [p for p in (self.split_dir, self.root) if p is not None]
        for folder in folders:
            path = folder / "clips.csv"
            if path.is_file():
                from iml_tui.data.corpus import read_clip_table

                try:
                    rows = read_clip_table(path)
                except UserError as exc:
                    self._table_error = str(exc)
                    continue
                self._table = {r.id: (r.audio, r.offset, r.duration) for r in rows}
                if self.split_dir is None or not self.split_dir.is_dir():
                    self.split_dir = folder
                break
        return self._table

    def _resolve(self, audio: str) -> Path | None:
        p = Path(audio)
        tries: list[Path] = []
        if p.is_absolute():
            tries.append(p)
            if self.root is not None:
                tries += [self.root / Path(*p.parts[-2:]), self.root / p.name]
        else:
            if self.root is not None:
                tries.append(self.root / p)
            if self.split_dir is not None:
                tries.append(self.split_dir / p)
        for t in tries:
            if t.is_file():
                return t
        return None

    def locate(self, item_id: str) -> ClipLocation:
        """The clip of ``item_id``; UserError saying what is missing and how to fix it."""
        table = self._clip_table()
        fix = "give the project an audio root (--audio-root) that holds the audio files"
        if item_id in table:
            audio, start, duration = table[item_id]
            path = self._resolve(audio)
            if path is None:
                raise UserError(
                    f"the audio of {item_id!r} is not there ({audio})", self.split_dir, fix
                )
            return ClipLocation(path, float(start), duration)
        m = _AT_OFFSET.match(item_id)
        audio, start, duration = (
            (m.group("path"), float(m.group("offset")), self.clip_seconds)
            if m
            else (item_id, 0.0, None)
        )
        path = self._resolve(audio)
        if path is None:
            where = f" (clip table: {self._table_error})" if self._table_error else ""
            raise UserError(f"cannot find the audio of {item_id!r}{where}", self.root, fix)
        return ClipLocation(path, start, duration)

    def read(self, item_id: str, sr: int | None = None) -> tuple[np.ndarray, int]:
        """(samples (n,) float32, sample rate) of the clip of ``item_id``, zero-padded to its
        duration when the file ends early."""
        from iml_tui.audio import io as audio_io

        loc = self.locate(item_id)
        x, rate = audio_io.read(
            loc.path, sr=sr, mono="first", start=loc.start, duration=loc.duration
        )
        if loc.duration is not None:
            want = round(loc.duration * rate)
            if x.size < want:
                x = np.pad(x, (0, want - x.size))
        return np.ascontiguousarray(x, dtype=np.float32), rate


def locate_all(locator: Locator, ids: Sequence[str]) -> list[ClipLocation | None]:
    """The location of each id (None where it cannot be found)."""
    out: list[ClipLocation | None] = []
    for i in ids:
        try:
            out.append(locator.locate(i))
        except UserError:
            out.append(None)
    return out
