"""Plain values the widgets draw: what the bridge makes of the session's answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ItemView:
    """The current question, ready to draw.

    ``probs`` (C,) clip-level and ``frame_probs`` (T, C) come from the model that ranked the
    item (None before the first model); ``preset`` is the label pre-ticked (a detection to
    review in stream mode); ``kind`` is "query" or "review". ``item_id`` is the session's id
    (journal, exports); ``name`` what the screen shows (neutral in stream mode, see
    :meth:`~iml_tui.tui.bridge.Bridge.display_name`).
    """

    item_id: str
    index: int
    why: str
    name: str = ""
    kind: str = "query"
    probs: np.ndarray | None = None
    frame_probs: np.ndarray | None = None
    confidence: float | None = None
    preset: frozenset[int] = frozenset()
    threshold: float = 0.5


@dataclass(frozen=True)
class ProgressView:
    """Labelled / budget, round and per-class counts."""

    labelled: int
    budget: int | None = None
    round: int | None = None
    n_rounds: int | None = None
    round_name: str = "round"
    skipped: int = 0
    class_counts: tuple[tuple[str, int], ...] = ()
    none_count: int = 0
    annotator: str = ""
    done: bool = False


@dataclass(frozen=True)
class ModelView:
    """Model version, training state and the last validation score."""

    version: int = 0
    score: float | None = None
    score_name: str = "valid mAP"
    training: float | None = None
    training_note: str = ""
    error: str = ""
    curve: tuple[tuple[int, float], ...] = field(default=())
