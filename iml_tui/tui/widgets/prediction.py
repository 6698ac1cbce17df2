"""The model's prediction for the current item, and the label being given.

One line per class: its key, a box that is ticked when the class is in the label being given, the
name, a probability bar and the probability; then a line with the model's confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from iml_tui.tui.widgets.spectrogram import CLASS_COLOURS

BAR_BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int) -> str:
    """A left-aligned bar ``width`` cells wide with eighth-cell resolution."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    text = "█" * full + (BAR_BLOCKS[rest] if rest else "")
    return text.ljust(width)


def confidence_of(probs: np.ndarray | None, multi_label: bool) -> float | None:
    """Confidence of a prediction: mean of max(p, 1-p) (multi-label), top probability else."""
    if probs is None or len(probs) == 0:
        return None
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if multi_label:
        return float(np.mean(np.maximum(p, 1 - p)))
    return float(p.max())


class PredictionPanel(Widget):
    """Per-class probability bars, the label being given, and the confidence."""

    DEFAULT_CSS = """
    PredictionPanel { height: auto; }
    """

    selected: reactive[frozenset[int]] = reactive(frozenset, layout=False)
    """Classes ticked in the label being given."""

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.class_list: tuple[str, ...] = ()
        self.keys: tuple[str, ...] = ()
        self.multi_label = True
        self.probs: np.ndarray | None = None
        self.threshold = 0.5
        self.confidence: float | None = None

    def configure(
        self, class_list: Sequence[str], multi_label: bool, keys: Sequence[str] = ()
    ) -> None:
        """Set the classes, the labelling mode and the key shown beside each class."""
        self.class_list = tuple(class_list)
        self.multi_label = multi_label
        self.keys = tuple(keys) or tuple(str(i + 1) for i in range(len(class_list)))
        self.refresh(layout=True)

    def show(
        self, probs: np.ndarray | None, confidence: float | None = None, threshold: float = 0.5
    ) -> None:
        """Show the model's (C,) probabilities (None: no model yet)."""
        self.probs = None if probs is None else np.asarray(probs, dtype=np.float64)
        self.threshold = threshold
        self.confidence = (
            confidence if confidence is not None else confidence_of(self.probs, self.multi_label)
        )
        self.refresh()

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        """One line per class, a separator-less 'none' line, and the confidence line."""
        return len(self.class_list) + 2

    def render(self) -> Text:
        """The panel as rich text."""
        width = max(self.size.width, 30)
        name_w = min(max((len(n) for n in self.class_list), default=4), 16)
        bar_w = max(width - name_w - 16, 4)
        text = Text(no_wrap=True, overflow="ellipsis")
        box_on, box_off = ("[x]", "[ ]") if self.multi_label else ("(•)", "( )")
        for i, name in enumerate(self.class_list):
            key = self.keys[i] if i < len(self.keys) else " "
            colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
            ticked = i in self.selected
            text.append(f"{key[:1]} ", style="bold")
            text.append(box_on if ticked else box_off, style="bold green" if ticked else "dim")
            text.append(f" {name[:name_w]:<{name_w}} ", style=colour)
            if self.probs is not None and i < len(self.probs):
                p = float(self.probs[i])
                text.append(bar(p, bar_w), style=colour if p >= self.threshold else "dim")
                text.append(f" {p:4.2f}", style="bold" if p >= self.threshold else "")
            else:
                text.append("·" * bar_w + "    –", style="dim")
            text.append("\n")
        none_ticked = not self.selected
        text.append("0 ", style="bold")
        text.append(
            box_on if none_ticked else box_off, style="bold green" if none_ticked else "dim"
        )
        text.append(" none of these\n", style="italic")
        if self.confidence is None:
            text.append("confidence –  (no model yet)", style="dim")
        else:
            text.append("confidence ")
            text.append(f"{self.confidence:4.2f}", style="bold")
        return text
