"""The headless command line: thin wrappers around the engine, one function per command."""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from iml_tui.errors import UserError

if typing.TYPE_CHECKING:
    import rich.console

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
    lid = "lid"
    vtd = "vtd"


class Strategy(StrEnum):
    rand = "rand"
    ft = "ft"
    mp = "mp"
    mfft = "mfft"


class Executor(StrEnum):
    local = "local"
    ray = "ray"


def _csv_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def simulate(
    task: Annotated[Task, typer.Option(help="Which paradigm and task to simulate.")] =
    Task.bioacoustic,
    pool_dir: Annotated[Path | None, typer.Option(
        help="Folder with train.h5, valid.h5, test.h5 (config: pool_dir).")] = None,
    strategy: Annotated[str | None, typer.Option(
        help="rand, ft, mp, mfft, comma-separated, or all (config: strategy).")] = None,
    start: Annotated[str | None, typer.Option(
        help="cold, warm or all (config: start).")] = None,
    warm_k: Annotated[int | None, typer.Option(
        help="Warm start: positives per class in the first round (config: warm_k).")] = None,
    budgets: Annotated[str | None, typer.Option(
        help="Cumulative annotation budgets, e.g. 50,100,150 (config: budgets).")] = None,
    seeds: Annotated[str | None, typer.Option(
        help="Seeds (repeats), e.g. 1-5 or 1,3 (config: seeds).")] = None,
    jobs: Annotated[int | None, typer.Option(
        help="Runs in parallel processes (config: jobs).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (config: out).")] = None,
    full: Annotated[bool | None, typer.Option(
        "--full/--no-full", help="Also train the fully supervised reference (config: full).")
    ] = None,
    device: Annotated[str | None, typer.Option(
        help="auto, cpu, cuda or cuda:N (config: device).")] = None,
    threads: Annotated[int | None, typer.Option(
        help="Torch threads per run; 0 = cores / jobs (config: threads).")] = None,
    max_epochs: Annotated[int | None, typer.Option(
        help="Cap on training epochs per round; lid / vtd: -1 = none, patience alone "
        "(config: max_epochs).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="YAML preset, e.g. configs/bioacoustic.yaml (lid / vtd: configs/<task>.yaml "
        "by default).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any config key: --set lr=1e-3 (repeatable).")] = None,
    # --- the streaming paradigm (--task lid | vtd) ---
    split: Annotated[str | None, typer.Option(
        help="lid: the split streamed, train/dev/test (config: split).")] = None,
    env: Annotated[str | None, typer.Option(
        help="vtd: the environment streamed, e.g. rm1_mc20, or all (config: env).")] = None,
    target: Annotated[str | None, typer.Option(
        help="lid: target language code, or all (one run each) (config: target).")] = None,
    features: Annotated[str | None, typer.Option(
        help="Feature sets to concatenate, e.g. ecapalang,wavlm (config: features).")] = None,
    feat_root: Annotated[Path | None, typer.Option(
        help="Folder holding one sub-folder per feature set (config: feat_root).")] = None,
    order: Annotated[str | None, typer.Option(
        help="random, cluster (lid), sorted, or an order file (config: order).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the run (config: seed).")] = None,
    n_queries: Annotated[int | None, typer.Option(
        help="AL queries per batch (config: n_queries).")] = None,
    al_method: Annotated[str | None, typer.Option(
        help="smax, ent, necs, rand, egl, pert, cover, rank, split, plateau "
        "(config: al_method).")] = None,
    adapt_distr: Annotated[float | None, typer.Option(
        help="Wanted target share of the labelled pool (config: adapt_distr).")] = None,
    sim_type: Annotated[str | None, typer.Option(
        help="Corrective feedback: fps, tps, fns, tns, all, e.g. fpstps; none = plain AL "
        "(config: sim_type).")] = None,
    max_fb_samples: Annotated[int | None, typer.Option(
        help="Most CF items per batch; default none (no cap, as the original) "
        "(config: max_fb_samples).")] = None,
    rank_cf: Annotated[bool | None, typer.Option(
        "--rank-cf/--no-rank-cf", help="Rank CF items by confidence (config: rank_cf).")] = None,
    boot_in: Annotated[bool | None, typer.Option(
        "--boot-in/--no-boot-in", help="Bootstrap from the stream (config: boot_in).")] = None,
    bootstrap: Annotated[int | None, typer.Option(
        help="Bootstrap size (half target) (config: bootstrap).")] = None,
    context: Annotated[int | None, typer.Option(
        help="Context samples on each side (config: context).")] = None,
    samples_per_batch: Annotated[int | None, typer.Option(
        help="lid: samples per batch (config: samples_per_batch).")] = None,
    budget_plan: Annotated[Path | None, typer.Option(
        help="Budget plan folder or file from `budget plan` (config: budget_plan).")] = None,
    drift: Annotated[str | None, typer.Option(
        help="Drift-based budget: none, adwin, hdddm (config: drift).")] = None,
    forget_n_batches: Annotated[int | None, typer.Option(
        help="Forget stream labels older than n batches (config: forget_n_batches).")] = None,
    memory_cap: Annotated[int | None, typer.Option(
        help="Ring buffer of stream labels, 0 = off (config: memory_cap).")] = None,
    reset_weights: Annotated[bool | None, typer.Option(
        "--reset-weights/--no-reset-weights",
        help="Re-initialise the model before every fit (config: reset_weights).")] = None,
    loss: Annotated[str | None, typer.Option(
        help="default, nll, dcf, imlm, focal (config: loss).")] = None,
    compat: Annotated[str | None, typer.Option(
        help="ours, or original: the original's reset_weights and forgetting, to compare with "
        "published runs (config: compat).")] = None,
) -> None:
    """Simulate a paradigm with an oracle: bioacoustic pool AL rounds, or an lid / vtd stream."""
    if task is not Task.bioacoustic:
        _reject({"--pool-dir": pool_dir, "--strategy": strategy, "--start": start,
                 "--warm-k": warm_k, "--budgets": budgets, "--seeds": seeds, "--full": full},
                task)
        stream = {"split": split, "env": env, "target": target,
                  "features": _csv_list(features), "feat_root": _str(feat_root), "order": order,
                  "seed": seed, "n_queries": n_queries, "al_method": al_method,
                  "adapt_distr": adapt_distr, "sim_type": sim_type,
                  "max_fb_samples": max_fb_samples, "rank_cf": rank_cf, "boot_in": boot_in,
                  "bootstrap": bootstrap, "context": context,
                  "samples_per_batch": samples_per_batch, "budget_plan": _str(budget_plan),
                  "drift": drift, "forget_n_batches": forget_n_batches,
                  "memory_cap": memory_cap, "reset_weights": reset_weights, "loss": loss,
                  "compat": compat, "jobs": jobs, "out": _str(out), "device": device,
                  "threads": threads, "max_epochs": max_epochs}
        _run_stream_task(task.value, config, stream, set_)
        return
    _reject({"--split": split, "--env": env, "--target": target, "--features": features,
             "--feat-root": feat_root, "--order": order, "--seed": seed,
             "--n-queries": n_queries, "--al-method": al_method, "--adapt-distr": adapt_distr,
             "--sim-type": sim_type, "--max-fb-samples": max_fb_samples, "--rank-cf": rank_cf,
             "--boot-in": boot_in, "--bootstrap": bootstrap, "--context": context,
             "--samples-per-batch": samples_per_batch, "--budget-plan": budget_plan,
             "--drift": drift, "--forget-n-batches": forget_n_batches,
             "--memory-cap": memory_cap, "--reset-weights": reset_weights, "--loss": loss,
             "--compat": compat},
            task)
    from iml_tui.config import BioacousticConfig, load_config, parse_int_list, parse_seeds

    overrides: dict[str, Any] = {
        "pool_dir": str(pool_dir) if pool_dir else None,
        "strategy": _csv_list(strategy), "start": _csv_list(start), "warm_k": warm_k,
        "budgets": _parse(parse_int_list, budgets, "--budgets"),
        "seeds": _parse(parse_seeds, seeds, "--seeds"),
        "jobs": jobs, "out": str(out) if out else None, "full": full, "device": device,
        "threads": threads, "max_epochs": max_epochs,
    }
    from iml_tui.demo.assets import is_demo

    named = config is not None or (pool_dir is not None and not is_demo(str(pool_dir)))
    preset = config if named else _demo_preset("bioacoustic")
    cfg = load_config(BioacousticConfig, preset, overrides, set_)
    _run_bioacoustic(cfg)


def _str(value: Path | None) -> str | None:
    return None if value is None else str(value)


def _reject(flags: dict[str, Any], task: Task) -> None:
    given = [flag for flag, value in flags.items() if value is not None]
    if given:
        raise UserError(f"{', '.join(given)} do(es) not apply to --task {task.value}", None,
                        "drop the flag, or set the task it belongs to")


def _run_stream_task(task: str, config: Path | None, overrides: dict[str, Any],
                     sets: list[str] | None) -> None:
    from iml_tui.bench.stream_cli import run_stream_command
    from iml_tui.demo.assets import is_demo

    preset = config
    if preset is None and (overrides.get("feat_root") is None or is_demo(overrides["feat_root"])):
        preset = _demo_preset(task)
    elif preset is None and (CONFIGS / f"{task}.yaml").is_file():
        preset = CONFIGS / f"{task}.yaml"
    run_stream_command(task, preset, {**overrides, "task": task}, sets, _command_line())


CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _demo_preset(task: str) -> Path | None:
    """``configs/demo_<task>.yaml``, said on stderr: what runs when no data is named."""
    preset = CONFIGS / f"demo_{task}.yaml"
    if not preset.is_file():
        return None
    sys.stderr.write(f"iml-tui: no data named: the bundled demo ({preset.name}); give "
                     f"--config configs/{task}.yaml and your data for the paper's settings\n")
    return preset


def _command_line() -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in ["iml-tui", *sys.argv[1:]])


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
    from iml_tui.demo.assets import is_demo, resolve_pool_dir

    console = Console(stderr=True)
    if is_demo(cfg.pool_dir):
        with _rate_progress("items") as build_progress:
            cfg = dataclasses.replace(cfg, pool_dir=resolve_pool_dir(cfg.pool_dir,
                                                                     build_progress))
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
    print_results(result, out_console())
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


