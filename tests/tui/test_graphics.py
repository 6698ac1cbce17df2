"""The kitty graphics path of the spectrogram: what it sends and what it draws."""

from __future__ import annotations

import base64
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
    assert [f"{ord(m):04X}" for m in marks[:6]] == ["0305", "030D", "030E", "0310", "0312",
                                                     "033D"]
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
    assert seg.text == (graphics.PLACEHOLDER + graphics.diacritics()[3]
                        + graphics.diacritics()[0] + graphics.PLACEHOLDER * 4)
    assert seg.style is not None and seg.style.color is not None
    assert seg.style.color.triplet == (0x12, 0x34, 0x56)


async def test_kitty_mode_sends_the_picture_and_draws_placeholders(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(FakeSession(every=100), RecordingPlayer(), cursor=False, audio_thread=False,
                   graphics="kitty")
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
