"""Drive the labelling screen's event marking through the Pilot, as an annotator would.

``mark_event`` picks the class with its digit key and drags the mouse over the spectrogram;
``mark_event_by_keys`` clicks the cursor to the onset, presses ``[``, clicks it to the offset and
presses ``]``. Both act at the resolution of one spectrogram column (``column_span``).
"""

from __future__ import annotations

import math
from typing import Any

from iml_tui.tui.widgets.prediction import PredictionPanel
from iml_tui.tui.widgets.spectrogram import GUTTER, SpectrogramView

PICTURE_ROW = 1  # a row of the picture (any will do: the time comes from x)


def _spec(pilot: Any) -> SpectrogramView:
    return pilot.app.main.query_one(SpectrogramView)


def column_span(spec: SpectrogramView, onset_s: float, offset_s: float) -> tuple[int, int]:
    """The picture columns a..b (inclusive) whose cells cover [onset_s, offset_s)."""
    data = spec.data
    assert data is not None and data.duration > 0, "no clip on screen"
    width = spec.size.width - GUTTER
    a = min(max(math.floor(onset_s / data.duration * width + 1e-9), 0), width - 1)
    b = min(max(math.ceil(offset_s / data.duration * width - 1e-9) - 1, a), width - 1)
    return a, b


async def choose_class(pilot: Any, class_index: int) -> None:
    """Make ``class_index`` the marking class: its digit ticks it (twice when already ticked,
    so that it stays ticked and is the last one ticked)."""
    key = str(class_index + 1)
    ticked = pilot.app.main.query_one(PredictionPanel).selected
    await pilot.press(*([key, key] if class_index in ticked else [key]))


async def mark_event(pilot: Any, onset_s: float, offset_s: float, class_index: int) -> None:
    """Mark an event of ``class_index`` from ``onset_s`` to ``offset_s`` (seconds of the clip)
    with a mouse drag over the spectrogram (column resolution)."""
    await choose_class(pilot, class_index)
    spec = _spec(pilot)
    a, b = column_span(spec, onset_s, offset_s)
    await pilot.mouse_down(spec, offset=(GUTTER + a, PICTURE_ROW))
    await pilot.hover(spec, offset=(GUTTER + b, PICTURE_ROW))
    await pilot.mouse_up(spec, offset=(GUTTER + b, PICTURE_ROW))
    await pilot.pause()


async def click_time(pilot: Any, t: float) -> None:
    """Click the spectrogram where ``t`` seconds starts its column (moves the cursor)."""
    spec = _spec(pilot)
    a, _ = column_span(spec, t, t)
    await pilot.click(spec, offset=(GUTTER + a, PICTURE_ROW))
    await pilot.pause()


async def mark_event_by_keys(pilot: Any, onset_s: float, offset_s: float, class_index: int) -> None:
    """Mark an event with the keys: click to the onset, ``[``, click to the offset, ``]``."""
    await choose_class(pilot, class_index)
    await click_time(pilot, onset_s)
    await pilot.press("left_square_bracket")
    await click_time(pilot, offset_s)
    await pilot.press("right_square_bracket")
    await pilot.pause()
