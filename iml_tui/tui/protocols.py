"""What the TUI needs from the engine and the audio layer, as typed Protocols.

The screens are written against these, never against concrete engine classes: the structural
subset of ``iml_tui.engine.session`` (Session, Item, Progress, ModelStatus, LearningCurve,
RetrainJob) and of ``iml_tui.audio.playback`` (the players) that the face reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import numpy as np


class ItemLike(Protocol):
    """One question: a clip (pool), a stream query or a model decision to review."""

    @property
    def index(self) -> int: ...

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def why(self) -> str: ...

    @property
    def clip_probs(self) -> np.ndarray | None: ...

    @property
    def frame_probs(self) -> np.ndarray | None: ...

    @property
    def predicted(self) -> tuple[int, ...]: ...

    @property
    def confidence(self) -> float | None: ...

    @property
    def threshold(self) -> float: ...

    @property
    def previous(self) -> tuple[int, ...] | None: ...


class ProgressLike(Protocol):
    """Labelled / budget, round, per-class counts."""

    @property
    def labelled(self) -> int: ...

    @property
    def budget(self) -> int: ...

    @property
    def round(self) -> int: ...

    @property
    def n_rounds(self) -> int: ...

    @property
    def per_class(self) -> Mapping[str, int]: ...

    @property
    def none(self) -> int: ...

    @property
    def skipped(self) -> int: ...

    @property
    def done(self) -> bool: ...


class ModelStatusLike(Protocol):
    """Installed model version, training state and the last validation score."""

    @property
    def version(self) -> int: ...

    @property
    def state(self) -> str: ...

    @property
    def progress(self) -> float: ...

    @property
    def message(self) -> str: ...

    @property
    def score(self) -> float | None: ...

    @property
    def score_name(self) -> str: ...

    @property
    def error(self) -> str: ...


class LearningCurveLike(Protocol):
    """Score after each model: (labels used, score) points."""

    @property
    def metric(self) -> str: ...

    @property
    def points(self) -> Sequence[tuple[int, float]]: ...


ProgressFn = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)`` called by a training job."""

CancelledFn = Callable[[], bool]
"""Returns True when the job should stop early."""


ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class RetrainJobLike(Protocol[ResultT_co]):
    """A training run prepared by the session, executed off the UI thread."""

    @property
    def base_version(self) -> int: ...

    def run(
        self, progress_cb: ProgressFn | None = None, cancelled: CancelledFn | None = None
    ) -> ResultT_co: ...


class ExtentLike(Protocol):
    """An event extent marked in a clip: journal id, onset and offset (s of the clip), class."""

    @property
    def id(self) -> int: ...

    @property
    def onset(self) -> float: ...

    @property
    def offset(self) -> float: ...

    @property
    def cls(self) -> int: ...


ItemT = TypeVar("ItemT", bound=ItemLike)


class SessionLike(Protocol[ItemT, ResultT]):
    """The labelling session API the TUI drives (``iml_tui.engine.session.Session``); generic
    in the item type it hands out and takes back, and in its training results."""

    @property
    def mode(self) -> str: ...

    @property
    def class_list(self) -> Sequence[str]: ...

    @property
    def multi_label(self) -> bool: ...

    @property
    def annotator(self) -> str: ...

    def next_item(self) -> ItemT | None: ...

    def submit(self, item: ItemT, labels: Sequence[int], seconds: float) -> object: ...

    def skip(self, item: ItemT, seconds: float = 0.0) -> object: ...

    def undo(self) -> ItemT | None: ...

    def progress(self) -> ProgressLike: ...

    def model_status(self) -> ModelStatusLike: ...

    def learning_curve(self) -> LearningCurveLike: ...

    def retrain_due(self) -> bool: ...

    def start_retrain(self) -> RetrainJobLike[ResultT] | None: ...

    def bridge(self) -> int: ...

    def search(self, example: ItemT, k: int) -> int: ...

    def search_queue(self) -> Sequence[tuple[str, float]]: ...

    def swap_model(self, result: ResultT) -> bool: ...

    def extents(self, item: ItemT) -> Sequence[ExtentLike]: ...

    def add_extent(
        self, item: ItemT, onset: float, offset: float, cls: int, seconds: float = 0.0
    ) -> object: ...

    def move_extent(
        self, item: ItemT, extent_id: int, onset: float, offset: float, cls: int | None = None
    ) -> object: ...

    def remove_extent(self, item: ItemT, extent_id: int) -> object: ...

    def read_audio(self, item: ItemT) -> tuple[np.ndarray, int]: ...


class PlayerLike(Protocol):
    """An audio player backend (``iml_tui.audio.playback``: local / browser / file)."""

    @property
    def name(self) -> str: ...

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> object: ...

    def stop(self) -> None: ...

    def position(self) -> float | None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


Keymap = Mapping[str, str]
"""Binding id -> comma-separated keys, as Textual's ``App.set_keymap`` takes it."""
