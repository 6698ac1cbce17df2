"""The headless command line: thin wrappers around the engine, one module per command group.

Importing this package registers every command on :data:`app`; :func:`main` runs it.
"""

from __future__ import annotations

import sys

from iml_tui.cli import demo as _demo
from iml_tui.cli import detect as _detect
from iml_tui.cli import encoder as _encoder
from iml_tui.cli import pool as _pool
from iml_tui.cli import prepare as _prepare
from iml_tui.cli import project as _project
from iml_tui.cli import search as _search
from iml_tui.cli import select as _select
from iml_tui.cli import simulate as _simulate
from iml_tui.cli import stream as _stream
from iml_tui.cli.checked import check_every_command
from iml_tui.cli.common import Strategy, Task, app, out_console
from iml_tui.cli.project import label_cmd
from iml_tui.cli.select import select_cmd
from iml_tui.errors import UserError

__all__ = ["Strategy", "Task", "app", "label_cmd", "main", "out_console", "select_cmd"]
_COMMAND_MODULES = (
    _simulate,
    _select,
    _pool,
    _demo,
    _stream,
    _prepare,
    _encoder,
    _project,
    _detect,
    _search,
)
check_every_command(app)  # every numeric flag against iml_tui.ranges before a command runs


def main() -> None:
    """Console entry point: user errors are one line on stderr and exit status 2."""
    try:
        app()
    except UserError as exc:
        sys.stderr.write(f"iml-tui: error: {exc}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write(
            "iml-tui: interrupted; finished rounds are kept: run the same command again to resume\n"
        )
        raise SystemExit(130) from None
