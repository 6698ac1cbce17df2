"""Tiny random pools written with the real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iml_tui.data.store import write_pool


def make_pool(
    path: Path, n: int = 40, t: int = 4, d: int = 8, c: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Write a small random pool; returns (embeddings, labels)."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, t, d)).astype(np.float32)
    lab = (rng.random((n, t, c)) < 0.15).astype(np.uint8)
    write_pool(path, emb, lab, [f"class{i}" for i in range(c)], [f"clip{i}" for i in range(n)])
    return emb, lab
