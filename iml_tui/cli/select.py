"""``iml-tui select``: one round of picks from a pool store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.cli.common import Executor, Strategy, app


@app.command("select")
def select_cmd(
    pool: Annotated[Path, typer.Option(help="Pool store (HDF5) to select from.")],
    strategy: Annotated[Strategy, typer.Option(help="Selection strategy.")],
    n: Annotated[int, typer.Option("-n", help="How many clips to select.")],
    labeled: Annotated[Path | None, typer.Option(
        help="Text file: one already-labelled pool index per line (labels read from the pool). "
        "Absent or empty: the initial round.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    scores: Annotated[Path | None, typer.Option(
        help="(N, C) clip-level probabilities (.npy); required by mp and mfft.")] = None,
    threshold: Annotated[float, typer.Option(
        help="Threshold that binarises --scores (the valid-set F1-optimal one).")] = 0.5,
    warm_k: Annotated[int, typer.Option(
        help="Initial round only: positives per class taken first (0 = cold start).")] = 0,
    state: Annotated[Path | None, typer.Option(
        help="ft: a file carrying the min-distance vector from round to round (created, then "
        "updated); the next round, once the picks are labelled, skips the |L| x N pass.")] = None,
    shards: Annotated[int, typer.Option(
        help="Hold the selection array in this many row shards, one worker each (same picks)."
    )] = 1,
    executor: Annotated[Executor, typer.Option(
        help="local: a process per shard; ray: a Ray actor per shard.")] = Executor.local,
    ray_address: Annotated[str | None, typer.Option(
        help="With --executor ray: auto (a running cluster) or HOST:PORT; default: a local "
        "instance.")] = None,
) -> None:
    """Select one round of clips to annotate; prints pool indices, one per line, in order."""
    from iml_tui.config import check_range
    from iml_tui.engine.one_round import select_from_files

    for key, value in (("threshold", threshold), ("warm_k", warm_k)):
        if key != "warm_k" or value:
            check_range(key, value, "command line")
    picked = select_from_files(pool, labeled, strategy.value, n, seed, scores, threshold,
                               warm_k, state, shards, executor.value, ray_address)
    sys.stdout.write("".join(f"{int(i)}\n" for i in picked))
