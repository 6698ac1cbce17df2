"""The image paths of the spectrogram (textual-image's kitty and sixel widgets) and the
256-colour half-blocks."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import pytest
from textual_image.renderable import tgp
from textual_image.widget import SixelImage, TGPImage
from tui_fakes import FakeSession, RecordingPlayer

from iml_tui.tui.app import LabelApp, make_app
from iml_tui.tui.widgets import graphics
from iml_tui.tui.widgets.spectrogram import _CMAP, GUTTER, SpectrogramView


def _app(graphics: str, notes: Sequence[str] = ()) -> LabelApp:
    """The labelling screen on a fake session, drawing the spectrogram in ``graphics``."""
    return make_app(
        FakeSession(every=100),
        RecordingPlayer(),
        cursor=False,
        audio_thread=False,
        graphics=graphics,
        notes=notes,
    )


def test_detect_asks_the_terminal_only_where_it_may_show_images() -> None:
    true = {"COLORTERM": "truecolor", "TERM": "xterm-256color"}
    asked: list[int] = []

    def probe() -> str:
        asked.append(1)
        return "sixel"

    assert graphics.detect_graphics(true, probe) == "sixel"
    assert graphics.detect_graphics({**true, "TERM": "xterm-kitty"}, probe) == "kitty"
    assert graphics.detect_graphics({**true, "TMUX": "/tmp/t"}, probe) == "halfblock"
    assert graphics.detect_graphics({"TERM": "xterm-256color"}, probe) == "halfblock256"
    assert graphics.detect_graphics({**true, "IML_TUI_GRAPHICS": "sixel"}) == "sixel"
    assert asked == [1]
    # not a terminal (pytest's stdout): textual-image finds neither protocol
    assert graphics.probe_terminal() == "halfblock"
    assert graphics.image_widget("kitty") is TGPImage
    assert graphics.image_widget("sixel") is SixelImage
    with pytest.raises(ValueError, match="halfblock"):
        graphics.image_widget("halfblock")


def test_picture_is_the_colour_map_pixel_for_pixel() -> None:
    levels = np.array([[0, 5, 23], [23, 0, 1]])
    picture = graphics.spectrogram_picture(levels, _CMAP)
    assert picture.size == (3, 2) and picture.mode == "RGB"
    want = [int(_CMAP[5][i : i + 2], 16) for i in (1, 3, 5)]
    assert list(picture.getpixel((1, 0))) == want
    assert np.asarray(picture).shape == (2, 3, 3)


def _messages(sent: list[dict[str, object]], action: str | None) -> list[dict[str, object]]:
    return [m for m in sent if m.get("a") == action]


async def test_kitty_mode_draws_through_textual_image(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tgp, "_send_tgp_message", lambda **kw: sent.append(kw))
    app = _app("kitty")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        spec = app.main.query_one(SpectrogramView)
        picture = spec.query_one(TGPImage)
        width = spec.size.width - GUTTER
        rows = spec._picture_rows
        assert picture.display and rows > 0
        assert picture.region.x == spec.region.x + GUTTER
        assert (picture.region.width, picture.region.height) == (width, rows)
        placed = _messages(sent, "p")
        assert placed and (placed[-1]["c"], placed[-1]["r"]) == (width, rows)
        image_id = placed[-1]["i"]
        assert any(m.get("i") == image_id and m.get("payload") for m in _messages(sent, None))
        # the gutter keeps its frequency labels; the axis is text under the picture
        assert re.search(r"\d", "".join(s.text for s in spec.render_line(0)))
        axis = "".join(s.text for s in spec.render_line(rows))
        assert "0s" in axis and tgp._PLACEHOLDER not in {ord(c) for c in axis}
        spec.cursor = 0.5  # the cursor shows on the axis, not over the image
        await pilot.pause()
        assert spec.render_line(0).text == spec._strips[0].adjust_cell_length(spec.size.width).text
        await pilot.press("enter")  # the next item: a new picture, the old one freed
        await pilot.pause()
        assert any(m.get("I") == image_id for m in _messages(sent, "d"))
        assert len({m["i"] for m in _messages(sent, "p")}) >= 2


async def test_sixel_mode_lays_the_picture_right_of_the_gutter() -> None:
    app = _app("sixel")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        spec = app.main.query_one(SpectrogramView)
        picture = spec.query_one(SixelImage)
        assert picture.display and picture.image is not None
        assert picture.region.x == spec.region.x + GUTTER
        assert picture.region.height == spec._picture_rows > 0
        assert picture.image.size[1] == 8 * spec._picture_rows  # 8 pixel rows a cell row


# --- 256-colour terminals -----------------------------------------------------------------------
def _lightness(number: int) -> float:
    from rich import _palettes

    r, g, b = _palettes.EIGHT_BIT_PALETTE[number]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_colour_system_and_advice() -> None:
    tmux = {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,1,0"}
    assert graphics.colour_system(tmux) == "256"
    assert graphics.colour_system({**tmux, "COLORTERM": "truecolor"}) == "truecolor"
    assert graphics.colour_system({"TERM": "xterm"}) == "16"
    assert (
        graphics.colour_system({"TERM": "xterm", "TEXTUAL_COLOR_SYSTEM": "truecolor"})
        == "truecolor"
    )
    advice = graphics.colour_advice(tmux)
    assert "terminal-overrides" in advice and "COLORTERM=truecolor" in advice
    assert "256 colours" in advice and "TERM=tmux-256color" in advice
    plain = graphics.colour_advice({"TERM": "xterm-256color"})
    assert "COLORTERM=truecolor" in plain and "tmux" not in plain
    assert graphics.colour_advice({**tmux, "COLORTERM": "24bit"}) == ""


def test_palette_256_is_monotonic_and_distinct() -> None:
    pal = graphics.palette_256()
    assert len(pal) >= 10 and len(set(pal)) == len(pal)
    assert all(16 <= n <= 255 for n in pal)
    light = [_lightness(n) for n in pal]
    assert all(b > a + 5 for a, b in itertools.pairwise(light))
    # rich's own mapping of the truecolour map to 256 colours merges levels and goes darker
    # again on the way up: the palette above is what keeps the picture readable
    from rich.color import Color, ColorSystem

    from iml_tui.tui.widgets.spectrogram import _CMAP

    naive = [Color.parse(c).downgrade(ColorSystem.EIGHT_BIT).number for c in _CMAP]
    naive_light = [_lightness(int(n or 0)) for n in dict.fromkeys(naive)]
    assert any(b < a for a, b in itertools.pairwise(naive_light))


def test_dither_averages_to_the_value() -> None:
    k = len(graphics.palette_256())
    values = np.tile(np.linspace(0.0, 1.0, 41), (4, 1))  # (4, 41): a ramp, rows repeated
    values = np.repeat(values, 2, axis=1)  # every value fills 2 x 2 blocks
    idx = graphics.dither_256(values)
    assert idx.min() == 0 and idx.max() == k - 1
    blocks = idx.reshape(2, 2, 41, 2).mean(axis=(1, 3))  # (2, 41) block means
    want = np.linspace(0.0, 1.0, 41) * (k - 1)
    assert np.all(np.abs(blocks - want) <= 0.125 + 1e-9)
    # a value exactly on a palette colour is that colour, undithered
    assert np.all(graphics.dither_256(np.full((3, 3), 3 / (k - 1))) == 3)


async def test_halfblock256_draws_only_palette_colours() -> None:
    from rich.color import ColorType

    app = _app("halfblock256")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        spec = app.main.query_one(SpectrogramView)
        pal = set(graphics.palette_256())
        used: set[int] = set()
        for y in range(spec._image_rows):
            for seg in spec.render_line(y)._segments[1:]:  # after the frequency gutter
                assert seg.text == "▀" * len(seg.text)
                assert seg.style is not None
                for colour in (seg.style.color, seg.style.bgcolor):
                    assert colour is not None and colour.type is ColorType.EIGHT_BIT
                    assert colour.number in pal
                    used.add(int(colour.number))
        assert len(used) >= 6  # a tone over silence uses much of the ramp


async def test_colour_advice_is_shown_on_screen() -> None:
    advice = graphics.colour_advice({"TERM": "tmux-256color", "TMUX": "/tmp/t"})
    app = _app("halfblock256", notes=[advice])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert shown == [advice]