@pool_app.command("convert")
def pool_convert(
    path: Annotated[Path, typer.Argument(help="A pool store (HDF5).")],
    out: Annotated[Path, typer.Option(help="The new pool store to write.")],
    dtype: Annotated[str, typer.Option(
        help="Storage dtype of the selection array: float16 (half the size) or float32; "
        "distances are computed in float32 either way.")] = "float16",
) -> None:
    """Write a copy of a pool with its selection array in another dtype."""
    from iml_tui.data.store import convert_pool

    written = convert_pool(path, out, dtype)
    sys.stdout.write(f"{written}\n")


@pool_app.command("info")
def pool_info(path: Annotated[Path, typer.Argument(help="A pool store (HDF5).")]) -> None:
    """Shapes, classes, clip-level positives and attributes of a pool store."""
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
    console = out_console()
    console.print(table)
    for key, value in sorted(store.attrs.items()):
        console.print(f"{key}: {value}", highlight=False)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo project and results go.")] =
    Path("demo_runs"),
    headless: Annotated[bool, typer.Option(
        "--headless/--tui", help="Run the simulated study even in a terminal.")] = False,
    jobs: Annotated[int, typer.Option(help="Headless: runs in parallel processes.")] = 2,
    player: Annotated[str, typer.Option(
        help="TUI audio backend: auto, local (sound card), browser (ssh -L) or file.")] = "auto",
) -> None:
    """The main job on the bundled demo birds (pools built on first use): label them in the
    terminal with MFFT asking; without a terminal, or with --headless, a simulated study of the
    four strategies, cold and warm, with its results table."""
    from iml_tui.demo.assets import bird_pools

    with _rate_progress("items") as progress:
        pools = bird_pools(progress)
    if headless or not (sys.stdin.isatty() and sys.stdout.isatty()):
        from iml_tui.config import BioacousticConfig, load_config

        sys.stderr.write(f"iml-tui demo: simulated study on {pools}, results in "
                         f"{out / 'bioacoustic'}\n")
        cfg = load_config(BioacousticConfig, CONFIGS / "demo_bioacoustic.yaml",
                          {"pool_dir": str(pools), "out": str(out / "bioacoustic"), "jobs": jobs})
        _run_bioacoustic(cfg)
        return
    from iml_tui.tui.run import run_label

    options = {"task": "bioacoustic", "pool_dir": str(pools), "strategy": "mfft",
               "budgets": list(DEMO_LABEL_BUDGETS)}
    run_label(out / "label-birds", options, list(DEMO_LABEL_SETTINGS), None, player, 0, None,
              True)


