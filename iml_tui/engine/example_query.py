"""What a search by example starts from: a clip of the pool (its id), or a clip of any audio file
(``FILE`` or ``FILE@offset``) embedded by the encoder that made the pool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from iml_tui.data.store import PoolStore
from iml_tui.errors import UserError


@dataclass(frozen=True)
class Example:
    """The query: a pool index (None for outside audio), its (D,) pooled vector, a name."""

    index: int | None
    vector: np.ndarray
    name: str


def _split_offset(text: str) -> tuple[str, float]:
    path, sep, off = text.rpartition("@")
    if sep:
        try:
            return path, float(off)
        except ValueError:
            pass
    return text, 0.0


def resolve_example(store: PoolStore, example: str, device: str = "cpu") -> Example:
    """``example``: a pool id (``relative/path.ext@offset``), the same with another spelling of
    the offset, or an audio file (optionally ``@offset`` seconds) embedded like the pool."""
    ids = store.ids
    pooled = store.pooled()
    if example in ids:
        i = ids.index(example)
        return Example(i, pooled[i], example)
    path, offset = _split_offset(example)
    for i, pid in enumerate(ids):
        p, o = _split_offset(pid)
        if p == path and abs(o - offset) < 1e-6:
            return Example(i, pooled[i], pid)
    file = Path(path)
    if not file.is_file():
        raise UserError(
            f"{example!r} is neither a clip of the pool nor an audio file",
            None,
            "give a pool id (relative/path.ext@offset, as `iml-tui export` writes) "
            "or FILE[@offset] of a recording",
        )
    from iml_tui.audio import io as audio_io
    from iml_tui.engine.detect_recordings import pool_encoder
    from iml_tui.engine.search import unit

    clip = store.clip_seconds("search with a pool id instead of an audio file")
    enc = pool_encoder(store, device)
    sr = int(enc.sample_rate)
    mono: Literal["first", "mix"] = "mix" if store.attrs.get("mono") == "mix" else "first"
    x, _ = audio_io.read(file, sr=sr, mono=mono, start=offset, duration=clip)
    if x.size == 0:
        raise UserError(f"no samples at {offset:g} s", file, "give an offset inside the file")
    want = round(clip * sr)
    x = np.pad(x[:want], (0, max(0, want - x.size))).astype(np.float32)
    emb = np.asarray(enc.encode([x]), dtype=np.float32)[0]  # (T, D)
    return Example(None, unit(emb.max(axis=0)), f"{file.name}@{offset:g}")
