"""The help screen: every key (as remapped by the user's keymap) and the classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from iml_tui.tui.keys import KEYS, display_key, effective_keys


def help_table(class_list: Sequence[str], keymap: Mapping[str, str], multi_label: bool) -> Table:
    """Keys and what they do, the class keys first."""
    keys = effective_keys(keymap)
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    verb = "tick / untick" if multi_label else "pick"
    for i, name in enumerate(class_list[:9]):
        table.add_row(display_key(keys[f"label.class_{i + 1}"]), f"{verb} '{name}'")
    for spec in KEYS:
        if not spec.id.startswith("label.class_"):
            table.add_row(display_key(keys[spec.id]), spec.help)
    return table


class HelpScreen(ModalScreen[None]):
    """A modal list of the keys; any of escape, ? or q closes it."""

    BINDINGS = [  # noqa: RUF012 (Textual reads a class-level list)
        Binding("escape,question_mark,q", "close", "close", id="help.close"),
    ]

    def __init__(
        self, class_list: Sequence[str], keymap: Mapping[str, str], multi_label: bool
    ) -> None:
        super().__init__()
        self.class_list = tuple(class_list)
        self.keymap = dict(keymap)
        self.multi_label = multi_label

    def compose(self) -> ComposeResult:
        """Title, key table and a note on the keymap."""
        with VerticalScroll(id="help-box"):
            yield Static(Text("iml-tui label — keys", style="bold"), id="help-title")
            yield Static(help_table(self.class_list, self.keymap, self.multi_label))
            yield Static(
                Text(
                    "Each answer is saved before the next item shows; quitting loses nothing and "
                    "the same item comes back. Remap keys with --keys FILE (YAML: "
                    "keys: {label.submit: enter}); ids: label.class_1..9, label.none, "
                    "label.submit, audio.play_pause, audio.replay, label.skip, label.undo, "
                    "label.onset, label.offset, label.event_delete, label.move_onset, "
                    "label.move_offset, audio.cursor_back, audio.cursor_forward, label.search, "
                    "app.help, app.quit.",
                    style="dim",
                ),
                id="help-note",
            )

    def action_close(self) -> None:
        """Back to labelling."""
        self.dismiss(None)
