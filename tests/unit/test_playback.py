"""Audio players: the file backend, the browser backend over real loopback HTTP, the local one
where this machine has a sound card."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iml_tui.audio import playback
from iml_tui.audio.playback import BrowserPlayer, FilePlayer, LocalPlayer
from iml_tui.errors import UserError

SR = 8000


def _tone(seconds: float = 0.5, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.4 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


@pytest.fixture
def browser() -> Iterator[BrowserPlayer]:
    p = BrowserPlayer()
    yield p
    p.close()


def test_file_player_writes_wavs(tmp_path: Path) -> None:
    p = FilePlayer(tmp_path / "clips")
    x = _tone()
    path = p.play(x, SR, "HB/rec 1.wav@12.500")
    assert path is not None and path.parent == tmp_path / "clips" and path.suffix == ".wav"
    y, sr = sf.read(path, dtype="float32")
    assert sr == SR and y.shape == x.shape and np.abs(y - x).max() < 1e-3
    assert str(path) in p.describe() and p.name == "file" and p.position() is None
    half = p.play(x, SR, "b", start=0.25)
    assert half is not None and sf.info(half).frames == len(x) // 2


def test_browser_needs_the_token(browser: BrowserPlayer) -> None:
    base = f"http://127.0.0.1:{browser.port}"
    for path in ("/", "/state", "/nottoken/", f"/{browser.token}x/", "/clip/0.wav"):
        assert _get(base + path)[0] == 403, path
    code, body, ctype = _get(browser.url)
    assert code == 200 and ctype.startswith("text/html") and b"<audio" in body
    assert browser.url.startswith("http://127.0.0.1:") and browser.token in browser.url
    assert (
        browser.ssh_command("me@gpu") == f"ssh -N -L {browser.port}:127.0.0.1:{browser.port} me@gpu"
    )
    assert browser.url in browser.describe() and "ssh -N -L" in browser.describe()
    assert browser._server.server_address[0] == "127.0.0.1"


def test_browser_serves_the_current_clip_and_advances(browser: BrowserPlayer) -> None:
    base = browser.url.rstrip("/")
    state = json.loads(_get(base + "/state?after=-1")[1])
    assert state["seq"] == -1 and state["playing"] is False
    x = _tone()
    browser.play(x, SR, "rec0.wav@0.000")
    state = json.loads(_get(base + f"/state?after={state['version']}")[1])
    assert (state["seq"], state["item_id"], state["playing"]) == (0, "rec0.wav@0.000", True)
    code, wav, ctype = _get(base + "/clip/0.wav")
    assert code == 200 and ctype == "audio/wav"
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    assert sr == SR and y.shape == x.shape and np.abs(y - x).max() < 1e-3
    # a long poll returns as soon as the next item is played
    got: list[dict[str, object]] = []
    t = threading.Thread(
        target=lambda: got.append(json.loads(_get(base + f"/state?after={state['version']}")[1]))
    )
    t.start()
    time.sleep(0.2)
    assert t.is_alive() and not got
    t0 = time.monotonic()
    browser.play(_tone(f=880.0), SR, "rec1.wav@1.000")
    t.join(5)
    assert got and got[0]["seq"] == 1 and got[0]["item_id"] == "rec1.wav@1.000"
    assert time.monotonic() - t0 < 2.0
    assert _get(base + "/clip/0.wav")[0] == 404 and _get(base + "/clip/1.wav")[0] == 200
    # the page reports the playback position; the cursor reads it. Before its first report on
    # this clip, a page that is connected (it just asked) is taken to play from the start
    early = browser.position()
    assert early is not None and 0.0 <= early < 0.25
    assert _get(base + "/position?seq=1&t=0.250&playing=1")[0] == 204
    pos = browser.position()
    assert pos is not None and 0.25 <= pos < 0.5
    browser.stop()
    assert browser.position() is None
    assert json.loads(_get(base + "/state?after=-1")[1])["playing"] is False
    assert _get(base + "/position?seq=x")[0] == 400


def test_local_player_or_why_not() -> None:
    try:
        player = LocalPlayer()
    except UserError as exc:
        checks = {c.name: c for c in playback.check_backends()}
        assert not checks["local"].ok and checks["local"].detail == str(exc)
        pytest.skip(f"no local audio output here: {exc}")
    player.play(np.zeros(800, np.float32), SR, "silence")
    player.stop()
    assert player.position() is None and player.describe().startswith("local:")
    player.close()


def test_choose_and_doctor(tmp_path: Path) -> None:
    checks = playback.check_backends(folder=tmp_path)
    assert [c.name for c in checks] == ["local", "browser", "file"]
    assert all(c.detail for c in checks) and checks[1].ok and checks[2].ok
    p = playback.choose_player(folder=tmp_path)
    try:
        assert p.name == ("local" if checks[0].ok else "browser")
    finally:
        p.close()
    f = playback.choose_player("file", folder=tmp_path)
    assert isinstance(f, FilePlayer)
    with pytest.raises(UserError, match="unknown player"):
        playback.choose_player("speaker")


class _FakeSd:
    """Stands in for sounddevice (PortAudio) with a given device list."""

    def __init__(self, devices: list[dict[str, object]]) -> None:
        self.devices = devices
        self.default = type("D", (), {"device": [-1, -1]})()
        self.played: list[tuple[int, int, object]] = []
        self.stopped = 0

    def query_devices(self) -> list[dict[str, object]]:
        return self.devices

    def play(self, x: np.ndarray, sr: int, device: object = None) -> None:
        self.played.append((len(x), sr, device))

    def stop(self) -> None:
        self.stopped += 1


def test_local_player_logic_with_a_fake_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    fake = _FakeSd(
        [{"name": "mic", "max_output_channels": 0}, {"name": "speakers", "max_output_channels": 2}]
    )
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    p = LocalPlayer()
    assert p.describe() == "local: speakers" and p.device == 1
    p.play(_tone(1.0), SR, "a", start=0.5)
    assert fake.played == [(SR // 2, SR, 1)]
    pos = p.position()
    assert pos is not None and 0.5 <= pos < 1.0
    p.stop()
    assert p.position() is None and fake.stopped == 2
    monkeypatch.setitem(
        sys.modules, "sounddevice", _FakeSd([{"name": "mic", "max_output_channels": 0}])
    )
    with pytest.raises(UserError, match="no audio output device"):
        LocalPlayer()
