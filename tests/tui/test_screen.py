"""Pilot tests of the labelling screen over a controllable in-memory session."""

from __future__ import annotations

import re
import threading

import pytest
from rich.console import Console
from textual.message import Message
from textual.widgets import Static
from tui_fakes import FakeSession, RecordingPlayer

from iml_tui.tui.app import LabelApp, make_app
from iml_tui.tui.messages import ItemShown, RetrainProgress
from iml_tui.tui.screens.help import help_table
from iml_tui.tui.widgets.prediction import PredictionPanel
from iml_tui.tui.widgets.spectrogram import SpectrogramView
from iml_tui.tui.widgets.status import ModelStatus, PlayerLine, WhyLine

SIZE = (100, 30)


def app_for(session: FakeSession, **kw: object) -> tuple[LabelApp, RecordingPlayer]:
    player = RecordingPlayer()
    return make_app(session, player, cursor=False, audio_thread=False, **kw), player  # type: ignore[arg-type]


def current_id(app: LabelApp) -> str | None:
    shown = app.main.current
    return None if shown is None else shown.view.item_id


def text_of(widget: object) -> str:
    render = widget.render()  # type: ignore[attr-defined]
    return str(getattr(render, "plain", render))


async def test_labelling_flow_commits_each_answer_before_moving_on() -> None:
    session = FakeSession(every=100)
    app, player = app_for(session)
    shown: dict[int, str | None] = {}

    def hook(message: Message) -> None:
        if isinstance(message, ItemShown):
            shown[message.seq] = message.item_id

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await pilot.pause()
        assert current_id(app) == "clip000"
        await pilot.press("1", "3", "enter")
        assert session.answers[-1][:2] == (0, (0, 2))
        assert current_id(app) == "clip001"
        await pilot.press("2", "2", "enter")  # toggled twice: none of them
        assert session.answers[-1][:2] == (1, ())
        await pilot.press("3", "n", "enter")
        assert session.answers[-1][:2] == (2, ())
        await pilot.pause()
        assert all(seconds >= 0 for _, _, seconds in session.answers)
        assert player.played[:3] == ["clip000", "clip001", "clip002"]  # auto-play
        assert current_id(app) == "clip003"
        assert "clip003" in text_of(app.main.query_one(WhyLine))
    assert [shown[k] for k in sorted(shown)][:4] == ["clip000", "clip001", "clip002", "clip003"]