#: The demo labelling project: rounds of 10 labels, a small classifier that retrains in seconds.
DEMO_LABEL_BUDGETS = (10, 20, 30, 40, 60, 80, 100, 150, 200)
DEMO_LABEL_SETTINGS = ("hidden=256", "max_epochs=300")


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
    feat_root: Annotated[Path | None, typer.Option(help="Feature root (config: feat_root).")]
    = None,
    features: Annotated[str | None, typer.Option(
        help="Feature sets, e.g. ecapalang (config: features).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Order file (default <feat_root>/orders/<split>_<method>_seed<S>.txt).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML preset, e.g. configs/lid.yaml.")]
    = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key.")]
    = None,
) -> None:
    """Write the order in which an LID split is streamed (one sample index per line)."""
    from iml_tui.bench.stream_cli import order_command

    order_command(method.value, split, seed, feat_root, _csv_list(features), out, config, set_)


@budget_app.command("plan")
def budget_plan_cmd(
    kind: Annotated[PlanType, typer.Argument(help="How the total is spread over the batches.")],
    runs_dir: Annotated[Path, typer.Argument(help="Reference run, or a folder of runs.")],
    name: Annotated[str, typer.Argument(help="Name of the plan (a folder in RUNS_DIR/"
                                        "budget_plans).")],
    initial_value: Annotated[float | None, typer.Option(
        help="linear / exponential: the first batch's count (default: the shape alone).")]
    = None,
    p: Annotated[float, typer.Option(help="exponential: decay per batch, (1 - p)^k.")] = 0.03,
    lam_r: Annotated[float, typer.Option(help="geometric: regulariser of the ratio r.")] = 0.01,
    a: Annotated[float, typer.Option(help="skew: width of the Rayleigh-like curve.")] = 0.25,
    sessions: Annotated[str | None, typer.Option(
        help="sessions: batch indices that get the budget, e.g. 0,12,30.")] = None,
    batch_size: Annotated[int, typer.Option(
        help="frontheavy: samples per batch when the run lists none.")] = 720,
) -> None:
    """Plan queries per batch with the same total as each reference run (for --budget-plan)."""
    from iml_tui.bench.stream_cli import budget_plan_command
    from iml_tui.config import parse_int_list
    from iml_tui.engine.budgets import PlanParams

    params = PlanParams(initial_value=initial_value, p=p, lam_r=lam_r, a=a,
                        sessions=None if sessions is None
                        else tuple(_parse(parse_int_list, sessions, "--sessions")),
                        batch_size=batch_size)
    budget_plan_command(kind.value, runs_dir, name, params)


