"""Key bindings with stable ids, and the user's keymap file that remaps them.

A keymap file is YAML: either ``{keys: {binding_id: "key[,key...]"}}`` or the mapping alone, e.g.::

    keys:
      label.submit: enter,ctrl+j
      audio.play_pause: p
      label.class_1: a

Key names are Textual's (``space``, ``enter``, ``question_mark``, ``ctrl+x``, ``f1`` ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding, BindingType

from iml_tui.errors import UserError

MAX_CLASS_KEYS = 9
CLASS_GROUP = Binding.Group("class", compact=True)
EVENT_GROUP = Binding.Group("event", compact=True)
EVENT_IDS = frozenset({"label.onset", "label.offset"})


@dataclass(frozen=True)
class KeySpec:
    """One remappable binding: its id, default key(s), action and what it does."""

    id: str
    key: str
    action: str
    description: str
    help: str
    show: bool = True


KEYS: tuple[KeySpec, ...] = (
    *(
        KeySpec(
            f"label.class_{i}",
            str(i),
            f"toggle_class({i - 1})",
            "class",
            f"tick / untick class {i} (pick it, single-label)",
        )
        for i in range(1, MAX_CLASS_KEYS + 1)
    ),
    KeySpec("label.none", "0,n", "none", "none", "none of these classes (clear the ticks)"),
    KeySpec("label.submit", "enter", "submit", "submit", "commit the label, show the next item"),
    KeySpec("audio.play_pause", "space", "play_pause", "play", "play or pause the clip"),
    KeySpec("audio.replay", "r", "replay", "replay", "play the clip from its start"),
    KeySpec("label.skip", "s", "skip", "skip", "skip this item (not asked again this round)"),
    KeySpec(
        "label.undo",
        "u",
        "undo",
        "undo",
        "withdraw your last act: an answer (its item shows again) or an event marked, moved or "
        "deleted",
    ),
    KeySpec(
        "label.onset",
        "left_square_bracket",
        "mark_onset",
        "event",
        "an event starts at the cursor (the class: the last ticked, or the digit pressed)",
    ),
    KeySpec(
        "label.offset",
        "right_square_bracket",
        "mark_offset",
        "event",
        "the event ends at the cursor: it is marked, its class ticked (a mouse drag on the "
        "spectrogram marks one too; a click moves the cursor)",
    ),
    KeySpec(
        "label.onset_cancel",
        "escape",
        "cancel_onset",
        "drop onset",
        "drop the onset pressed with [ (nothing is marked)",
        show=False,
    ),
    KeySpec(
        "label.event_delete",
        "x",
        "delete_event",
        "del event",
        "delete the event under the cursor (else the last one marked)",
        show=False,
    ),
    KeySpec(
        "label.event_class",
        "c",
        "event_class",
        "event class",
        "give the event under the cursor (else the last one) the class whose digit you pressed "
        "last",
        show=False,
    ),
    KeySpec(
        "label.move_onset",
        "left_curly_bracket",
        "move_edge('onset')",
        "move onset",
        "move the onset of the event under the cursor (else the last one) to the cursor "
        "(or drag its edge with the mouse; drag it from inside on the events row to move it "
        "whole)",
        show=False,
    ),
    KeySpec(
        "label.move_offset",
        "right_curly_bracket",
        "move_edge('offset')",
        "move offset",
        "move the offset of the event under the cursor (else the last one) to the cursor",
        show=False,
    ),
    KeySpec(
        "audio.cursor_back",
        "left",
        "nudge_cursor(-1)",
        "cursor",
        "move the cursor a step (1/50 of the clip) back; right: forward",
        show=False,
    ),
    KeySpec(
        "audio.cursor_forward",
        "right",
        "nudge_cursor(1)",
        "cursor",
        "move the cursor a step (1/50 of the clip) forward",
        show=False,
    ),
    KeySpec(
        "label.search",
        "slash",
        "search",
        "similar",
        "queue the clips most like this one next (search by example)",
    ),
    KeySpec("app.help", "question_mark", "help", "help", "this help"),
    KeySpec("app.quit", "q", "quit", "quit", "quit (every answer is already saved)"),
)
KEY_IDS = frozenset(k.id for k in KEYS)


def screen_bindings() -> list[BindingType]:
    """The main screen's bindings (all of :data:`KEYS`)."""
    out: list[BindingType] = []
    for spec in KEYS:
        is_class = spec.id.startswith("label.class_")
        out.append(
            Binding(
                spec.key,
                spec.action,
                spec.description,
                show=spec.show,
                id=spec.id,
                group=CLASS_GROUP if is_class else EVENT_GROUP if spec.id in EVENT_IDS else None,
                key_display=KEY_DISPLAY.get(spec.key),
            )
        )
    return out


KEY_DISPLAY = {
    "question_mark": "?",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "left_curly_bracket": "{",
    "right_curly_bracket": "}",
    "left": "←",
    "right": "→",
}
"""How the footer shows keys whose Textual names are words."""


def effective_keys(keymap: Mapping[str, str]) -> dict[str, str]:
    """Binding id -> the key(s) in force once ``keymap`` is applied."""
    return {spec.id: keymap.get(spec.id, spec.key) for spec in KEYS}


def display_key(keys: str) -> str:
    """'question_mark' -> '?', 'enter' -> 'Enter', '0,n' -> '0 / n'."""
    names = {**KEY_DISPLAY, "space": "Space", "enter": "Enter", "escape": "Esc"}
    return " / ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


def check_keymap(keymap: Mapping[str, object], source: str) -> dict[str, str]:
    """Validate a keymap: known ids, non-empty string keys. UserError names the bad entry."""
    out: dict[str, str] = {}
    for key_id, keys in keymap.items():
        if key_id not in KEY_IDS:
            raise UserError(
                f"unknown key binding id '{key_id}'",
                source,
                f"use one of {', '.join(sorted(KEY_IDS))}",
            )
        if not isinstance(keys, str | int) or not str(keys).strip():
            raise UserError(
                f"key binding '{key_id}' needs a key name, got {keys!r}",
                source,
                "write it as a string, e.g. 'enter' or 'ctrl+j,enter'",
            )
        out[key_id] = str(keys).replace(" ", "")
    return out


def load_keymap(path: str | Path) -> dict[str, str]:
    """Read a keymap YAML file (see the module docstring)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UserError("keymap file not found", path, "check the path given to --keys") from None
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML ({exc})", path, "fix the file's syntax") from None
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"] or {}
    if not isinstance(data, dict):
        raise UserError(
            "a keymap must be a mapping of binding id to key",
            path,
            "write e.g. 'keys: {label.submit: enter}'",
        )
    return check_keymap(data, str(path))
