"""``iml-tui select``: one round of picks from a pool store. Its options come from the table
in :mod:`iml_tui.select_cli`, which also builds the fast argparse path of the entry point."""

from __future__ import annotations

import inspect
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from iml_tui.cli.common import app
from iml_tui.select_cli import SELECT_OPTIONS, SelectOption


def _annotation(o: SelectOption) -> Any:
    kind: Any = (
        StrEnum(o.dest.title().replace("_", ""), {c: c for c in o.choices}) if o.choices else o.kind
    )
    if not o.required and o.default is None:
        kind = kind | None
    return Annotated[kind, typer.Option(o.flag, help=o.help)]


def select_cmd(**options: Any) -> None:
    """Select one round of clips to annotate; prints pool indices, one per line, in order."""
    from iml_tui.engine.one_round import select_from_files

    v: dict[str, Any] = {k: (x.value if isinstance(x, StrEnum) else x) for k, x in options.items()}
    picked = select_from_files(
        v["pool"],
        v["labeled"],
        v["strategy"],
        v["n"],
        v["seed"],
        v["scores"],
        v["threshold"],
        v["warm_k"],
        v["state"],
        v["shards"],
        v["executor"],
        v["ray_address"],
    )
    sys.stdout.write("".join(f"{int(i)}\n" for i in picked))


select_cmd.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            o.dest,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_annotation(o),
            default=inspect.Parameter.empty if o.required else o.default,
        )
        for o in SELECT_OPTIONS
    ]
)
select_cmd.__annotations__ = {o.dest: _annotation(o) for o in SELECT_OPTIONS} | {"return": None}
app.command("select")(select_cmd)
