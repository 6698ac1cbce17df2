"""Tables on stdout keep their full width when the output is not a terminal."""

from __future__ import annotations

import io

from rich.table import Table

from iml_tui.cli import out_console


def test_piped_table_is_not_cut_at_80_columns() -> None:
    table = Table()
    names = [f"column_{i:02d}_with_a_long_name" for i in range(6)]
    for name in names:
        table.add_column(name)
    table.add_row(*[f"value_{i}_0123456789" for i in range(6)])
    buf = io.StringIO()
    out_console(buf).print(table)
    text = buf.getvalue()
    for name in names:
        assert name in text
    assert max(len(line) for line in text.splitlines()) > 80
    assert "…" not in text


def test_redirected_stderr_lines_are_not_folded(monkeypatch) -> None:
    import sys

    from iml_tui.cli.common import err_console

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    line = "wrote " + "/a/very/long/path" * 12 + "/train.h5"
    err_console().print(line, highlight=False)
    assert buf.getvalue() == line + "\n"


def test_every_cli_console_keeps_the_full_width_when_redirected() -> None:
    """No command builds a console of its own (it would fold at 80 columns when redirected)."""
    from pathlib import Path

    import iml_tui.cli as cli

    for path in Path(cli.__file__).parent.glob("*.py"):
        if path.name == "common.py":
            continue
        text = path.read_text()
        assert "Console(" not in text.replace("-> Console:", ""), path.name
