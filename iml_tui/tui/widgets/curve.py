"""The learning curve: validation score against labels given, one point per trained model."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from iml_tui.engine.metrics import MAP_UNIT, is_map_score


class LearningCurve(PlotextPlot):
    """A braille line plot of (labels, score) points; redrawn only when a point is added."""

    DEFAULT_CSS = "LearningCurve { height: 1fr; min-height: 6; }"

    def __init__(
        self,
        *,
        score_name: str = "valid mAP",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.score_name = score_name
        self.points: tuple[tuple[int, float], ...] = ()
        self._draw()

    def set_points(
        self, points: Sequence[tuple[int, float]], score_name: str | None = None
    ) -> None:
        """Replace the curve (no-op when nothing changed)."""
        points = tuple((int(n), float(s)) for n, s in points)
        if score_name is not None:
            self.score_name = score_name
        if points == self.points:
            return
        self.points = points
        self._draw()
        self.refresh()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        percent = is_map_score(self.score_name)  # mAP in %, as everywhere; DCF as it is
        scale = 100.0 if percent else 1.0
        plt.title(f"{self.score_name}{f' ({MAP_UNIT})' if percent else ''} vs labels")
        if self.points:
            xs = [n for n, _ in self.points]
            ys = [scale * s for _, s in self.points]
            plt.plot(xs, ys, marker="braille")
            if len(xs) == 1:
                plt.xlim(0, 2 * xs[0] or 1)
        else:
            plt.xlim(0, 1)
            plt.xticks([])
        top = scale * max([1.0, *(s for _, s in self.points)])  # DCF (stream) may pass 1
        plt.ylim(0, top)
        plt.yticks([top * k / 4 for k in range(5)])
