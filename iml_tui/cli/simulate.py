"""``iml-tui simulate``: the bioacoustic pool rounds and the lid / vtd stream, with an oracle."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from iml_tui.cli.common import (
    Executor,
    Task,
    app,
    command_line,
    csv_list,
    demo_preset,
    opt_str,
    out_console,
    parse_option,
    rate_progress,
)
from iml_tui.errors import UserError
from iml_tui.presets import PRESETS, resolve_preset


@app.command()
def simulate(
    task: Annotated[
        Task, typer.Option(help="Which paradigm and task to simulate.")
    ] = Task.bioacoustic,
    pool_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with train.h5, valid.h5, test.h5 (config: pool_dir)."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="rand, ft, mp, mfft, comma-separated, or all (config: strategy)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="cold, warm or all (config: start).")] = None,
    warm_k: Annotated[
        int | None,
        typer.Option(help="Warm start: positives per class in the first round (config: warm_k)."),
    ] = None,
    budgets: Annotated[
        str | None,
        typer.Option(help="Cumulative annotation budgets, e.g. 50,100,150 (config: budgets)."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds (repeats), e.g. 1-5 or 1,3 (config: seeds).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="Runs in parallel processes (config: jobs).")
    ] = None,
    executor: Annotated[
        Executor | None,
        typer.Option(
            help="local: this process or --jobs processes; ray: one Ray task per run "
            "(config: executor)."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --executor ray: auto (the running cluster) or HOST:PORT; default: a local "
            "instance (config: ray_address)."
        ),
    ] = None,
    cpus_per_run: Annotated[
        float | None,
        typer.Option(help="With --executor ray: CPUs each run asks for (config: cpus_per_run)."),
    ] = None,
    gpus_per_run: Annotated[
        float | None,
        typer.Option(
            help="With --executor ray: GPUs each run asks for, e.g. 0.5 (config: gpus_per_run)."
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            help="bioacoustic: hold each run's selection array in this many row shards, a "
            "process each (--executor ray: a Ray actor each); same picks (config: shards)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (config: out).")] = None,
    full: Annotated[
        bool | None,
        typer.Option(
            "--full/--no-full", help="Also train the fully supervised reference (config: full)."
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or cuda:N (config: device).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads per run; 0 = cores / jobs (config: threads).")
    ] = None,
    eval_precision: Annotated[
        str | None,
        typer.Option(
            help="bioacoustic: fp32 (the paper) or bf16 validation and test scoring "
            "(config: eval_precision)."
        ),
    ] = None,
    annotation: Annotated[
        str | None,
        typer.Option(
            help="bioacoustic: what the simulated annotator gives: frames (event extents, the "
            "paper) or clips (clip labels, trained by multiple-instance learning) "
            "(config: annotation)."
        ),
    ] = None,
    max_epochs: Annotated[
        int | None,
        typer.Option(
            help="Cap on training epochs per round; lid / vtd: -1 = none, patience alone "
            "(config: max_epochs)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A bundled preset by name (bioacoustic, lid, vtd, demo_bioacoustic, demo_lid, "
            "demo_vtd) or a YAML file (lid / vtd: the preset of the task by default)."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config key: --set lr=1e-3 (repeatable)."),
    ] = None,
    # --- the streaming paradigm (--task lid | vtd) ---
    split: Annotated[
        str | None, typer.Option(help="lid: the split streamed, train/dev/test (config: split).")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(help="vtd: the environment streamed, e.g. rm1_mc20, or all (config: env)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="lid: target language code, or all (one run each) (config: target)."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(help="Feature sets to concatenate, e.g. ecapalang,wavlm (config: features)."),
    ] = None,
    feat_root: Annotated[
        Path | None,
        typer.Option(help="Folder holding one sub-folder per feature set (config: feat_root)."),
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(help="random, cluster (lid), sorted, or an order file (config: order)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the run (config: seed).")] = None,
    n_queries: Annotated[
        int | None, typer.Option(help="AL queries per batch (config: n_queries).")
    ] = None,
    al_method: Annotated[
        str | None,
        typer.Option(
            help="smax, ent, necs, rand, egl, egl-last, pert, pert-rand, cover, cover-kcenter, "
            "rank, split, plateau "
            "(config: al_method)."
        ),
    ] = None,
    adapt_distr: Annotated[
        float | None,
        typer.Option(help="Wanted target share of the labelled pool (config: adapt_distr)."),
    ] = None,
    sim_type: Annotated[
        str | None,
        typer.Option(
            help="Corrective feedback: fps, tps, fns, tns, all, e.g. fpstps; none = plain AL "
            "(config: sim_type)."
        ),
    ] = None,
    max_fb_samples: Annotated[
        int | None,
        typer.Option(
            help="Most CF items per batch; default none (no cap, as the original) "
            "(config: max_fb_samples)."
        ),
    ] = None,
    rank_cf: Annotated[
        bool | None,
        typer.Option(
            "--rank-cf/--no-rank-cf", help="Rank CF items by confidence (config: rank_cf)."
        ),
    ] = None,
    boot_in: Annotated[
        bool | None,
        typer.Option("--boot-in/--no-boot-in", help="Bootstrap from the stream (config: boot_in)."),
    ] = None,
    bootstrap: Annotated[
        int | None, typer.Option(help="Bootstrap size (half target) (config: bootstrap).")
    ] = None,
    context: Annotated[
        int | None, typer.Option(help="Context samples on each side (config: context).")
    ] = None,
    samples_per_batch: Annotated[
        int | None, typer.Option(help="lid: samples per batch (config: samples_per_batch).")
    ] = None,
    budget_plan: Annotated[
        Path | None,
        typer.Option(help="Budget plan folder or file from `budget plan` (config: budget_plan)."),
    ] = None,
    drift: Annotated[
        str | None, typer.Option(help="Drift-based budget: none, adwin, hdddm (config: drift).")
    ] = None,
    forget_n_batches: Annotated[
        int | None,
        typer.Option(help="Forget stream labels older than n batches (config: forget_n_batches)."),
    ] = None,
    memory_cap: Annotated[
        int | None, typer.Option(help="Ring buffer of stream labels, 0 = off (config: memory_cap).")
    ] = None,
    reset_weights: Annotated[
        bool | None,
        typer.Option(
            "--reset-weights/--no-reset-weights",
            help="Re-initialise the model before every fit (config: reset_weights).",
        ),
    ] = None,
    loss: Annotated[
        str | None, typer.Option(help="default, nll, dcf, imlm, focal, adcf, cb (config: loss).")
    ] = None,
    compat: Annotated[
        str | None,
        typer.Option(
            help="ours, or original: the original's reset_weights and forgetting, to compare with "
            "published runs (config: compat)."
        ),
    ] = None,
) -> None:
    """Simulate a paradigm with an oracle: bioacoustic pool AL rounds, or an lid / vtd stream."""
    if task is not Task.bioacoustic:
        _reject(
            {
                "--pool-dir": pool_dir,
                "--strategy": strategy,
                "--start": start,
                "--warm-k": warm_k,
                "--budgets": budgets,
                "--seeds": seeds,
                "--full": full,
                "--eval-precision": eval_precision,
                "--annotation": annotation,
                "--shards": shards,
            },
            task,
        )
        stream = {
            "split": split,
            "env": env,
            "target": target,
            "features": csv_list(features),
            "feat_root": opt_str(feat_root),
            "order": order,
            "seed": seed,
            "n_queries": n_queries,
            "al_method": al_method,
            "adapt_distr": adapt_distr,
            "sim_type": sim_type,
            "max_fb_samples": max_fb_samples,
            "rank_cf": rank_cf,
            "boot_in": boot_in,
            "bootstrap": bootstrap,
            "context": context,
            "samples_per_batch": samples_per_batch,
            "budget_plan": opt_str(budget_plan),
            "drift": drift,
            "forget_n_batches": forget_n_batches,
            "memory_cap": memory_cap,
            "reset_weights": reset_weights,
            "loss": loss,
            "compat": compat,
            "jobs": jobs,
            "out": opt_str(out),
            "device": device,
            **_executor_keys(executor, ray_address, cpus_per_run, gpus_per_run),
            "threads": threads,
            "max_epochs": max_epochs,
        }
        _run_stream_task(task.value, config, stream, set_)
        return
    _reject(
        {
            "--split": split,
            "--env": env,
            "--target": target,
            "--features": features,
            "--feat-root": feat_root,
            "--order": order,
            "--seed": seed,
            "--n-queries": n_queries,
            "--al-method": al_method,
            "--adapt-distr": adapt_distr,
            "--sim-type": sim_type,
            "--max-fb-samples": max_fb_samples,
            "--rank-cf": rank_cf,
            "--boot-in": boot_in,
            "--bootstrap": bootstrap,
            "--context": context,
            "--samples-per-batch": samples_per_batch,
            "--budget-plan": budget_plan,
            "--drift": drift,
            "--forget-n-batches": forget_n_batches,
            "--memory-cap": memory_cap,
            "--reset-weights": reset_weights,
            "--loss": loss,
            "--compat": compat,
        },
        task,
    )
    from iml_tui.config import BioacousticConfig, load_config, parse_int_list, parse_seeds

    overrides: dict[str, Any] = {
        "pool_dir": str(pool_dir) if pool_dir else None,
        "strategy": csv_list(strategy),
        "start": csv_list(start),
        "warm_k": warm_k,
        "budgets": parse_option(parse_int_list, budgets, "--budgets"),
        "seeds": parse_option(parse_seeds, seeds, "--seeds"),
        "jobs": jobs,
        **_executor_keys(executor, ray_address, cpus_per_run, gpus_per_run),
        "out": str(out) if out else None,
        "full": full,
        "device": device,
        "threads": threads,
        "max_epochs": max_epochs,
        "eval_precision": eval_precision,
        "annotation": annotation,
        "shards": shards,
    }
    from iml_tui.demo.assets import is_demo

    named = config is not None or (pool_dir is not None and not is_demo(str(pool_dir)))
    preset = resolve_preset(config) if named else demo_preset("bioacoustic")
    cfg = load_config(BioacousticConfig, preset, overrides, set_)
    run_bioacoustic(cfg)


def _executor_keys(
    executor: Executor | None,
    ray_address: str | None,
    cpus_per_run: float | None,
    gpus_per_run: float | None,
) -> dict[str, Any]:
    return {
        "executor": None if executor is None else executor.value,
        "ray_address": ray_address,
        "cpus_per_run": cpus_per_run,
        "gpus_per_run": gpus_per_run,
    }


def _reject(flags: dict[str, Any], task: Task) -> None:
    given = [flag for flag, value in flags.items() if value is not None]
    if given:
        raise UserError(
            f"{', '.join(given)} do(es) not apply to --task {task.value}",
            None,
            "drop the flag, or set the task it belongs to",
        )


def _run_stream_task(
    task: str, config: Path | None, overrides: dict[str, Any], sets: list[str] | None
) -> None:
    from iml_tui.cli.stream_commands import run_stream_command
    from iml_tui.demo.assets import is_demo

    preset = resolve_preset(config)
    if preset is None and (overrides.get("feat_root") is None or is_demo(overrides["feat_root"])):
        preset = demo_preset(task)
    elif preset is None and (PRESETS / f"{task}.yaml").is_file():
        preset = PRESETS / f"{task}.yaml"
    run_stream_command(task, preset, {**overrides, "task": task}, sets, command_line())


def run_bioacoustic(cfg: Any) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from iml_tui.bench.report import plot_learning_curves, print_results, write_al_results
    from iml_tui.bench.sweep import RoundEvent, prepare_sweep, run_sweep
    from iml_tui.demo.assets import is_demo, resolve_pool_dir

    console = Console(stderr=True)
    if is_demo(cfg.pool_dir):
        with rate_progress("items") as build_progress:
            cfg = dataclasses.replace(cfg, pool_dir=resolve_pool_dir(cfg.pool_dir, build_progress))
    prepared = prepare_sweep(cfg)
    n_rounds = len(prepared[0]) * len(cfg.budgets) + (len(cfg.seeds) if cfg.full else 0)
    n_runs = len(prepared[0]) + (len(cfg.seeds) if cfg.full else 0)
    runs_done = [0]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs {task.fields[runs]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("rounds", total=n_rounds, last="", runs=f"0/{n_runs}")

        def on_event(ev: RoundEvent) -> None:
            progress.update(
                bar, advance=1, last=f"{ev.run} @ {ev.budget}: test mAP {100 * ev.test_map:.1f}"
            )

        def on_run(_: str) -> None:
            runs_done[0] += 1
            progress.update(bar, runs=f"{runs_done[0]}/{n_runs}")

        result = run_sweep(cfg, on_event, prepared, on_run)
        progress.update(bar, completed=n_rounds)
    out = Path(cfg.out)
    write_al_results(result, cfg.warm_k, out / "al_results.csv")
    plot_learning_curves(result, out / "learning_curves.png")
    print_results(result, out_console())
    console.print(
        f"results: {out / 'al_results.csv'}, {out / 'learning_curves.png'}, "
        f"{out / 'manifest.json'}, per run: {out / 'runs'}/*/rounds.csv"
    )
