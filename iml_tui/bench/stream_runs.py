"""Every run of a stream configuration (one per LID target language or VTD environment), serially,
in spawned processes or as Ray tasks (:mod:`iml_tui.parallel.runner`); each run resumes from its
own folder ``<out>/<run name>``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from iml_tui.bench.sweep import executor_options
from iml_tui.bench.sweep import threads_per_run as _threads
from iml_tui.config import StreamConfig
from iml_tui.devices import resolve_device
from iml_tui.engine.paradigms.stream import (
    BatchEvent,
    StreamRun,
    prepare_inputs,
    run_names,
    validate_config,
)
from iml_tui.engine.scoring import ScoreRow
from iml_tui.parallel.runner import Task, run_tasks


@dataclass(frozen=True)
class PlannedRun:
    """One run: its name (the folder under ``out``), target and number of batches."""

    name: str
    target: str
    n_batches: int
    run_dir: Path


def threads_per_run(cfg: StreamConfig) -> int:
    """Torch threads per run: ``threads``, the CPUs a Ray run asks for, or cores / jobs."""
    return _threads(cfg)


def device_of(cfg: StreamConfig) -> torch.device:
    return resolve_device(cfg.device)


def plan_runs(cfg: StreamConfig) -> list[PlannedRun]:
    """Check the options (once: the runs take them as checked) and the data of every run
    before any work starts."""
    validate_config(cfg)
    device_of(cfg)
    out = Path(cfg.out)
    planned = []
    for name, target in run_names(cfg):
        inputs = prepare_inputs(cfg, target)
        StreamRun(cfg, inputs, out / name)  # validates plans and options
        planned.append(PlannedRun(name, target, inputs.n_batches, out / name))
    return planned


# --- worker side -------------------------------------------------------------------------------
def _setup(threads: int) -> None:
    torch.set_num_threads(max(1, threads))


def _task_run(
    _: None, emit: Callable[[BatchEvent], None], cfg: StreamConfig, run: PlannedRun, command: str
) -> list[ScoreRow]:
    inputs = prepare_inputs(cfg, run.target)
    return StreamRun(cfg, inputs, run.run_dir, device_of(cfg), command=command).run(emit)


def run_all(
    cfg: StreamConfig,
    command: str = "",
    on_event: Callable[[BatchEvent], None] | None = None,
    planned: list[PlannedRun] | None = None,
    on_run: Callable[[str], None] | None = None,
) -> dict[str, list[ScoreRow]]:
    """Run (or resume) every planned run: in this process, in ``jobs`` processes or as Ray
    tasks (``executor``); returns each run's score rows by run name. ``on_run(name)``: called
    as each run finishes (finished runs read back included)."""
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
                    on_event(
                        BatchEvent(
                            run.name,
                            r.pass_,
                            run.n_batches,
                            r.pre_dcf,
                            r.dcf,
                            r.n_al,
                            r.cf_tp + r.cf_fp,
                        )
                    )
            if on_run is not None:
                on_run(run.name)
        else:
            todo.append(run)
    opts = executor_options(cfg)
    if opts.executor == "local" and (opts.jobs <= 1 or len(todo) <= 1):
        _setup(threads)
    if opts.executor == "ray":  # paths as every node sees them
        cfg = _absolute(cfg)
        todo = [dataclasses.replace(r, run_dir=r.run_dir.resolve()) for r in todo]
    tasks = [Task(run.name, _task_run, (cfg, run, command)) for run in todo]
    done = (lambda key, _: on_run(str(key))) if on_run else None
    got = run_tasks(tasks, opts, _setup, (threads,), on_event, done)
    results.update({str(k): v for k, v in got.items()})
    return {r.name: results[r.name] for r in runs}


def _absolute(cfg: StreamConfig) -> StreamConfig:
    """``cfg`` with its folders and files as absolute paths."""
    changes: dict[str, Any] = {
        "feat_root": str(Path(cfg.feat_root).resolve()),
        "out": str(Path(cfg.out).resolve()),
    }
    for key in ("budget_plan", "init_weights", "order"):
        value = getattr(cfg, key)
        if value and value not in ("random", "cluster", "sorted") and Path(value).exists():
            changes[key] = str(Path(value).resolve())
    return dataclasses.replace(cfg, **changes)
