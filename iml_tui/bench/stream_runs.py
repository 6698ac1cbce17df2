"""Every run of a stream configuration (one per LID target language or VTD environment), serially
or in spawned processes; each run resumes from its own folder ``<out>/<run name>``."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from iml_tui.bench.sweep import drain_events
from iml_tui.config import StreamConfig
from iml_tui.engine.paradigms.stream import BatchEvent, StreamRun, prepare_inputs, run_names
from iml_tui.engine.scoring import ScoreRow
from iml_tui.engine.trainer import resolve_device
from iml_tui.errors import UserError


@dataclass(frozen=True)
class PlannedRun:
    """One run: its name (the folder under ``out``), target and number of batches."""

    name: str
    target: str
    n_batches: int
    run_dir: Path


def threads_per_run(cfg: StreamConfig) -> int:
    """Torch threads per run: ``threads``, or cores / jobs."""
    return cfg.threads if cfg.threads > 0 else max(1, (os.cpu_count() or 1) // max(1, cfg.jobs))


def device_of(cfg: StreamConfig) -> torch.device:
    try:
        return resolve_device(cfg.device)
    except ValueError as exc:
        raise UserError(str(exc), None, "set --device auto, cpu or cuda") from exc


def plan_runs(cfg: StreamConfig) -> list[PlannedRun]:
    """Check the data and options of every run before any work starts."""
    device_of(cfg)
    out = Path(cfg.out)
    planned = []
    for name, target in run_names(cfg):
        inputs = prepare_inputs(cfg, target)
        StreamRun(cfg, inputs, out / name)  # validates plans and options
        planned.append(PlannedRun(name, target, inputs.n_batches, out / name))
    return planned


# --- worker side -------------------------------------------------------------------------------
_EVENTS: Any = None


def _worker_init(threads: int, events: Any) -> None:
    global _EVENTS
    torch.set_num_threads(max(1, threads))
    _EVENTS = events


def _worker_run(cfg: StreamConfig, run: PlannedRun, command: str) -> list[ScoreRow]:
    inputs = prepare_inputs(cfg, run.target)
    r = StreamRun(cfg, inputs, run.run_dir, device_of(cfg), command=command)
    return r.run(lambda ev: _EVENTS.put(ev))


def run_all(cfg: StreamConfig, command: str = "",
            on_event: Callable[[BatchEvent], None] | None = None,
            planned: list[PlannedRun] | None = None) -> dict[str, list[ScoreRow]]:
    """Run (or resume) every planned run; returns each run's score rows by run name."""
    runs = planned if planned is not None else plan_runs(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    threads = threads_per_run(cfg)
    results: dict[str, list[ScoreRow]] = {}
    todo = []
    for run in runs:  # finished runs are read back here, without starting a process
        if (run.run_dir / "manifest.json").is_file():
            rows = StreamRun(cfg, prepare_inputs(cfg, run.target), run.run_dir).run()
            results[run.name] = rows
            if on_event is not None:
                for r in rows:
                    on_event(BatchEvent(run.name, r.pass_, run.n_batches, r.pre_dcf, r.dcf,
                                        r.n_al, r.cf_tp + r.cf_fp))
        else:
            todo.append(run)
    if cfg.jobs <= 1 or len(todo) <= 1:
        torch.set_num_threads(threads)
        device = device_of(cfg)
        for run in todo:
            inputs = prepare_inputs(cfg, run.target)
            results[run.name] = StreamRun(cfg, inputs, run.run_dir, device,
                                          command=command).run(on_event)
    elif todo:
        results.update(_run_parallel(cfg, todo, command, threads, on_event))
    return {r.name: results[r.name] for r in runs}


def _run_parallel(cfg: StreamConfig, runs: list[PlannedRun], command: str, threads: int,
                  on_event: Callable[[BatchEvent], None] | None) -> dict[str, list[ScoreRow]]:
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    events = manager.Queue()
    results: dict[str, list[ScoreRow]] = {}
    try:
        with ProcessPoolExecutor(max_workers=min(cfg.jobs, len(runs)), mp_context=ctx,
                                 initializer=_worker_init, initargs=(threads, events)) as ex:
            futures: dict[Future[list[ScoreRow]], PlannedRun] = {
                ex.submit(_worker_run, cfg, run, command): run for run in runs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                drain_events(events, on_event)
                for fut in done:
                    results[futures[fut].name] = fut.result()
            drain_events(events, on_event)
    finally:
        manager.shutdown()
    return results


