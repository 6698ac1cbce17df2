"""In-memory test doubles of the session and the player, for screen-level tests.

The functional tests use the real session on generated projects; these doubles let the screen
tests control what the engine answers (a training that fails, a slow one) deterministically.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from textual.pilot import Pilot

from iml_tui.errors import UserError
from iml_tui.tui.protocols import CancelledFn, ProgressFn

SR = 8000


@dataclass(frozen=True)
class FakeItem:
    index: int
    id: str
    why: str = "uncertainty 0.50"
    kind: str = "pool-query"
    clip_probs: np.ndarray | None = None
    frame_probs: np.ndarray | None = None
    predicted: tuple[int, ...] = ()
    confidence: float | None = None
    threshold: float = 0.5
    previous: tuple[int, ...] | None = None


@dataclass(frozen=True)
class FakeExtent:
    id: int
    onset: float
    offset: float
    cls: int


@dataclass
class FakeProgress:
    labelled: int
    budget: int
    round: int
    n_rounds: int
    per_class: dict[str, int]
    none: int
    skipped: int
    done: bool = False


@dataclass
class FakeStatus:
    version: int
    state: str
    progress: float
    message: str
    score: float | None
    score_name: str = "valid mAP"
    error: str = ""


@dataclass
class FakeCurve:
    metric: str
    points: list[tuple[int, float]]


@dataclass
class FakeResult:
    version: int
    error: str = ""


class FakeJob:
    """Trains nothing; reports progress in ``steps`` steps, waits on ``gate`` if given."""

    def __init__(
        self,
        version: int,
        steps: int = 4,
        fail: str = "",
        raises: bool = False,
        gate: threading.Event | None = None,
        gate_timeout: float = 10.0,
    ) -> None:
        self.base_version = version - 1
        self.version = version
        self.steps = steps
        self.fail = fail
        self.raises = raises
        self.gate = gate
        self.gate_timeout = gate_timeout

    def run(
        self, progress: ProgressFn | None = None, cancelled: CancelledFn | None = None
    ) -> object:
        assert progress is not None and cancelled is not None
        for i in range(self.steps):
            if cancelled():
                return FakeResult(self.version, "cancelled")
            progress((i + 1) / self.steps, f"epoch {i + 1}")
        if self.gate is not None:
            self.gate.wait(self.gate_timeout)
        if self.raises:
            raise RuntimeError(self.fail or "boom")
        return FakeResult(self.version, self.fail)


def tone(index: int, seconds: float = 1.0) -> np.ndarray:
    """A short tone whose pitch depends on the item."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (300 + 150 * index) * t)).astype(np.float32)


