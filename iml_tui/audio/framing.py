"""Cutting a signal into overlapping frames: one strided view, no copy."""

from __future__ import annotations

import numpy as np


def frame_count(n_samples: int, frame_length: int, hop: int) -> int:
    """Frames of ``frame_length`` every ``hop`` samples that fit in ``n_samples`` (0 if none)."""
    if hop < 1 or frame_length < 1:
        raise ValueError(f"frame_length {frame_length} and hop {hop} must be >= 1")
    return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // hop


def frames(x: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """(n_frames, frame_length) read-only view of the mono signal x (n,): row k is
    ``x[k * hop : k * hop + frame_length]``; the tail that does not fill a frame is left out."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a mono (n,) signal, got shape {x.shape}")
    n = frame_count(x.shape[0], frame_length, hop)
    if n == 0:
        return np.zeros((0, frame_length), dtype=x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, frame_length)[::hop][:n]
