"""Groups of stateful workers ("actors") that a driver calls in lock-step: in this process, one
process each (spawned, talking over a pipe), or one Ray actor each.

Every group has ``call(method, args_per_actor)``: it sends one call to every actor at once and
returns their results in actor order; an exception raised by an actor is raised again here.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from iml_tui.errors import UserError

RAY_HINT = "install Ray with `pip install 'iml-tui[ray]'` (or `pip install 'ray[default]'`)"


class ActorGroup(Protocol):
    """K workers built by one factory; ``call`` runs a method on all of them in parallel."""

    def __len__(self) -> int: ...

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def close(self) -> None: ...


class ActorError(RuntimeError):
    """A worker raised: carries its formatted traceback."""


class InlineGroup:
    """The workers as plain objects of this process (one shard, or tests)."""

    def __init__(self, factory: Callable[..., Any], init_args: Sequence[tuple[Any, ...]]) -> None:
        self._objs = [factory(*a) for a in init_args]

    def __len__(self) -> int:
        return len(self._objs)

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return [getattr(o, method)(*a) for o, a in zip(self._objs, args, strict=True)]

    def close(self) -> None:
        self._objs = []


def _serve(conn: Connection, factory: Callable[..., Any], init: tuple[Any, ...]) -> None:
    """Worker process: build the object, then answer (method, args) messages until None."""
    try:
        obj = factory(*init)
        conn.send(("ok", None))
    except BaseException as exc:  # reported to the driver
        conn.send(("err", _describe(exc)))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        method, args = msg
        try:
            conn.send(("ok", getattr(obj, method)(*args)))
        except BaseException as exc:  # reported to the driver
            conn.send(("err", _describe(exc)))


def _describe(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, UserError):
        return "user", str(exc)
    return "other", "".join(traceback.format_exception(exc))


def _raise(payload: tuple[str, str]) -> None:
    kind, text = payload
    if kind == "user":
        raise UserError(text)
    raise ActorError(text)


class ProcessGroup:
    """One spawned process per worker, each holding its object for the group's lifetime."""

    def __init__(self, factory: Callable[..., Any], init_args: Sequence[tuple[Any, ...]]) -> None:
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for init in init_args:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, factory, init), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        try:
            for conn in self._conns:
                self._receive(conn)
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self._conns)

    @staticmethod
    def _receive(conn: Connection) -> Any:
        try:
            status, value = conn.recv()
        except EOFError:
            raise ActorError("a shard process ended unexpectedly") from None
        if status == "err":
            _raise(value)
        return value

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        for conn, a in zip(self._conns, args, strict=True):
            conn.send((method, a))
        return [self._receive(conn) for conn in self._conns]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []


def ray_module() -> Any | None:
    """The ``ray`` package, or None when it is not installed."""
    try:
        import ray
    except ImportError:
        return None
    return ray


def note_no_ray() -> None:
    """One line on stderr: Ray is absent, the local executor runs instead, how to get Ray."""
    sys.stderr.write(f"note: Ray is not installed, using the local executor; {RAY_HINT}\n")


def ensure_ray(address: str | None) -> Any:
    """``ray``, connected: to ``address`` ("auto", "HOST:PORT") or a local instance when None.
    UserError naming how to install Ray when it is absent."""
    ray = ray_module()
    if ray is None:
        raise UserError(
            "the Ray executor needs the ray package, which is not installed",
            None,
            f"{RAY_HINT}, or use --executor local",
        )
    if not ray.is_initialized():
        try:
            if address is None:
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(
                f"cannot connect to the Ray cluster at {address!r} ({exc})",
                None,
                "start one with `ray start --head`, or give --ray-address "
                "HOST:PORT of its head node",
            ) from exc
    return ray


ACTOR_START_TIMEOUT_S = 120.0


def fit_cpus(k: int, cluster_cpus: float, want: float | None = None) -> float:
    """CPUs per actor for ``k`` actors: ``want``, or 1 scaled down so all ``k`` fit on
    ``cluster_cpus`` at once (a 2-CPU cluster gives 3 shards 0.66 CPU each); at least 0.01."""
    if want is not None:
        return float(want)
    if k <= 0 or cluster_cpus <= 0:
        return 1.0
    return max(0.01, min(1.0, int(100 * cluster_cpus / k) / 100))


class RayGroup:
    """One Ray actor per worker, placed by the cluster's scheduler.

    num_cpus: CPUs requested per actor; None scales 1 CPU down so every actor fits on the
    cluster at once (the actors of one group work in lock-step, so they must all run).
    start_timeout: seconds to wait for every actor to start before a UserError that names the
    request and what the cluster has.
    """

    def __init__(
        self,
        factory: Callable[..., Any],
        init_args: Sequence[tuple[Any, ...]],
        address: str | None = None,
        num_cpus: float | None = None,
        start_timeout: float = ACTOR_START_TIMEOUT_S,
    ) -> None:
        self._ray = ensure_ray(address)
        total = float(self._ray.cluster_resources().get("CPU", 0.0))
        self.num_cpus = fit_cpus(len(init_args), total, num_cpus)
        cls = self._ray.remote(num_cpus=self.num_cpus)(_RayHost)
        self._actors = [cls.remote(factory, *init) for init in init_args]
        refs = [a.ready.remote() for a in self._actors]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=start_timeout)
        if len(ready) < len(refs):
            free = float(self._ray.available_resources().get("CPU", 0.0))
            self.close()
            raise UserError(
                f"only {len(ready)} of {len(refs)} Ray actors started within "
                f"{start_timeout:g} s ({self.num_cpus:g} CPU each; the cluster has {total:g} "
                f"CPUs, {free:g} free)",
                None,
                "free CPUs on the cluster (other jobs hold them), add nodes, or use fewer --shards",
            )
        self._get(refs)

    def _get(self, refs: list[Any]) -> list[Any]:
        return ray_get(self._ray, refs)

    def __len__(self) -> int:
        return len(self._actors)

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return self._get(
            [a.call.remote(method, *x) for a, x in zip(self._actors, args, strict=True)]
        )

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []


def ray_get(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get(refs)``; a task's UserError is raised again as is, other errors as ActorError."""
    try:
        out: list[Any] = ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        original = getattr(exc, "cause", None)  # the task's own exception, unpickled
        if isinstance(original, UserError):
            raise UserError(str(original)) from None
        cause = exc.as_instanceof_cause()
        if isinstance(cause, UserError):  # Ray versions without ``cause``
            raise UserError(str(cause)) from None
        raise ActorError(str(exc)) from None
    return out


class _RayHost:
    """Holds one worker object inside a Ray actor."""

    def __init__(self, factory: Callable[..., Any], *init: Any) -> None:
        self._obj = factory(*init)

    def ready(self) -> bool:
        return True

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self._obj, method)(*args)


def make_group(
    executor: str,
    factory: Callable[..., Any],
    init_args: Sequence[tuple[Any, ...]],
    ray_address: str | None = None,
    num_cpus: float | None = None,
) -> ActorGroup:
    """``executor`` "ray": RayGroup (the local executor, with a note, when Ray is not
    installed); "local": ProcessGroup, or InlineGroup for a single worker; "inline": InlineGroup.
    """
    if executor == "ray" and ray_module() is None:
        note_no_ray()
        executor = "local"
    if executor == "ray":
        return RayGroup(factory, init_args, ray_address, num_cpus)
    if executor == "inline" or (executor == "local" and len(init_args) == 1):
        return InlineGroup(factory, init_args)
    if executor == "local":
        return ProcessGroup(factory, init_args)
    raise UserError(f"unknown executor {executor!r}", None, "use --executor local or ray")
