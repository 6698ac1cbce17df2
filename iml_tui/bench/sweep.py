"""Sweeps of simulated pool-based runs: every (strategy, start, seed), serially or in processes."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import platform
import queue
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from iml_tui import __version__
from iml_tui.atomic import atomic_write_text
from iml_tui.config import BioacousticConfig, config_to_dict
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
from iml_tui.engine.trainer import TrainConfig, resolve_device
from iml_tui.errors import UserError
from iml_tui.provenance import git_revision


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
            raise UserError(f"unknown {what} '{v}'", None,
                            f"choose from {', '.join(allowed)} or all")
    return list(dict.fromkeys(values))


def train_config(cfg: BioacousticConfig, seed: int, threads: int | None) -> TrainConfig:
    return TrainConfig(lr=cfg.lr, batch_size=cfg.batch_size, lr_factor=cfg.lr_factor,
                       lr_patience=cfg.lr_patience, lr_threshold=cfg.lr_threshold,
                       min_lr=cfg.min_lr, max_epochs=cfg.max_epochs, hidden=cfg.hidden,
                       seed=seed, device=cfg.device, threads=threads)


def build_specs(cfg: BioacousticConfig, threads: int | None = None) -> list[PoolRunSpec]:
    strategies = expand(cfg.strategy, STRATEGIES, "strategy")
    starts = expand(cfg.start, STARTS, "start")
    return [PoolRunSpec(strategy=s, start=st, seed=seed, budgets=tuple(cfg.budgets),
                        warm_k=cfg.warm_k, train=train_config(cfg, seed, threads))
            for st in starts for s in strategies for seed in cfg.seeds]


# --- worker side -------------------------------------------------------------------------------
_SPLITS: PoolSplits | None = None
_EVENTS: Any = None


def _worker_init(pool_dir: str, rare: list[str], threads: int, events: Any) -> None:
    global _SPLITS, _EVENTS
    torch.set_num_threads(max(1, threads))
    _SPLITS = load_splits(pool_dir, rare)
    _EVENTS = events


def _worker_run(spec: PoolRunSpec, run_dir: str, device: str) -> list[RoundRecord]:
    assert _SPLITS is not None
    run = PoolRun(spec, _SPLITS, run_dir, resolve_device(device))
    return run.run(lambda r: _EVENTS.put(RoundEvent(spec.name, r.budget, r.test_map)))


def _worker_full(seed: int, train: TrainConfig, run_dir: str, device: str) -> FullRecord:
    assert _SPLITS is not None
    rec = run_full(_SPLITS, seed, train, run_dir, resolve_device(device))
    _EVENTS.put(RoundEvent(f"full_seed{seed}", _SPLITS.n, rec.test_map))
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


def _threads(cfg: BioacousticConfig) -> int:
    return cfg.threads if cfg.threads > 0 else max(1, (os.cpu_count() or 1) // max(1, cfg.jobs))


def prepare_sweep(cfg: BioacousticConfig) -> tuple[list[PoolRunSpec], PoolSplits]:
    """Check the configuration against the pools before any work starts."""
    specs = build_specs(cfg, _threads(cfg))
    splits = load_splits(cfg.pool_dir, cfg.rare_classes)
    for spec in specs:
        PoolRun(spec, splits, Path(cfg.out) / "runs" / spec.name, torch.device("cpu"))
    return specs, splits


def run_sweep(cfg: BioacousticConfig,
              on_event: Callable[[RoundEvent], None] | None = None,
              prepared: tuple[list[PoolRunSpec], PoolSplits] | None = None) -> SweepResult:
    """Run every configured (strategy, start, seed), resuming what the output folder holds."""
    t0 = time.perf_counter()
    out = Path(cfg.out)
    jobs = max(1, cfg.jobs)
    threads = _threads(cfg)
    specs, splits = prepared if prepared is not None else prepare_sweep(cfg)
    out.mkdir(parents=True, exist_ok=True)
    full_train = train_config(cfg, 0, threads)
    records: dict[PoolRunSpec, list[RoundRecord]] = {}
    full: list[FullRecord] = []
    if jobs == 1:
        torch.set_num_threads(threads)
        device = resolve_device(cfg.device)
        for spec in specs:
            run = PoolRun(spec, splits, out / "runs" / spec.name, device)
            cb = ((lambda r, s=spec: on_event(RoundEvent(s.name, r.budget, r.test_map)))
                  if on_event else None)
            records[spec] = run.run(cb)
        if cfg.full:
            for seed in cfg.seeds:
                rec = run_full(splits, seed, full_train, out / "full" / f"seed{seed}", device)
                full.append(rec)
                if on_event:
                    on_event(RoundEvent(f"full_seed{seed}", splits.n, rec.test_map))
    else:
        records, full = _run_parallel(cfg, specs, full_train, jobs, threads, out, on_event)
    totals = [int(v) for v in splits.clip_targets.sum(axis=0)]
    total_neg = int((splits.clip_targets.max(axis=1) == 0).sum())
    result = SweepResult(records=records, full=full, class_list=splits.class_list,
                         totals=totals, total_negative=total_neg,
                         seconds=time.perf_counter() - t0)
    write_manifest(cfg, result, out)
    return result


def _run_parallel(cfg: BioacousticConfig, specs: list[PoolRunSpec], full_train: TrainConfig,
                  jobs: int, threads: int, out: Path,
                  on_event: Callable[[RoundEvent], None] | None
                  ) -> tuple[dict[PoolRunSpec, list[RoundRecord]], list[FullRecord]]:
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    events = manager.Queue()
    records: dict[PoolRunSpec, list[RoundRecord]] = {}
    full: list[FullRecord] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(cfg.pool_dir, cfg.rare_classes, threads, events)) as ex:
        futures: dict[Future[Any], Any] = {
            ex.submit(_worker_run, spec, str(out / "runs" / spec.name), cfg.device): spec
            for spec in specs}
        if cfg.full:
            for seed in cfg.seeds:
                futures[ex.submit(_worker_full, seed, full_train,
                                  str(out / "full" / f"seed{seed}"), cfg.device)] = seed
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain_events(events, on_event)
            for finished in done:
                key = futures[finished]
                if isinstance(key, PoolRunSpec):
                    records[key] = finished.result()
                else:
                    full.append(finished.result())
        drain_events(events, on_event)
    manager.shutdown()
    records = {spec: records[spec] for spec in specs}
    full.sort(key=lambda r: r.seed)
    return records, full


def drain_events(events: Any, on_event: Callable[[Any], None] | None) -> None:
    """Hand every progress message waiting in a worker queue to ``on_event``."""
    while True:
        try:
            ev = events.get_nowait()
        except queue.Empty:
            return
        if on_event:
            on_event(ev)


def write_manifest(cfg: BioacousticConfig, result: SweepResult, out: Path) -> None:
    """The sweep's JSON manifest: config, seeds, versions, git revision, timings."""
    runs = {}
    for spec, recs in result.records.items():
        runs[spec.name] = {
            "strategy": spec.strategy, "start": spec.start, "seed": spec.seed,
            "select_seconds": sum(r.select_seconds for r in recs),
            "train_seconds": sum(r.train_seconds for r in recs),
            "final_test_map": recs[-1].test_map if recs else None,
        }
    manifest = {
        "task": "bioacoustic",
        "config": config_to_dict(cfg),
        "seeds": cfg.seeds,
        "versions": {"iml_tui": __version__, "python": platform.python_version(),
                     "numpy": np.__version__, "torch": torch.__version__,
                     "h5py": h5py.__version__},
        "git_revision": git_revision(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(),
                 "cuda": torch.cuda.is_available()},
        "class_list": result.class_list,
        "sweep_seconds": result.seconds,
        "runs": runs,
        "full": [dataclasses.asdict(r) for r in result.full],
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2))
