"""Independent tasks (one simulated run, one slice of extraction) on one of two backends:

- ``local``: in this process when ``jobs`` is 1 (or there is one task), else ``jobs`` spawned
  processes (``concurrent.futures.ProcessPoolExecutor``);
- ``ray``: one Ray task each, with its resource request (``cpus_per_run``, ``gpus_per_run``),
  on a local instance or the cluster at ``ray_address``; the cluster decides how many run at once.

A task is ``fn(state, emit, *args)``: ``state`` is what ``setup(*setup_args)`` returned in the
worker process (built once per process and reused by its later tasks), ``emit(event)`` sends a
progress message that the driver hands to ``on_event`` while the tasks run. ``fn`` and ``setup``
must be module-level functions (they travel by reference); paths in the arguments should be
absolute (a Ray worker's working folder is not the driver's).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
import pickle
import queue
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from iml_tui.errors import UserError
from iml_tui.parallel.actors import ensure_ray, note_no_ray, ray_get, ray_module

EXECUTORS = ("local", "ray")
POLL_S = 0.2


@dataclass(frozen=True)
class ExecutorOptions:
    """Where tasks run. ray_address: None or "" = a local Ray instance, "auto" = the running
    cluster, "HOST:PORT" = that head node. cpus_per_run / gpus_per_run: Ray's request per task."""

    executor: str = "local"
    jobs: int = 1
    ray_address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    @property
    def threads(self) -> int:
        """Torch threads a Ray task should use: its CPU request, rounded up."""
        return max(1, math.ceil(self.cpus_per_run))

    def resolved(self) -> ExecutorOptions:
        """These options with ``ray`` replaced by ``local`` (and a note) when Ray is absent."""
        if self.executor not in EXECUTORS:
            raise UserError(
                f"unknown executor {self.executor!r}", None, "use --executor local or ray"
            )
        if self.executor == "ray" and ray_module() is None:
            note_no_ray()
            return ExecutorOptions("local", self.jobs, None, self.cpus_per_run, self.gpus_per_run)
        return self


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(state, emit, *args)``, its result reported under ``key``."""

    key: Hashable
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


EventFn = Callable[[Any], None]
DoneFn = Callable[[Hashable, Any], None]


def run_tasks(
    tasks: Sequence[Task],
    opts: ExecutorOptions,
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...] = (),
    on_event: EventFn | None = None,
    on_done: DoneFn | None = None,
    state: Any = None,
) -> dict[Hashable, Any]:
    """Run every task; returns {key: result} in task order. ``on_done(key, result)`` is called
    as each finishes. ``state``: used instead of calling ``setup`` when the tasks run in this
    process. The first task error is raised (the others are cancelled)."""
    opts = opts.resolved()
    if not tasks:
        return {}
    if opts.executor == "ray":
        got = _run_ray(tasks, opts, setup, setup_args, on_event, on_done)
    elif opts.jobs <= 1 or len(tasks) == 1:
        got = _run_inline(tasks, setup, setup_args, on_event, on_done, state)
    else:
        got = _run_processes(tasks, opts.jobs, setup, setup_args, on_event, on_done)
    return {t.key: got[t.key] for t in tasks}


def task_count(n_items: int, opts: ExecutorOptions) -> int:
    """How many tasks share ``n_items`` units of work: four per worker (so a slow worker does
    not hold the end), never more than the units. Workers: ``jobs`` local processes, or the Ray
    cluster's CPUs over ``cpus_per_run``."""
    opts = opts.resolved()
    if opts.executor == "ray":
        cpus = float(ensure_ray(opts.ray_address or None).cluster_resources().get("CPU", 1.0))
        workers = max(1, int(cpus / max(opts.cpus_per_run, 1e-3)))
    else:
        workers = max(1, opts.jobs)
    return max(1, min(n_items, 4 * workers))


def split_runs(items: Sequence[Any], k: int) -> list[list[Any]]:
    """``items`` cut into ``k`` consecutive runs whose sizes differ by at most one."""
    n, k = len(items), max(1, k)
    edges = [round(i * n / k) for i in range(k + 1)]
    return [list(items[a:b]) for a, b in itertools.pairwise(edges) if b > a]


