"""Progress bars shared by the command-line faces: one column layout, two ways to feed it.

:func:`rate_progress` takes ``progress(label, done, total)`` callbacks (one bar per label, with
items per second); :func:`run_progress` is one bar over the steps of many runs (rounds or
batches) that also counts finished runs and shows the last step's result. Both write to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from iml_tui.callbacks import ProgressFn


def _bars(texts: Sequence[str], last: str | None = None) -> Any:
    """A rich ``Progress`` on stderr: label, bar, done/total, the text columns ``texts`` (task
    field templates; empty ones dropped), the elapsed time, then ``last`` or the time left."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(t) for t in texts if t),
        TimeElapsedColumn(),
        TimeRemainingColumn() if last is None else TextColumn(last),
        console=Console(stderr=True),
    )


@contextmanager
def rate_progress(
    unit: str, rate_unit: str | None = None, rate_scale: float = 1.0
) -> Iterator[ProgressFn]:
    """A bar per label with items per second, fed by ``progress(label, done, total)``;
    shown from the first update on (an early error prints nothing else). The rate is shown as
    ``rate_scale`` x items per second in ``rate_unit`` (default: the unit)."""
    bars = _bars([unit, "{task.fields[rate]}"])
    tasks: dict[str, Any] = {}
    first: dict[str, int] = {}

    def update(label: str, done: int, total: int) -> None:
        if not tasks:
            bars.start()
        if label not in tasks:
            tasks[label] = bars.add_task(label, total=total, completed=done, rate="")
            first[label] = done
            return
        bars.update(tasks[label], completed=done)
        task = bars.tasks[tasks[label]]
        if task.elapsed:
            rate = rate_scale * (done - first[label]) / task.elapsed
            bars.update(tasks[label], rate=f"{rate:.3g} {rate_unit or unit}/s")

    try:
        yield update
    finally:
        if tasks:
            bars.stop()


@dataclass
class RunBar:
    """What :func:`run_progress` yields: ``step(last)`` after each step, ``run_done(name)``
    after each run (the signature of the sweeps' ``on_run`` callbacks)."""

    bars: Any
    task: Any
    n_runs: int
    runs: int = 0

    def step(self, last: str) -> None:
        """One step done; ``last`` says how it went."""
        self.bars.update(self.task, advance=1, last=last)

    def run_done(self, _name: str = "") -> None:
        """One more run finished."""
        self.runs += 1
        self.bars.update(self.task, runs=f"{self.runs}/{self.n_runs}")


@contextmanager
def run_progress(label: str, total: int, n_runs: int) -> Iterator[RunBar]:
    """One bar of ``total`` steps called ``label`` over ``n_runs`` runs; full at the end."""
    with _bars(["runs {task.fields[runs]}"], "{task.fields[last]}") as bars:
        task = bars.add_task(label, total=total, last="", runs=f"0/{n_runs}")
        yield RunBar(bars, task, n_runs)
        bars.update(task, completed=total)
