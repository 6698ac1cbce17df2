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