@app.command("score")
def score_cmd(
    runs: Annotated[list[Path] | None, typer.Argument(
        help="Run folders, or folders of runs (pooled).")] = None,
    csv_: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table.")]
    = False,
    latex: Annotated[bool, typer.Option("--latex", help="A LaTeX tabular on stdout.")] = False,
    compare: Annotated[tuple[Path, Path] | None, typer.Option(
        help="Paired test per metric between two runs (or folders of runs): --compare A B.")]
    = None,
) -> None:
    """DCF, FNR, FPR, IMLM, % adapt and % target per stream run and pooled over runs."""
    from iml_tui.bench.stream_cli import score_command

    score_command(runs or [], csv_, latex, compare)


prepare_app = typer.Typer(help="Import a corpus (DCASE, Common Voice, VTD) into a prepared "
                          "folder that `iml-tui extract` reads.", no_args_is_help=True)
app.add_typer(prepare_app, name="prepare")


class Division(StrEnum):
    al = "al"
    sl = "sl"
    both = "both"


class NormSource(StrEnum):
    prepared = "prepared"
    checkpoint = "checkpoint"


@prepare_app.command("dcase")
def prepare_dcase_cmd(
    source: Annotated[Path, typer.Option(help="DCASE 2024 Task 5 development zip or folder.")],
    out: Annotated[Path, typer.Option(help="Folder for the prepared divisions.")],
    division: Annotated[Division, typer.Option(help="al (the pool), sl (encoder training) or "
                                               "both.")] = Division.both,
) -> None:
    """DCASE 2024 Task 5 -> <out>/al (pool: train/valid/test) and <out>/sl (encoder training):
    temporal splits, 10 s clips every 5 s, 32 frame targets, log-mel statistics (SPEC A.1)."""
    from iml_tui.data.dcase import prepare_dcase

    with _rate_progress("files") as progress:
        result = prepare_dcase(source, out, division.value, progress)
    _print_tables(result.tables(), result.notes)


@prepare_app.command("lid")
def prepare_lid_cmd(
    source: Annotated[Path, typer.Option(help="Folder with train/, dev/, test/ audio clips.")],
    out: Annotated[Path, typer.Option(help="Folder for the prepared splits.")],
    languages: Annotated[Path | None, typer.Option(
        help="CSV/TSV mapping file -> language (default: the file name's third '_' token).")]
    = None,
) -> None:
    """Common Voice style language-ID folders -> utterance splits with one-hot languages."""
    from iml_tui.data.commonvoice import prepare_lid

    _print_tables([prepare_lid(source, out, languages)], [])


