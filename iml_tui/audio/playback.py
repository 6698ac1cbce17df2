"""Playing clips wherever the annotator is: a sound card, a browser over SSH, or a file.

Backends (``Player``: ``play(x, sr, item_id, start=0.0)``, ``stop()``, ``position()``,
``name``, ``describe()``, ``close()``):

- ``local``: sounddevice / PortAudio on this machine, when it has an output device. sounddevice
  is imported lazily: without the PortAudio library (Debian ``libportaudio2``) its import raises
  OSError, and a machine without a sound card has no output device.
- ``browser``: a small HTTP server bound to 127.0.0.1 only, every URL behind a random token
  (403 without it). Its one page long-polls for the current item, plays each new item by itself
  and reports the playback position (for the cursor). Over SSH, forward the port with
  ``ssh -N -L PORT:127.0.0.1:PORT host`` (:meth:`BrowserPlayer.ssh_command`) and open the URL.
  :func:`choose_player` with a ``state_file`` (the project's ``player.json``) keeps the port and
  the token of each annotator across restarts, so one tunnel and one open tab last the whole
  work. Each connection has a socket timeout (``REQUEST_TIMEOUT``): a client that sends half a
  request is dropped instead of holding a thread.
- ``file``: writes each clip to a WAV file and returns its path (play it with anything).

:func:`choose_player` picks the first that works (local, browser, file) and :func:`doctor` says
which work here and why.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import io
import json
import os
import re
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np

from iml_tui.errors import UserError

BACKENDS: tuple[str, ...] = ("local", "browser", "file")
LONG_POLL_SECONDS = 20.0
REQUEST_TIMEOUT = 10.0
"""Seconds a connection may stay silent while sending a request (or reading a reply)."""
CONNECTED_SECONDS = 3.0
"""A browser counts as connected while it long-polls or made a request this recently."""


class Player(Protocol):
    """What every backend offers."""

    name: str

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> Path | None:
        """Play samples x (n,) at sr Hz from ``start`` seconds; the file backend returns the
        path it wrote, the others None. Replaces whatever was playing."""
        ...

    def stop(self) -> None:
        """Stop (or pause: ``play`` again with ``start=position()`` resumes)."""
        ...

    def position(self) -> float | None:
        """Seconds into the current clip while it plays (None: not playing or unknown)."""
        ...

    def describe(self) -> str:
        """One line for the status bar: the backend and where the sound goes."""
        ...

    def close(self) -> None:
        """Release the device or server."""
        ...


def _mono(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, 0] if a.shape[1] <= a.shape[0] else a[0]
    if a.ndim != 1:
        raise ValueError(f"expected samples (n,), got shape {np.asarray(x).shape}")
    return a


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV of the samples (clipped to [-1, 1])."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(_mono(x), -1.0, 1.0), int(sr), format="WAV", subtype="PCM_16")
    return buf.getvalue()


# --- local ---------------------------------------------------------------------------------------
def import_sounddevice() -> ModuleType:
    """The sounddevice module; UserError saying what is missing (the package or PortAudio)."""
    try:
        sounddevice = importlib.import_module("sounddevice")
    except ImportError as exc:
        raise UserError(
            "the sounddevice package is not installed",
            None,
            "pip install sounddevice (and the PortAudio library)",
        ) from exc
    except OSError as exc:
        raise UserError(
            f"the PortAudio library is missing ({exc})",
            None,
            "install it (Debian/Ubuntu: apt install libportaudio2), or use the "
            "browser or file player",
        ) from exc
    return sounddevice


def output_device(sd: ModuleType) -> tuple[int, str]:
    """(index, name) of the default output device, else the first one with output channels."""
    try:
        devices = list(sd.query_devices())
    except Exception as exc:  # PortAudio errors have their own types
        raise UserError(
            f"PortAudio cannot list devices ({exc})", None, "use the browser or file player"
        ) from exc
    default = -1
    with contextlib.suppress(TypeError, ValueError, IndexError):
        default = int(sd.default.device[1])
    outputs = [i for i, d in enumerate(devices) if int(d.get("max_output_channels", 0)) > 0]
    if not outputs:
        raise UserError(
            "no audio output device (no sound card here, e.g. over SSH)",
            None,
            "use the browser player (ssh -L) or the file player",
        )
    i = default if default in outputs else outputs[0]
    return i, str(devices[i].get("name", f"device {i}"))


class LocalPlayer:
    """Plays through PortAudio on this machine."""

    name = "local"

    def __init__(self, device: int | None = None) -> None:
        self._sd = import_sounddevice()
        found, label = output_device(self._sd)
        self.device = found if device is None else device
        self.device_name = label
        self._t0 = 0.0
        self._duration = 0.0
        self._playing = False

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> Path | None:
        a = _mono(x)
        first = max(0, min(len(a), round(start * sr)))
        self._sd.stop()
        self._sd.play(a[first:], int(sr), device=self.device)
        self._t0 = time.monotonic() - first / sr
        self._duration = len(a) / sr
        self._playing = True
        return None

    def stop(self) -> None:
        self._sd.stop()
        self._playing = False

    def position(self) -> float | None:
        if not self._playing:
            return None
        p = time.monotonic() - self._t0
        if p >= self._duration:
            self._playing = False
            return None
        return p

    def describe(self) -> str:
        return f"local: {self.device_name}"

    def close(self) -> None:
        self.stop()


# --- browser -------------------------------------------------------------------------------------
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>iml-tui player</title>
<style>
body { font-family: system-ui, sans-serif; background: #15171a; color: #e8e8e8; margin: 2em; }
button { font-size: 1.1em; padding: .4em 1em; } audio { width: 100%; margin-top: 1em; }
#item { font-family: monospace; } #note { color: #f0b400; }
</style></head>
<body>
<h2>iml-tui player</h2>
<p>Each new item plays by itself. Browsers need one click first:
<button id="enable">Enable sound</button></p>
<p>Now: <span id="item">(waiting for the first item)</span></p>
<audio id="audio" controls preload="auto"></audio>
<p id="note"></p>
<script>
"use strict";
const base = location.pathname.replace(/\\/+$/, "");
const audio = document.getElementById("audio");
const note = document.getElementById("note");
let version = -1, seq = -1;
function start(s) {
  audio.currentTime = s.start || 0;
  audio.play().then(() => { note.textContent = ""; })
    .catch(() => { note.textContent = "Click 'Enable sound' to let this page play."; });
}
document.getElementById("enable").onclick = () => {
  if (audio.src) { audio.play().catch(() => {}); }
  note.textContent = "";
};
async function poll() {
  for (;;) {
    try {
      const r = await fetch(base + "/state?after=" + version, {cache: "no-store"});
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      const s = await r.json();
      version = s.version;
      document.getElementById("item").textContent = s.item_id || "-";
      if (s.seq >= 0 && s.seq !== seq) {
        seq = s.seq;
        audio.src = base + "/clip/" + s.seq + ".wav";
      }
      if (s.seq >= 0 && s.playing) { start(s); } else { audio.pause(); }
    } catch (e) {
      note.textContent = "lost the connection to iml-tui; retrying";
      await new Promise(res => setTimeout(res, 1000));
    }
  }
}
setInterval(() => {
  if (seq < 0) { return; }
  const q = "seq=" + seq + "&t=" + audio.currentTime.toFixed(3) + "&playing=" +
            (audio.paused || audio.ended ? 0 : 1);
  fetch(base + "/position?" + q, {cache: "no-store"}).catch(() => {});
}, 200);
poll();
</script>
</body></html>
"""


