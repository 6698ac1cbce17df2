"""The headless command line: thin wrappers around the engine, one function per command."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from iml_tui.errors import UserError

app = typer.Typer(
    name="iml-tui",
    help="Label audio with a model in the loop: pool-based active learning (MFFT) and "
    "interactive ML, headless or in a terminal UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pool_app = typer.Typer(help="Make and inspect pool stores (HDF5 embeddings + frame targets).",
                       no_args_is_help=True)
app.add_typer(pool_app, name="pool")


class Task(StrEnum):
    bioacoustic = "bioacoustic"


class Strategy(StrEnum):
    rand = "rand"
    ft = "ft"
    mp = "mp"
    mfft = "mfft"


def _csv_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def simulate(
    task: Annotated[Task, typer.Option(help="Which paradigm and task to simulate.")] =
    Task.bioacoustic,
    pool_dir: Annotated[Path | None, typer.Option(
        help="Folder with train.h5, valid.h5, test.h5 [config: pool_dir].")] = None,
    strategy: Annotated[str | None, typer.Option(
        help="rand, ft, mp, mfft, comma-separated, or all [config: strategy].")] = None,
    start: Annotated[str | None, typer.Option(
        help="cold, warm or all [config: start].")] = None,
    warm_k: Annotated[int | None, typer.Option(
        help="Warm start: positives per class in the first round [config: warm_k].")] = None,
    budgets: Annotated[str | None, typer.Option(
        help="Cumulative annotation budgets, e.g. 50,100,150 [config: budgets].")] = None,
    seeds: Annotated[str | None, typer.Option(
        help="Seeds (repeats), e.g. 1-5 or 1,3 [config: seeds].")] = None,
    jobs: Annotated[int | None, typer.Option(
        help="Runs in parallel processes [config: jobs].")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder [config: out].")] = None,
    full: Annotated[bool | None, typer.Option(
        "--full/--no-full", help="Also train the fully supervised reference [config: full].")
    ] = None,
    device: Annotated[str | None, typer.Option(
        help="auto, cpu, cuda or cuda:N [config: device].")] = None,
    threads: Annotated[int | None, typer.Option(
        help="Torch threads per run; 0 = cores / jobs [config: threads].")] = None,
    max_epochs: Annotated[int | None, typer.Option(
        help="Cap on training epochs per round [config: max_epochs].")] = None,
    config: Annotated[Path | None, typer.Option(
        help="YAML preset, e.g. configs/bioacoustic.yaml.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any config key: --set lr=1e-3 (repeatable).")] = None,
) -> None:
    """Reproduce the paper protocol with an oracle: select, train, evaluate, round after round."""
    from iml_tui.config import BioacousticConfig, load_config, parse_int_list, parse_seeds

    overrides: dict[str, Any] = {
        "pool_dir": str(pool_dir) if pool_dir else None,
        "strategy": _csv_list(strategy), "start": _csv_list(start), "warm_k": warm_k,
        "budgets": _parse(parse_int_list, budgets, "--budgets"),
        "seeds": _parse(parse_seeds, seeds, "--seeds"),
        "jobs": jobs, "out": str(out) if out else None, "full": full, "device": device,
        "threads": threads, "max_epochs": max_epochs,
    }
    cfg = load_config(BioacousticConfig, config, overrides, set_)
    _run_bioacoustic(cfg)


def _parse(fn: Any, value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return fn(value)
    except ValueError as exc:
        raise UserError(f"{flag} {value!r}: {exc}", None,
                        f"write {flag} as a comma-separated list or a range like 1-5") from exc


def _run_bioacoustic(cfg: Any) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from iml_tui.bench.report import plot_learning_curves, print_results, write_al_results
    from iml_tui.bench.sweep import RoundEvent, prepare_sweep, run_sweep

    console = Console(stderr=True)
    prepared = prepare_sweep(cfg)
    n_rounds = len(prepared[0]) * len(cfg.budgets) + (len(cfg.seeds) if cfg.full else 0)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console,
                  transient=False) as progress:
        bar = progress.add_task("rounds", total=n_rounds, last="")

        def on_event(ev: RoundEvent) -> None:
            progress.update(bar, advance=1,
                            last=f"{ev.run} @ {ev.budget}: test mAP {100 * ev.test_map:.1f}")

        result = run_sweep(cfg, on_event, prepared)
        progress.update(bar, completed=n_rounds)
    out = Path(cfg.out)
    write_al_results(result, cfg.warm_k, out / "al_results.csv")
    plot_learning_curves(result, out / "learning_curves.png")
    print_results(result, Console())
    console.print(f"results: {out / 'al_results.csv'}, {out / 'learning_curves.png'}, "
                  f"{out / 'manifest.json'}, per run: {out / 'runs'}/*/rounds.csv")


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
) -> None:
    """Select one round of clips to annotate; prints pool indices, one per line, in order."""
    from iml_tui.engine.one_round import select_from_files

    picked = select_from_files(pool, labeled, strategy.value, n, seed, scores, threshold,
                               warm_k)
    sys.stdout.write("".join(f"{int(i)}\n" for i in picked))


@pool_app.command("synth")
def pool_synth(
    out: Annotated[Path, typer.Option(help="Folder for train.h5, valid.h5, test.h5.")],
    n_train: Annotated[int, typer.Option(help="Clips in the train pool.")] = 21414,
    n_valid: Annotated[int, typer.Option(help="Clips in the valid pool.")] = 4600,
    n_test: Annotated[int, typer.Option(help="Clips in the test pool.")] = 4600,
    t: Annotated[int, typer.Option("--t", help="Frames per clip.")] = 32,
    d: Annotated[int, typer.Option("--d", help="Embedding dimension.")] = 2048,
    classes: Annotated[str | None, typer.Option(
        help="Class names, comma-separated (default: the paper's 7); needs --priors.")] = None,
    priors: Annotated[str | None, typer.Option(
        help="Clip-level positive share per class, comma-separated (default: the paper's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Write synthetic train/valid/test pools with clusters, rare classes and label noise."""
    from rich.console import Console

    from iml_tui.data.demo import synth_config_from_options
    from iml_tui.data.synth import synth_pools

    prior_values = None
    if priors is not None:
        prior_values = [float(v) for v in _parse(_float_list, priors, "--priors")]
    cfg = synth_config_from_options(n_train, n_valid, n_test, t, d, _csv_list(classes),
                                    prior_values, seed)
    with _split_progress() as progress:
        paths = synth_pools(out, cfg, progress)
    Console(stderr=True).print("wrote " + ", ".join(str(p) for p in paths.values()))