@dataclass
class FakeSession:
    """A pool of ``n`` items asked in order; retraining due every ``every`` labels."""

    n: int = 6
    class_list: tuple[str, ...] = ("bird", "frog", "insect")
    multi_label: bool = True
    mode: str = "pool"
    annotator: str = "tester"
    every: int = 2
    fail: str = ""
    raises: bool = False
    gate: threading.Event | None = None
    answers: list[tuple[int, tuple[int, ...] | None, float]] = field(default_factory=list)
    skipped: set[int] = field(default_factory=set)
    version: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)
    swapped: list[int] = field(default_factory=list)
    pending: int | None = None
    trained_at: int = 0
    error: str = ""
    seconds: float = 1.0
    kind: str = "pool-query"
    why: str = "uncertainty 0.50"
    gate_timeout: float = 10.0
    searched: list[tuple[int, int]] = field(default_factory=list)
    fail_writes: int = 0  # submits that fail (a full disk) before one succeeds
    marked: dict[int, list[FakeExtent]] = field(default_factory=dict)
    _next_extent: int = 1

    def _done(self) -> set[int]:
        return {i for i, _, _ in self.answers} | self.skipped

    def _item(self, i: int, previous: tuple[int, ...] | None = None) -> FakeItem:
        c = len(self.class_list)
        probs = None
        frame = None
        if self.version:
            probs = np.linspace(0.1, 0.9, c)[::-1].copy()
            frame = np.tile(np.linspace(0, 1, 20)[:, None], (1, c))
        predicted = tuple(int(k) for k in np.flatnonzero(probs >= 0.5)) if probs is not None else ()
        return FakeItem(
            i,
            f"clip{i:03d}",
            why=self.why,
            kind=self.kind,
            clip_probs=probs,
            frame_probs=frame,
            predicted=predicted,
            previous=previous,
        )

    def next_item(self) -> FakeItem | None:
        if self.mode == "stream" and (self.pending is not None or self.retrain_due()):
            return None
        for i in range(self.n):
            if i not in self._done():
                return self._item(i)
        return None

    def submit(self, item: FakeItem, labels: Sequence[int], seconds: float) -> None:
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise UserError(
                "the disk is full; this change was not saved",
                "journal.sqlite",
                "free some space and run the command again",
            )
        self.answers.append((item.index, tuple(labels), seconds))

    def skip(self, item: FakeItem, seconds: float = 0.0) -> None:
        self.skipped.add(item.index)

    def undo(self) -> FakeItem | None:
        if not self.answers:
            return None
        index, labels, _ = self.answers.pop()
        return self._item(index, labels)

    def progress(self) -> FakeProgress:
        counts = {
            name: sum(1 for _, lab, _ in self.answers if lab and k in lab)
            for k, name in enumerate(self.class_list)
        }
        none = sum(1 for _, lab, _ in self.answers if not lab)
        return FakeProgress(
            len(self.answers),
            self.n,
            self.version,
            3,
            counts,
            none,
            len(self.skipped),
            done=len(self._done()) >= self.n,
        )

    def model_status(self) -> FakeStatus:
        state = "training" if self.pending is not None else "ready"
        return FakeStatus(
            self.version,
            state,
            0.0,
            "",
            self.curve[-1][1] if self.curve else None,
            error=self.error,
        )

    def learning_curve(self) -> FakeCurve:
        return FakeCurve("valid mAP", list(self.curve))

    def retrain_due(self) -> bool:
        return self.pending is None and len(self.answers) - self.trained_at >= self.every

    def bridge(self) -> int:
        return 0

    def search(self, example: FakeItem, k: int) -> int:
        if self.mode != "pool":
            raise ValueError("search by example works on pool projects")
        self.searched.append((example.index, k))
        return k

    def search_queue(self) -> list[tuple[str, float]]:
        """The clips after the searched ones, with cosines falling from 0.99 by 0.04 a place."""
        found = [(ex, k) for ex, k in self.searched]
        if not found:
            return []
        ex, k = found[-1]
        others = [i for i in range(self.n) if i != ex][:k]
        return [(f"clip{i:03d}", round(0.99 - 0.04 * j, 2)) for j, i in enumerate(others)]

    def start_retrain(self) -> FakeJob:
        self.pending = self.version + 1
        self.trained_at = len(self.answers)
        return FakeJob(
            self.pending,
            fail=self.fail,
            raises=self.raises,
            gate=self.gate,
            gate_timeout=self.gate_timeout,
        )

    def swap_model(self, result: object) -> bool:
        assert isinstance(result, FakeResult)
        self.pending = None
        if result.error:
            self.error = result.error
            return False
        self.error = ""
        self.version = result.version
        self.swapped.append(result.version)
        self.curve.append((len(self.answers), 0.2 + 0.1 * result.version))
        return True

    def read_audio(self, item: FakeItem) -> tuple[np.ndarray, int]:
        return tone(item.index, self.seconds), SR

    # event extents, in memory (undo of them is the real session's, tested there)
    def extents(self, item: FakeItem) -> list[FakeExtent]:
        return list(self.marked.get(item.index, []))

    def add_extent(
        self, item: FakeItem, onset: float, offset: float, cls: int, seconds: float = 0.0
    ) -> FakeExtent:
        x = FakeExtent(self._next_extent, onset, offset, cls)
        self._next_extent += 1
        self.marked.setdefault(item.index, []).append(x)
        return x

    def move_extent(
        self, item: FakeItem, extent_id: int, onset: float, offset: float, cls: int | None = None
    ) -> FakeExtent:
        old = self.remove_extent(item, extent_id)
        return self.add_extent(item, onset, offset, old.cls if cls is None else cls)

    def remove_extent(self, item: FakeItem, extent_id: int) -> FakeExtent:
        marks = self.marked[item.index]
        old = next(x for x in marks if x.id == extent_id)
        marks.remove(old)
        return old


class RecordingPlayer:
    """A player that records what it was asked to play; position() is None (no clock)."""

    name = "file"

    def __init__(self) -> None:
        self.played: list[str] = []
        self.starts: list[float] = []
        self.stops = 0
        self.closed = False

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> None:
        self.played.append(item_id)
        self.starts.append(start)

    def stop(self) -> None:
        self.stops += 1

    def position(self) -> float | None:
        return None

    def describe(self) -> str:
        return "writes each clip to clips/<item>.wav"

    def close(self) -> None:
        self.closed = True


def headless_label(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    """``iml-tui label`` as from a terminal, its app run headless (100 x 30): once the screen
    shows, ``keys`` are pressed, then q."""
    from iml_tui.tui.app import LabelApp

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    original = LabelApp.run

    def headless_run(self: LabelApp) -> None:
        async def pilot(p: Pilot[None]) -> None:
            await p.pause()
            await p.press(*keys, "q")

        original(self, headless=True, size=(100, 30), auto_pilot=pilot)

    monkeypatch.setattr(LabelApp, "run", headless_run)
