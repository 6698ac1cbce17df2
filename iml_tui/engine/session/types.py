"""What a session hands its face: items, progress, model status, learning curve, results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iml_tui.data.locate import ClipLocation
from iml_tui.engine.journal import NewEvent
from iml_tui.engine.oracle import Question, Why

ProgressCb = Callable[[float, str], None]
"""``progress_cb(fraction in [0, 1], message)``, called from the training thread."""
CancelFn = Callable[[], bool]
"""``cancelled() -> bool``: True asks a running training to stop (polled about once per epoch)."""

STATES: tuple[str, ...] = ("none", "ready", "due", "training", "done")


# --- what the face sees --------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One item to show, with everything the screen needs.

    index: row in the pool store (pool) or the stream's sample table (stream). id: the clip id
    (source file + offset). kind: "pool-query" (chosen by the pool strategy), "al-query" (the
    stream model asks), "cf-review" (a model decision to review: corrective feedback) or
    "bootstrap". why: one line for the "why this one" panel; why_fields: the facts behind it
    (strategy, mismatch, neighbour, neighbour_labels, distance, uncertainty, method, ...).
    clip_probs (C,) and frame_probs (T, C) float32: the current model's probabilities (None
    before the first model); predicted: the classes the model says are present (at threshold);
    confidence: the model's probability of its own decision for its least certain class.
    location: where the audio is (None when it cannot be found: ``audio_error`` says why).
    round: pool round (0-based) or stream batch (-1: bootstrap); position: rank in its queue;
    model_version: the model behind the probabilities (0: none); previous: the labels withdrawn
    by undo when the item is shown again (() = it had been labelled "none"; None otherwise).
    """

    index: int
    id: str
    kind: str
    why: str
    why_fields: dict[str, Any]
    clip_probs: np.ndarray | None
    frame_probs: np.ndarray | None
    predicted: tuple[int, ...]
    confidence: float | None
    threshold: float
    location: ClipLocation | None
    audio_error: str
    round: int
    position: int
    model_version: int
    previous: tuple[int, ...] | None = None

    def question(self) -> Question:
        """This item as a one-item :class:`Question` (what an Oracle answers)."""
        why: Why = (
            "cf-review"
            if self.kind == "cf-review"
            else "bootstrap"
            if self.kind == "bootstrap"
            else "al-query"
        )
        pred = None if self.clip_probs is None else np.array([int(bool(self.predicted))])
        conf = None if self.confidence is None or pred is None else np.array([self.confidence])
        return Question(
            items=np.array([self.index]),
            why=why,
            pred=pred,
            confidence=conf,
            batch=self.round,
            ids=(self.id,),
        )


@dataclass(frozen=True)
class Progress:
    """labelled / budget: labels in force and the current round's target (stream: labels so far
    plus the questions still open); round / n_rounds (stream: batch / batches); per_class:
    labelled items where each class is present; none: labelled "none of them"; skipped;
    queue_left: items of the current queue not answered yet, and items handed to an annotator
    and not answered yet; done: nothing more to ask;
    mine: answers of this session's annotator; seconds: time they spent."""

    labelled: int
    budget: int
    round: int
    n_rounds: int
    per_class: dict[str, int]
    none: int
    skipped: int
    queue_left: int
    done: bool
    mine: int
    seconds: float


@dataclass(frozen=True)
class ModelStatus:
    """version: the installed model (0 = none yet); state: "none" (no model, none needed
    yet), "ready", "due" (the queue waits for a retraining), "training" (this process runs
    one), "done"; progress in [0, 1] and message of a running training; score / score_name:
    the last validation score (pool: "valid mAP", stream: "pre-DCF" of the last batch, lower is
    better); trained_on: labels the model saw; error: why the last training failed ("" if it
    did not)."""

    version: int
    state: str
    progress: float
    message: str
    score: float | None
    score_name: str
    trained_on: int
    error: str


@dataclass(frozen=True)
class LearningCurve:
    """Score after each model: points (labels used, score); ``higher_is_better``."""

    metric: str
    higher_is_better: bool
    points: list[tuple[int, float]]


@dataclass
class RetrainResult:
    """What :meth:`RetrainJob.run` produced; hand it to :meth:`Session.swap_model`.

    ok: a model to install (error None, not cancelled). version: the version it gets;
    base_version: the model it replaces. scores: validation numbers; n_labelled: labels used;
    seconds: wall time; file: the checkpoint written (next to the journal). adopted: another
    annotator's session trained this model (it is in the journal; ``swap_model`` loads it).
    """

    mode: str
    base_version: int
    version: int
    key: str
    error: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    n_labelled: int = 0
    file: Path | None = None
    queue: list[NewEvent] = field(default_factory=list)
    state: Any = None
    round: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    adopted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled
