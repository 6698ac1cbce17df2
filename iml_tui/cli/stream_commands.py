"""What the stream commands of the CLI do (``simulate --task lid|vtd``, ``order``,
``budget plan``, ``score``), with rich progress and tables; the CLI functions only call these."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from iml_tui.bench.progress import rate_progress, run_progress
from iml_tui.config import StreamConfig, load_config
from iml_tui.demo.assets import is_demo, resolve_feat_root
from iml_tui.errors import UserError

if TYPE_CHECKING:
    from iml_tui.engine.budgets import PlanParams


def run_stream_command(
    task: str,
    preset: Path | None,
    overrides: Mapping[str, Any],
    sets: list[str] | None,
    command: str,
) -> None:
    """Load the config, run every stream run with a progress bar, print the score table."""
    from iml_tui.bench.stream_report import collect_runs, print_scores
    from iml_tui.bench.stream_runs import plan_runs, run_all
    from iml_tui.engine.paradigms.stream import BatchEvent

    cfg = load_config(StreamConfig, preset, overrides, sets)
    if cfg.task != task:
        raise UserError(
            f"the config says task {cfg.task!r}, the command {task!r}",
            preset,
            "drop 'task' from the preset or match --task",
        )
    if is_demo(cfg.feat_root):
        with rate_progress("items") as progress:
            cfg = dataclasses.replace(
                cfg, feat_root=resolve_feat_root(task, cfg.feat_root, progress)
            )
    err = err_console()
    planned = plan_runs(cfg)
    total = sum(r.n_batches for r in planned)
    err.print(f"{len(planned)} run(s), {total} batches, output in {cfg.out}")
    with run_progress("batches", total, len(planned)) as bar:

        def on_event(ev: BatchEvent) -> None:
            bar.step(
                f"{ev.run} #{ev.pass_ + 1}: pre-DCF {ev.pre_dcf:.3f}"
                f" DCF {ev.dcf:.3f}, {ev.n_al} AL + {ev.n_cf} CF"
            )

        run_all(cfg, command, on_event, planned, bar.run_done)
    print_scores(collect_runs([r.run_dir for r in planned]), _out())


def order_command(
    method: str,
    split: str,
    seed: int,
    feat_root: Path | None,
    features: list[str] | None,
    out: Path | None,
    preset: Path | None,
    sets: list[str] | None,
) -> Path:
    """Write the LID stream order of ``split`` for ``seed`` (what simulate makes itself)."""
    from iml_tui.data.orders import ORDER_KINDS, write_order
    from iml_tui.data.stream_data import load_lid_split
    from iml_tui.engine.paradigms.stream import lid_order

    if method not in ORDER_KINDS:
        raise UserError(
            f"unknown order method {method!r}", None, f"use one of {', '.join(ORDER_KINDS)}"
        )
    cfg = load_config(
        StreamConfig,
        preset,
        {
            "feat_root": None if feat_root is None else str(feat_root),
            "features": features,
            "split": split,
            "seed": seed,
            "order": method,
        },
        sets,
    )
    table = load_lid_split(cfg.feat_root, cfg.features, cfg.split, cfg.rnn_layers > 0)
    path = out or Path(cfg.feat_root) / "orders" / f"{cfg.split}_{method}_seed{cfg.seed}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_order(path, lid_order(cfg, table))
    err_console().print(f"wrote {path} ({table.n} samples, {cfg.split}, {method}, seed {cfg.seed})")
    return path


def budget_plan_command(
    kind: str, runs_dir: Path, name: str, params: PlanParams | None = None
) -> None:
    from iml_tui.engine.budgets import write_budget_plans

    paths = write_budget_plans(kind, runs_dir, name, params)
    err_console().print(
        f"wrote {len(paths)} plan(s) in {paths[0].parent}; "
        f"use them with --budget-plan {paths[0].parent}"
    )


def score_command(
    runs: Sequence[Path], as_csv: bool, as_latex: bool, compare: tuple[Path, Path] | None
) -> None:
    from iml_tui.bench import stream_report as rep

    if compare is not None:
        if runs:
            raise UserError(
                "give either run folders or --compare A B",
                None,
                "e.g. iml-tui score --compare runs/al runs/cf",
            )
        a, b = compare
        results = rep.compare(a, b)
        if as_csv:
            sys.stdout.write(rep.comparison_csv(results))
        else:
            rep.print_comparison(results, str(a), str(b), _out())
        return
    found = rep.collect_runs(runs)
    if as_csv:
        sys.stdout.write(rep.scores_csv(found))
    if as_latex:
        sys.stdout.write(rep.scores_latex(found))
    if not (as_csv or as_latex):
        rep.print_scores(found, _out())


def err_console() -> Console:
    """The CLI's stderr console: full width when redirected."""
    from iml_tui.cli.common import err_console as make

    return make()


def _out() -> Console:
    """The CLI's stdout console: full width when piped."""
    from iml_tui.cli.common import out_console

    return out_console()
