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
                _get, player.url + f"position?seq={state['seq']}&t=0.5&playing=1")
            app.main.tick_cursor()
            cursor = app.main.query_one(SpectrogramView).cursor
            assert cursor is not None and 0.5 <= cursor < 0.9
            await pilot.press("enter")
            await settle(app, pilot)
            _, body = await asyncio.to_thread(
                _get, player.url + f"state?after={state['version']}")
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
