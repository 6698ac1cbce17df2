"""The search-by-example list: the pool clips most like the one on screen, asked next."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def search_table(found: Sequence[tuple[str, float]]) -> Table:
    """One row per queued clip in asking order: its place, item id and cosine to the example."""
    table = Table(box=None, padding=(0, 2, 0, 0))
    table.add_column("next", justify="right", style="bold cyan", no_wrap=True)
    table.add_column("clip", overflow="fold")
    table.add_column("cosine", justify="right", no_wrap=True)
    for k, (item_id, cos) in enumerate(found, start=1):
        table.add_row(str(k), item_id, f"{cos:.3f}")
    return table


class SearchScreen(ModalScreen[None]):
    """A modal list of the clips a search by example queued; escape, enter or / closes it and
    labelling goes on with the clip on screen, then these in order."""

    BINDINGS = [  # noqa: RUF012 (Textual reads a class-level list)
        Binding("escape,enter,slash,q", "close", "close", id="search.close"),
    ]

    def __init__(self, example: str, found: Sequence[tuple[str, float]]) -> None:
        super().__init__()
        self.example = example
        self.found = tuple(found)

    def compose(self) -> ComposeResult:
        """Title, the list and how to go on."""
        with VerticalScroll(id="search-box"):
            yield Static(
                Text(f"Clips like {self.example}: asked next", style="bold"), id="search-title"
            )
            yield Static(search_table(self.found))
            yield Static(
                Text(
                    "Cosine on the pooled embeddings, exact over the whole pool. Labelled clips "
                    "and clips already queued are left out. Enter or escape: back to labelling.",
                    style="dim",
                ),
                id="search-note",
            )

    def action_close(self) -> None:
        """Back to the labelling screen."""
        self.dismiss(None)
