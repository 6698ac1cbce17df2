"""``iml-tui demo``: the main job on the bundled demo birds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.bench.progress import rate_progress
from iml_tui.cli.common import app
from iml_tui.cli.simulate import run_bioacoustic


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo project and results go.")] = Path(
        "demo_runs"
    ),
    headless: Annotated[
        bool, typer.Option("--headless/--tui", help="Run the simulated study even in a terminal.")
    ] = False,
    jobs: Annotated[int, typer.Option(help="Headless: runs in parallel processes.")] = 2,
    player: Annotated[
        str,
        typer.Option(help="TUI audio backend: auto, local (sound card), browser (ssh -L) or file."),
    ] = "auto",
) -> None:
    """The main job on the bundled demo birds (pools built on first use): label them in the
    terminal with MFFT asking; without a terminal, or with --headless, a simulated study of the
    four strategies, cold and warm, with its results table."""
    from iml_tui.demo.assets import bird_pools

    with rate_progress("items") as progress:
        pools = bird_pools(progress)
    if headless or not (sys.stdin.isatty() and sys.stdout.isatty()):
        from iml_tui.config import BioacousticConfig, load_config

        sys.stderr.write(
            f"iml-tui demo: simulated study on {pools}, results in {out / 'bioacoustic'}\n"
        )
        cfg = load_config(
            BioacousticConfig,
            "demo_bioacoustic",
            {"pool_dir": str(pools), "out": str(out / "bioacoustic"), "jobs": jobs},
        )
        run_bioacoustic(cfg)
        return
    from iml_tui.tui.run import run_label

    options = {
        "task": "bioacoustic",
        "pool_dir": str(pools),
        "strategy": "mfft",
        "budgets": list(DEMO_LABEL_BUDGETS),
    }
    run_label(out / "label-birds", options, list(DEMO_LABEL_SETTINGS), None, player, 0, None, True)


#: The demo labelling project: rounds of 10 labels, a small classifier that retrains in seconds.
DEMO_LABEL_BUDGETS = (10, 20, 30, 40, 60, 80, 100, 150, 200)
DEMO_LABEL_SETTINGS = ("hidden=256", "max_epochs=300")