@prepare_app.command("vtd")
def prepare_vtd_cmd(
    source: Annotated[Path, typer.Option(help="Folder with one sub-folder per environment.")],
    out: Annotated[Path, typer.Option(help="Folder for the prepared environments.")],
) -> None:
    """VTD sessions (audio + per-segment 0/1 labels) -> 5 s segment splits per environment."""
    from iml_tui.data.vtd import prepare_vtd

    _print_tables([prepare_vtd(source, out)], [])


@prepare_app.command("recordings")
def prepare_recordings_cmd(
    source: Annotated[Path, typer.Option(help="Folder of recordings (wav, flac, ogg, mp3).")],
    classes: Annotated[str, typer.Option(help='Class names, comma-separated: "A,B,C".')],
    out: Annotated[Path, typer.Option(help="Folder for the prepared split.")],
    clip: Annotated[float, typer.Option(help="Clip length in seconds.")] = 10.0,
    hop: Annotated[float, typer.Option(help="Seconds between clip starts.")] = 5.0,
    labels: Annotated[Path | None, typer.Option(
        help="Annotation file or folder (Raven, Audacity, CSV file,onset,offset,label).")] = None,
    labels_format: Annotated[str | None, typer.Option(
        help="raven|audacity|csv (default: told from the content).")] = None,
    channel: Annotated[str, typer.Option(help="0 (first channel) or mix.")] = "0",
) -> None:
    """Own recordings -> clips with frame targets where annotated (labelled.npy marks them)."""
    from iml_tui.data.recordings import prepare_recordings

    _print_tables([prepare_recordings(source, out, classes, clip, hop, labels, labels_format,
                                      channel)], [])


@app.command("extract")
def extract_cmd(
    input_: Annotated[Path, typer.Option("--input", help="A prepared folder (every split in it) "
                                         "or one split folder.")],
    out: Annotated[Path, typer.Option(help="Pool store (.h5) for one split, else a folder: "
                                      "<out>/<split>.h5.")],
    encoder: Annotated[str, typer.Option(help="cnn14, ecapa, xvector, wavlm or mfcc-stats.")]
    = "mfcc-stats",
    checkpoint: Annotated[Path | None, typer.Option(help="Local weights of the encoder.")]
    = None,
    batch_size: Annotated[int, typer.Option(
        help="Clips per batch and per saved chunk (a resumed run keeps its first value).")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    norm: Annotated[NormSource, typer.Option(
        help="cnn14 log-mel statistics: of the prepared corpus, or of the checkpoint.")]
    = NormSource.prepared,
) -> None:
    """Encode prepared clips into pool stores; resumable. Exit status 3: some files skipped."""
    from iml_tui.features.extract import EXIT_SKIPPED, extract_features

    with _rate_progress("clips") as progress:
        result = extract_features(input_, out, encoder, checkpoint, batch_size, device,
                                  norm.value, progress)
    _report_extract(result)
    if result.skipped:
        raise typer.Exit(EXIT_SKIPPED)


@contextmanager
def _rate_progress(unit: str) -> Iterator[Callable[[str, int, int], None]]:
    """Items-per-second progress bars (:func:`iml_tui.bench.progress.rate_progress`)."""
    from iml_tui.bench.progress import rate_progress

    with rate_progress(unit) as update:
        yield update


def _print_tables(tables: list[Any], notes: list[str]) -> None:
    from rich.table import Table

    console = out_console()
    for t in tables:
        table = Table(title=t.title)
        for i, col in enumerate(t.columns):
            table.add_column(col, justify="left" if i == 0 else "right")
        for row in t.rows:
            table.add_row(*(str(c) for c in row))
        console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)


def _report_extract(result: Any) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    for o in result.outputs:
        resumed = f", {o.resumed_chunks} chunk(s) resumed" if o.resumed_chunks else ""
        console.print(f"wrote {o.store}: {o.kept} of {o.clips} clips{resumed}", highlight=False,
                      soft_wrap=True)
    for s in result.skipped:
        console.print(f"[yellow]skipped[/] {s.file} ({s.clips} clip(s)): {s.reason}",
                      highlight=False, soft_wrap=True)
    if result.skipped:
        console.print(f"{len(result.skipped)} file(s) skipped (listed in each store's 'skipped' "
                      "attribute); exit status 3", highlight=False, soft_wrap=True)


# --- supervised encoder phase (SPEC A.5) --------------------------------------------------------
encoder_app = typer.Typer(help="Train encoders: CNN14 on the SL division (SPEC A.5) and evaluate "
                          "it; utterance encoders (ECAPA, x-vector) on labelled utterances.",
                          no_args_is_help=True)
