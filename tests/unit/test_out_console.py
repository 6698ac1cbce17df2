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
