"""The ``iml-tui`` console entry point.

``iml-tui select`` is run from scripts once per annotation round, so it is parsed here with
argparse and its process imports only numpy and h5py (:mod:`iml_tui.select_cli`); every other
command, and ``select --help``, goes to the Typer app in :mod:`iml_tui.cli`.
"""

from __future__ import annotations

import sys

_HELP = frozenset({"-h", "--help"})


def main() -> None:
    """Run ``iml-tui`` with ``sys.argv``."""
    args = sys.argv[1:]
    if args == ["--version"]:  # the same line as the app's --version, without importing it
        from iml_tui import version_line

        print(version_line())
        raise SystemExit(0)
    if args[:1] == ["select"] and not _HELP & set(args[1:]):
        from iml_tui.select_cli import run_select

        raise SystemExit(run_select(args[1:]))
    from iml_tui.cli import main as typer_main

    typer_main()
