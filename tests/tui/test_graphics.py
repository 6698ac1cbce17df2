"""The kitty graphics path of the spectrogram: what it sends and what it draws."""

from __future__ import annotations

import base64
import itertools
import re
import unicodedata
import zlib

import numpy as np
import pytest
from tui_fakes import FakeSession, RecordingPlayer

from iml_tui.tui.app import make_app
from iml_tui.tui.widgets import graphics
from iml_tui.tui.widgets.spectrogram import GUTTER, SpectrogramView


def test_row_marks_are_the_protocol_table() -> None:
    marks = graphics.diacritics()
    assert len(marks) == 69
    assert [f"{ord(m):04X}" for m in marks[:6]] == ["0305", "030D", "030E", "0310", "0312", "033D"]
    assert f"{ord(marks[-1]):04X}" == "065E"
    assert all(unicodedata.combining(m) == 230 for m in marks)


def _payloads(sequence: str) -> list[tuple[dict[str, str], str]]:
    out = []
    for keys, data in re.findall(r"\x1b_G([^;\x1b]*);?([^\x1b]*)\x1b\\", sequence):
        out.append((dict(kv.split("=") for kv in keys.split(",")), data))
    return out


def test_transmit_chunks_and_decodes() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, size=(40, 300, 3), dtype=np.uint8)
    parts = _payloads(graphics.transmit(77, rgb, 50, 10))
    assert len(parts) > 1 and all(len(data) <= graphics.CHUNK for _, data in parts)
    head = parts[0][0]
    assert head["a"] == "T" and head["U"] == "1" and head["i"] == "77"
    assert (head["s"], head["v"], head["c"], head["r"]) == ("300", "40", "50", "10")
    assert [keys["m"] for keys, _ in parts] == ["1"] * (len(parts) - 1) + ["0"]
    raw = zlib.decompress(base64.standard_b64decode("".join(d for _, d in parts)))
    assert raw == rgb.tobytes()
    assert graphics.delete(77) == "\x1b_Ga=d,d=I,i=77,q=2\x1b\\"


def test_placeholder_row_names_row_column_and_image() -> None:
    seg = graphics.placeholder_row(3, 5, 0x123456)
    assert seg.text == (
        graphics.PLACEHOLDER
        + graphics.diacritics()[3]
        + graphics.diacritics()[0]
        + graphics.PLACEHOLDER * 4
    )
    assert seg.style is not None and seg.style.color is not None
    assert seg.style.color.triplet == (0x12, 0x34, 0x56)


async def test_kitty_mode_sends_the_picture_and_draws_placeholders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(
        FakeSession(every=100),
        RecordingPlayer(),
        cursor=False,
        audio_thread=False,
        graphics="kitty",
    )
    sent: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        assert app._driver is not None
        monkeypatch.setattr(app._driver, "write", sent.append)
        spec = app.main.query_one(SpectrogramView)
        spec.set_data(spec.data)  # draw again, now that writes are captured
        await pilot.pause()
        parts = [p for p in _payloads("".join(sent)) if p[0].get("a") != "d"]
        assert parts and parts[0][0]["a"] == "T"
        width = spec.size.width - GUTTER
        assert parts[0][0]["c"] == str(width)
        rows = int(parts[0][0]["r"])
        first = "".join(s.text for s in spec.render_line(0))
        assert graphics.PLACEHOLDER in first and first.count(graphics.PLACEHOLDER) == width
        axis = "".join(s.text for s in spec.render_line(rows))
        assert "0s" in axis and graphics.PLACEHOLDER not in axis
        image_id = int(parts[0][0]["i"])
        await pilot.press("enter")  # the next item: a new picture, the old one freed
        await pilot.pause()
        text = "".join(sent)
        assert graphics.delete(image_id) in text
        assert len([p for p in _payloads(text) if p[0].get("a") == "T"]) >= 2


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

    app = make_app(
        FakeSession(every=100),
        RecordingPlayer(),
        cursor=False,
        audio_thread=False,
        graphics="halfblock256",
    )
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
    app = make_app(
        FakeSession(every=100),
        RecordingPlayer(),
        cursor=False,
        audio_thread=False,
        graphics="halfblock256",
        notes=[advice],
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert shown == [advice]
