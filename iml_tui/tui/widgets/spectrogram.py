"""The spectrogram: half-block truecolor cells, axes, frame probabilities and playback cursor.

Each terminal cell is "▀" with its foreground the upper pixel and its background the lower one,
so a W x H cell area shows W x 2H pixels. Colours are quantised to :data:`LEVELS` steps of a
viridis-like map, which bounds the number of distinct styles (fast to render, small snapshots).
Below the picture: a row of the event extents the annotator marked (``[━━]`` in the class's
colour; a pending onset as ``[``), a time axis, then one sparkline row per class with the model's
frame-level probabilities resampled to the same columns, so a detection lines up with what it
detects. The mouse marks extents: a drag over the picture posts :class:`SpectrogramView.Dragged`
(a drag that starts on an extent's first or last column posts :class:`SpectrogramView.EdgeMoved`
instead), a click without moving posts :class:`SpectrogramView.Clicked`. Column ``c`` of ``w``
starts at ``c x duration / w`` seconds; a drag over columns a..b covers [a, b + 1) columns.

Where the terminal shows images (``kitty`` or ``sixel``, see
:func:`~iml_tui.tui.widgets.graphics.detect_graphics`) the picture is a ``textual-image`` widget
laid over the cells right of the frequency gutter instead; the axes, the strip and the cursor
stay text. In a 256-colour terminal (``halfblock256``) the cells use xterm-256 colours of
strictly increasing lightness, ordered-dithered (see ``widgets.graphics``). Half-blocks are the
default and what the tests draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from iml_tui.audio.framing import frames
from iml_tui.tui.widgets import graphics
from iml_tui.tui.widgets.graphics import ImageWidget

LEVELS = 24
HALF = "▀"
SPARK = " ▁▂▃▄▅▆▇█"
GUTTER = 5
DYNAMIC_RANGE_DB = 80.0

_ANCHORS = np.array(
    [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (181, 222, 43),
        (253, 231, 37),
    ],
    dtype=np.float64,
)
CLASS_COLOURS = (
    "#ff6b6b",
    "#4dabf7",
    "#ffd43b",
    "#69db7c",
    "#da77f2",
    "#ffa94d",
    "#3bc9db",
    "#f783ac",
    "#a9e34b",
)
CURSOR_COLOUR = "#ffffff"
PENDING_COLOUR = "#ffffff"


@dataclass(frozen=True)
class Mark:
    """An extent drawn on the events row: journal id, onset and offset (s), class index."""

    id: int
    onset: float
    offset: float
    cls: int


AXIS_STYLE = Style(color="#9a9a9a")


def colormap(levels: int = LEVELS) -> list[str]:
    """``levels`` hex colours from dark purple to yellow (a viridis approximation)."""
    pos = np.linspace(0, len(_ANCHORS) - 1, levels)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(_ANCHORS) - 1)
    frac = (pos - lo)[:, None]
    rgb = np.rint(_ANCHORS[lo] * (1 - frac) + _ANCHORS[hi] * frac).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]


_CMAP = colormap()


@dataclass(frozen=True)
class SpectrogramData:
    """What the widget draws.

    ``spec`` is (frames, bands) in dB, band 0 the lowest; ``band_hz`` (bands,) the centre
    frequency of each band; ``frame_probs`` (T, C) the model's frame-level probabilities over
    the same ``duration`` seconds (any T), or None before a model exists.
    """

    spec: np.ndarray
    band_hz: np.ndarray
    duration: float
    frame_probs: np.ndarray | None = None
    class_names: tuple[str, ...] = ()


def resample_columns(x: np.ndarray, width: int, reduce: str = "mean") -> np.ndarray:
    """(n, ...) -> (width, ...): each output column pools its share of the input rows."""
    n = x.shape[0]
    if n == 0 or width <= 0:
        return np.zeros((max(width, 0), *x.shape[1:]), dtype=np.float64)
    edges = np.linspace(0, n, width + 1)
    starts = np.minimum(np.floor(edges[:-1]).astype(int), n - 1)
    ends = np.maximum(np.ceil(edges[1:]).astype(int), starts + 1)
    if reduce == "max":
        return np.stack([x[s:e].max(axis=0) for s, e in zip(starts, ends, strict=True)])
    csum = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0, dtype=np.float64)])
    counts = (ends - starts).reshape(-1, *([1] * (x.ndim - 1)))
    return np.asarray((csum[ends] - csum[starts]) / counts)


def pixel_values(spec: np.ndarray, width: int, height_px: int) -> np.ndarray:
    """(frames, bands) dB -> (height_px, width) brightness in [0, 1] over the top
    :data:`DYNAMIC_RANGE_DB`, highest frequency on top."""
    cols = resample_columns(np.asarray(spec, dtype=np.float64), width)  # (width, bands)
    bands = cols.shape[1]
    if bands == 0 or height_px <= 0:
        return np.zeros((max(height_px, 0), width), dtype=np.float64)
    pos = np.linspace(bands - 1, 0, height_px)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, bands - 1)
    frac = pos - lo
    img = cols[:, lo] * (1 - frac) + cols[:, hi] * frac  # (width, height_px)
    top = float(np.max(img)) if img.size else 0.0
    scaled = (img - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB
    return np.ascontiguousarray(np.clip(scaled, 0.0, 1.0).T)


def pixel_levels(spec: np.ndarray, width: int, height_px: int) -> np.ndarray:
    """(frames, bands) dB -> (height_px, width) colour levels, highest frequency on top."""
    values = pixel_values(spec, width, height_px)
    return np.rint(values * (LEVELS - 1)).astype(np.int64)


def cell_codes(spec: np.ndarray, width: int, height_px: int, mode: str) -> np.ndarray:
    """(height_px, width) colour numbers: levels of :data:`_CMAP` (truecolor), or dithered
    indices into :func:`~iml_tui.tui.widgets.graphics.palette_256` (``halfblock256``)."""
    if mode == "halfblock256":
        return graphics.dither_256(pixel_values(spec, width, height_px))
    return pixel_levels(spec, width, height_px)


def format_hz(hz: float) -> str:
    """A frequency label that fits the gutter: 440, 2.5k, 14k."""
    if hz < 1000:
        return f"{hz:.0f}"
    k = hz / 1000
    return f"{k:.1f}k" if k < 10 else f"{k:.0f}k"


def time_ticks(duration: float, width: int, min_gap: int = 7) -> list[tuple[int, str]]:
    """(column, label) pairs for a time axis ``width`` columns wide over ``duration`` s."""
    if duration <= 0 or width <= 0:
        return []
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300):
        if step / duration * width >= min_gap:
            break
    ticks = []
    n = math.floor(duration / step + 1e-9)
    for i in range(n + 1):
        t = i * step
        col = int(t / duration * width)
        label = f"{t:g}s"
        if col + len(label) <= width:
            ticks.append((col, label))
    return ticks


def palette_colours(mode: str) -> list[Color]:
    """The colours that cell codes of ``mode`` index (see :func:`cell_codes`)."""
    if mode == "halfblock256":
        return [Color.from_ansi(n) for n in graphics.palette_256()]
    return [Color.parse(c) for c in _CMAP]


class SpectrogramView(Widget):
    """Spectrogram with frequency / time axes, probability strip and playback cursor."""

    DEFAULT_CSS = """
    SpectrogramView { height: 1fr; min-height: 8; }
    """

    cursor: reactive[float | None] = reactive(None, layout=False)
    """Playback position in seconds, or None when nothing plays."""

    class Clicked(Message):
        """A click (no drag) on the picture at ``time`` seconds."""

        def __init__(self, time: float) -> None:
            super().__init__()
            self.time = time

    class Dragged(Message):
        """A drag over the picture: a new extent [onset, offset) seconds."""

        def __init__(self, onset: float, offset: float) -> None:
            super().__init__()
            self.onset = onset
            self.offset = offset

    class ExtentMoved(Message):
        """A drag from an extent's edge (that edge moves), or from inside it on the events row
        (the whole extent moves, its length kept): extent ``mark_id`` gets [onset, offset)."""

        def __init__(self, mark_id: int, onset: float, offset: float) -> None:
            super().__init__()
            self.mark_id = mark_id
            self.onset = onset
            self.offset = offset

    def __init__(
        self,
        *,
        max_strip_rows: int = 4,
        graphics: str = "halfblock",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_strip_rows = max_strip_rows
        self.graphics = graphics
        self._picture: ImageWidget | None = None
        self._picture_rows = 0
        self._data: SpectrogramData | None = None
        self._rows: list[list[Segment]] = []
        self._strips: list[Strip] = []
        self._image_rows = 0
        self._rows_size: Size | None = None
        self._styles: dict[tuple[int, int], Style] = {}
        self._colours = palette_colours(graphics)
        self._cursor_col: int | None = None
        self._marks: tuple[Mark, ...] = ()
        self._pending: float | None = None
        self._drag: tuple[int, int, Mark | None, str] | None = None  # start, now, edge of
        self._marks_at = -1  # the events row's index in the built rows (-1: none)

    def compose(self) -> ComposeResult:
        """In an image mode, the ``textual-image`` widget that shows the picture."""
        if self.graphics in graphics.IMAGE_MODES:
            self._picture = graphics.image_widget(self.graphics)(id="picture")
            self._picture.display = False
            yield self._picture

    @property
    def data(self) -> SpectrogramData | None:
        """What is drawn now."""
        return self._data

    def set_data(self, data: SpectrogramData | None) -> None:
        """Show a new clip (or nothing); resets the cursor."""
        self._data = data
        self._rows_size = None
        self.cursor = None
        self.refresh()

    @property
    def marks(self) -> tuple[Mark, ...]:
        """The extents drawn now."""
        return self._marks

    @property
    def events_row(self) -> int | None:
        """The widget row that draws the extents (None while there is none)."""
        return self._marks_at if self._marks_at >= 0 else None

    def set_marks(self, marks: Sequence[Mark], pending: float | None = None) -> None:
        """Draw ``marks`` (and a pending onset at ``pending`` s) on the events row."""
        marks = tuple(marks)
        if marks == self._marks and pending == self._pending:
            return
        self._marks, self._pending = marks, pending
        self._sync_marks_row()

    def _has_marks_row(self) -> bool:
        moved = self._drag is not None and self._drag[0] != self._drag[1]
        return bool(self._marks) or self._pending is not None or moved

    def _sync_marks_row(self) -> None:
        """Redraw the events row, or the whole layout when the row comes or goes."""
        if self._rows_size is not None and self._has_marks_row() == (self._marks_at >= 0):
            self._replace_marks_row()
        else:
            self._rows_size = None
        self.refresh()

    def time_of(self, col: int) -> float:
        """Seconds where picture column ``col`` starts (clamped to the clip)."""
        data = self._data
        width = self._image_width()
        if data is None or width == 0:
            return 0.0
        return min(max(col, 0), width) * data.duration / width

    def column_of(self, t: float) -> int | None:
        """The picture column holding time ``t`` s (None without a picture)."""
        return self._column(t)

    def set_frame_probs(self, frame_probs: np.ndarray | None) -> None:
        """Replace the probability strip (a new model predicted the same clip)."""
        if self._data is None:
            return
        self._data = SpectrogramData(
            self._data.spec,
            self._data.band_hz,
            self._data.duration,
            frame_probs,
            self._data.class_names,
        )
        self._rows_size = None
        self.refresh()

    # --- geometry -------------------------------------------------------------------------

    def _strip_rows(self, height: int) -> int:
        data = self._data
        if data is None or data.frame_probs is None or data.frame_probs.size == 0:
            return 0
        c = data.frame_probs.shape[1]
        return max(0, min(c, self.max_strip_rows, height - 4))

    def _image_width(self) -> int:
        return max(self.size.width - GUTTER, 0)

    def watch_cursor(self, old: float | None, new: float | None) -> None:
        col = self._column(new)
        if col != self._cursor_col:
            self._cursor_col = col
            self.refresh()

    def _column(self, t: float | None) -> int | None:
        data = self._data
        width = self._image_width()
        if t is None or data is None or data.duration <= 0 or width == 0:
            return None
        return min(max(int(t / data.duration * width), 0), width - 1)

    # --- drawing --------------------------------------------------------------------------

    def _style(self, top: int, bottom: int) -> Style:
        key = (top, bottom)
        style = self._styles.get(key)
        if style is None:
            cursor = Color.parse(CURSOR_COLOUR)
            fg = self._colours[top] if top >= 0 else cursor
            bg = self._colours[bottom] if bottom >= 0 else cursor
            style = self._styles[key] = Style(color=fg, bgcolor=bg)
        return style

    def _build_rows(self) -> None:
        size = self.size
        self._rows_size = size
        self._rows = []
        self._image_rows = 0
        self._marks_at = -1
        self._picture_rows = 0
        if self._picture is not None:
            self._picture.display = False  # shown again below when there is a picture to show
        data = self._data
        width = self._image_width()
        if data is None or width == 0 or size.height == 0:
            return
        n_strip = self._strip_rows(size.height)
        marks_row = int(self._has_marks_row())
        img_rows = max(size.height - 1 - marks_row - n_strip, 0)
        self._image_rows = img_rows
        labels = self._freq_labels(data.band_hz, img_rows)
        if self._picture is not None and img_rows > 0 and width <= graphics.IMAGE_MAX_CELLS:
            self._show_picture(self._picture, data, width, img_rows, labels)
            self._picture_rows = img_rows
            self._finish_rows(data, width, n_strip)
            return
        n_colours = len(self._colours)
        levels = cell_codes(data.spec, width, 2 * img_rows, self.graphics)
        pairs = levels[0::2] * n_colours + levels[1::2]  # (img_rows, width): one code per cell
        for r in range(img_rows):
            row = [Segment(labels.get(r, "").rjust(GUTTER - 1) + " ", AXIS_STYLE)]
            codes = pairs[r]
            cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
            starts = [0, *cuts.tolist()]
            ends = [*cuts.tolist(), width]
            for a, b in zip(starts, ends, strict=True):
                top, bottom = divmod(int(codes[a]), n_colours)
                row.append(Segment(HALF * (b - a), self._style(top, bottom)))
            self._rows.append(row)
        self._finish_rows(data, width, n_strip)

    def _finish_rows(self, data: SpectrogramData, width: int, n_strip: int) -> None:
        """The events row (when there are extents), the time axis and the probability strip
        under the picture."""
        self._marks_at = len(self._rows) if self._has_marks_row() else -1
        if self._marks_at >= 0:
            self._rows.append(self._marks_row(data.duration, width))
        self._rows.append(self._time_axis(data.duration, width))
        if n_strip and data.frame_probs is not None:
            self._rows.extend(self._strip(data, width, n_strip))

    def _show_picture(
        self,
        picture: ImageWidget,
        data: SpectrogramData,
        width: int,
        img_rows: int,
        labels: dict[int, str],
    ) -> None:
        """An image mode: the picture widget over ``width x img_rows`` cells right of the gutter
        (8 x 8 pixels a cell, fewer across where the clip has fewer frames); gutter rows."""
        frames = data.spec.shape[0]
        levels = pixel_levels(data.spec, max(min(frames, 8 * width), 1), 8 * img_rows)
        picture.styles.width = width
        picture.styles.height = img_rows
        picture.styles.margin = (0, 0, 0, GUTTER)
        picture.display = True
        picture.image = graphics.spectrogram_picture(levels, _CMAP)
        for r in range(img_rows):
            self._rows.append([Segment(labels.get(r, "").rjust(GUTTER - 1) + " ", AXIS_STYLE)])

    def on_unmount(self) -> None:
        """Free the terminal's copy of the picture."""
        if self._picture is not None:
            self._picture.image = None

    def _freq_labels(self, band_hz: np.ndarray, img_rows: int) -> dict[int, str]:
        if img_rows == 0 or band_hz.size == 0:
            return {}
        every = 3 if img_rows >= 9 else 2
        out = {}
        for r in range(0, img_rows, every):
            frac = 1 - (2 * r + 1) / (2 * img_rows)  # cell centre, 1 = top band
            hz = float(np.interp(frac * (band_hz.size - 1), np.arange(band_hz.size), band_hz))
            out[r] = format_hz(hz)
        return out

    def _marks_row(self, duration: float, width: int) -> list[Segment]:
        """``[━━]`` per extent in its class's colour; the pending onset or drag in white."""
        chars = [" "] * width
        colours: list[str | None] = [None] * width
        if duration <= 0 or width == 0:
            return [Segment(" " * GUTTER, AXIS_STYLE), Segment(" " * width)]

        def span(a: int, b: int, colour: str) -> None:
            for c in range(a, b + 1):
                chars[c] = "[" if c == a else "]" if c == b else "━"
                colours[c] = colour

        for m in self._marks:
            a, b = self._mark_columns(m)
            if a >= 0:
                span(a, b, CLASS_COLOURS[m.cls % len(CLASS_COLOURS)])
        if self._drag is not None and self._drag[3] == "whole" and self._drag[2] is not None:
            a, b = self._mark_columns(self._drag[2])
            shift = min(max(self._drag[1] - self._drag[0], -a), width - 1 - b)
            span(a + shift, b + shift, PENDING_COLOUR)
        elif self._drag is not None:
            lo, hi = sorted(self._drag[:2])
            span(lo, hi, PENDING_COLOUR)
        elif self._pending is not None:
            c = self._column(self._pending)
            if c is not None:
                chars[c], colours[c] = "[", PENDING_COLOUR
        row = [Segment("evts".ljust(GUTTER - 1) + " ", AXIS_STYLE)]
        start = 0
        for c in range(1, width + 1):
            if c == width or colours[c] != colours[start]:
                colour = colours[start]
                row.append(
                    Segment(
                        "".join(chars[start:c]),
                        Style(color=colour, bold=True) if colour else AXIS_STYLE,
                    )
                )
                start = c
        return row

    def _replace_marks_row(self) -> None:
        """Redraw the events row alone (the picture is unchanged)."""
        data = self._data
        at = self._marks_at
        if data is None or at < 0 or at >= len(self._rows):
            self._rows_size = None
            return
        width = self._image_width()
        self._rows[at] = self._marks_row(data.duration, width)
        self._strips[at] = Strip(self._rows[at], GUTTER + width)

    # --- the mouse ------------------------------------------------------------------------

    def _picture_col(self, x: int) -> int | None:
        width = self._image_width()
        if self._data is None or width == 0 or x < GUTTER:
            return None
        return min(x - GUTTER, width - 1)

    def _mark_columns(self, m: Mark) -> tuple[int, int]:
        """The first and last picture columns of extent ``m`` ((-1, -1) without a picture)."""
        a = self._column(m.onset)
        b = self._column(max(m.onset, m.offset - 1e-9))
        return (-1, -1) if a is None or b is None else (a, max(a, b))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        """Start a drag: a new extent, an edge of the extent whose first / last column it is,
        or (on the events row, inside an extent) the whole extent."""
        col = self._picture_col(event.x)
        if col is None or event.button != 1:
            return
        edge: Mark | None = None
        which = ""
        for m in reversed(self._marks):
            a, b = self._mark_columns(m)
            if col == a:
                edge, which = m, "onset"
                break
            if col == b:
                edge, which = m, "offset"
                break
        if edge is None and event.y == self._marks_at:
            inside = [m for m in self._marks if self._mark_columns(m)[0] < col]
            inside = [m for m in inside if col < self._mark_columns(m)[1]]
            if inside:
                edge, which = inside[-1], "whole"
        self._drag = (col, col, edge, which)
        self.capture_mouse()
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Follow a drag on the events row."""
        if self._drag is None:
            return
        width = self._image_width()
        col = min(max(event.x - GUTTER, 0), max(width - 1, 0))
        if col != self._drag[1]:
            self._drag = (self._drag[0], col, self._drag[2], self._drag[3])
            self._sync_marks_row()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        """End a drag: post what it marked (a click when it did not move)."""
        drag = self._drag
        if drag is None:
            return
        self._drag = None
        self.release_mouse()
        width = self._image_width()
        end = min(max(event.x - GUTTER, 0), max(width - 1, 0))
        start, _, edge, which = drag
        self._sync_marks_row()
        event.stop()
        if end == start:
            self.post_message(self.Clicked(self.time_of(start)))
        elif edge is not None and which == "whole":
            self.post_message(self.ExtentMoved(edge.id, *self._shifted(edge, end - start)))
        elif edge is not None and which == "onset":
            self.post_message(
                self.ExtentMoved(edge.id, min(self.time_of(end), edge.offset - 1e-6), edge.offset)
            )
        elif edge is not None:
            self.post_message(
                self.ExtentMoved(edge.id, edge.onset, max(self.time_of(end + 1), edge.onset + 1e-6))
            )
        else:
            lo, hi = sorted((start, end))
            self.post_message(self.Dragged(self.time_of(lo), self.time_of(hi + 1)))

    def _shifted(self, m: Mark, cols: int) -> tuple[float, float]:
        """Extent ``m`` moved by ``cols`` picture columns, its length kept, inside the clip (s)."""
        data = self._data
        width = self._image_width()
        if data is None or width == 0:
            return m.onset, m.offset
        length = m.offset - m.onset
        onset = min(max(m.onset + cols * data.duration / width, 0.0), data.duration - length)
        onset = max(onset, 0.0)
        return onset, onset + length

    def _time_axis(self, duration: float, width: int) -> list[Segment]:
        chars = [" "] * width
        for col, label in time_ticks(duration, width):
            chars[col : col + len(label)] = label
        return [
            Segment(" " * (GUTTER - 1) + "└", AXIS_STYLE),
            Segment("".join(chars)[:width], AXIS_STYLE),
        ]

    def _strip(self, data: SpectrogramData, width: int, n_strip: int) -> list[list[Segment]]:
        """One sparkline row per class; with more classes than rows, the last row names the
        classes left out and their peak probability, highest first."""
        probs = np.clip(np.asarray(data.frame_probs, dtype=np.float64), 0.0, 1.0)
        cols = resample_columns(probs, width, reduce="max")  # (width, C)
        peak = cols.max(axis=0)
        ranked = np.argsort(-peak, kind="stable").tolist()
        hidden_row = len(ranked) > n_strip
        shown = ranked[: n_strip - 1 if hidden_row else n_strip]
        rows = []
        for c in sorted(shown):
            colour = CLASS_COLOURS[c % len(CLASS_COLOURS)]
            idx = np.rint(cols[:, c] * (len(SPARK) - 1)).astype(int)
            text = "".join(SPARK[i] for i in idx)
            rows.append(
                [
                    Segment(
                        self._class_name(data, c)[: GUTTER - 1].ljust(GUTTER - 1) + " ",
                        Style(color=colour),
                    ),
                    Segment(text, Style(color=colour, bgcolor="#1c1c1c")),
                ]
            )
        if hidden_row:
            rest = ranked[len(shown) :]
            note = f"{len(rest)} not drawn: " + ", ".join(
                f"{self._class_name(data, c)} {peak[c]:.2f}" for c in rest
            )
            rows.append(
                [
                    Segment("more"[: GUTTER - 1].ljust(GUTTER - 1) + " ", AXIS_STYLE),
                    Segment(note[:width].ljust(width), AXIS_STYLE),
                ]
            )
        return rows

    @staticmethod
    def _class_name(data: SpectrogramData, c: int) -> str:
        return data.class_names[c] if c < len(data.class_names) else str(c + 1)

    def render_line(self, y: int) -> Strip:
        """One terminal row: cached cells, with the cursor column drawn over them."""
        if self._rows_size != self.size:
            self._build_rows()
            full = GUTTER + self._image_width()
            self._strips = [Strip(row, full) for row in self._rows]
        width = self.size.width
        if y >= len(self._strips):
            return Strip.blank(width)
        strip = self._strips[y]
        col = self._cursor_col
        if col is not None:
            strip = self._with_cursor(strip, y, col)
        return strip.adjust_cell_length(width)

    def _with_cursor(self, strip: Strip, y: int, col: int) -> Strip:
        x = GUTTER + col
        if x >= strip.cell_length:
            return strip
        if y < self._picture_rows:  # an image: the cursor shows on the axis and strip
            return strip
        if y < self._image_rows:
            marked = [Segment(HALF, self._style(-1, -1))]
        else:
            cell = strip.crop(x, x + 1)
            marked = [
                Segment(s.text, (s.style or Style()) + Style(bgcolor="#5c5c5c")) for s in cell
            ]
        return Strip.join(
            [strip.crop(0, x), Strip(marked, 1), strip.crop(x + 1, strip.cell_length)]
        )


MAX_FRAMES = 320
"""Frames computed per clip: more than any terminal shows across, few enough to be instant."""


def mel_band_hz(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies (Hz) of ``n_mels`` Slaney mel bands between fmin and fmax."""
    from iml_tui.audio.spectrogram import hz_to_mel, mel_to_hz

    edges = np.linspace(float(hz_to_mel(fmin)), float(hz_to_mel(fmax)), n_mels + 2)
    return np.asarray(mel_to_hz(edges[1:-1]), dtype=np.float64)


