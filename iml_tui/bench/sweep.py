"""Sweeps of simulated pool-based runs: every (strategy, start, seed), serially, in processes or
as Ray tasks (:mod:`iml_tui.parallel.runner`)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from iml_tui.config import BioacousticConfig
from iml_tui.devices import resolve_device
from iml_tui.engine.paradigms.pool import (
    STARTS,
    FullRecord,
    PoolRun,
    PoolRunSpec,
    PoolSplits,
    RoundRecord,
    load_splits,
    run_full,
)
from iml_tui.engine.strategies import STRATEGIES
from iml_tui.engine.trainer import TrainConfig
from iml_tui.errors import UserError
from iml_tui.parallel.runner import ExecutorOptions, Task, run_tasks
from iml_tui.provenance import write_manifest as write_run_manifest


@dataclass(frozen=True)
class RoundEvent:
    """Progress message: one round of one run finished (or a whole full-reference seed)."""

    run: str
    budget: int
    test_map: float


def expand(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    """['all'] -> every allowed value; otherwise check each value."""
    if "all" in values:
        return list(allowed)
    for v in values:
        if v not in allowed:
            raise UserError(
                f"unknown {what} '{v}'", None, f"choose from {', '.join(allowed)} or all"
            )
    return list(dict.fromkeys(values))


def train_config(cfg: BioacousticConfig, seed: int, threads: int | None) -> TrainConfig:
    """The classifier training of a sweep's run with ``seed`` and ``threads``."""
    return TrainConfig.from_config(cfg, seed=seed, threads=threads)


def build_specs(cfg: BioacousticConfig, threads: int | None = None) -> list[PoolRunSpec]:
    strategies = expand(cfg.strategy, STRATEGIES, "strategy")
    starts = expand(cfg.start, STARTS, "start")
    return [
        PoolRunSpec(
            strategy=s,
            start=st,
            seed=seed,
            budgets=tuple(cfg.budgets),
            warm_k=cfg.warm_k,
            train=train_config(cfg, seed, threads),
            annotation=cfg.annotation,
        )
        for st in starts
        for s in strategies
        for seed in cfg.seeds
    ]


# --- worker side -------------------------------------------------------------------------------
def _setup(pool_dir: str, rare: list[str], threads: int, shards: int = 1) -> PoolSplits:
    """A worker's state: the pools, loaded once per process (without the selection array when
    runs hold it in shards)."""
    torch.set_num_threads(max(1, threads))
    return load_splits(pool_dir, rare, pooled=shards == 1)


@dataclass(frozen=True)
class ShardPlan:
    """How each run holds its selection array: ``shards`` workers of ``executor`` (a process
    each, or a Ray actor each asking for ``cpus`` CPUs)."""

    shards: int = 1
    executor: str = "local"
    ray_address: str | None = None
    cpus: float | None = None


def _task_run(
    splits: PoolSplits,
    emit: Callable[[RoundEvent], None],
    spec: PoolRunSpec,
    run_dir: str,
    device: str,
    plan: ShardPlan = ShardPlan(),
) -> list[RoundRecord]:
    run = PoolRun(
        spec,
        splits,
        run_dir,
        resolve_device(device),
        plan.shards,
        plan.executor,
        plan.ray_address,
        plan.cpus,
    )
    return run.run(lambda r: emit(RoundEvent(spec.name, r.budget, r.test_map)))


def _task_full(
    splits: PoolSplits,
    emit: Callable[[RoundEvent], None],
    seed: int,
    train: TrainConfig,
    run_dir: str,
    device: str,
) -> FullRecord:
    rec = run_full(splits, seed, train, run_dir, resolve_device(device))
    emit(RoundEvent(f"full_seed{seed}", splits.n, rec.test_map))
    return rec


@dataclass
class SweepResult:
    """Every run's round records, the full-reference records and the sweep's timings."""

    records: dict[PoolRunSpec, list[RoundRecord]]
    full: list[FullRecord]
    class_list: list[str]
    totals: list[int]  # clip-level positives per class in the train pool
    total_negative: int
    seconds: float
    rare_classes: list[str] = field(default_factory=list)  # counted in the ``rare`` column


def executor_options(cfg: Any) -> ExecutorOptions:
    """The runner options of a sweep or stream config (keys executor, jobs, ray_address,
    cpus_per_run, gpus_per_run)."""
    return ExecutorOptions(
        cfg.executor, max(1, cfg.jobs), cfg.ray_address or None, cfg.cpus_per_run, cfg.gpus_per_run
    )