async def test_single_label_digits_pick_one_class() -> None:
    session = FakeSession(multi_label=False, every=100)
    app, _ = app_for(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("1", "3")
        assert app.main.query_one(PredictionPanel).selected == {2}
        await pilot.press("enter")
        assert session.answers[-1][:2] == (0, (2,))


async def test_undo_and_skip() -> None:
    session = FakeSession(every=100)
    app, _ = app_for(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("2", "enter")
        await pilot.press("s")
        assert session.skipped == {1}
        assert current_id(app) == "clip002"
        await pilot.press("u")
        assert current_id(app) == "clip000"
        assert app.main.query_one(PredictionPanel).selected == set()
        assert session.answers == []
        await pilot.press("2", "3", "enter")
        assert session.answers[-1][:2] == (0, (1, 2))
        await pilot.press("u", "u")  # the second finds nothing: a warning, no crash
        await pilot.pause()
        assert session.answers == []


async def test_a_failed_write_keeps_the_answer_on_screen_and_enter_retries() -> None:
    session = FakeSession(every=100, fail_writes=2)
    app, _ = app_for(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("1", "enter")
        await pilot.pause()
        assert session.answers == [] and current_id(app) == "clip000"
        assert app.main.query_one(PredictionPanel).selected == {0}
        assert any(
            "not saved" in n.message and "disk is full" in n.message for n in app._notifications
        )
        await pilot.press("enter", "enter")  # fails once more, then is saved
        await pilot.pause()
        assert [a[:2] for a in session.answers] == [(0, (0,))]
        assert current_id(app) == "clip001"


async def test_slash_queues_the_clips_like_the_one_on_screen() -> None:
    session = FakeSession(every=100)
    app, _ = app_for(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        assert session.searched == [(0, 10)]
        assert app.screen.__class__.__name__ == "SearchScreen"
        listed = str(app.screen.query_one("#search-title", Static).render())
        assert "clip000" in listed
        await pilot.press("enter")  # back to labelling
        assert app.screen.__class__.__name__ == "MainScreen"
        assert current_id(app) == "clip000"  # the item on screen stays
        assert any("10 clips like this one" in n.message for n in app._notifications)
    stream = FakeSession(every=100, mode="stream")
    app, _ = app_for(stream)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        assert stream.searched == []
        assert any("pool projects" in n.message for n in app._notifications)


async def test_play_pause_replay_and_no_autoplay() -> None:
    session = FakeSession(every=100)
    app, player = app_for(session, autoplay=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert player.played == []
        assert "auto-play off" in text_of(app.main.query_one(PlayerLine))
        await pilot.press("space")
        assert player.played == ["clip000"]
        await pilot.press("r")
        assert player.played == ["clip000", "clip000"]


async def test_retraining_runs_in_the_background_and_swaps_the_model() -> None:
    gate = threading.Event()
    session = FakeSession(n=8, every=2, gate=gate)
    app, _ = app_for(session)
    progress: list[float] = []

    def hook(message: Message) -> None:
        if isinstance(message, RetrainProgress):
            progress.append(message.fraction)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await pilot.pause()
        await pilot.press("1", "enter", "enter")  # two labels: a retraining starts
        await pilot.pause()
        assert session.pending == 1
        # the UI keeps responding while the model trains
        await pilot.press("2", "enter", "s")
        assert len(session.answers) == 3 and current_id(app) == "clip004"
        assert "training" in text_of(app.main.query_one(ModelStatus))
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert session.version == 1 and session.swapped == [1]
        assert "v1" in text_of(app.main.query_one(ModelStatus))
        assert progress and progress[-1] == 1.0
        await pilot.press("enter")  # 2 more labels since: the next model
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert session.version == 2


@pytest.mark.parametrize("raises", [False, True])
async def test_failed_training_shows_an_error_and_labelling_goes_on(raises: bool) -> None:
    session = FakeSession(every=1, fail="out of memory", raises=raises)
    app, _ = app_for(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "training failed" in text_of(app.main.query_one(ModelStatus))
        assert "out of memory" in text_of(app.main.query_one(ModelStatus))
        assert session.version == 0
        await pilot.press("1", "enter")
        assert session.answers[-1][:2] == (1, (0,))


async def test_stream_mode_waits_for_the_model_without_blocking() -> None:
    gate = threading.Event()
    session = FakeSession(mode="stream", every=1, gate=gate)
    app, _ = app_for(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.current is None
        assert "Waiting" in str(app.main.query_one("#notice").render())
        await pilot.press("question_mark")  # still responsive
        await pilot.press("escape")
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert current_id(app) == "clip001"
        assert app.main.query_one(SpectrogramView).data is not None


async def test_keymap_remaps_keys() -> None:
    session = FakeSession(every=100)
    app, _ = app_for(session, keymap={"label.submit": "x", "label.class_1": "a"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a", "enter")
        assert session.answers == []
        await pilot.press("x")
        assert session.answers[-1][:2] == (0, (0,))
    console = Console(width=90, record=True)
    console.print(help_table(session.class_list, app.keymap, True))
    text = console.export_text()
    assert re.search(r"^x +commit the label", text, re.M)
    assert re.search(r"^a +tick / untick 'bird'", text, re.M)


async def test_help_opens_and_quit_exits() -> None:
    session = FakeSession(every=100)
    app, _player = app_for(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("q")
        assert app.screen is app.main
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_footer_shows_replay(size: tuple[int, int]) -> None:
    from textual.widgets._footer import FooterKey

    app, player = app_for(FakeSession(every=100))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        keys = {(k.key_display or k.key, k.description) for k in app.screen.query(FooterKey)}
        assert ("r", "replay") in keys and ("space", "play") in keys
        region = next(k for k in app.screen.query(FooterKey) if k.key == "r").region
        assert region.width > 0 and region.right <= size[0]  # on screen, not cut off
        n = len(player.played)
        await pilot.press("r")
        await pilot.pause()
        assert len(player.played) == n + 1 and player.starts[-1] == 0.0
