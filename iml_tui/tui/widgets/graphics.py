"""Terminal graphics for the spectrogram: the kitty graphics protocol, where the terminal has it.

Kitty (and Ghostty) show an image through Unicode placeholders: the picture is sent once with an
escape sequence and a *virtual placement* of ``cols x rows`` cells; the cells themselves are the
private-use character U+10EEEE, whose foreground colour carries the image id and whose combining
marks carry the row and column. To Textual they are ordinary text, so the picture scrolls, clips
and redraws with the layout. Each row starts with row and column marks; the following cells of
the row carry none and the terminal counts the columns on.

Everything else (tmux, screen, SSH into another terminal, unknown terminals) gets half-blocks,
which every truecolor terminal draws; ``IML_TUI_GRAPHICS=halfblock|kitty`` overrides the choice.
Sixel is not drawn: Textual cannot place sixel data inside its layout.
"""

from __future__ import annotations

import base64
import os
import unicodedata
import zlib
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style

PLACEHOLDER = "\U0010eeee"
CHUNK = 4096
MODES = ("halfblock", "kitty")

# the protocol's row / column marks: combining characters of class 230 without decomposition,
# in code point order, minus a few that normalisation could fuse with a base letter (the kitty
# protocol's table, derived from Unicode 6.0). Below U+0660 that list is the same in every later
# Unicode version, so it is derived here from unicodedata; 69 rows are plenty for a spectrogram.
_EXCLUDED = frozenset((0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x309, 0x30A,
                       0x30B, 0x30C, 0x30F, 0x311, 0x313, 0x314, 0x342, 0x653, 0x654))


@lru_cache(maxsize=1)
def diacritics() -> tuple[str, ...]:
    """The marks for rows / columns 0, 1, 2, ... (69 of them)."""
    out = []
    for cp in range(0x300, 0x660):
        ch = chr(cp)
        if (cp not in _EXCLUDED and unicodedata.category(ch) == "Mn"
                and unicodedata.combining(ch) == 230 and not unicodedata.decomposition(ch)):
            out.append(ch)
    return tuple(out)


def detect_graphics(env: Mapping[str, str] | None = None) -> str:
    """``"kitty"`` for a terminal that shows kitty placeholders, else ``"halfblock"``."""
    env = os.environ if env is None else env
    forced = env.get("IML_TUI_GRAPHICS", "").strip().lower()
    if forced in MODES:
        return forced
    if env.get("TMUX") or env.get("STY") or env.get("TERM", "").startswith(("screen", "tmux")):
        return "halfblock"
    if (env.get("TERM") == "xterm-kitty" or env.get("KITTY_WINDOW_ID")
            or env.get("TERM_PROGRAM", "").lower() == "ghostty"):
        return "kitty"
    return "halfblock"


def id_colour(image_id: int) -> Color:
    """The 24-bit foreground colour that names image ``image_id`` in placeholder cells."""
    return Color.from_rgb((image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255)


def transmit(image_id: int, rgb: np.ndarray, cols: int, rows: int) -> str:
    """Escape sequences that send ``rgb`` (H, W, 3) uint8 and place it virtually on
    ``cols x rows`` cells (zlib-compressed, base64, in chunks of 4096 characters)."""
    h, w = rgb.shape[:2]
    payload = base64.standard_b64encode(zlib.compress(np.ascontiguousarray(rgb, np.uint8)
                                                      .tobytes())).decode("ascii")
    chunks = [payload[i:i + CHUNK] for i in range(0, len(payload), CHUNK)] or [""]
    head = f"a=T,U=1,f=24,o=z,s={w},v={h},i={image_id},c={cols},r={rows},q=2"
    out = []
    for k, chunk in enumerate(chunks):
        more = 1 if k < len(chunks) - 1 else 0
        keys = f"{head},m={more}" if k == 0 else f"m={more}"
        out.append(f"\x1b_G{keys};{chunk}\x1b\\")
    return "".join(out)


def delete(image_id: int) -> str:
    """Escape sequence that frees image ``image_id`` and its placements."""
    return f"\x1b_Ga=d,d=I,i={image_id},q=2\x1b\\"


def placeholder_row(row: int, cols: int, image_id: int) -> Segment:
    """One row of the placement: the first cell names row and column 0, the rest count on."""
    marks = diacritics()
    text = PLACEHOLDER + marks[row] + marks[0] + PLACEHOLDER * (cols - 1)
    return Segment(text, Style(color=id_colour(image_id)))


def spectrogram_rgb(levels: np.ndarray, cmap: list[str]) -> np.ndarray:
    """(height, width) colour levels -> (height, width, 3) uint8 through ``cmap``."""
    table = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in cmap], dtype=np.uint8)
    return table[np.asarray(levels, dtype=np.int64)]
