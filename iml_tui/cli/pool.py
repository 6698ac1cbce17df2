"""``iml-tui pool``: make, convert and inspect pool stores."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.bench.progress import rate_progress
from iml_tui.cli.common import (
    CSV_HELP,
    app,
    csv_list,
    emit_table,
    err_console,
    out_console,
    parse_option,
)

pool_app = typer.Typer(
    help="Make and inspect pool stores (HDF5 embeddings + frame targets).", no_args_is_help=True
)
app.add_typer(pool_app, name="pool")


@pool_app.command("synth")
def pool_synth(
    out: Annotated[Path, typer.Option(help="Folder for train.h5, valid.h5, test.h5.")],
    n_train: Annotated[int, typer.Option(help="Clips in the train pool.")] = 21414,
    n_valid: Annotated[int, typer.Option(help="Clips in the valid pool.")] = 4600,
    n_test: Annotated[int, typer.Option(help="Clips in the test pool.")] = 4600,
    t: Annotated[int, typer.Option("--t", help="Frames per clip.")] = 32,
    d: Annotated[int, typer.Option("--d", help="Embedding dimension.")] = 2048,
    classes: Annotated[
        str | None,
        typer.Option(help="Class names, comma-separated (default: the paper's 7); needs --priors."),
    ] = None,
    priors: Annotated[
        str | None,
        typer.Option(
            help="Clip-level positive share per class, comma-separated (default: the paper's)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Write synthetic train/valid/test pools with clusters, rare classes and label noise."""

    from iml_tui.data.demo import synth_config_from_options
    from iml_tui.data.synth import synth_pools

    prior_values = None
    if priors is not None:
        prior_values = [float(v) for v in parse_option(_float_list, priors, "--priors")]
    cfg = synth_config_from_options(
        n_train, n_valid, n_test, t, d, csv_list(classes), prior_values, seed
    )
    with rate_progress("clips") as progress:
        paths = synth_pools(out, cfg, progress)
    err_console().print("wrote " + ", ".join(str(p) for p in paths.values()))


def _float_list(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


@pool_app.command("convert")
def pool_convert(
    path: Annotated[Path, typer.Argument(help="A pool store (HDF5).")],
    out: Annotated[Path, typer.Option(help="The new pool store to write.")],
    dtype: Annotated[
        str,
        typer.Option(
            help="Storage dtype of the selection array: float16 (half the size) or float32; "
            "distances are computed in float32 either way."
        ),
    ] = "float16",
) -> None:
    """Write a copy of a pool with its selection array in another dtype."""
    from iml_tui.data.store import convert_pool

    written = convert_pool(path, out, dtype)
    sys.stdout.write(f"{written}\n")


@pool_app.command("info")
def pool_info(
    path: Annotated[Path, typer.Argument(help="A pool store (HDF5).")],
    as_csv: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """Shapes, classes, clip-level positives and attributes of a pool store."""
    import numpy as np

    from iml_tui.data.store import PoolStore

    store = PoolStore(path)
    known = np.flatnonzero(store.known())
    clip = store.clip_labels(known)
    title = f"{path}: N={store.n}, T={store.t}, D={store.d}, C={store.c}"
    if not store.all_known:
        title += f"; labels known for {known.size} clips, {store.n - known.size} unlabelled"
    count = "positive clips" if store.all_known else "positive (known) clips"
    rows = [[name, str(int(clip[:, i].sum()))] for i, name in enumerate(store.class_list)]
    rows.append(["none of these", str(int((clip.max(axis=1) == 0).sum()))])
    emit_table(title, ["class", count], rows, as_csv, frozenset({count}))
    if as_csv:
        return
    console = out_console()
    for key, value in sorted(store.attrs.items()):
        console.print(f"{key}: {value}", highlight=False)
