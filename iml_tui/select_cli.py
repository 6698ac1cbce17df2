"""``iml-tui select`` without the Typer app: the same options as ``iml_tui.cli.select_cmd`` (a test
keeps the two in step), parsed by argparse so that a round from a shell loop starts in a fraction of
the time the full command line needs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from iml_tui.errors import UserError

STRATEGY_CHOICES = ("rand", "ft", "mp", "mfft")
EXECUTOR_CHOICES = ("local", "ray")


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2, like every other user error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"iml-tui: error: select: {message} — see `iml-tui select --help`\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``select`` options: names, types and defaults of the Typer command."""
    p = _OneLineParser(prog="iml-tui select", add_help=False)
    p.add_argument("--pool", type=Path, required=True)
    p.add_argument("--strategy", choices=STRATEGY_CHOICES, required=True)
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--labeled", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scores", type=Path, default=None)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--warm-k", type=int, default=0)
    p.add_argument("--state", type=Path, default=None)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--executor", choices=EXECUTOR_CHOICES, default="local")
    p.add_argument("--ray-address", default=None)
    return p


def run_select(argv: list[str]) -> int:
    """Parse ``argv`` (what follows ``select``), print the picks one per line; the exit status."""
    ns = build_parser().parse_args(argv)
    try:
        from iml_tui.engine.one_round import select_from_files

        picked = select_from_files(ns.pool, ns.labeled, ns.strategy, ns.n, ns.seed, ns.scores,
                                   ns.threshold, ns.warm_k, ns.state, ns.shards,
                                   ns.executor, ns.ray_address)
    except UserError as exc:
        sys.stderr.write(f"iml-tui: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("iml-tui: interrupted; nothing was written\n")
        return 130
    sys.stdout.write("".join(f"{int(i)}\n" for i in picked))
    return 0
