"""Each audio backend in the labelling screen: shown in the status line, fed each new item."""

from __future__ import annotations

import asyncio
import json
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tui_fakes import FakeSession, RecordingPlayer

from iml_tui.audio import playback
from iml_tui.tui.app import LabelApp, make_app
from iml_tui.tui.audio_thread import ThreadedPlayer
from iml_tui.tui.widgets.spectrogram import SpectrogramView
from iml_tui.tui.widgets.status import PlayerLine

SIZE = (100, 30)


async def settle(app: LabelApp, pilot: Any) -> None:
    """Let the audio thread run what was sent to it, and the status line follow."""
    assert isinstance(app.player, ThreadedPlayer)
    await asyncio.to_thread(app.player.flush)
    await pilot.pause()


def player_line(app: LabelApp) -> str:
    return str(app.main.query_one(PlayerLine).render())


async def test_file_player(tmp_path: Path) -> None:
    player = playback.FilePlayer(tmp_path / "clips")
    app = make_app(FakeSession(every=100), player, cursor=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert (tmp_path / "clips" / "clip000.wav").is_file()
        line = player_line(app)
        assert "file" in line and "clip000.wav" in line
        await pilot.press("enter")
        await settle(app, pilot)
        assert (tmp_path / "clips" / "clip001.wav").is_file()
        assert "clip001.wav" in player_line(app)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return int(r.status), r.read()


async def test_browser_player_over_loopback_http() -> None:
    player = playback.BrowserPlayer(port=0)
    try:
        app = make_app(FakeSession(every=100), player, cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            line = player_line(app)
            assert "browser" in line and player.url in line and "ssh -N -L" in line
            status, page = await asyncio.to_thread(_get, player.url)
            assert status == 200 and b"<html" in page.lower()
            _, body = await asyncio.to_thread(_get, player.url + "state?after=-1")
            state = json.loads(body)
            assert state["item_id"] == "clip000" and state["playing"]
            status, wav = await asyncio.to_thread(_get, player.url + f"clip/{state['seq']}.wav")
            assert status == 200 and wav[:4] == b"RIFF"
            # the page reports where it is playing: the cursor follows
            await asyncio.to_thread(
                _get, player.url + f"position?seq={state['seq']}&t=0.5&playing=1"
            )
            app.main.tick_cursor()
            cursor = app.main.query_one(SpectrogramView).cursor
            assert cursor is not None and 0.5 <= cursor < 0.9
            await pilot.press("enter")
            await settle(app, pilot)
            _, body = await asyncio.to_thread(_get, player.url + f"state?after={state['version']}")
            assert json.loads(body)["item_id"] == "clip001"
    finally:
        player.close()


class FakeSoundDevice(types.ModuleType):
    """Just enough of the sounddevice module for ``LocalPlayer``."""

    def __init__(self) -> None:
        super().__init__("sounddevice")
        self.default = types.SimpleNamespace(device=(None, 0))
        self.calls: list[tuple[str, Any]] = []

    def query_devices(self) -> list[dict[str, Any]]:
        return [{"name": "Test card", "max_output_channels": 2}]

    def play(self, x: np.ndarray, sr: int, device: int | None = None) -> None:
        self.calls.append(("play", len(x)))

    def stop(self) -> None:
        self.calls.append(("stop", None))


async def test_local_player(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = FakeSoundDevice()
    monkeypatch.setattr(playback, "import_sounddevice", lambda: sd)
    player = playback.LocalPlayer()
    app = make_app(FakeSession(every=100, seconds=60.0), player, cursor=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "local: Test card" in player_line(app)
        assert ("play", 480000) in sd.calls  # auto-play: the whole clip
        app.main.tick_cursor()
        assert app.main.query_one(SpectrogramView).cursor is not None
        await pilot.press("space")  # pause
        await settle(app, pilot)
        assert sd.calls[-1] == ("stop", None)
        await pilot.press("space")  # resume where it stopped
        await settle(app, pilot)
        assert sd.calls[-1][0] == "play" and sd.calls[-1][1] < 480000


def test_threaded_player_keeps_only_the_latest_command() -> None:
    class Slow(RecordingPlayer):
        def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> None:
            time.sleep(0.05)
            super().play(x, sr, item_id, start)

    inner = Slow()
    changes: list[int] = []
    player = ThreadedPlayer(inner, on_change=lambda: changes.append(1))
    x = np.zeros(10, np.float32)
    for name in ("a", "b", "c", "d"):
        player.play(x, 8000, name)
    assert player.flush()
    assert inner.played[-1] == "d" and len(inner.played) <= 2  # b and c never played
    assert changes
    player.close()
    assert inner.closed


# --- the browser player over SSH: one tunnel, one tab -------------------------------------------
def test_browser_port_and_token_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "project" / "player.json"
    state.parent.mkdir()
    first = playback.persistent_browser(0, state, "ana")
    port, token, url = first.port, first.token, first.url
    first.close()
    saved = json.loads(state.read_text())
    assert saved["ana"] == {"port": port, "token": token}
    assert state.stat().st_mode & 0o077 == 0  # the token is the only key to the page
    again = playback.persistent_browser(0, state, "ana")
    try:
        assert (again.port, again.token, again.url) == (port, token, url)
        status, _ = _get(again.url)  # the tab that was open still works
        assert status == 200
        other = playback.persistent_browser(0, state, "ben")  # another annotator: own entry
        try:
            assert other.port != port and other.token != token
            assert set(json.loads(state.read_text())) == {"ana", "ben"}
        finally:
            other.close()
        # the saved port is taken (by the player still running): a free one, said so
        busy = playback.persistent_browser(0, state, "ana")
        try:
            assert busy.port != port and busy.token == token
            assert f"saved port {port} is taken" in busy.describe()
        finally:
            busy.close()
        # an explicit --port that is taken is an error, not a silent change
        with pytest.raises(playback.UserError, match="cannot listen"):
            playback.persistent_browser(port, state, "carl")
    finally:
        again.close()


def test_a_damaged_player_file_means_a_new_port(tmp_path: Path) -> None:
    state = tmp_path / "player.json"
    state.write_text("{not json")
    player = playback.persistent_browser(0, state, "ana")
    try:
        assert json.loads(state.read_text())["ana"]["port"] == player.port
    finally:
        player.close()
    state.write_text(json.dumps({"ana": {"port": 99999, "token": "x"}}))
    assert playback.load_browser_state(state, "ana") == {}


def test_half_sent_request_does_not_hold_a_thread() -> None:
    import socket
    import threading

    player = playback.BrowserPlayer(port=0, request_timeout=0.5)
    try:
        before = threading.active_count()
        raw = socket.create_connection(("127.0.0.1", player.port), timeout=10)
        raw.sendall(f"GET /{player.token}/state?after=-1 HTTP/1.1\r\nHost: x".encode())
        time.sleep(0.1)
        assert threading.active_count() == before + 1  # one handler thread reads it
        status, _ = _get(player.url)  # others are served meanwhile
        assert status == 200
        t0 = time.monotonic()
        assert raw.recv(1024) == b""  # the server gave up on it and closed the connection
        assert time.monotonic() - t0 < 5
        raw.close()
        deadline = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() == before  # and its thread ended
    finally:
        player.close()


def test_connected_follows_the_page() -> None:
    import threading

    player = playback.BrowserPlayer(port=0)
    try:
        assert not player.connected and "no browser connected" in player.describe()
        assert player.position() is None
        x = np.zeros(8000 * 10, np.float32)
        player.play(x, 8000, "#1")
        assert player.position() is None  # nobody listens: nothing plays
        after = player._state.version
        poll = threading.Thread(target=_get, args=(player.url + f"state?after={after}",))
        poll.start()  # a long poll waits
        deadline = time.monotonic() + 5
        while not player.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert player.connected and "browser connected" in player.describe()
        pos = player.position()  # no report yet on this clip: from where it was started
        assert pos is not None and 0.0 <= pos < 1.0
        player.stop()  # wakes the poll
        poll.join(10)
        assert player.position() is None
        with player._state.cond:
            player._state.last_seen -= playback.CONNECTED_SECONDS + 1
        assert not player.connected
    finally:
        player.close()


async def test_space_pauses_the_browser_while_it_listens() -> None:
    import threading

    player = playback.BrowserPlayer(port=0)
    stop = threading.Event()

    def page() -> None:  # a page that keeps long-polling, as the real one does
        version = -1
        while not stop.is_set():
            _, body = _get(player.url + f"state?after={version}")
            version = json.loads(body)["version"]

    thread = threading.Thread(target=page, daemon=True)
    thread.start()
    try:
        app = make_app(FakeSession(every=100, seconds=30.0), player, cursor=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert "browser connected" in player_line(app)
            app.main.tick_cursor()  # the page has not reported a position yet
            assert app.main._playing
            seq = player._state.seq
            await pilot.press("space")
            await settle(app, pilot)
            state = player._state.public()
            assert not state["playing"] and state["seq"] == seq  # paused, not replayed
            await pilot.press("space")  # resumes
            await settle(app, pilot)
            state = player._state.public()
            assert state["playing"] and state["seq"] == seq + 1 and state["start"] >= 0.0
    finally:
        stop.set()
        player.stop()
        thread.join(10)
        player.close()


async def test_status_line_follows_a_browser_that_connects_later() -> None:
    player = playback.BrowserPlayer(port=0)
    try:
        app = make_app(FakeSession(every=100), player)  # with the clocks on, as in use
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert "no browser connected" in player_line(app)
            await asyncio.to_thread(_get, player.url)  # the tab is opened
            for _ in range(40):  # the line is refreshed every second
                await pilot.pause(0.25)
                if "(browser connected)" in player_line(app):
                    break
            assert "(browser connected)" in player_line(app)
    finally:
        player.close()
