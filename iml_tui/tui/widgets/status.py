"""Status widgets: "why this one", progress, model status and the audio player line."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from iml_tui.engine.metrics import score_text
from iml_tui.tui.views import ModelView, ProgressView
from iml_tui.tui.widgets.prediction import bar
from iml_tui.tui.widgets.spectrogram import CLASS_COLOURS


class WhyLine(Static):
    """Why the strategy asks about this item (mismatch, uncertainty, detection to review)."""

    DEFAULT_CSS = "WhyLine { height: auto; max-height: 2; }"

    def show(self, item_id: str, why: str, kind: str = "query") -> None:
        """Show the item id and the reason it was chosen."""
        text = Text(overflow="ellipsis")
        if item_id:
            text.append(item_id, style="bold cyan")
            text.append("  ")
        text.append("review: " if kind == "review" else "why: ", style="bold")
        text.append(why or "—")
        self.update(text)


class ProgressPanel(Widget):
    """Labelled / budget with a bar, round, skipped and per-class counts."""

    DEFAULT_CSS = "ProgressPanel { height: auto; }"

    progress: reactive[ProgressView] = reactive(ProgressView(0), layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        """Totals, round / skipped, then the per-class counts wrapped to the width."""
        return len(self._lines(width))

    def render(self) -> Text:
        """The panel as rich text."""
        return Text("\n").join(self._lines(self.size.width))

    def _lines(self, width: int) -> list[Text]:
        p = self.progress
        first = Text("labelled ", style="bold")
        if p.budget:
            first.append(f"{p.labelled}/{p.budget} ")
            first.append(bar(p.labelled / p.budget, 8), style="green")
        else:
            first.append(str(p.labelled))
        second = Text()
        if p.round is not None:
            second.append(f"{p.round_name} {p.round}")
            if p.n_rounds:
                second.append(f"/{p.n_rounds}")
            second.append("  ")
        second.append(f"skipped {p.skipped}")
        if p.annotator:
            second.append(f"  {p.annotator}", style="dim")
        lines = [first, second]
        chunks = [
            Text.assemble((name, CLASS_COLOURS[i % len(CLASS_COLOURS)]), f" {count}")
            for i, (name, count) in enumerate(p.class_counts)
        ]
        chunks.append(Text.assemble(("none", "italic"), f" {p.none_count}"))
        line = Text()
        for chunk in chunks:
            if line.cell_len and line.cell_len + 2 + chunk.cell_len > max(width, 1):
                lines.append(line)
                line = Text()
            if line.cell_len:
                line.append("  ")
            line.append_text(chunk)
        lines.append(line)
        for text in lines:
            text.no_wrap = True
            text.overflow = "ellipsis"
        return lines


class ModelStatus(Widget):
    """Model version, retraining progress, last validation score or the last error."""

    DEFAULT_CSS = "ModelStatus { height: auto; max-height: 4; }"

    model: reactive[ModelView] = reactive(ModelView(), layout=True)

    def render(self) -> Text:
        """One line of rich text."""
        m = self.model
        text = Text(overflow="fold")
        text.append("model ", style="bold")
        text.append(f"v{m.version}" if m.version else "none yet")
        if m.score is not None:
            text.append(f"  {m.score_name} {score_text(m.score_name, m.score)}")
        if m.training is not None:
            text.append("\ntraining ", style="yellow")
            text.append(bar(m.training, 8), style="yellow")
            text.append(f" {100 * m.training:3.0f} %", style="yellow")
            if m.training_note:
                text.append(f" {m.training_note}", style="dim")
        if m.error:
            text.append(f"\ntraining failed: {m.error}", style="bold red")
        return text


class PlayerLine(Static):
    """Which audio backend plays, and how to reach it (URL, ssh -L, or the clip's path)."""

    DEFAULT_CSS = "PlayerLine { height: auto; max-height: 2; }"

    def show(
        self, name: str, description: str, playing: bool = False, autoplay: bool = True
    ) -> None:
        """Show the backend's name and its own description."""
        text = Text(overflow="ellipsis")
        text.append("audio ", style="bold")
        text.append(name, style="bold cyan")
        text.append(" ▶ " if playing else " ■ ", style="green" if playing else "dim")
        text.append("" if autoplay else "(auto-play off) ", style="dim")
        text.append(description)
        self.update(text)
