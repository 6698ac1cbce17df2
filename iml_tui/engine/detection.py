"""Frame probabilities of overlapping clips -> events per class on a recording's timeline.

A recording cut into clips of ``clip_s`` seconds every ``hop_s`` seconds gives, per clip, a
(T, C) array of frame probabilities; frame t of a clip starting at ``offset`` covers
[offset + t * clip_s / T, offset + (t + 1) * clip_s / T). ``stitch`` places them on one grid of
step clip_s / T and averages where clips overlap; ``events_from_frames`` binarises per class
(no hysteresis), merges gaps shorter than ``merge_gap_s`` and drops events shorter than
``min_duration_s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iml_tui.errors import UserError


@dataclass(frozen=True)
class Event:
    """One detection: times in seconds from the start of the recording; score = mean frame prob."""

    onset: float
    offset: float
    class_index: int
    score: float


def stitch(
    clip_probs: Sequence[np.ndarray], offsets_s: Sequence[float], clip_s: float
) -> tuple[np.ndarray, float]:
    """Average (T, C) clip frame probabilities onto one (F, C) grid; returns (grid, step_s).

    Offsets must be multiples of the frame step (clip_s / T) up to rounding; a grid frame that no
    clip covers is 0.
    """
    if len(clip_probs) != len(offsets_s):
        raise UserError(f"stitch: {len(clip_probs)} clips but {len(offsets_s)} offsets")
    if not clip_probs:
        return np.zeros((0, 0), dtype=np.float32), 0.0
    n_frames, n_classes = np.asarray(clip_probs[0]).shape
    step = clip_s / n_frames
    starts = [round(o / step) for o in offsets_s]
    total = max(starts) + n_frames
    acc = np.zeros((total, n_classes), dtype=np.float64)
    count = np.zeros(total, dtype=np.int64)
    for probs, start in zip(clip_probs, starts, strict=True):
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != (n_frames, n_classes):
            raise UserError(f"stitch: clip shape {p.shape}, expected {(n_frames, n_classes)}")
        acc[start : start + n_frames] += p
        count[start : start + n_frames] += 1
    grid = np.divide(acc, np.maximum(count, 1)[:, None])
    return grid.astype(np.float32), step


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, stop) index runs where mask is True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def events_from_frames(
    probs: np.ndarray,
    step_s: float,
    thresholds: float | Sequence[float],
    min_duration_s: float = 0.0,
    merge_gap_s: float = 0.0,
) -> list[Event]:
    """(F, C) frame probabilities at ``step_s`` -> events sorted by onset, then class.

    A frame is active when prob >= threshold of its class. Runs separated by a gap shorter than
    ``merge_gap_s`` are merged; merged events shorter than ``min_duration_s`` are dropped.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise UserError(
            f"events_from_frames: probabilities of shape {probs.shape}, expected (F, C)"
        )
    n_classes = probs.shape[1]
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_classes,))
    eps = 1e-9
    out: list[Event] = []
    for c in range(n_classes):
        merged: list[list[int]] = []
        for a, b in _runs(probs[:, c] >= thr[c]):
            if merged and (a - merged[-1][1]) * step_s < merge_gap_s - eps:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        for a, b in merged:
            if (b - a) * step_s < min_duration_s - eps:
                continue
            score = float(probs[a:b, c].mean())
            out.append(Event(onset=a * step_s, offset=b * step_s, class_index=c, score=score))
    out.sort(key=lambda e: (e.onset, e.class_index))
    return out


def grid_step(spans_s: np.ndarray, offsets_s: Sequence[float]) -> float:
    """The largest step (s, at 1 ms resolution) dividing every frame-span edge and clip offset."""
    values = [round(float(v) * 1000) for v in np.asarray(spans_s).ravel()]
    values += [round(float(o) * 1000) for o in offsets_s]
    g = 0
    for v in values:
        g = math.gcd(g, abs(v))
    return max(g, 1) / 1000.0


def stitch_spans(
    clip_probs: Sequence[np.ndarray],
    offsets_s: Sequence[float],
    spans_s: np.ndarray,
    duration_s: float | None = None,
) -> tuple[np.ndarray, float]:
    """Average (T, C) frame probabilities of windows at ``spans_s`` (T, 2) [start, end) seconds
    of their clip onto one (F, C) grid of the recording; returns (grid, step_s).

    Frame t of a clip at offset o covers [o + spans[t, 0], o + spans[t, 1]); each grid cell takes
    the mean of the frames that cover it (0 where none does). The step is :func:`grid_step`;
    ``duration_s`` cuts the grid at the end of the recording.
    """
    if len(clip_probs) != len(offsets_s):
        raise UserError(f"stitch: {len(clip_probs)} clips but {len(offsets_s)} offsets")
    spans = np.asarray(spans_s, dtype=np.float64)
    if not clip_probs:
        return np.zeros((0, 0), dtype=np.float32), 0.0
    n_frames, n_classes = np.asarray(clip_probs[0]).shape
    if spans.shape != (n_frames, 2) or np.any(spans[:, 1] <= spans[:, 0]):
        raise UserError(
            f"stitch: frame spans of shape {spans.shape}, expected ({n_frames}, 2) with start < end"
        )
    step = grid_step(spans, offsets_s)
    lo = np.rint(spans[:, 0] / step).astype(np.int64)
    hi = np.rint(spans[:, 1] / step).astype(np.int64)
    starts = [round(float(o) / step) for o in offsets_s]
    total = max(starts) + int(hi.max())
    if duration_s is not None:
        total = min(total, max(1, math.ceil(duration_s / step - 1e-9)))
    acc = np.zeros((total + int(hi.max()) + max(starts) + 1, n_classes), dtype=np.float64)
    count = np.zeros(acc.shape[0], dtype=np.int64)
    for probs, start in zip(clip_probs, starts, strict=True):
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != (n_frames, n_classes):
            raise UserError(f"stitch: clip shape {p.shape}, expected {(n_frames, n_classes)}")
        for t in range(n_frames):
            acc[start + lo[t] : start + hi[t]] += p[t]
            count[start + lo[t] : start + hi[t]] += 1
    grid = np.divide(acc[:total], np.maximum(count[:total], 1)[:, None])
    return grid.astype(np.float32), step