class _State:
    """The shared state of a browser player (guarded by ``cond``)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = 0
        self.seq = -1
        self.item_id = ""
        self.wav = b""
        self.duration = 0.0
        self.start = 0.0
        self.playing = False
        self.reported: tuple[int, float, bool, float] | None = None  # seq, t, playing, when
        self.started_at = 0.0  # monotonic time of the last play()
        self.polls = 0  # long polls waiting now
        self.last_seen = -1e9  # monotonic time of the page's last request

    def connected(self, now: float | None = None) -> bool:
        """Whether a page is listening (a long poll waits, or it asked recently)."""
        now = time.monotonic() if now is None else now
        return self.polls > 0 or now - self.last_seen < CONNECTED_SECONDS

    def public(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "seq": self.seq,
            "item_id": self.item_id,
            "duration": self.duration,
            "start": self.start,
            "playing": self.playing,
        }


def _handler(
    token: str, state: _State, timeout: float = REQUEST_TIMEOUT
) -> type[BaseHTTPRequestHandler]:
    clip_re = re.compile(rf"^/{re.escape(token)}/clip/(\d+)\.wav$")

    class Handler(BaseHTTPRequestHandler):
        server_version = "iml-tui"

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep the terminal UI clean

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path, query = url.path, parse_qs(url.query)
            prefix = f"/{token}"
            head = (path + "/")[: len(prefix) + 1].encode("utf-8", "surrogateescape")
            if not secrets.compare_digest(head, (prefix + "/").encode()):
                self._send(
                    403, b"forbidden: this player needs its token in the URL\n", "text/plain"
                )
                return
            rest = path[len(prefix) :]
            with state.cond:
                state.last_seen = time.monotonic()
            if rest in ("", "/"):
                self._send(200, _PAGE.encode(), "text/html; charset=utf-8")
            elif rest == "/state":
                after = int(query.get("after", ["-1"])[0] or -1)
                deadline = time.monotonic() + LONG_POLL_SECONDS
                with state.cond:
                    state.polls += 1
                    try:
                        while state.version <= after and time.monotonic() < deadline:
                            state.cond.wait(max(0.0, deadline - time.monotonic()))
                    finally:
                        state.polls -= 1
                        state.last_seen = time.monotonic()
                    body = json.dumps(state.public()).encode()
                self._send(200, body, "application/json")
            elif rest == "/position":
                try:
                    seq = int(query["seq"][0])
                    t = float(query["t"][0])
                    playing = query.get("playing", ["0"])[0] == "1"
                except (KeyError, ValueError, IndexError):
                    self._send(400, b"seq and t are required\n", "text/plain")
                    return
                with state.cond:
                    state.reported = (seq, t, playing, time.monotonic())
                self._send(204, b"", "text/plain")
            else:
                m = clip_re.match(path)
                with state.cond:
                    wav = state.wav if m and int(m.group(1)) == state.seq else b""
                if wav:
                    self._send(200, wav, "audio/wav")
                else:
                    self._send(404, b"no such clip\n", "text/plain")

    # StreamRequestHandler.setup() puts this timeout on each connection's socket: a request
    # line or header that never ends raises TimeoutError and the connection is closed
    Handler.timeout = timeout
    return Handler


class BrowserPlayer:
    """Serves the current clip to a page in the annotator's browser (loopback only)."""

    name = "browser"

    def __init__(
        self, port: int = 0, token: str | None = None, request_timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self.token = token or secrets.token_urlsafe(16)
        self._state = _State()
        self.note = ""
        """Said in the status line (e.g. the saved port was taken)."""
        try:
            self._server = ThreadingHTTPServer(
                ("127.0.0.1", port), _handler(self.token, self._state, request_timeout)
            )
        except OSError as exc:
            raise UserError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror})",
                None,
                "choose another port, or 0 for any free one",
            ) from exc
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="iml-tui-player", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.token}/"

    def ssh_command(self, host: str | None = None) -> str:
        """The command to run on the annotator's own computer to reach this player."""
        if host is None:
            conn = os.environ.get("SSH_CONNECTION", "").split()
            server = conn[2] if len(conn) >= 4 else socket.gethostname()
            try:
                user = getpass.getuser()
            except (KeyError, OSError):
                user = ""
            host = f"{user}@{server}" if user else server
        return f"ssh -N -L {self.port}:127.0.0.1:{self.port} {host}"

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> Path | None:
        a = _mono(x)
        wav = wav_bytes(a, sr)
        with self._state.cond:
            s = self._state
            s.seq += 1
            s.version += 1
            s.item_id, s.wav, s.duration = item_id, wav, len(a) / sr
            s.start, s.playing = max(0.0, float(start)), True
            s.started_at = time.monotonic()
            s.cond.notify_all()
        return None

    def stop(self) -> None:
        with self._state.cond:
            self._state.playing = False
            self._state.version += 1
            self._state.cond.notify_all()

    @property
    def connected(self) -> bool:
        """Whether a browser page is listening now (see :data:`CONNECTED_SECONDS`)."""
        with self._state.cond:
            return self._state.connected()

    def position(self) -> float | None:
        """Where the page plays (its last report, moved on by the clock). Before the page has
        reported on the current clip, a connected page is taken to play it from the start it
        was given (so pausing works at once); without a page, nothing plays."""
        now = time.monotonic()
        with self._state.cond:
            s = self._state
            rep = s.reported
            if not s.playing:
                return None
            if rep is None or rep[0] != s.seq:
                if not s.connected(now):
                    return None
                p = s.start + (now - s.started_at)
                return p if p < s.duration else None
            if not rep[2]:
                return None
            return min(rep[1] + (now - rep[3]), s.duration)

    def describe(self) -> str:
        state = "browser connected" if self.connected else "no browser connected: open the URL"
        note = f"  [{self.note}]" if self.note else ""
        return f"browser ({state}): {self.url}  (from your computer: {self.ssh_command()}){note}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- file ----------------------------------------------------------------------------------------
