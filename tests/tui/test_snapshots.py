"""Snapshot tests of the main and help screens (fixed size, no clock, no random text).

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report it writes.
"""

from __future__ import annotations

from typing import Any

from tui_fakes import FakeSession, RecordingPlayer

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


def test_help_screen(snap_compare: Any) -> None:
    app = make_app(trained_session(), RecordingPlayer(), cursor=False, audio_thread=False)
    assert snap_compare(app, press=["question_mark"], terminal_size=SIZE)