@lru_cache(maxsize=8)
def _display_bank(sr: int, n_fft: int, n_mels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Hann window, (bins, mels) filterbank, band centres in Hz) for a display spectrogram."""
    from iml_tui.audio.spectrogram import mel_filterbank

    fmax = sr / 2.0
    fmin = min(50.0, fmax / 4)
    bank = mel_filterbank(sr, n_fft, n_mels, fmin, fmax).astype(np.float32)  # (mels, bins)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    return window, np.ascontiguousarray(bank.T), mel_band_hz(n_mels, fmin, fmax)


def display_log_mel(
    x: np.ndarray, sr: int, n_mels: int = 64, max_frames: int = MAX_FRAMES
) -> tuple[np.ndarray, np.ndarray]:
    """A log-mel picture for the screen: ((frames, n_mels) dB, (n_mels,) band centres in Hz).

    The same Slaney mel filterbank as :func:`iml_tui.audio.spectrogram.log_mel`, with a window
    of about 16 ms and a hop chosen so that at most ``max_frames`` frames are computed (a 10 s
    clip costs a few milliseconds in float32).
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1))
    n_fft = 1 << max(math.ceil(math.log2(max(sr, 1) * 0.016)), 6)
    window, bank, band_hz = _display_bank(int(sr), n_fft, n_mels)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    hop = max(round(sr * 0.005), math.ceil(x.size / max_frames), 1)
    spec = np.fft.rfft(frames(x, n_fft, hop) * window, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ bank
    return 10.0 * np.log10(np.maximum(mel, 1e-10)), band_hz


def spectrogram_data(
    x: np.ndarray,
    sr: int,
    frame_probs: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    n_mels: int = 64,
) -> SpectrogramData:
    """The picture of a mono clip, with the model's frame probabilities (if any)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    spec, band_hz = display_log_mel(x, sr, n_mels)
    return SpectrogramData(spec, band_hz, len(x) / float(sr), frame_probs, tuple(class_names))
