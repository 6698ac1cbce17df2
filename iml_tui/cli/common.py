"""What every command module shares: the Typer app, the choice enums, option parsing,
progress bars and the stdout console."""

from __future__ import annotations

import sys
import typing
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from iml_tui.errors import UserError
from iml_tui.presets import PRESETS

if typing.TYPE_CHECKING:
    import rich.console

app = typer.Typer(
    name="iml-tui",
    help="Label audio with a model in the loop: pool-based active learning (MFFT) and "
    "interactive ML, headless or in a terminal UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from iml_tui import version_line

        sys.stdout.write(version_line() + "\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: typing.Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options before the command name."""


class Task(StrEnum):
    bioacoustic = "bioacoustic"
    lid = "lid"
    vtd = "vtd"


class Strategy(StrEnum):
    rand = "rand"
    ft = "ft"
    mp = "mp"
    mfft = "mfft"


class Executor(StrEnum):
    local = "local"
    ray = "ray"


RayAddressOption = typing.Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: auto (the running cluster) or HOST:PORT; default: a local "
        "instance."
    ),
]
CpusPerTaskOption = typing.Annotated[
    float,
    typer.Option(help="With --executor ray: CPUs each task asks for (and its torch threads)."),
]
GpusPerTaskOption = typing.Annotated[
    float, typer.Option(help="With --executor ray: GPUs each task asks for, e.g. 0.25.")
]


def exit_skipped(lines: typing.Sequence[str], what: str, rest: str = "") -> typing.NoReturn:
    """One stderr line per skipped input, a count (``what``: e.g. "recording(s)"; ``rest``:
    what happened to the others), and exit status 3."""
    from iml_tui.features.extract import EXIT_SKIPPED

    for line in lines:
        sys.stderr.write(f"iml-tui: skipped: {line}\n")
    sys.stderr.write(
        f"iml-tui: {len(lines)} {what} skipped{rest} (exit status {EXIT_SKIPPED}); fix them "
        "and run the same command again\n"
    )
    raise typer.Exit(EXIT_SKIPPED)


def csv_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def opt_str(value: Path | None) -> str | None:
    return None if value is None else str(value)


def demo_preset(task: str) -> Path | None:
    """The bundled ``demo_<task>`` preset, said on stderr: what runs when no data is named."""
    preset = PRESETS / f"demo_{task}.yaml"
    if not preset.is_file():
        return None
    sys.stderr.write(
        f"iml-tui: no data named: the bundled demo (--config demo_{task}); give "
        f"--config {task} and your data for the paper's settings\n"
    )
    return preset


def command_line() -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in ["iml-tui", *sys.argv[1:]])


def parse_option(fn: Any, value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return fn(value)
    except ValueError as exc:
        raise UserError(
            f"{flag} {value!r}: {exc}",
            None,
            f"write {flag} as a comma-separated list or a range like 1-5",
        ) from exc


def print_tables(tables: list[Any], notes: list[str]) -> None:
    from rich.table import Table

    console = out_console()
    for t in tables:
        table = Table(title=t.title)
        for i, col in enumerate(t.columns):
            table.add_column(col, justify="left" if i == 0 else "right")
        for row in t.rows:
            table.add_row(*(str(c) for c in row))
        console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)


def emit_table(
    title: str,
    columns: list[str],
    rows: list[list[str]],
    as_csv: bool = False,
    right: frozenset[str] = frozenset(),
) -> None:
    """One table on stdout: a rich table (full width when piped), or with ``as_csv`` plain CSV
    (a header row of ``columns``, then ``rows``; no title) for scripts."""
    if as_csv:
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
        return
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        table.add_row(*row)
    out_console().print(table)


CSV_HELP = "Print the table as CSV (a header row, no title) instead of a drawn table."


def err_console() -> rich.console.Console:
    """Console for stderr (progress, summaries): the terminal's width, or unbounded when
    redirected, so a long path or summary line is never cut or folded at 80 columns."""
    from rich.console import Console

    if sys.stderr.isatty():
        return Console(stderr=True)
    return Console(stderr=True, width=10_000, soft_wrap=True)


def out_console(file: typing.IO[str] | None = None) -> rich.console.Console:
    """Console for stdout tables: the terminal's width, or unbounded when piped or redirected."""
    from rich.console import Console

    stream = file if file is not None else sys.stdout
    if stream.isatty():
        return Console(file=file)
    return Console(file=file, width=10_000, soft_wrap=True)
