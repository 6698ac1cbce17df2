"""Snapshot tests of the main and help screens (fixed size, no clock, no random text).

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report it writes.
"""

from __future__ import annotations

import threading
from typing import Any

from tui_fakes import FakeExtent, FakeSession, RecordingPlayer

from iml_tui.tui.app import make_app

SIZE = (100, 30)


def trained_session() -> FakeSession:
    """A session after one model: probabilities, a learning curve, three answers."""
    session = FakeSession(n=8, every=100, version=1, curve=[(2, 0.31), (4, 0.42), (6, 0.47)])
    session.answers = [(5, (0,), 3.0), (6, (), 2.0), (7, (0, 2), 4.0)]
    return session


def test_main_screen(snap_compare: Any) -> None:
    app = make_app(trained_session(), RecordingPlayer(), cursor=False, audio_thread=False)
    assert snap_compare(app, press=["1", "3"], terminal_size=SIZE)


def test_clip_with_two_marked_events(snap_compare: Any) -> None:
    session = trained_session()
    session.marked = {0: [FakeExtent(1, 0.1, 0.35, 0), FakeExtent(2, 0.55, 0.9, 2)]}
    app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
    # "1" and "3" tick the two classes; "[" leaves a pending onset at the clip's start
    assert snap_compare(app, press=["1", "3", "left_square_bracket"], terminal_size=SIZE)


def test_help_screen(snap_compare: Any) -> None:
    app = make_app(trained_session(), RecordingPlayer(), cursor=False, audio_thread=False)
    assert snap_compare(app, press=["question_mark"], terminal_size=SIZE)


async def _answer_and_settle(pilot: Any) -> None:
    await pilot.press("1", "enter")
    for _ in range(20):  # the fake training reports its progress at once
        await pilot.pause(0.05)


def test_training_screen(snap_compare: Any) -> None:
    gate = threading.Event()
    session = FakeSession(
        n=8, every=1, gate=gate, gate_timeout=3.0, version=1, curve=[(2, 0.31), (4, 0.42)]
    )
    app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
    try:
        assert snap_compare(app, run_before=_answer_and_settle, terminal_size=SIZE)
    finally:
        gate.set()


def test_training_error_screen(snap_compare: Any) -> None:
    session = FakeSession(
        n=8, every=1, fail="CUDA out of memory", version=1, curve=[(2, 0.31), (4, 0.42)]
    )
    app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
    assert snap_compare(app, run_before=_answer_and_settle, terminal_size=SIZE)


def test_help_over_a_round_boundary(snap_compare: Any) -> None:
    gate = threading.Event()
    session = FakeSession(n=8, every=1, gate=gate, gate_timeout=3.0, version=1, curve=[(2, 0.31)])
    app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)

    async def boundary_then_help(pilot: Any) -> None:
        await _answer_and_settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    try:
        assert snap_compare(app, run_before=boundary_then_help, terminal_size=SIZE)
    finally:
        gate.set()


def test_stream_review_screen(snap_compare: Any) -> None:
    session = FakeSession(
        n=8,
        every=100,
        version=1,
        mode="stream",
        multi_label=False,
        class_list=("hy",),
        kind="cf-review",
        why="the model says hy (0.90): confirm or correct",
        curve=[(96, 0.31), (192, 0.27)],
    )
    app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
    assert snap_compare(app, terminal_size=SIZE)


def test_search_by_example_list(snap_compare: Any) -> None:
    app = make_app(trained_session(), RecordingPlayer(), cursor=False, audio_thread=False)
    assert snap_compare(app, press=["slash"], terminal_size=SIZE)
