"""Marking event extents on the labelling screen: keys, mouse, moving, deleting, undo; every
change checked in the SQLite journal, and after kill -9 on a pool without labels."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from labelling_data import make_audio_pool, make_project
from pilot_marking import click_time, column_span, mark_event, mark_event_by_keys
from test_label_session import SIZE, current_id, labels_in_journal, make_pool_project
from tui_fakes import RecordingPlayer

from iml_tui.engine.journal import Journal
from iml_tui.engine.session import Session
from iml_tui.tui.app import LabelApp, make_app
from iml_tui.tui.widgets.prediction import PredictionPanel
from iml_tui.tui.widgets.spectrogram import GUTTER, SpectrogramView


def extents_in_journal(project: Path) -> dict[str, list[tuple[float, float, int]]]:
    """item id -> its extents in force (onset, offset, class), read straight from SQLite."""
    with Journal(project / "journal.sqlite") as journal:
        return {
            str(evs[0].item_id): [
                (e.payload["onset"], e.payload["offset"], (e.labels or (0,))[0]) for e in evs
            ]
            for evs in journal.current_extents().values()
        }


def spec_of(app: LabelApp) -> SpectrogramView:
    return app.main.query_one(SpectrogramView)


def ticked(app: LabelApp) -> frozenset[int]:
    return frozenset(app.main.query_one(PredictionPanel).selected)


@contextlib.asynccontextmanager
async def marking_screen(tmp_path: Path) -> AsyncIterator[tuple[Path, LabelApp, Any, str]]:
    """A pool project's labelling screen under the Pilot: (project, app, pilot, first clip id)."""
    project = make_pool_project(tmp_path)
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            first = current_id(app)
            assert first is not None
            yield project, app, pilot, first


async def test_mark_by_keys_and_by_drag_then_submit(tmp_path: Path) -> None:
    async with marking_screen(tmp_path) as (project, app, pilot, first):
        spec = spec_of(app)
        await mark_event_by_keys(pilot, 0.5, 1.0, 2)  # insect, by [ and ]
        on_col, _ = column_span(spec, 0.5, 0.5)
        off_col, _ = column_span(spec, 1.0, 1.0)
        by_keys = (spec.time_of(on_col), spec.time_of(off_col), 2)
        assert extents_in_journal(project) == {first: [by_keys]}
        assert ticked(app) == {2}  # marking an insect ticks insect
        await mark_event(pilot, 1.2, 1.8, 0)  # bird, by a drag
        a, b = column_span(spec, 1.2, 1.8)
        by_drag = (spec.time_of(a), spec.time_of(b + 1), 0)
        assert extents_in_journal(project) == {first: [by_keys, by_drag]}
        assert ticked(app) == {0, 2}
        assert [(m.onset, m.offset, m.cls) for m in spec.marks] == [by_keys, by_drag]
        events_text = str(app.main.query_one("#events").render())
        assert "insect" in events_text and "bird" in events_text
        await pilot.press("enter")
        assert current_id(app) != first
        assert spec.marks == ()  # the next clip has none
    assert labels_in_journal(project) == {first: (0, 2)}
    assert extents_in_journal(project) == {first: [by_keys, by_drag]}


async def test_move_delete_and_undo_extents(tmp_path: Path) -> None:
    async with marking_screen(tmp_path) as (project, app, pilot, first):
        spec = spec_of(app)
        await mark_event(pilot, 0.2, 0.6, 0)
        await mark_event(pilot, 1.0, 1.6, 1)
        (a0, b0), (a1, b1) = column_span(spec, 0.2, 0.6), column_span(spec, 1.0, 1.6)
        ev0 = (spec.time_of(a0), spec.time_of(b0 + 1), 0)
        ev1 = (spec.time_of(a1), spec.time_of(b1 + 1), 1)
        assert extents_in_journal(project) == {first: [ev0, ev1]}
        # } with the cursor inside the first event moves its offset to the cursor
        await click_time(pilot, 0.4)
        await pilot.press("right_curly_bracket")
        c, _ = column_span(spec, 0.4, 0.4)
        moved = (ev0[0], spec.time_of(c), 0)
        assert extents_in_journal(project) == {first: [ev1, moved]}
        # dragging the second event's onset edge moves it
        x0 = spec.column_of(ev1[0])
        assert x0 is not None
        await pilot.mouse_down(spec, offset=(5 + x0, 1))
        await pilot.hover(spec, offset=(5 + x0 - 3, 1))
        await pilot.mouse_up(spec, offset=(5 + x0 - 3, 1))
        await pilot.pause()
        dragged = (spec.time_of(x0 - 3), ev1[1], 1)
        assert extents_in_journal(project) == {first: [moved, dragged]}
        # x with the cursor on no event deletes the last marked (the dragged one)
        await click_time(pilot, 1.9)
        await pilot.press("x")
        assert extents_in_journal(project) == {first: [moved]}
        # u undoes, one act at a time: the delete, the drag, the move
        await pilot.press("u")
        assert extents_in_journal(project) == {first: [moved, dragged]}
        await pilot.press("u")
        assert extents_in_journal(project) == {first: [ev1, moved]}
        await pilot.press("u")
        assert extents_in_journal(project) == {first: [ev0, ev1]}
        assert current_id(app) == first and ticked(app) == {0, 1}  # the ticks stay
        # the answer, then u: the answer is withdrawn first (its item shows again) ...
        await pilot.press("enter")
        await pilot.press("u")
        assert current_id(app) == first and labels_in_journal(project) == {}
        # ... then the extents, newest first
        await pilot.press("u")
        assert extents_in_journal(project) == {first: [ev0]}
        assert [m.cls for m in spec.marks] == [0]