def threads_per_run(cfg: Any) -> int:
    """Torch threads per run: ``threads``; else with Ray the CPUs each run asks for, locally
    cores / jobs."""
    if cfg.threads > 0:
        return int(cfg.threads)
    if cfg.executor == "ray":
        return executor_options(cfg).threads
    return max(1, (os.cpu_count() or 1) // max(1, cfg.jobs))


def prepare_sweep(cfg: BioacousticConfig) -> tuple[list[PoolRunSpec], PoolSplits]:
    """Check the configuration against the pools before any work starts."""
    resolve_device(cfg.device)
    specs = build_specs(cfg, threads_per_run(cfg))
    splits = load_splits(cfg.pool_dir, cfg.rare_classes, pooled=cfg.shards == 1)
    for spec in specs:
        PoolRun(spec, splits, Path(cfg.out) / "runs" / spec.name, torch.device("cpu"), cfg.shards)
    return specs, splits


def shard_plan(cfg: BioacousticConfig, opts: ExecutorOptions) -> ShardPlan:
    """The runs' shards: processes, or with the Ray executor Ray actors that ask for no CPUs of
    their own (the run's request covers them: a run waits while its shards select)."""
    if opts.executor == "ray":
        return ShardPlan(cfg.shards, "ray", opts.ray_address, 0.0)
    return ShardPlan(cfg.shards)


def run_sweep(
    cfg: BioacousticConfig,
    on_event: Callable[[RoundEvent], None] | None = None,
    prepared: tuple[list[PoolRunSpec], PoolSplits] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every configured (strategy, start, seed), resuming what the output folder holds:
    in this process, in ``jobs`` processes, or as Ray tasks (``executor``); finished runs are
    read back here, without starting a worker. ``on_run(name)``: called as each run (or
    full-reference seed) finishes, finished ones read back included."""
    t0 = time.perf_counter()
    out = Path(cfg.out).resolve()
    threads = threads_per_run(cfg)
    specs, splits = prepared if prepared is not None else prepare_sweep(cfg)
    out.mkdir(parents=True, exist_ok=True)
    full_train = train_config(cfg, 0, threads)
    opts = executor_options(cfg).resolved()
    plan = shard_plan(cfg, opts)
    read_back: dict[Any, Any] = {}
    emit = on_event or (lambda _: None)
    tasks = []
    for spec in specs:
        run_dir = out / "runs" / spec.name
        run = PoolRun(spec, splits, run_dir, torch.device("cpu"), cfg.shards)
        if run.finished:
            read_back[spec] = _task_run(splits, emit, spec, str(run_dir), "cpu", plan)
        else:
            tasks.append(Task(spec, _task_run, (spec, str(run_dir), cfg.device, plan)))
    for seed in cfg.seeds if cfg.full else []:
        full_dir = out / "full" / f"seed{seed}"
        if (full_dir / "full.json").is_file():
            read_back[seed] = _task_full(splits, emit, seed, full_train, str(full_dir), "cpu")
        else:
            tasks.append(Task(seed, _task_full, (seed, full_train, str(full_dir), cfg.device)))
    if opts.executor == "local" and (opts.jobs == 1 or len(tasks) == 1):
        torch.set_num_threads(threads)
    done = (
        (lambda key, _: on_run(key.name if isinstance(key, PoolRunSpec) else f"full_seed{key}"))
        if on_run
        else None
    )
    if done:
        for key, value in read_back.items():
            done(key, value)
    got = read_back | run_tasks(
        tasks,
        opts,
        _setup,
        (str(Path(cfg.pool_dir).resolve()), list(cfg.rare_classes), threads, cfg.shards),
        on_event,
        done,
        state=splits,
    )
    records: dict[PoolRunSpec, list[RoundRecord]] = {spec: got[spec] for spec in specs}
    full: list[FullRecord] = [got[seed] for seed in cfg.seeds] if cfg.full else []
    totals = [int(v) for v in splits.clip_targets.sum(axis=0)]
    total_neg = int((splits.clip_targets.max(axis=1) == 0).sum())
    result = SweepResult(
        records=records,
        full=full,
        class_list=splits.class_list,
        totals=totals,
        total_negative=total_neg,
        seconds=time.perf_counter() - t0,
        rare_classes=[splits.class_list[i] for i in splits.rare],
    )
    write_manifest(cfg, result, out)
    return result


def write_manifest(cfg: BioacousticConfig, result: SweepResult, out: Path) -> None:
    """The sweep's ``manifest.json``: seeds, classes, per-run timings and scores (with the
    config and provenance of :func:`iml_tui.provenance.write_manifest`)."""
    runs = {}
    for spec, recs in result.records.items():
        runs[spec.name] = {
            "strategy": spec.strategy,
            "start": spec.start,
            "seed": spec.seed,
            "select_seconds": sum(r.select_seconds for r in recs),
            "train_seconds": sum(r.train_seconds for r in recs),
            "final_test_map": recs[-1].test_map if recs else None,
        }
    body = {
        "task": "bioacoustic",
        "seeds": cfg.seeds,
        "class_list": result.class_list,
        "sweep_seconds": result.seconds,
        "runs": runs,
        "full": [dataclasses.asdict(r) for r in result.full],
    }
    write_run_manifest(out / "manifest.json", body, cfg)
