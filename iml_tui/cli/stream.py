"""The streaming paradigm's tools: ``order``, ``budget plan`` and ``score``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.cli.common import app, csv_list, parse_option


class OrderMethod(StrEnum):
    random = "random"
    cluster = "cluster"


class PlanType(StrEnum):
    uniform = "uniform"
    frontheavy = "frontheavy"
    linear = "linear"
    geometric = "geometric"
    exponential = "exponential"
    skew = "skew"
    sessions = "sessions"
    oracle = "oracle"


budget_app = typer.Typer(help="Query budgets of the streaming paradigm.", no_args_is_help=True)
app.add_typer(budget_app, name="budget")


@app.command("order")
def order_cmd(
    method: Annotated[OrderMethod, typer.Option(help="random, or cluster (label-skewed).")],
    split: Annotated[str, typer.Option(help="LID split: train, dev or test.")] = "dev",
    seed: Annotated[int, typer.Option(help="Seed of the order.")] = 18792,
    feat_root: Annotated[
        Path | None, typer.Option(help="Feature root (config: feat_root).")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Feature sets, e.g. ecapalang (config: features).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Order file (default <feat_root>/orders/<split>_<method>_seed<S>.txt)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A bundled preset by name, e.g. lid, or a YAML file.")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key.")] = None,
) -> None:
    """Write the order in which an LID split is streamed (one sample index per line)."""
    from iml_tui.cli.stream_commands import order_command

    order_command(method.value, split, seed, feat_root, csv_list(features), out, config, set_)


@budget_app.command("plan")
def budget_plan_cmd(
    kind: Annotated[PlanType, typer.Argument(help="How the total is spread over the batches.")],
    runs_dir: Annotated[Path, typer.Argument(help="Reference run, or a folder of runs.")],
    name: Annotated[
        str, typer.Argument(help="Name of the plan (a folder in RUNS_DIR/budget_plans).")
    ],
    initial_value: Annotated[
        float | None,
        typer.Option(
            help="linear / exponential: the first batch's count (default: the shape alone)."
        ),
    ] = None,
    p: Annotated[float, typer.Option(help="exponential: decay per batch, (1 - p)^k.")] = 0.03,
    lam_r: Annotated[float, typer.Option(help="geometric: regulariser of the ratio r.")] = 0.01,
    a: Annotated[float, typer.Option(help="skew: width of the Rayleigh-like curve.")] = 0.25,
    sessions: Annotated[
        str | None, typer.Option(help="sessions: batch indices that get the budget, e.g. 0,12,30.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="frontheavy: samples per batch when the run lists none.")
    ] = 720,
) -> None:
    """Plan queries per batch with the same total as each reference run (for --budget-plan)."""
    from iml_tui.cli.stream_commands import budget_plan_command
    from iml_tui.config import parse_int_list
    from iml_tui.engine.budgets import PlanParams

    params = PlanParams(
        initial_value=initial_value,
        p=p,
        lam_r=lam_r,
        a=a,
        sessions=None
        if sessions is None
        else tuple(parse_option(parse_int_list, sessions, "--sessions")),
        batch_size=batch_size,
    )
    budget_plan_command(kind.value, runs_dir, name, params)


@app.command("score")
def score_cmd(
    runs: Annotated[
        list[Path] | None, typer.Argument(help="Run folders, or folders of runs (pooled).")
    ] = None,
    csv_: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table.")] = False,
    latex: Annotated[bool, typer.Option("--latex", help="A LaTeX tabular on stdout.")] = False,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            help="Paired test per metric between two runs (or folders of runs): --compare A B."
        ),
    ] = None,
) -> None:
    """DCF, FNR, FPR, IMLM, % adapt and % target per stream run and pooled over runs."""
    from iml_tui.cli.stream_commands import score_command

    score_command(runs or [], csv_, latex, compare)