KILLED_MARKING = """
import asyncio, os, signal, sys
sys.path[:0] = sys.argv[3:]
from pilot_marking import mark_event
from tui_fakes import RecordingPlayer
from iml_tui.engine.session import Session
from iml_tui.tui.app import make_app

async def main():
    app = make_app(Session.open(sys.argv[1], annotator="ana"), RecordingPlayer(), cursor=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await mark_event(pilot, 0.2, 0.8, 0)
        await pilot.press("enter")
        await mark_event(pilot, 1.0, 1.5, 2)  # on the clip on screen, not answered yet
        with open(sys.argv[2], "w") as f:
            f.write(app.main.current.view.item_id)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the session

asyncio.run(main())
"""


async def test_unlabelled_pool_resumes_after_kill_9_with_its_extents(tmp_path: Path) -> None:
    pool = make_audio_pool(tmp_path)
    (pool / "valid.h5").unlink()  # a pool nobody labelled: no validation set
    project = make_project(tmp_path / "project", pool, budgets=(4, 8)).dir
    shown = tmp_path / "shown.txt"
    here = str(Path(__file__).parent)
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            KILLED_MARKING,
            str(project),
            str(shown),
            here,
            str(Path(here).parent),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    before = extents_in_journal(project)
    on_screen = shown.read_text()
    assert len(before) == 2 and len(before[on_screen]) == 1 and before[on_screen][0][2] == 2
    (answered,) = labels_in_journal(project)
    assert labels_in_journal(project) == {answered: (0,)} and before[answered][0][2] == 0
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert current_id(app) == on_screen
            marks = spec_of(app).marks
            assert [(m.onset, m.offset, m.cls) for m in marks] == before[on_screen]
            await pilot.press("u")  # undo reaches across the kill
            assert spec_of(app).marks == ()
    assert extents_in_journal(project) == {answered: before[answered]}


def test_extent_keys_are_listed_in_help() -> None:
    from iml_tui.tui.screens.help import help_table

    table = help_table(["bird"], {}, True)
    keys = list(table.columns[0].cells)
    assert {"[", "]", "x", "{", "}"} <= set(keys)


@pytest.mark.parametrize("where", [0.0, 1.99])
async def test_a_click_moves_the_cursor(tmp_path: Path, where: float) -> None:
    project = make_pool_project(tmp_path)
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            spec = spec_of(app)
            await click_time(pilot, where)
            a, _ = column_span(spec, where, where)
            assert app.main.cursor_time() == pytest.approx(spec.time_of(a))
            assert extents_in_journal(project) == {}


