"""The labelling TUI over the real session on a tiny generated project with audio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from labelling_data import make_audio_pool, make_project
from textual.message import Message
from tui_fakes import RecordingPlayer

from iml_tui.engine.journal import Journal
from iml_tui.engine.session import Session
from iml_tui.tui.app import LabelApp, make_app
from iml_tui.tui.messages import ItemShown, RetrainProgress
from iml_tui.tui.widgets.spectrogram import SpectrogramView
from iml_tui.tui.widgets.status import ModelStatus

SIZE = (100, 30)


def make_pool_project(root: Path, budgets: tuple[int, ...] = (4, 8, 12)) -> Path:
    """A 20-clip pool-mode project whose clips are real WAV audio."""
    project = make_project(root / "project", make_audio_pool(root), budgets=budgets)
    return project.dir


def current_id(app: LabelApp) -> str | None:
    shown = app.main.current
    return None if shown is None else shown.view.item_id


def labels_in_journal(project: Path) -> dict[str, tuple[int, ...]]:
    """item id -> labels in force, read straight from the SQLite journal."""
    with Journal(project / "journal.sqlite") as journal:
        return {str(e.item_id): tuple(e.labels or ()) for e in journal.current_labels().values()}


async def wait_for_item(app: LabelApp, pilot: object, timeout: float = 60) -> None:
    """Let the background retraining finish until an item is on screen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.main.current is None and loop.time() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    assert app.main.current is not None


async def wait_for_model(
    app: LabelApp, pilot: object, session: Session, version: int, timeout: float = 120
) -> None:
    """Let the background retraining run until model ``version`` is installed and an item is on
    screen (the screen keeps asking while it trains, so an item alone says nothing of it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while session.model_status().version < version and loop.time() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await wait_for_item(app, pilot, timeout)
    assert session.model_status().version == version


async def test_each_label_is_in_the_journal_before_the_next_item_shows(tmp_path: Path) -> None:
    project = make_pool_project(tmp_path)
    checked: list[bool] = []

    def hook(message: Message) -> None:
        # when an item is drawn, every answer given so far is already committed on disk
        if isinstance(message, ItemShown) and message.seq > 1:
            checked.append(len(labels_in_journal(project)) == message.seq - 1)

    with Session.open(project, annotator="ana") as session:
        player = RecordingPlayer()
        app = make_app(session, player, cursor=False, audio_thread=False)
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            await pilot.pause()
            first = current_id(app)
            assert first is not None
            spec = app.main.query_one(SpectrogramView).data
            assert spec is not None and spec.duration == 2.0
            await pilot.press("1", "enter")
            second = current_id(app)
            await pilot.press("2", "3", "enter", "enter")
            await pilot.pause()
            labels = labels_in_journal(project)
            assert labels[first] == (0,) and labels[second] == (1, 2)  # type: ignore[index]
            assert len(labels) == 3
            assert player.played[:2] == [first, second]
    assert checked and all(checked)
    with Journal(project / "journal.sqlite") as journal:
        events = [e for e in journal.events() if e.kind == "labelled"]
    assert all(e.annotator == "ana" and e.seconds >= 0 for e in events)


async def test_undo_skip_and_resume_after_a_crash(tmp_path: Path) -> None:
    project = make_pool_project(tmp_path)
    session = Session.open(project, annotator="ana")
    app = make_app(session, RecordingPlayer(), cursor=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = current_id(app)
        await pilot.press("1", "enter")
        second = current_id(app)
        await pilot.press("s")  # skip the second
        third = current_id(app)
        assert third not in (first, second)
        await pilot.press("u")  # undo the skip: the second comes back
        assert current_id(app) == second
        await pilot.press("u")  # undo the label: the first comes back unanswered
        assert current_id(app) == first
        assert app.main.query_one("PredictionPanel").selected == set()  # type: ignore[attr-defined]
        await pilot.press("1", "3", "enter")  # the same answer typed again is recorded
        shown_before_crash = current_id(app)
    # a crash: the session is never closed, a new process opens the same project
    del app, session
    assert labels_in_journal(project) == {first: (0, 2)}
    with Session.open(project, annotator="ana") as again:
        app2 = make_app(again, RecordingPlayer(), cursor=False)
        async with app2.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert current_id(app2) == shown_before_crash
            await pilot.press("u")  # undo works across restarts
            assert current_id(app2) == first
    assert labels_in_journal(project) == {}


async def test_retraining_while_labelling(tmp_path: Path) -> None:
    project = make_pool_project(tmp_path)
    fractions: list[float] = []

    def hook(message: Message) -> None:
        if isinstance(message, RetrainProgress):
            fractions.append(message.fraction)

    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            await pilot.pause()
            for _ in range(4):
                await pilot.press("1", "enter")
            # the round is answered: training runs in a worker, the UI answers keys meanwhile
            await pilot.press("question_mark")
            assert app.screen.__class__.__name__ == "HelpScreen"
            await pilot.press("escape")
            await wait_for_model(app, pilot, session, 1)
            status = str(app.main.query_one(ModelStatus).render())
            assert "v1" in status and "valid mAP" in status
            assert fractions and max(fractions) <= 1.0
            assert app.main.current is not None and app.main.current.view.probs is not None
            for _ in range(4):
                await pilot.press("2", "enter")
            await wait_for_model(app, pilot, session, 2)
            assert len(session.learning_curve().points) == 2


KILLED_RUN = """
import asyncio, os, signal, sys
sys.path[:0] = sys.argv[3:]
from tui_fakes import RecordingPlayer
from iml_tui.engine.session import Session
from iml_tui.tui.app import make_app

