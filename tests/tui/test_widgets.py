"""The TUI's drawing helpers and key handling, without a session."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from iml_tui.errors import UserError
from iml_tui.tui.keys import KEY_IDS, check_keymap, display_key, effective_keys, load_keymap
from iml_tui.tui.widgets.graphics import detect_graphics
from iml_tui.tui.widgets.prediction import bar, confidence_of
from iml_tui.tui.widgets.spectrogram import (
    LEVELS,
    colormap,
    format_hz,
    pixel_levels,
    resample_columns,
    spectrogram_data,
    time_ticks,
)


def test_resample_columns_mean_and_max() -> None:
    x = np.arange(8, dtype=float).reshape(8, 1)
    assert resample_columns(x, 4)[:, 0].tolist() == [0.5, 2.5, 4.5, 6.5]
    assert resample_columns(x, 4, reduce="max")[:, 0].tolist() == [1, 3, 5, 7]
    # upsampling repeats the nearest source row
    assert resample_columns(np.array([[1.0], [3.0]]), 4)[:, 0].tolist() == [1, 1, 3, 3]


def test_pixel_levels_puts_high_bands_on_top() -> None:
    spec = np.full((10, 16), -80.0)
    spec[:, -1] = 0.0  # energy only in the top band
    levels = pixel_levels(spec, 5, 8)
    assert levels.shape == (8, 5)
    assert levels[0].min() == LEVELS - 1 and levels[-1].max() == 0


def test_colormap_and_labels() -> None:
    cmap = colormap(LEVELS)
    assert len(cmap) == LEVELS and len(set(cmap)) == LEVELS
    assert [format_hz(f) for f in (440, 2500, 14000)] == ["440", "2.5k", "14k"]
    ticks = time_ticks(10.0, 70)
    assert ticks[0] == (0, "0s") and all(b[0] - a[0] >= 7 for a, b in itertools.pairwise(ticks))


def test_spectrogram_data_of_a_tone() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    data = spectrogram_data(np.sin(2 * np.pi * 1000 * t), sr, class_names=["a"])
    assert data.duration == pytest.approx(1.0)
    assert data.spec.shape[1] == data.band_hz.shape[0] == 64
    peak = data.band_hz[int(np.argmax(data.spec.mean(axis=0)))]
    assert 800 < peak < 1250


def test_detect_graphics() -> None:
    true = {"COLORTERM": "truecolor"}
    assert detect_graphics(true) == "halfblock"
    assert detect_graphics({**true, "TERM": "xterm-256color"}) == "halfblock"
    assert detect_graphics({**true, "TERM": "xterm-kitty"}) == "kitty"
    assert detect_graphics({**true, "TERM_PROGRAM": "ghostty"}) == "kitty"
    assert detect_graphics({**true, "TERM": "xterm-kitty", "TMUX": "/tmp/x"}) == "halfblock"
    # without COLORTERM, Textual writes 256 colours (or 16): dithered, and no kitty ids
    assert detect_graphics({}) == "halfblock256"
    assert detect_graphics({"TERM": "xterm-256color"}) == "halfblock256"
    assert detect_graphics({"TERM": "xterm-kitty"}) == "halfblock256"
    assert detect_graphics({"TERM": "tmux-256color", "TMUX": "/tmp/x"}) == "halfblock256"
    assert detect_graphics({"IML_TUI_GRAPHICS": "halfblock", "TERM": "xterm-kitty"}) == "halfblock"
    assert detect_graphics({"IML_TUI_GRAPHICS": "kitty"}) == "kitty"


def test_bars_and_confidence() -> None:
    assert bar(0.5, 4) == "██  " and bar(1.0, 3) == "███" and bar(0.0, 2) == "  "
    assert confidence_of(np.array([0.9, 0.2]), True) == pytest.approx(0.85)
    assert confidence_of(np.array([0.3, 0.7]), False) == pytest.approx(0.7)
    assert confidence_of(None, True) is None


def test_keymap_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  label.submit: ctrl+j\n  label.class_1: a, 1\n")
    keymap = load_keymap(path)
    assert keymap == {"label.submit": "ctrl+j", "label.class_1": "a,1"}
    keys = effective_keys(keymap)
    assert keys["label.submit"] == "ctrl+j" and keys["label.skip"] == "s"
    assert set(keys) == KEY_IDS
    assert display_key("0,n") == "0 / n" and display_key("question_mark") == "?"
    path.write_text("keys:\n  label.sumbit: x\n")
    with pytest.raises(UserError, match=r"label\.sumbit"):
        load_keymap(path)
    with pytest.raises(UserError, match="needs a key"):
        check_keymap({"label.skip": ""}, "cfg")


async def test_probability_strip_names_the_classes_it_leaves_out() -> None:
    from textual.app import App, ComposeResult

    from iml_tui.tui.widgets.spectrogram import SpectrogramData, SpectrogramView

    names = ("bird", "frog", "insect", "bat", "cow", "dog")
    peaks = np.array([0.9, 0.1, 0.8, 0.3, 0.05, 0.7])  # ranks: bird, insect, dog | bat, frog, cow
    probs = np.tile(peaks, (10, 1))

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield SpectrogramView(max_strip_rows=4)

    def lines(view: SpectrogramView) -> list[str]:
        return [view.render_line(y).text for y in range(view.size.height)]

    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(SpectrogramView)
        spec = np.zeros((20, 16))
        band_hz = np.linspace(100, 8000, 16)
        view.set_data(SpectrogramData(spec, band_hz, 2.0, probs, names))
        await pilot.pause()
        text = lines(view)
        strips = [t[:5].strip() for t in text[view._image_rows + 1 :] if t.strip()]
        assert strips == ["bird", "inse", "dog", "more"]  # 3 drawn in class order, then the note
        assert any("3 not drawn: bat 0.30, frog 0.10, cow 0.05" in t for t in text)
        # every class fits: no note
        view.set_data(SpectrogramData(spec, band_hz, 2.0, probs[:, :3], names[:3]))
        await pilot.pause()
        assert not any("not drawn" in t for t in lines(view))
        assert [t[:5].strip() for t in lines(view)[view._image_rows + 1 :] if t.strip()] == [
            "bird",
            "frog",
            "inse",
        ]


def test_map_is_shown_in_percent_everywhere() -> None:
    from iml_tui.engine.metrics import map_text, score_text
    from iml_tui.tui.views import ModelView
    from iml_tui.tui.widgets.status import ModelStatus

    assert map_text(0.45312) == "45.3%" and map_text(1.0) == "100.0%"
    assert score_text("valid mAP", 0.5) == "50.0%"
    assert score_text("mAP estimated from 4 labels, ±2.0%", 0.25) == "25.0%"
    assert score_text("pre-DCF", 0.25) == "0.250"  # not an mAP: as it is
    w = ModelStatus()
    w.model = ModelView(3, 0.4567, "valid mAP", None, "", "", ())
    assert "valid mAP 45.7%" in w.render().plain


async def test_learning_curve_in_percent() -> None:
    from textual.app import App, ComposeResult

    from iml_tui.tui.widgets.curve import LearningCurve

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield LearningCurve(score_name="valid mAP")

    async with One().run_test(size=(60, 20)) as pilot:
        curve = pilot.app.query_one(LearningCurve)
        curve.set_points([(4, 0.25), (8, 0.5)])
        await pilot.pause()
        text = "\n".join(curve.render_line(y).text for y in range(curve.size.height))
        assert "valid mAP (%) vs labels" in text
        assert "100" in text and "50" in text  # the axis in percent
        curve.set_points([(4, 0.25)], score_name="pre-DCF")
        await pilot.pause()
        text = "\n".join(curve.render_line(y).text for y in range(curve.size.height))
        assert "pre-DCF vs labels" in text and "(%)" not in text