class ClockPlayer(RecordingPlayer):
    """A player whose playback position the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def position(self) -> float | None:
        return self.at


async def test_keys_mark_at_the_playback_position(tmp_path: Path) -> None:
    project = make_pool_project(tmp_path)
    player = ClockPlayer()
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, player, cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            first = current_id(app)
            assert first is not None
            await pilot.press("2")  # frog ticked: the marking class
            player.at = 0.3
            await pilot.press("left_square_bracket")
            assert "onset at 0.30 s" in str(app.main.query_one("#events").render())
            player.at = 0.9
            await pilot.press("right_square_bracket")
            assert extents_in_journal(project) == {first: [(0.3, 0.9, 1)]}
            player.at = 1.5  # a second one, backwards: onset after offset is sorted
            await pilot.press("left_square_bracket")
            player.at = 1.2
            await pilot.press("right_square_bracket")
            assert extents_in_journal(project) == {first: [(0.3, 0.9, 1), (1.2, 1.5, 1)]}
            player.at = 0.5  # x under the cursor: the first
            await pilot.press("x")
            assert extents_in_journal(project) == {first: [(1.2, 1.5, 1)]}
            await pilot.press("right_square_bracket")  # no onset pending: nothing marked
            assert extents_in_journal(project) == {first: [(1.2, 1.5, 1)]}


def events_row_text(spec: SpectrogramView) -> str:
    row = spec.events_row
    assert row is not None
    return "".join(seg.text for seg in spec.render_line(row))[GUTTER:]


async def test_a_drag_inside_an_event_on_the_events_row_moves_it_whole(tmp_path: Path) -> None:
    async with marking_screen(tmp_path) as (project, app, pilot, first):
        spec = spec_of(app)
        await mark_event(pilot, 0.5, 1.0, 1)
        a, b = column_span(spec, 0.5, 1.0)
        ev = (spec.time_of(a), spec.time_of(b + 1), 1)
        assert extents_in_journal(project) == {first: [ev]}
        row = spec.events_row
        assert row is not None
        width = spec.size.width - GUTTER
        step = 2.0 / width  # seconds per column of the 2 s clip
        mid = (a + b) // 2
        assert a < mid < b
        # inside the event, 6 columns right: drawn moved while dragging, then saved moved
        await pilot.mouse_down(spec, offset=(GUTTER + mid, row))
        await pilot.hover(spec, offset=(GUTTER + mid + 6, row))
        await pilot.pause()
        drawn = events_row_text(spec)
        assert drawn[a + 6] == "[" and drawn[b + 6] == "]"
        await pilot.mouse_up(spec, offset=(GUTTER + mid + 6, row))
        await pilot.pause()
        ((on, off, cls),) = extents_in_journal(project)[first]
        assert (on, off, cls) == (
            pytest.approx(ev[0] + 6 * step),
            pytest.approx(ev[1] + 6 * step),
            1,
        )
        assert off - on == pytest.approx(ev[1] - ev[0])  # its length kept
        # far past the end: it stops at the clip's end, still as long
        a2, b2 = column_span(spec, on, off - 1e-9)
        mid = (a2 + b2) // 2
        await pilot.mouse_down(spec, offset=(GUTTER + mid, row))
        await pilot.hover(spec, offset=(GUTTER + width - 1, row))
        await pilot.mouse_up(spec, offset=(GUTTER + width - 1, row))
        await pilot.pause()
        ((on2, off2, _),) = extents_in_journal(project)[first]
        assert off2 == pytest.approx(2.0) and off2 - on2 == pytest.approx(ev[1] - ev[0])
        # a drag inside it on a picture row marks a new event instead
        await mark_event(pilot, 1.7, 1.9, 0)
        assert len(extents_in_journal(project)[first]) == 2
        # u undoes the new event, then each move
        await pilot.press("u", "u")
        assert extents_in_journal(project)[first] == [(on, off, 1)]
        await pilot.press("u")
        assert extents_in_journal(project) == {first: [ev]}


async def test_escape_drops_a_started_onset(tmp_path: Path) -> None:
    async with marking_screen(tmp_path) as (project, app, pilot, first):
        spec = spec_of(app)
        await click_time(pilot, 0.5)
        await pilot.press("left_square_bracket")
        assert "onset at" in str(app.main.query_one("#events").render())
        assert "[" in events_row_text(spec)
        await pilot.press("escape")
        assert app.main.pending_onset is None
        assert spec.events_row is None  # no events: the row is gone
        await click_time(pilot, 1.0)
        await pilot.press("right_square_bracket")  # no onset pending: nothing marked
        assert extents_in_journal(project) == {}
        assert current_id(app) == first  # the clip stays on screen


async def test_c_gives_the_event_under_the_cursor_the_marking_class(tmp_path: Path) -> None:
    async with marking_screen(tmp_path) as (project, app, pilot, first):
        spec = spec_of(app)
        await mark_event(pilot, 0.2, 0.6, 0)  # bird
        await mark_event(pilot, 1.0, 1.6, 0)  # bird
        (a0, b0), (a1, b1) = column_span(spec, 0.2, 0.6), column_span(spec, 1.0, 1.6)
        ev0 = (spec.time_of(a0), spec.time_of(b0 + 1), 0)
        ev1 = (spec.time_of(a1), spec.time_of(b1 + 1), 0)
        await pilot.press("3")  # insect: the marking class now
        await click_time(pilot, 0.4)  # the cursor inside the first event
        await pilot.press("c")
        assert extents_in_journal(project) == {first: [ev1, (ev0[0], ev0[1], 2)]}
        assert 2 in ticked(app)
        events_text = str(app.main.query_one("#events").render())
        assert "insect" in events_text and "bird" in events_text
        await pilot.press("c")  # the same class again: nothing changes
        assert extents_in_journal(project) == {first: [ev1, (ev0[0], ev0[1], 2)]}
        await pilot.press("u")  # undo brings the bird back
        assert extents_in_journal(project) == {first: [ev0, ev1]}