@contextmanager
def _split_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar fed by ``progress(split, done, total)`` callbacks."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("clips"), TimeElapsedColumn(),
                  console=Console(stderr=True)) as bars:
        tasks: dict[str, Any] = {}

        def update(split: str, done: int, total: int) -> None:
            if split not in tasks:
                tasks[split] = bars.add_task(split, total=total)
            bars.update(tasks[split], completed=done)

        yield update


def _float_list(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


@pool_app.command("info")
def pool_info(path: Annotated[Path, typer.Argument(help="A pool store (HDF5).")]) -> None:
    """Shapes, classes, clip-level positives and attributes of a pool store."""
    from rich.console import Console
    from rich.table import Table

    from iml_tui.data.store import PoolStore

    store = PoolStore(path)
    clip = store.clip_labels()
    table = Table(title=f"{path}: N={store.n}, T={store.t}, D={store.d}, C={store.c}")
    table.add_column("class")
    table.add_column("positive clips", justify="right")
    for i, name in enumerate(store.class_list):
        table.add_row(name, str(int(clip[:, i].sum())))
    table.add_row("none of these", str(int((clip.max(axis=1) == 0).sum())))
    console = Console()
    console.print(table)
    for key, value in sorted(store.attrs.items()):
        console.print(f"{key}: {value}", highlight=False)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo pools and results go.")] =
    Path("demo_runs"),
    jobs: Annotated[int, typer.Option(help="Runs in parallel processes.")] = 2,
) -> None:
    """The main job on bundled data: a small simulated MFFT study, with its results table."""
    from rich.console import Console

    from iml_tui.config import BioacousticConfig, load_config
    from iml_tui.data.demo import ensure_demo_pools

    with _split_progress() as progress:
        pools = ensure_demo_pools(out / "pools", progress=progress)
    preset = Path(__file__).resolve().parent.parent / "configs" / "demo_bioacoustic.yaml"
    cfg = load_config(BioacousticConfig, preset if preset.exists() else None,
                      {"pool_dir": str(pools), "out": str(out / "bioacoustic"), "jobs": jobs})
    Console(stderr=True).print(f"demo: pools in {pools}, results in {cfg.out}")
    _run_bioacoustic(cfg)


def main() -> None:
    """Console entry point: user errors are one line on stderr and exit status 2."""
    try:
        app()
    except UserError as exc:
        sys.stderr.write(f"iml-tui: error: {exc}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write("iml-tui: interrupted; finished rounds are kept: run the same command "
                         "again to resume\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
