"""Terminal graphics for the spectrogram: images through ``textual-image`` where the terminal
shows them, half-blocks elsewhere.

Terminals that show images get the picture as one: ``kitty`` (the terminal graphics protocol
with Unicode placeholders: kitty, Ghostty) or ``sixel`` (foot, WezTerm, xterm -ti vt340, ...).
Which one the terminal speaks is asked through ``textual-image`` before Textual starts
(:func:`probe_terminal`); its widgets send and free the image, so nothing here writes escapes.

Everything else (tmux, screen, SSH into another terminal, unknown terminals) gets half-blocks.
Textual (through rich) writes true colour only where ``COLORTERM`` says ``truecolor`` / ``24bit``;
with ``TERM=*-256color`` and no ``COLORTERM`` (tmux's default, many SSH sessions) it would map
each colour to the nearest of the 256, which merges the spectrogram's dark levels into a few
blotches. There the picture is drawn as ``halfblock256``: a palette of xterm-256 colours with
strictly increasing lightness, ordered-dithered (2 x 2 Bayer) to show the steps between them, and
:func:`colour_advice` says how to get true colour. ``IML_TUI_GRAPHICS=halfblock|halfblock256|
kitty|sixel`` overrides the choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from PIL import Image as PILImage
    from textual_image.widget import SixelImage, TGPImage

ImageWidget: TypeAlias = "TGPImage | SixelImage"
"""The ``textual-image`` widgets the image modes draw with."""

MODES = ("halfblock", "halfblock256", "kitty", "sixel")
IMAGE_MODES = ("kitty", "sixel")
"""The modes that send the picture as an image (through ``textual-image``)."""
IMAGE_MAX_CELLS = 297
"""The widest kitty picture in cells (``textual-image``'s placeholder table); wider: half-blocks."""
BAYER2 = np.array([[0.125, 0.625], [0.875, 0.375]])
"""2 x 2 ordered-dither thresholds (pixel row % 2, column % 2)."""


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


def probe_terminal() -> str:
    """Ask the terminal which images it shows, through ``textual-image``: ``"sixel"``,
    ``"kitty"`` (the terminal graphics protocol) or ``"halfblock"`` (neither, or no terminal).

    The question is an escape sequence answered on stdin, so this must run before Textual
    starts (its input thread would take the answer); the answer is kept for the process.
    """
    from textual_image import renderable
    from textual_image.renderable.sixel import Image as SixelRenderable
    from textual_image.renderable.tgp import Image as TGPRenderable

    if renderable.Image is SixelRenderable:
        return "sixel"
    if renderable.Image is TGPRenderable:
        return "kitty"
    return "halfblock"


def detect_graphics(
    env: Mapping[str, str] | None = None, probe: Callable[[], str] | None = None
) -> str:
    """``"kitty"`` or ``"sixel"`` for a true-colour terminal that shows images, ``"halfblock"``
    for other true-colour terminals, ``"halfblock256"`` for 256 colours or fewer.

    ``probe`` asks the terminal (default: :func:`probe_terminal` when ``env`` is the process's
    own environment, none for a given ``env``); kitty and Ghostty are known from the environment.
    """
    if env is None:
        env, probe = os.environ, probe or probe_terminal
    forced = env.get("IML_TUI_GRAPHICS", "").strip().lower()
    if forced in MODES:
        return forced
    if colour_system(env) != "truecolor":
        return "halfblock256"  # images would be drawn in true colour the terminal lacks
    if _in_multiplexer(env):
        return "halfblock"  # tmux and screen do not pass image escapes through
    if (
        env.get("TERM") == "xterm-kitty"
        or env.get("KITTY_WINDOW_ID")
        or env.get("TERM_PROGRAM", "").lower() == "ghostty"
    ):
        return "kitty"
    return probe() if probe is not None else "halfblock"


def image_widget(mode: str) -> type[TGPImage] | type[SixelImage]:
    """The ``textual-image`` widget class that draws pictures in ``mode`` (kitty or sixel).

    Importing ``textual_image.widget`` asks the terminal for its cell size in pixels, so call
    this before Textual starts, once, in a process that will draw images.
    """
    from textual_image.widget import SixelImage, TGPImage

    if mode == "kitty":
        return TGPImage
    if mode == "sixel":
        return SixelImage
    raise ValueError(f"no image widget for graphics mode {mode!r}; use one of {IMAGE_MODES}")


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


def spectrogram_rgb(levels: np.ndarray, cmap: list[str]) -> np.ndarray:
    """(height, width) colour levels -> (height, width, 3) uint8 through ``cmap``."""
    table = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in cmap], dtype=np.uint8)
    return table[np.asarray(levels, dtype=np.int64)]


def spectrogram_picture(levels: np.ndarray, cmap: list[str]) -> PILImage.Image:
    """(height, width) colour levels -> an RGB picture of that many pixels through ``cmap``."""
    from PIL import Image

    return Image.fromarray(spectrogram_rgb(levels, cmap), "RGB")