def default_clip_dir() -> Path:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return Path(tempfile.gettempdir()) / f"iml-tui-clips-{user}"


class FilePlayer:
    """Writes each clip to ``folder/<item id>.wav``."""

    name = "file"

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_clip_dir()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the clip folder ({exc.strerror})",
                self.folder,
                "give a writable folder",
            ) from exc
        self.last_path: Path | None = None

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> Path | None:
        from iml_tui.audio import io as audio_io

        a = _mono(x)[max(0, round(start * sr)) :]
        if a.size == 0:
            a = np.zeros(1, np.float32)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("._") or "clip"
        self.last_path = audio_io.write(self.folder / f"{safe}.wav", a, int(sr))
        return self.last_path

    def stop(self) -> None:
        return None

    def position(self) -> float | None:
        return None

    def describe(self) -> str:
        where = self.last_path if self.last_path is not None else self.folder
        return f"file: {where}"

    def close(self) -> None:
        return None


# --- choosing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackendCheck:
    """Whether a backend works here, and why (or why not)."""

    name: str
    ok: bool
    detail: str


def check_backends(port: int = 0, folder: str | Path | None = None) -> list[BackendCheck]:
    """Try each backend without playing anything."""
    out: list[BackendCheck] = []
    try:
        sd = import_sounddevice()
        _, label = output_device(sd)
        out.append(BackendCheck("local", True, f"output device: {label}"))
    except UserError as exc:
        out.append(BackendCheck("local", False, str(exc)))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))
            got = s.getsockname()[1]
        out.append(
            BackendCheck(
                "browser",
                True,
                f"can listen on 127.0.0.1 (e.g. port {got}); "
                "forward it with ssh -L to your computer",
            )
        )
    except OSError as exc:
        out.append(
            BackendCheck("browser", False, f"cannot listen on 127.0.0.1:{port} ({exc.strerror})")
        )
    target = Path(folder) if folder is not None else default_clip_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, suffix=".probe"):
            pass
        out.append(BackendCheck("file", True, f"clips go to {target}"))
    except OSError as exc:
        out.append(BackendCheck("file", False, f"{target} is not writable ({exc.strerror})"))
    return out


