"""Audio off the UI thread: a player wrapper whose ``play`` / ``stop`` return at once.

Writing a WAV (file player) or encoding one (browser player) takes milliseconds that a key press
should not wait for. Commands go to one daemon thread in order; when several are waiting only the
last one matters (a new item's ``play`` supersedes the previous one), so a burst of key presses
never queues up stale audio.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from iml_tui.tui.protocols import PlayerLike


class ThreadedPlayer:
    """Wraps a :class:`~iml_tui.tui.protocols.PlayerLike`; same interface, non-blocking."""

    def __init__(self, player: PlayerLike, on_change: Callable[[], None] | None = None) -> None:
        self.player = player
        self.on_change = on_change
        """Called on the audio thread after each command (post a message from it)."""
        self._cond = threading.Condition()
        self._pending: Callable[[], object] | None = None
        self._busy = False
        self._closed = False
        self.error = ""
        self._thread = threading.Thread(target=self._loop, name="iml-tui-audio", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.player.name

    def _submit(self, command: Callable[[], object]) -> None:
        with self._cond:
            self._pending = command
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                command, self._pending = self._pending, None
                self._busy = True
            try:
                command()
                self.error = ""
            except Exception as exc:  # a broken backend must not take the UI down
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if self.on_change is not None:
                self.on_change()

    def play(self, x: np.ndarray, sr: int, item_id: str, start: float = 0.0) -> None:
        """Play from ``start`` seconds (replaces whatever plays or waits to play)."""
        self._submit(lambda: self.player.play(x, sr, item_id, start=start))

    def stop(self) -> None:
        """Stop playing (a waiting ``play`` is dropped)."""
        self._submit(self.player.stop)

    def position(self) -> float | None:
        """The backend's playback position (read directly: backends make it thread-safe)."""
        return self.player.position()

    def describe(self) -> str:
        """The backend's status line, or the last error of a command."""
        text = self.player.describe()
        return f"{text}  (audio error: {self.error})" if self.error else text

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every command sent so far has run; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def shutdown(self) -> None:
        """Finish the queued command and end the thread; the backend stays open."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def close(self) -> None:
        """End the thread and close the backend."""
        self.shutdown()
        self.player.close()