app.add_typer(encoder_app, name="encoder")


@encoder_app.command("train")
def encoder_train_cmd(
    data: Annotated[Path, typer.Option(help="`prepare dcase` output (with sl/) or its sl folder.")],
    out: Annotated[Path, typer.Option(help="Run folder: encoder_best.pt, resume state, history.")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="Start from this CNN14 (PANNs Cnn14*.pth or an iml-tui file).")] = None,
    from_scratch: Annotated[bool, typer.Option(help="Start from random weights.")] = False,
    widths: Annotated[str, typer.Option(help="6 CNN14 widths (--from-scratch only).")]
    = "64,128,256,512,1024,2048",
    epochs: Annotated[int, typer.Option(help="Epochs in all (a resumed run continues).")] = 30,
    batch_size: Annotated[int, typer.Option(help="10 s cuts per step.")] = 32,
    steps_per_epoch: Annotated[int, typer.Option(help="Steps per epoch.")] = 200,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    hidden: Annotated[int, typer.Option(help="Hidden width of the frame head.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of cuts, augmentation, init.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train CNN14 + a frame head on SL cuts; keep the best-valid-mAP encoder. Resumable."""
    from rich.console import Console

    from iml_tui.features.finetune import FinetuneConfig, finetune_encoder

    cfg = FinetuneConfig(epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                         lr=lr, hidden=hidden, seed=seed, device=device,
                         widths=tuple(_parse(lambda t: [int(v) for v in t.split(",")], widths,
                                             "--widths")))
    console = Console(stderr=True)
    with _rate_progress("") as progress:
        res = finetune_encoder(data, out, cfg, checkpoint, from_scratch, progress, lambda e:
                               console.print(f"epoch {e.epoch}: loss {e.train_loss:.4f}, valid "
                                             f"mAP {100 * e.valid_map:.2f}%"
                                             + (" (best)" if e.best else ""), highlight=False))
    console.print(f"best valid mAP {100 * res.best_valid_map:.2f}% (epoch {res.best_epoch}) -> "
                  f"{res.best_path}", highlight=False, soft_wrap=True)


@encoder_app.command("eval")
def encoder_eval_cmd(
    checkpoint: Annotated[Path, typer.Option(help="encoder_best.pt of `encoder train`.")],
    data: Annotated[Path, typer.Option(help="`prepare dcase` output, its sl folder or a split.")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 16,
) -> None:
    """Frame AP per class on the SL valid split of a saved encoder + head."""
    from iml_tui.data.corpus import SummaryTable
    from iml_tui.features.finetune import evaluate_encoder

    with _rate_progress("") as progress:
        ev = evaluate_encoder(checkpoint, data, "valid", device, batch_size, progress)
    rows: list[list[str | int | float]] = [
        [c, p, f"{100 * a:.2f}"] for c, p, a in zip(ev.class_list, ev.positives, ev.ap,
                                                    strict=True)]
    rows.append(["mAP (macro)", sum(ev.positives), f"{100 * ev.map:.2f}"])
    _print_tables([SummaryTable(f"{ev.split}: {ev.clips} clips", ["class", "positive frames",
                                                                   "AP %"], rows)], [])


class UtteranceArch(StrEnum):
    ecapa = "ecapa"
    xvector = "xvector"


@encoder_app.command("train-utterance")
def encoder_train_utterance_cmd(
    data: Annotated[Path, typer.Option(help="`prepare lid` output (with train/ and dev/).")],
    out: Annotated[Path, typer.Option(help="Model folder: speechbrain hyperparams.yaml + "
                                      "checkpoints, train_log.json, resume state.")],
    arch: Annotated[UtteranceArch, typer.Option(help="ECAPA-TDNN or x-vector.")]
    = UtteranceArch.ecapa,
    epochs: Annotated[int, typer.Option(help="Epochs in all (a resumed run continues).")] = 10,
    batch_size: Annotated[int, typer.Option(help="Random 2-3 s crops per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    channels: Annotated[int, typer.Option(help="Channels C of the TDNN layers ([C]*4 + [3C]).")]
    = 256,
    embedding_dim: Annotated[int, typer.Option(help="Embedding size D.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of crops, augmentation, init.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train an utterance encoder + classifier (e.g. language ID) at 16 kHz; keep the best dev
    accuracy. The folder loads as `--encoder ecapa|xvector --checkpoint <out>`. Resumable."""
    from rich.console import Console

    from iml_tui.features.train_utterance import UtteranceTrainConfig, train_utterance_encoder

    cfg = UtteranceTrainConfig(arch=arch.value, epochs=epochs, batch_size=batch_size, lr=lr,
                               channels=channels, embedding_dim=embedding_dim, seed=seed,
                               device=device)
    console = Console(stderr=True)
    with _rate_progress("") as progress:
        res = train_utterance_encoder(data, out, cfg, progress, lambda e: console.print(
            f"epoch {e.epoch}: loss {e.train_loss:.4f}, train acc {100 * e.train_accuracy:.1f}%, "
            f"dev accuracy {100 * e.dev_accuracy:.2f}% ({e.seconds:.1f} s)"
            + (" (best)" if e.best else ""), highlight=False))
    console.print(f"best dev accuracy {100 * res.best_dev_accuracy:.2f}% (epoch "
                  f"{res.best_epoch}, {len(res.class_list)} classes) -> {res.out}; use it with "
                  f"--encoder {res.arch} --checkpoint {res.out}", highlight=False, soft_wrap=True)
    if res.dev_excluded:
        console.print(f"note: {res.dev_excluded} dev utterance(s) of classes without training "
                      "utterances were not scored", highlight=False, soft_wrap=True)


@app.command("label")
def label_cmd(
    project: Annotated[Path | None, typer.Argument(
        help="Project folder (from `iml-tui project new`): opened, or resumed where it stopped. "
        "Without it, --task / --pool-dir make one in ./label-<task>-<strategy>.")] = None,
    task: Annotated[Task | None, typer.Option(help="What to label (new project).")] = None,
    pool_dir: Annotated[Path | None, typer.Option(
        help="Folder with train.h5 and valid.h5, or demo: the demo birds (new project).")]
    = None,
    strategy: Annotated[Strategy | None, typer.Option(help="Query strategy (new project).")]
    = None,
    budgets: Annotated[str | None, typer.Option(
        help="Cumulative label budgets per round, e.g. 50,100,150 (new project).")] = None,
    audio_root: Annotated[Path | None, typer.Option(
        help="Where the audio is, when it moved since the pool was made (new project).")]
    = None,
    annotator: Annotated[str | None, typer.Option(
        help="Name recorded with every label (default: the login name).")] = None,
    player: Annotated[str, typer.Option(
        help="Audio backend: auto, local (sound card), browser (ssh -L) or file.")] = "auto",
    port: Annotated[int, typer.Option(
        help="Port of the browser player on 127.0.0.1 (0: any free one).")] = 0,
    keys: Annotated[Path | None, typer.Option(
        help="YAML keymap remapping keys by binding id, e.g. keys: {label.submit: enter}.")]
    = None,
    autoplay: Annotated[bool, typer.Option(
        "--autoplay/--no-autoplay", help="Play each new item as it shows.")] = True,
    graphics: Annotated[str, typer.Option(
        help="Spectrogram drawing: auto, halfblock (any truecolor terminal) or kitty.")]
    = "auto",
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Project setting key=value (new project), e.g. --set seed=3.")] = None,
) -> None:
    """Label in the terminal: spectrogram, prediction, one key per class; retrains meanwhile."""
    from iml_tui.config import parse_int_list
    from iml_tui.demo.assets import is_demo, resolve_pool_dir
    from iml_tui.tui.run import run_label

    if pool_dir is not None and is_demo(str(pool_dir)):
        with _rate_progress("items") as progress:
            pool_dir = Path(resolve_pool_dir(str(pool_dir), progress))
    options = {"task": task.value if task else None,
               "pool_dir": str(pool_dir) if pool_dir else None,
               "strategy": strategy.value if strategy else None,
               "budgets": _parse(parse_int_list, budgets, "--budgets"),
               "audio_root": str(audio_root) if audio_root else None}
    run_label(project, options, set_, annotator, player, port, keys, autoplay, graphics)


# --- labelling projects (issue 6, engine side) -------------------------------------------------
project_app = typer.Typer(help="Labelling projects: a folder with project.yaml, the journal of "
                          "every label and the model checkpoints.", no_args_is_help=True)
app.add_typer(project_app, name="project")


class ExportFormat(StrEnum):
    csv = "csv"
    raven = "raven"
    audacity = "audacity"


@project_app.command("new")
def project_new(
    folder: Annotated[Path, typer.Argument(help="The project folder to create.")],
    task: Annotated[Task, typer.Option(help="bioacoustic (pool rounds) or lid / vtd (the "
                                       "stream loop).")] = Task.bioacoustic,
    pool_dir: Annotated[Path | None, typer.Option(
        help="bioacoustic: folder with train.h5 (the pool) and valid.h5.")] = None,
    strategy: Annotated[Strategy | None, typer.Option(help="Pool selection strategy.")] = None,
    budgets: Annotated[str | None, typer.Option(
        help="Cumulative label budgets per round, e.g. 50,100,150.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice.")] = None,
    audio_root: Annotated[Path | None, typer.Option(
        help="Where the audio is, when it moved since the pool was made.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="key=value of project.yaml (stream keys: stream.KEY=value).")] = None,
) -> None:
    """Create a labelling project (open it with `iml-tui label FOLDER`)."""
    from iml_tui.config import parse_int_list
    from iml_tui.engine.project import Project, project_config

    options = {"task": task.value, "pool_dir": _str(pool_dir),
               "strategy": strategy.value if strategy else None,
               "budgets": _parse(parse_int_list, budgets, "--budgets"), "seed": seed,
               "audio_root": _str(audio_root)}
    project = Project.create(folder, project_config(options, set_))
    sys.stdout.write(f"project {project.dir} ({project.config.task}, {project.mode} mode); "
                     f"label with: iml-tui label {project.dir}\n")


@app.command("export")
def export_cmd(
    folder: Annotated[Path, typer.Argument(help="A project folder.")],
    out: Annotated[Path, typer.Option(help="csv: the file; raven, audacity: a folder (one "
                                      "file per audio file).")],
    format_: Annotated[ExportFormat, typer.Option("--format", help="Output format.")]
    = ExportFormat.csv,
    include_none: Annotated[bool, typer.Option(
        help="raven, audacity: also mark clips labelled 'none' (label 'none').")] = False,
    force: Annotated[bool, typer.Option(help="csv: replace an existing regular file.")] = False,
) -> None:
    """Export the project's current labels (CSV, Raven selection tables, Audacity labels)."""
    from iml_tui.atomic import check_output_file
    from iml_tui.engine.export import export_labels

    if format_ is ExportFormat.csv:
        check_output_file(out, force)

    res = export_labels(folder, format_.value, out, include_none)
    where = res.paths[0] if format_ is ExportFormat.csv else f"{len(res.paths)} file(s) in {out}"
    sys.stdout.write(f"{res.written} {'row' if format_ is ExportFormat.csv else 'selection'}(s)"
                     f" -> {where}\n")
    if res.unlocated:
        sys.stderr.write(f"note: the audio of {len(res.unlocated)} item(s) was not found (e.g. "
                         f"{res.unlocated[0]}); give the project an audio root\n")


@app.command("import-labels")
def import_labels_cmd(
    folder: Annotated[Path, typer.Argument(help="A project folder.")],
    labels: Annotated[Path, typer.Argument(help="Label CSV: 'id' plus a 0/1 column per class "
                                           "or 'labels' (names separated by ';').")],
    annotator: Annotated[str | None, typer.Option(
        help="Recorded as the annotator (default: import:<file name>).")] = None,
    skip_unknown: Annotated[bool, typer.Option(
        help="Import the known ids and report the others instead of stopping.")] = False,
) -> None:
    """Import existing labels into a project (a warm start: selection starts from them)."""
    from iml_tui.engine.export import import_labels

    res = import_labels(folder, labels, annotator, skip_unknown)
    sys.stdout.write(f"imported {res.imported} label(s) as {res.annotator}\n")
    if res.unknown:
        sys.stderr.write(f"skipped {len(res.unknown)} unknown id(s), e.g. {res.unknown[0]}\n")


@app.command("doctor")
def doctor_cmd(
    port: Annotated[int, typer.Option(help="Port the browser player would use (0: any).")]
    = 0,
    clip_dir: Annotated[Path | None, typer.Option(
        help="Folder the file player would write to.")] = None,
) -> None:
    """Which audio players work on this machine, and why (or why not)."""
    from iml_tui.audio.playback import check_backends

    checks = check_backends(port, clip_dir)
    for c in checks:
        sys.stdout.write(f"{c.name:8s} {'ok' if c.ok else 'no':3s} {c.detail}\n")
    best = next((c.name for c in checks if c.ok), "none")
    sys.stdout.write(f"iml-tui label will use: {best}\n")


def out_console(file: typing.IO[str] | None = None) -> rich.console.Console:
    """Console for stdout tables: the terminal's width, or unbounded when piped or redirected."""
    from rich.console import Console

    stream = file if file is not None else sys.stdout
    if stream.isatty():
        return Console(file=file)
    return Console(file=file, width=10_000, soft_wrap=True)


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
