"""The labelling app and :func:`make_app`, the factory shared by the CLI, the tests and the
benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from textual.app import App

from iml_tui.errors import UserError
from iml_tui.tui.audio_thread import ThreadedPlayer
from iml_tui.tui.bridge import Bridge
from iml_tui.tui.keys import check_keymap
from iml_tui.tui.messages import AudioChanged
from iml_tui.tui.protocols import PlayerLike, SessionLike
from iml_tui.tui.screens.main import MainScreen
from iml_tui.tui.widgets.graphics import MODES


class LabelApp(App[None]):
    """``iml-tui label``: one main screen over one session and one audio player."""

    CSS_PATH = "app.tcss"
    TITLE = "iml-tui label"
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        bridge: Bridge,
        player: PlayerLike,
        keymap: Mapping[str, str],
        autoplay: bool = True,
        cursor: bool = True,
        audio_thread: bool = True,
        graphics: str = "halfblock",
        notes: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.notes = tuple(notes)
        self.graphics = graphics
        self.bridge = bridge
        self.backend = player
        self.player: PlayerLike = ThreadedPlayer(player) if audio_thread else player
        self.keymap = dict(keymap)
        self.autoplay = autoplay
        self.cursor = cursor

    def on_mount(self) -> None:
        """Apply the user's keymap and open the labelling screen."""
        self.theme = "textual-dark"
        if self.keymap:
            self.set_keymap(self.keymap)
        main = MainScreen(self.bridge, self.player, self.autoplay, self.cursor, self.graphics)
        if isinstance(self.player, ThreadedPlayer):

            def changed() -> None:
                main.post_message(AudioChanged())

            self.player.on_change = changed
        self.push_screen(main)
        for note in self.notes:
            self.notify(note, timeout=15)

    def on_unmount(self) -> None:
        """Stop the audio and its thread (the caller closes the backend itself)."""
        self.player.stop()
        if isinstance(self.player, ThreadedPlayer):
            self.player.on_change = None
            self.player.shutdown()

    @property
    def main(self) -> MainScreen:
        """The labelling screen (under the help screen when that is open)."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("the main screen is not mounted")


def make_app(
    session: SessionLike[Any, Any],
    player: PlayerLike,
    *,
    keymap: Mapping[str, str] | None = None,
    keymap_file: str | Path | None = None,
    autoplay: bool = True,
    cursor: bool = True,
    audio_thread: bool = True,
    graphics: str = "halfblock",
    notes: Sequence[str] = (),
) -> LabelApp:
    """Build the app over an open session and a player (the caller closes both after).

    ``keymap`` (binding id -> keys) wins over ``keymap_file`` (YAML, see :mod:`~.keys`);
    ``cursor=False`` stops the playback-cursor clock (deterministic snapshots);
    ``audio_thread=False`` calls the player on the UI thread (tests that count its calls);
    ``graphics``: "halfblock" (truecolor), "halfblock256" (256-colour terminals, dithered),
    "kitty" or "sixel" (images through textual-image, see ``widgets.graphics``); ``notes``:
    shown once as notifications.
    """
    if graphics not in MODES:
        raise UserError(
            f"unknown graphics mode {graphics!r}", None, f"use auto or one of {', '.join(MODES)}"
        )
    from iml_tui.tui.keys import load_keymap

    merged: dict[str, str] = {}
    if keymap_file is not None:
        merged.update(load_keymap(keymap_file))
    if keymap:
        merged.update(check_keymap(keymap, "keymap"))
    return LabelApp(
        Bridge(session), player, merged, autoplay, cursor, audio_thread, graphics, notes
    )
