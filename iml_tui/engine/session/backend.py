"""What a session needs from a paradigm: the :class:`SessionBackend` protocol (pool rounds or
the stream loop), and helpers the backends share."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from iml_tui.data.locate import Locator
from iml_tui.engine.journal import Event, Journal, NewEvent
from iml_tui.engine.session.fold import Fold
from iml_tui.engine.session.types import CancelFn, LearningCurve, ProgressCb, RetrainResult


def checkpoint_path(models_dir: Path, mode: str, version: int) -> Path:
    return models_dir / f"{mode}_v{version:04d}_{os.getpid()}_{secrets.token_hex(3)}.pt"


def model_trained_event(project_dir: Path, result: RetrainResult, **payload: Any) -> NewEvent:
    """The journal's record of a retraining: version, round, time, the checkpoint (relative to
    the project), scores and labelled count, then the backend's own ``payload`` keys."""
    return NewEvent(
        "model_trained",
        model_version=result.version,
        round=result.round,
        seconds=result.seconds,
        payload={
            "file": str(Path(result.file or "").relative_to(project_dir)),
            "scores": result.scores,
            "n_labelled": result.n_labelled,
            **payload,
        },
    )


def class_names(class_list: Sequence[str], labels: Sequence[int]) -> str:
    return ", ".join(class_list[i] for i in labels) if labels else "none"


def next_round(budgets: Sequence[int], n_labelled: int) -> int | None:
    """The first round whose budget exceeds the labels in force (None: every budget reached)."""
    for r, b in enumerate(budgets):
        if b > n_labelled:
            return r
    return None


@runtime_checkable
class SessionBackend(Protocol):
    """One paradigm behind a :class:`~iml_tui.engine.session.Session`: pool rounds
    (:class:`~iml_tui.engine.session.pool_backend.PoolBackend`) or the stream loop
    (:class:`~iml_tui.engine.session.stream_backend.StreamBackend`).

    The session folds the journal (:class:`Fold`) and hands it over; a backend reads it, never
    writes the journal itself: it returns the events to append.
    """

    mode: str  # "pool" | "stream"
    multi_label: bool
    class_list: list[str]
    ids: list[str]
    locator: Locator
    version: int  # the installed model (0 = none)
    score_key: str  # key of ``scores`` shown as the model's score
    training_description: str

    @property
    def n_rounds(self) -> int: ...

    @property
    def score_name(self) -> str: ...

    @property
    def scores(self) -> dict[str, float]: ...

    @property
    def trained_on(self) -> int: ...

    def opening_events(self, journal: Journal) -> list[NewEvent]:
        """Events to append once when a session opens (pool: labels the pool already knows)."""
        ...

    def first_queue(self, fold: Fold) -> list[NewEvent]:
        """The queue before any model."""
        ...

    def done(self, fold: Fold) -> bool: ...

    def due(self, fold: Fold) -> bool:
        """The queue waits for a new model."""
        ...

    def key(self, fold: Fold) -> str:
        """What a retraining's result must still match to be installed."""
        ...

    def asking(self) -> bool:
        """Whether items can be asked now."""
        ...

    def undo_items(self) -> list[int] | None:
        """Items whose answers may be withdrawn (None: any)."""
        ...

    def round_and_budget(self, fold: Fold, n_labelled: int, left: int) -> tuple[int, int]: ...

    def job_work(
        self, fold: Fold, status_key: str
    ) -> Callable[[ProgressCb, CancelFn], RetrainResult]:
        """The slow part of a retraining, on a snapshot of ``fold`` (run off the UI thread)."""
        ...

    def model_event(self, result: RetrainResult) -> NewEvent: ...

    def bridge_events(self, fold: Fold) -> list[NewEvent]:
        """Items to ask while a model trains at a round boundary ([]: the face waits)."""
        ...

    def fit_queue(self, result: RetrainResult, fold: Fold) -> list[NewEvent]:
        """``result``'s queue adjusted to the answers given while it trained."""
        ...

    def install_result(self, result: RetrainResult, ev: Event) -> None: ...

    def load(self, ev: Event) -> None:
        """Install the model of a ``model_trained`` event written by any process."""
        ...

    def item_view(self, sel: Event | None, item: int) -> dict[str, Any]: ...

    def truth(self, item: int) -> list[int]: ...

    def learning_curve(self, fold: Fold) -> LearningCurve: ...
