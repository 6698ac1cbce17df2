"""Terminal graphics for the spectrogram: the kitty graphics protocol, where the terminal has it.

Kitty (and Ghostty) show an image through Unicode placeholders: the picture is sent once with an
escape sequence and a *virtual placement* of ``cols x rows`` cells; the cells themselves are the
private-use character U+10EEEE, whose foreground colour carries the image id and whose combining
marks carry the row and column. To Textual they are ordinary text, so the picture scrolls, clips
and redraws with the layout. Each row starts with row and column marks; the following cells of
the row carry none and the terminal counts the columns on.

Everything else (tmux, screen, SSH into another terminal, unknown terminals) gets half-blocks.
Textual (through rich) writes true colour only where ``COLORTERM`` says ``truecolor`` / ``24bit``;
with ``TERM=*-256color`` and no ``COLORTERM`` (tmux's default, many SSH sessions) it would map
each colour to the nearest of the 256, which merges the spectrogram's dark levels into a few
blotches. There the picture is drawn as ``halfblock256``: a palette of xterm-256 colours with
strictly increasing lightness, ordered-dithered (2 x 2 Bayer) to show the steps between them, and
:func:`colour_advice` says how to get true colour. ``IML_TUI_GRAPHICS=halfblock|halfblock256|
kitty`` overrides the choice. Sixel is not drawn: Textual cannot place sixel data inside its
layout.
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
MODES = ("halfblock", "halfblock256", "kitty")
BAYER2 = np.array([[0.125, 0.625], [0.875, 0.375]])
"""2 x 2 ordered-dither thresholds (pixel row % 2, column % 2)."""

# the protocol's row / column marks: combining characters of class 230 without decomposition,
# in code point order, minus a few that normalisation could fuse with a base letter (the kitty
# protocol's table, derived from Unicode 6.0). Below U+0660 that list is the same in every later
# Unicode version, so it is derived here from unicodedata; 69 rows are plenty for a spectrogram.
_EXCLUDED = frozenset(
    (
        0x300,
        0x301,
        0x302,
        0x303,
        0x304,
        0x306,
        0x307,
        0x308,
        0x309,
        0x30A,
        0x30B,
        0x30C,
        0x30F,
        0x311,
        0x313,
        0x314,
        0x342,
        0x653,
        0x654,
    )
)


@lru_cache(maxsize=1)
def diacritics() -> tuple[str, ...]:
    """The marks for rows / columns 0, 1, 2, ... (69 of them)."""
    out = []
    for cp in range(0x300, 0x660):
        ch = chr(cp)
        if (
            cp not in _EXCLUDED
            and unicodedata.category(ch) == "Mn"
            and unicodedata.combining(ch) == 230
            and not unicodedata.decomposition(ch)
        ):
            out.append(ch)
    return tuple(out)


def colour_system(env: Mapping[str, str] | None = None) -> str:
    """What Textual will write: "truecolor", "256" or "16" (rich's rules: ``COLORTERM``
    truecolor / 24bit, else the ``TERM`` suffix; ``TEXTUAL_COLOR_SYSTEM`` overrides)."""
    env = os.environ if env is None else env
    forced = env.get("TEXTUAL_COLOR_SYSTEM", "auto").strip().lower()
    if forced in ("truecolor", "256", "standard", "windows"):
        return {"standard": "16", "windows": "16"}.get(forced, forced)
    if env.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        return "truecolor"
    suffix = env.get("TERM", "").strip().lower().rpartition("-")[2]
    return "256" if suffix in ("256color", "kitty") else "16"


def _in_multiplexer(env: Mapping[str, str]) -> bool:
    return bool(
        env.get("TMUX") or env.get("STY") or env.get("TERM", "").startswith(("screen", "tmux"))
    )


def detect_graphics(env: Mapping[str, str] | None = None) -> str:
    """``"kitty"`` for a true-colour terminal that shows kitty placeholders, ``"halfblock"``
    for other true-colour terminals, ``"halfblock256"`` for 256 colours or fewer."""
    env = os.environ if env is None else env
    forced = env.get("IML_TUI_GRAPHICS", "").strip().lower()
    if forced in MODES:
        return forced
    if colour_system(env) != "truecolor":
        return "halfblock256"  # kitty ids travel as 24-bit colours, so no kitty either
    if _in_multiplexer(env):
        return "halfblock"
    if (
        env.get("TERM") == "xterm-kitty"
        or env.get("KITTY_WINDOW_ID")
        or env.get("TERM_PROGRAM", "").lower() == "ghostty"
    ):
        return "kitty"
    return "halfblock"


def colour_advice(env: Mapping[str, str] | None = None) -> str:
    """One line on how to get true colour, or "" where the terminal has it."""
    env = os.environ if env is None else env
    system = colour_system(env)
    if system == "truecolor" or env.get("TEXTUAL_COLOR_SYSTEM", "auto") not in ("auto", ""):
        return ""
    term = env.get("TERM", "") or "unset"
    head = (
        f"{system} colours (TERM={term}, COLORTERM unset): the spectrogram is dithered. "
        "For true colour"
    )
    if _in_multiplexer(env):
        return (
            f"{head}, add to ~/.tmux.conf: set -as terminal-overrides ',*:Tc' (tmux 3.2+: "
            "set -as terminal-features ',*:RGB'), restart tmux, and export "
            "COLORTERM=truecolor in the shell that runs iml-tui"
        )
    return (
        f"{head}, if your terminal has it (most do): export COLORTERM=truecolor before "
        "iml-tui (over ssh: SendEnv COLORTERM, or set it on the server)"
    )


@lru_cache(maxsize=1)
def palette_256() -> tuple[int, ...]:
    """xterm-256 colour numbers (16-255) along the spectrogram's colour map, lightness strictly
    increasing: each level of a fine viridis ramp goes to its nearest palette colour (weighted
    RGB distance), and a colour is kept only when it is at least 5 (of 255) lighter than the
    last one kept."""
    from rich import _palettes

    from iml_tui.tui.widgets.spectrogram import colormap

    numbers = np.arange(16, 256)
    pal = np.array([tuple(_palettes.EIGHT_BIT_PALETTE[int(i)]) for i in numbers], float)
    ramp = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colormap(256)], float)
    weights = np.array([0.3, 0.59, 0.11])
    nearest = (((ramp[:, None, :] - pal[None]) ** 2) * weights).sum(-1).argmin(axis=1)
    lightness = pal @ np.array([0.2126, 0.7152, 0.0722])
    out: list[int] = []
    last = -1.0
    for i in nearest.tolist():
        if lightness[i] > last + 5.0:
            out.append(int(numbers[i]))
            last = float(lightness[i])
    return tuple(out)


def dither_256(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W) indices into :func:`palette_256`, 2 x 2 ordered
    dither between the two nearest colours (a 2 x 2 block averages to within 1/8 of a palette
    step of the value)."""
    k = len(palette_256())
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (k - 1)
    lo = np.floor(v)
    h, w = v.shape
    thresholds = np.tile(BAYER2, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    return np.minimum(lo + ((v - lo) > thresholds), k - 1).astype(np.int64)


def id_colour(image_id: int) -> Color:
    """The 24-bit foreground colour that names image ``image_id`` in placeholder cells."""
    return Color.from_rgb((image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255)


def transmit(image_id: int, rgb: np.ndarray, cols: int, rows: int) -> str:
    """Escape sequences that send ``rgb`` (H, W, 3) uint8 and place it virtually on
    ``cols x rows`` cells (zlib-compressed, base64, in chunks of 4096 characters)."""
    h, w = rgb.shape[:2]
    payload = base64.standard_b64encode(
        zlib.compress(np.ascontiguousarray(rgb, np.uint8).tobytes())
    ).decode("ascii")
    chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)] or [""]
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
    table = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in cmap], dtype=np.uint8)
    return table[np.asarray(levels, dtype=np.int64)]
