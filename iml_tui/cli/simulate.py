"""``iml-tui simulate``: the bioacoustic pool rounds and the lid / vtd stream, with an oracle."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from iml_tui.bench.progress import rate_progress, run_progress
from iml_tui.cli.common import (
    Executor,
    Task,
    app,
    command_line,
    csv_list,
    demo_preset,
    err_console,
    opt_str,
    out_console,
    parse_option,
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
            "rank, split, plateau, combo-rand, combo-clf "
            "(config: al_method)."
        ),
    ] = None,
    combo: Annotated[
        str | None,
        typer.Option(
            help="Methods a combo combines, comma-separated, e.g. smax,necs (config: combo)."
        ),
    ] = None,
    combo_clf: Annotated[
        Path | None,
        typer.Option(
            help="combo-clf: a pickled classifier choosing the method per batch, a trusted "
            "file (config: combo_clf)."
        ),
    ] = None,
    separate_class_al: Annotated[
        bool | None,
        typer.Option(
            "--separate-class-al/--no-separate-class-al",
            help="Query predicted targets, then non-targets, carrying unspent budget over "
            "(config: separate_class_al).",
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
    dsmax_mult: Annotated[
        float | None,
        typer.Option(
            help="dcf / imlm: sharpen the probabilities by softmax(m p); 0 = off "
            "(config: dsmax_mult)."
        ),
    ] = None,
    learn_mult: Annotated[
        bool | None,
        typer.Option(
            "--learn-mult/--no-learn-mult",
            help="dcf / imlm: learn the sharpening factor (config: learn_mult).",
        ),
    ] = None,
    learn_error_weight: Annotated[
        bool | None,
        typer.Option(
            "--learn-error-weight/--no-learn-error-weight",
            help="dcf: learn the FNR weight 0.75 (config: learn_error_weight).",
        ),
    ] = None,
    auto_mult: Annotated[
        float | None,
        typer.Option(
            help="Inverse class weights: multiply the target's by this (config: auto_mult)."
        ),
    ] = None,
    monitor: Annotated[
        str | None,
        typer.Option(
            help="train/loss or train/acc: what patience, the LR schedule and --load-best "
            "watch (config: monitor)."
        ),
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="min or max: the monitor's better side (config: mode).")
    ] = None,
    schedule_lr: Annotated[
        bool | None,
        typer.Option(
            "--schedule-lr/--no-schedule-lr",
            help="Drop the LR 10x when the monitor stalls (config: schedule_lr).",
        ),
    ] = None,
    lrs_patience: Annotated[
        int | None,
        typer.Option(help="Epochs the monitor may stall before a drop (config: lrs_patience)."),
    ] = None,
    ensemble: Annotated[
        bool | None,
        typer.Option(
            "--ensemble/--no-ensemble",
            help="An adaptive random forest (river) in place of the MLP (config: ensemble).",
        ),
    ] = None,
    rnn_layers: Annotated[
        int | None,
        typer.Option(
            help="Sequence features (stores with T > 1 frames per sample): a bidirectional GRU "
            "of this many layers reads the frames (config: rnn_layers; units: rnn_hidden)."
        ),
    ] = None,
    load_best: Annotated[
        bool | None,
        typer.Option(
            "--load-best/--no-load-best",
            help="After each AL fit keep its best monitored epoch's weights (config: load_best).",
        ),
    ] = None,
    compat: Annotated[
        str | None,
        typer.Option(
            help="ours, or original: the original's reset_weights and forgetting, to compare with "
            "published runs (config: compat)."
        ),
    ] = None,
) -> None:
    """Simulate a paradigm with an oracle: bioacoustic pool AL rounds, or an lid / vtd stream.
    Bioacoustic: the closing table gives test mAP (%) per strategy, start and budget, mean ± std
    over seeds; its `rare` column is how many clips annotated by the last budget hold a rare class
    (--set rare_classes=A,B; default: Meerkat*, else classes in under 0.5 % of the train pool).
    """
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
            "combo": csv_list(combo),
            "combo_clf": opt_str(combo_clf),
            "separate_class_al": separate_class_al,
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
            "dsmax_mult": dsmax_mult,
            "learn_mult": learn_mult,
            "learn_error_weight": learn_error_weight,
            "auto_mult": auto_mult,
            "monitor": monitor,
            "mode": mode,
            "schedule_lr": schedule_lr,
            "lrs_patience": lrs_patience,
            "load_best": load_best,
            "ensemble": ensemble,
            "rnn_layers": rnn_layers,
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
            "--combo": combo,
            "--combo-clf": combo_clf,
            "--separate-class-al": separate_class_al,
            "--dsmax-mult": dsmax_mult,
            "--learn-mult": learn_mult,
            "--learn-error-weight": learn_error_weight,
            "--auto-mult": auto_mult,
            "--monitor": monitor,
            "--mode": mode,
            "--schedule-lr": schedule_lr,
            "--lrs-patience": lrs_patience,
            "--load-best": load_best,
            "--ensemble": ensemble,
            "--rnn-layers": rnn_layers,
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

    from iml_tui.bench.report import plot_learning_curves, print_results, write_al_results
    from iml_tui.bench.sweep import RoundEvent, prepare_sweep, run_sweep
    from iml_tui.demo.assets import is_demo, resolve_pool_dir
    from iml_tui.engine.metrics import map_text

    console = err_console()
    if is_demo(cfg.pool_dir):
        with rate_progress("items") as build_progress:
            cfg = dataclasses.replace(cfg, pool_dir=resolve_pool_dir(cfg.pool_dir, build_progress))
    prepared = prepare_sweep(cfg)
    n_rounds = len(prepared[0]) * len(cfg.budgets) + (len(cfg.seeds) if cfg.full else 0)
    n_runs = len(prepared[0]) + (len(cfg.seeds) if cfg.full else 0)
    with run_progress("rounds", n_rounds, n_runs) as bar:

        def on_event(ev: RoundEvent) -> None:
            bar.step(f"{ev.run} @ {ev.budget}: test mAP {map_text(ev.test_map)}")

        result = run_sweep(cfg, on_event, prepared, bar.run_done)
    out = Path(cfg.out)
    write_al_results(result, cfg.warm_k, out / "al_results.csv")
    plot_learning_curves(result, out / "learning_curves.png")
    print_results(result, out_console())
    console.print(
        f"results: {out / 'al_results.csv'}, {out / 'learning_curves.png'}, "
        f"{out / 'manifest.json'}, per run: {out / 'runs'}/*/rounds.csv"
    )