async def main():
    app = make_app(Session.open(sys.argv[1], annotator="ana"), RecordingPlayer(), cursor=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("1", "enter", "2", "3", "enter")
        with open(sys.argv[2], "w") as f:
            f.write(app.main.current.view.item_id)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the session

asyncio.run(main())
"""


async def test_kill_9_loses_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = make_pool_project(tmp_path)
    shown = tmp_path / "shown.txt"
    here = str(Path(__file__).parent)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED_RUN, str(project), str(shown), here, str(Path(here).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    labels = labels_in_journal(project)
    assert sorted(labels.values()) == [(0,), (1, 2)]
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert current_id(app) == shown.read_text()


async def test_a_pool_without_valid_set_is_scored_from_the_labels(tmp_path: Path) -> None:
    pool = make_audio_pool(tmp_path)
    (pool / "valid.h5").unlink()
    project = make_project(tmp_path / "project", pool, budgets=(4, 8)).dir
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            for k in range(4):
                await pilot.press("1" if k % 2 else "2", "enter")
            await wait_for_model(app, pilot, session, 1)
            status = str(app.main.query_one(ModelStatus).render())
            assert "estimated from 4 labels" in status and "valid mAP" not in status


async def test_no_wait_at_a_round_boundary(tmp_path: Path) -> None:
    project = make_pool_project(tmp_path)
    shown: list[tuple[int, str | None]] = []

    def hook(message: Message) -> None:
        if isinstance(message, ItemShown):
            shown.append((message.seq, message.item_id))

    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            await pilot.pause()
            for _ in range(4):
                await pilot.press("1", "enter")
            await pilot.pause()
            fifth = dict(shown).get(5)
            assert fifth is not None  # the first item of round 2 showed without a model
            await wait_for_item(app, pilot)
            await app.workers.wait_for_complete()
            for _ in range(2):
                await pilot.press("2", "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
    with Journal(project / "journal.sqlite") as journal:
        bridged = [e for e in journal.events(0, kinds=["selected"]) if e.payload.get("bridge")]
        labelled = [e for e in journal.events(0, kinds=["labelled"])]
    assert len(bridged) == 4 and all(e.round == 1 for e in bridged)
    assert fifth == bridged[0].item_id
    assert bridged[0].payload["why"].startswith("while the next model trains")
    items = [e.item for e in labelled]
    assert len(items) == len(set(items)) == 6  # nothing asked twice across the re-rank


async def test_a_full_disk_on_enter_loses_nothing_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iml_tui.errors import UserError

    project = make_pool_project(tmp_path)
    real = Journal.append
    fail = [1]

    def append(self: Journal, *events: object) -> list[int]:
        if fail[0] and any(getattr(e, "kind", "") == "labelled" for e in events):
            fail[0] -= 1
            raise UserError(
                "the disk is full; this change was not saved", self.path, "free some space"
            )
        return real(self, *events)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "append", append)
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            first = current_id(app)
            await pilot.press("2", "enter")
            await pilot.pause()
            assert current_id(app) == first and labels_in_journal(project) == {}
            await pilot.press("enter")
            await pilot.pause()
            assert labels_in_journal(project) == {first: (1,)}
            assert current_id(app) != first