def worker_threads(opts: ExecutorOptions) -> int:
    """Torch threads for each worker: the Ray request, else this machine's cores over ``jobs``."""
    if opts.executor == "ray":
        return opts.threads
    return max(1, (os.cpu_count() or 1) // max(1, opts.jobs))


def _noop(_: Any) -> None:
    return None


def _run_inline(
    tasks: Sequence[Task],
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...],
    on_event: EventFn | None,
    on_done: DoneFn | None,
    state: Any,
) -> dict[Hashable, Any]:
    if state is None:
        state = setup(*setup_args)
    emit = on_event or _noop
    out: dict[Hashable, Any] = {}
    for t in tasks:
        out[t.key] = t.fn(state, emit, *t.args)
        if on_done:
            on_done(t.key, out[t.key])
    return out


# --- worker side of the local backend ----------------------------------------------------------
_STATE: Any = None
_EVENTS: Any = None


def _process_init(setup: Callable[..., Any], setup_args: tuple[Any, ...], events: Any) -> None:
    global _STATE, _EVENTS
    _STATE = setup(*setup_args)
    _EVENTS = events


def _process_task(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(_STATE, _EVENTS.put, *args)


def _run_processes(
    tasks: Sequence[Task],
    jobs: int,
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...],
    on_event: EventFn | None,
    on_done: DoneFn | None,
) -> dict[Hashable, Any]:
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    events = manager.Queue()
    out: dict[Hashable, Any] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(tasks)),
            mp_context=ctx,
            initializer=_process_init,
            initargs=(setup, setup_args, events),
        ) as ex:
            futures: dict[Future[Any], Hashable] = {
                ex.submit(_process_task, t.fn, t.args): t.key for t in tasks
            }
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    drain_events(events, on_event)
                    for fut in done:
                        out[futures[fut]] = fut.result()
                        if on_done:
                            on_done(futures[fut], out[futures[fut]])
                drain_events(events, on_event)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    finally:
        manager.shutdown()
    return out


def drain_events(events: Any, on_event: EventFn | None) -> None:
    """Hand every progress message waiting in a worker queue to ``on_event``."""
    while True:
        try:
            ev = events.get_nowait()
        except queue.Empty:
            return
        if on_event:
            on_event(ev)


# --- the Ray backend ---------------------------------------------------------------------------
_RAY_STATES: dict[bytes, Any] = {}


def _ray_task(
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    events: Any,
) -> Any:
    """Body of every Ray task: the worker's state for ``setup_args`` (built on its first task),
    then ``fn``."""
    key = pickle.dumps((setup.__module__, setup.__qualname__, setup_args))
    if key not in _RAY_STATES:
        _RAY_STATES.clear()  # one sweep's state at a time per worker process
        _RAY_STATES[key] = setup(*setup_args)
    return fn(_RAY_STATES[key], events.put, *args)


def _run_ray(
    tasks: Sequence[Task],
    opts: ExecutorOptions,
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...],
    on_event: EventFn | None,
    on_done: DoneFn | None,
) -> dict[Hashable, Any]:
    ray = ensure_ray(opts.ray_address or None)
    from ray.util.queue import Queue

    _check_request(ray, opts)
    events = Queue(actor_options={"num_cpus": 0})
    remote = ray.remote(_ray_task).options(
        num_cpus=opts.cpus_per_run, num_gpus=opts.gpus_per_run, max_retries=0
    )
    refs = {remote.remote(setup, setup_args, t.fn, t.args, events): t.key for t in tasks}
    pending = list(refs)
    out: dict[Hashable, Any] = {}
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            _drain_ray(events, on_event)
            for ref in done:
                (out[refs[ref]],) = ray_get(ray, [ref])
                if on_done:
                    on_done(refs[ref], out[refs[ref]])
        _drain_ray(events, on_event)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.kill(events.actor)
    return out


def _drain_ray(events: Any, on_event: EventFn | None) -> None:
    n = events.qsize()
    if n and on_event:
        for ev in events.get_nowait_batch(n):
            on_event(ev)
    elif n:
        events.get_nowait_batch(n)


def _check_request(ray: Any, opts: ExecutorOptions) -> None:
    """UserError when no node of the cluster could ever run one task of this request."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    fits = any(
        r.get("CPU", 0.0) >= opts.cpus_per_run and r.get("GPU", 0.0) >= opts.gpus_per_run
        for r in nodes
    )
    if nodes and not fits:
        most_cpu = max(r.get("CPU", 0.0) for r in nodes)
        most_gpu = max(r.get("GPU", 0.0) for r in nodes)
        raise UserError(
            f"no Ray node can run a task of {opts.cpus_per_run:g} CPU and {opts.gpus_per_run:g} "
            f"GPU (the largest node has {most_cpu:g} CPU, {most_gpu:g} GPU)",
            None,
            "lower --cpus-per-run / --gpus-per-run, or add nodes that have them",
        )
