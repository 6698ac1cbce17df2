"""Progress bars shared by the command-line faces."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def rate_progress(
    unit: str, rate_unit: str | None = None, rate_scale: float = 1.0
) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar with items per second, fed by ``progress(label, done, total)``;
    shown from the first update on (an early error prints nothing else). The rate is shown as
    ``rate_scale`` x items per second in ``rate_unit`` (default: the unit)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
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
