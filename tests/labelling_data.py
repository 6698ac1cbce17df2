"""Tiny labelling projects for the session, export and audio tests: pools whose ids point to
real (synthetic) audio, written with the real corpus and store formats."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from iml_tui.data.corpus import ClipRow, SplitInfo, write_split
from iml_tui.data.store import PoolMeta, PoolWriter
from iml_tui.engine.project import Project, ProjectConfig

CLASSES = ("bird", "frog", "insect")
SR = 8000
CLIP = 2.0
HOP = 1.0
FAST_TRAIN: dict[str, Any] = {
    "hidden": 16,
    "max_epochs": 12,
    "batch_size": 16,
    "lr": 3e-3,
    "min_lr": 1e-4,
    "lr_patience": 2,
    "threads": 1,
}


def _pool_arrays(n: int, t: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    c = len(CLASSES)
    patterns = rng.normal(size=(c, d)).astype(np.float32) * 2.0
    clip = (rng.random((n, c)) < 0.3).astype(np.uint8)
    frames = np.repeat(clip[:, None, :], t, axis=1)
    frames[:, 0, :] = 0  # events do not fill the first frame
    emb = rng.normal(size=(n, t, d)).astype(np.float32) + frames.astype(np.float32) @ patterns
    return emb.astype(np.float32), frames


def make_audio_pool(
    root: Path,
    n_files: int = 4,
    seconds: float = 6.0,
    t: int = 4,
    d: int = 8,
    n_valid: int = 24,
    seed: int = 0,
    source_split: bool = True,
) -> Path:
    """Write ``root/audio/rec<k>.wav`` (sines), a prepared split folder and ``root/pool/{train,
    valid}.h5``; ids are ``rec<k>.wav@<offset>`` (2 s clips, 1 s hop). Returns the pool folder.
    ``source_split``: the train store names the split folder (else only the ids locate audio)."""
    rng = np.random.default_rng(seed)
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows: list[ClipRow] = []
    per_file = 1 + int(np.ceil((seconds - CLIP) / HOP))
    for k in range(n_files):
        tt = np.arange(int(seconds * SR)) / SR
        x = 0.3 * np.sin(2 * np.pi * (300 + 100 * k) * tt).astype(np.float32)
        sf.write(audio / f"rec{k}.wav", x, SR)
        rows += [
            ClipRow(
                f"rec{k}.wav@{j * HOP:.3f}", str((audio / f"rec{k}.wav").resolve()), j * HOP, CLIP
            )
            for j in range(per_file)
        ]
    n = len(rows)
    emb, lab = _pool_arrays(n, t, d, rng)
    split = write_split(
        root / "prepared" / "train",
        SplitInfo(
            kind="dcase",
            class_list=list(CLASSES),
            frames=t,
            clip_seconds=CLIP,
            hop_seconds=HOP,
            sample_rate=SR,
        ),
        rows,
        lab,
    )
    pool = root / "pool"
    extra = {"source_split": str(split.resolve())} if source_split else {}
    meta = PoolMeta(encoder="test", sample_rate=SR, clip_seconds=CLIP, hop_seconds=HOP, extra=extra)
    w = PoolWriter(pool / "train.h5", n, t, d, CLASSES, meta)
    w.write_block(0, emb, lab, [r.id for r in rows])
    w.close()
    vemb, vlab = _pool_arrays(n_valid, t, d, np.random.default_rng(seed + 1))
    w = PoolWriter(pool / "valid.h5", n_valid, t, d, CLASSES, PoolMeta(encoder="test"))
    w.write_block(0, vemb, vlab, [f"valid{i}" for i in range(n_valid)])
    w.close()
    return pool


def make_project(
    folder: Path,
    pool_dir: Path,
    strategy: str = "mfft",
    budgets: Sequence[int] = (4, 8, 12),
    **kw: Any,
) -> Project:
    """A pool-mode project with a fast classifier."""
    cfg = ProjectConfig(
        task="bioacoustic",
        pool_dir=str(pool_dir),
        strategy=strategy,
        budgets=list(budgets),
        **{**FAST_TRAIN, **kw},
    )
    return Project.create(folder, cfg)


def with_stream(cfg: ProjectConfig, **stream: Any) -> ProjectConfig:
    return dataclasses.replace(cfg, stream=stream)
