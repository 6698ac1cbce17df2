"""``iml-tui select`` without the Typer app: the same options as ``iml_tui.cli.select_cmd`` (a test
keeps the two in step), parsed by argparse so that a round from a shell loop starts in a fraction of
the time the full command line needs."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from iml_tui.errors import UserError

STRATEGY_CHOICES = ("rand", "ft", "mp", "mfft")
EXECUTOR_CHOICES = ("local", "ray")


@dataclass(frozen=True)
class SelectOption:
    """One option of ``iml-tui select``: the single table both parsers are built from (this
    argparse one and the Typer command in :mod:`iml_tui.cli.select`)."""

    dest: str
    flag: str
    kind: type  # Path, int, float or str
    help: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()


SELECT_OPTIONS: tuple[SelectOption, ...] = (
    SelectOption("pool", "--pool", Path, "Pool store (HDF5) to select from.", required=True),
    SelectOption(
        "strategy",
        "--strategy",
        str,
        "Selection strategy.",
        required=True,
        choices=STRATEGY_CHOICES,
    ),
    SelectOption("n", "-n", int, "How many clips to select.", required=True),
    SelectOption(
        "labeled",
        "--labeled",
        Path,
        "Text file: one already-labelled pool index per line (labels read from the "
        "pool). Absent or empty: the initial round.",
    ),
    SelectOption("seed", "--seed", int, "Seed of every random choice.", default=0),
    SelectOption(
        "scores",
        "--scores",
        Path,
        "(N, C) clip-level probabilities (.npy); required by mp and mfft.",
    ),
    SelectOption(
        "threshold",
        "--threshold",
        float,
        "Threshold that binarises --scores (the valid-set F1-optimal one).",
        default=0.5,
    ),
    SelectOption(
        "warm_k",
        "--warm-k",
        int,
        "Initial round only: positives per class taken first (0 = cold start).",
        default=0,
    ),
    SelectOption(
        "state",
        "--state",
        Path,
        "ft: a file carrying the min-distance vector from round to round (created, then "
        "updated); the next round, once the picks are labelled, skips the |L| x N "
        "pass.",
    ),
    SelectOption(
        "shards",
        "--shards",
        int,
        "Hold the selection array in this many row shards, one worker each (same picks).",
        default=1,
    ),
    SelectOption(
        "executor",
        "--executor",
        str,
        "local: a process per shard; ray: a Ray actor per shard.",
        default="local",
        choices=EXECUTOR_CHOICES,
    ),
    SelectOption(
        "ray_address",
        "--ray-address",
        str,
        "With --executor ray: auto (a running cluster) or HOST:PORT; default: a local instance.",
    ),
)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2, like every other user error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"iml-tui: error: select: {message} — see `iml-tui select --help`\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``select`` options of :data:`SELECT_OPTIONS` as an argparse parser."""
    p = _OneLineParser(prog="iml-tui select", add_help=False)
    for o in SELECT_OPTIONS:
        extra: dict[str, Any] = {"choices": o.choices} if o.choices else {}
        if o.required:
            p.add_argument(o.flag, dest=o.dest, type=o.kind, required=True, **extra)
        else:
            p.add_argument(o.flag, dest=o.dest, type=o.kind, default=o.default, **extra)
    return p


def run_select(argv: list[str]) -> int:
    """Parse ``argv`` (what follows ``select``), print the picks one per line; the exit status."""
    ns = build_parser().parse_args(argv)
    try:
        from iml_tui.engine.one_round import select_from_files

        picked = select_from_files(
            ns.pool,
            ns.labeled,
            ns.strategy,
            ns.n,
            ns.seed,
            ns.scores,
            ns.threshold,
            ns.warm_k,
            ns.state,
            ns.shards,
            ns.executor,
            ns.ray_address,
        )
    except UserError as exc:
        sys.stderr.write(f"iml-tui: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("iml-tui: interrupted; nothing was written\n")
        return 130
    sys.stdout.write("".join(f"{int(i)}\n" for i in picked))
    return 0