def load_browser_state(state_file: str | Path, who: str) -> dict[str, Any]:
    """The saved ``{"port": int, "token": str}`` of annotator ``who`` ({} when none or the
    file is unreadable: a new port and token are then chosen and saved)."""
    try:
        data = json.loads(Path(state_file).read_text(encoding="utf-8"))
        entry = data.get(who, {}) if isinstance(data, dict) else {}
        port, token = int(entry["port"]), str(entry["token"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    if not 0 < port < 65536 or not re.fullmatch(r"[A-Za-z0-9_-]{16,}", token):
        return {}
    return {"port": port, "token": token}


def save_browser_state(state_file: str | Path, who: str, port: int, token: str) -> None:
    """Record ``who``'s port and token in ``state_file`` (JSON, atomic replace, mode 0600)."""
    from iml_tui.atomic import atomic_write_text

    path = Path(state_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    data[who] = {"port": int(port), "token": token}
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    with contextlib.suppress(OSError):
        path.chmod(0o600)


def persistent_browser(
    port: int = 0, state_file: str | Path | None = None, who: str = ""
) -> BrowserPlayer:
    """A browser player on the port and token saved in ``state_file`` for ``who``; ``port``
    (non-zero) wins over the saved one and must be free; a saved port that is taken now is
    replaced by a free one (said in the status line). The result is saved again."""
    if state_file is None:
        return BrowserPlayer(port)
    saved = load_browser_state(state_file, who)
    token = saved.get("token")
    want = port or int(saved.get("port", 0))
    try:
        player = BrowserPlayer(want, token)
    except UserError:
        if port or not want:
            raise
        player = BrowserPlayer(0, token)
        player.note = f"the saved port {want} is taken: forward {player.port} instead"
    try:
        save_browser_state(state_file, who, player.port, player.token)
    except OSError as exc:
        player.note = f"cannot save the port for next time ({exc.strerror})"
    return player


def make_player(
    kind: str,
    port: int = 0,
    folder: str | Path | None = None,
    state_file: str | Path | None = None,
    who: str = "",
) -> Player:
    """The backend ``kind`` (local, browser or file); UserError when it cannot work here.
    ``state_file`` / ``who``: where the browser player keeps its port and token."""
    if kind == "local":
        return LocalPlayer()
    if kind == "browser":
        return persistent_browser(port, state_file, who)
    if kind == "file":
        return FilePlayer(folder)
    raise UserError(f"unknown player {kind!r}", None, f"use auto or one of {', '.join(BACKENDS)}")


def choose_player(
    kind: str = "auto",
    port: int = 0,
    folder: str | Path | None = None,
    state_file: str | Path | None = None,
    who: str = "",
) -> Player:
    """``kind`` = auto: the first backend that works of local, browser, file."""
    if kind != "auto":
        return make_player(kind, port, folder, state_file, who)
    errors = []
    for name in BACKENDS:
        try:
            return make_player(name, port, folder, state_file, who)
        except UserError as exc:
            errors.append(f"{name}: {exc}")
    raise UserError(
        "no audio backend works here (" + "; ".join(errors) + ")",
        None,
        "run `iml-tui doctor` for details",
    )
