"""Event extents the annotator marked in a clip, and the frame targets they give.

An extent is (onset s, offset s, class index), seconds from the clip's start, stored in the
journal as an ``extent`` event (:mod:`iml_tui.engine.journal`). For training they become (T, C)
frame targets with the same rule as the annotations that come with the recordings
(:func:`iml_tui.data.recordings.frame_targets`: a frame is 1 where an event overlaps it, touching
ends do not count); a pool whose encoder states where its frames lie (``frame_spans``, e.g.
birdnet's overlapping windows) maps them through
:func:`iml_tui.features.extract.labels_from_spans` from a fine grid of equal slots.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iml_tui.data.recordings import Event as RecordingEvent
from iml_tui.data.recordings import frame_targets
from iml_tui.engine.journal import Event
from iml_tui.features.extract import labels_from_spans

FINE_SLOTS = 1000
"""Equal slots per clip before mapping onto overlapping frame spans (10 s clip: 10 ms)."""


@dataclass(frozen=True)
class Extent:
    """One marked event: its journal id, onset and offset (s from the clip's start), class."""

    id: int
    onset: float
    offset: float
    cls: int

    @property
    def duration(self) -> float:
        return self.offset - self.onset


def extent_of(e: Event) -> Extent:
    """The extent an ``extent`` journal event records."""
    return Extent(
        int(e.id),
        float(e.payload.get("onset", 0.0)),
        float(e.payload.get("offset", 0.0)),
        int((e.labels or (0,))[0]),
    )


def live_extents(acts: Sequence[Event], undone: set[int]) -> list[Extent]:
    """The extents in force among one item's extent acts (``extent`` / ``extent_removed``
    events, any order) given the ids undone: not undone, and not replaced or removed by an act
    that is itself in force (the rule of the journal's ``current_extents`` view)."""
    ended = {int(a.ref) for a in acts if a.ref is not None and a.id not in undone}
    return [
        extent_of(a)
        for a in sorted(acts, key=lambda a: a.id)
        if a.kind == "extent" and a.id not in undone and a.id not in ended
    ]


def frame_spans_of(attrs: Mapping[str, Any]) -> np.ndarray | None:
    """(T, 2) [start, end) seconds of a pool's frames when its store states them, else None."""
    raw = attrs.get("frame_spans")
    spans = json.loads(raw) if isinstance(raw, str) else None
    return np.asarray(spans, dtype=np.float64) if spans else None


def extent_frames(
    extents: Sequence[Extent],
    clip_seconds: float,
    t: int,
    n_classes: int,
    spans: np.ndarray | None = None,
) -> np.ndarray:
    """(t, n_classes) uint8 frame targets of one clip's extents: frame j covers
    [j, j + 1) x clip / t (or ``spans[j]`` when given) and is 1 for class c where an extent of c
    overlaps it. Example: clip 2 s, t = 4, extent [0.6, 1.1) -> frames 1 and 2."""
    names = [str(c) for c in range(n_classes)]
    events = [RecordingEvent("", x.onset, x.offset, str(x.cls), "") for x in extents]
    if spans is None or len(spans) != t:
        return frame_targets(events, [0.0], clip_seconds, t, names)[0]
    fine = frame_targets(events, [0.0], clip_seconds, FINE_SLOTS, names)
    return labels_from_spans(fine, clip_seconds, spans)[0]
