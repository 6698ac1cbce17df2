"""Every command's numeric flags checked against :data:`iml_tui.ranges.RANGES` before it runs."""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterator
from typing import Any

import typer

from iml_tui.ranges import check_values


def commands(t: typer.Typer, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full command name, its CommandInfo) of ``t`` and its sub-apps, e.g. ``project new``."""
    for c in t.registered_commands:
        name = c.name or (c.callback.__name__ if c.callback else "")
        yield prefix + name, c
    for g in t.registered_groups:
        if g.typer_instance is not None:
            yield from commands(g.typer_instance, f"{prefix}{g.name} ")


def flag_names(callback: Callable[..., Any]) -> dict[str, str]:
    """Parameter name -> the flag a user types (``threshold`` -> ``--threshold``, ``n`` ->
    ``-n``): the first declared option name, else Typer's ``--name-with-dashes``."""
    hints = typing.get_type_hints(callback, include_extras=True)
    out: dict[str, str] = {}
    for key, tp in hints.items():
        if key == "return":
            continue
        flag = "--" + key.replace("_", "-")
        for meta in getattr(tp, "__metadata__", ()):
            # in Annotated form Typer takes a str first argument as the first flag
            first = getattr(meta, "default", None)
            decls = [first] if isinstance(first, str) else []
            decls += list(getattr(meta, "param_decls", None) or ())
            decls = [d for d in decls if d.startswith("-")]
            if decls:
                flag = decls[0].split("/")[0]
        out[key] = flag
    return out


def range_checked(callback: Callable[..., Any], command: str) -> Callable[..., Any]:
    """``callback`` that first checks its options' values (one line, exit status 2)."""
    if getattr(callback, "range_checked", False):
        return callback
    names = flag_names(callback)
    owner = command.split()[-1]

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        check_values(kwargs, "command line", owner, names)
        return callback(*args, **kwargs)

    run.range_checked = True  # type: ignore[attr-defined]
    return run


def check_every_command(t: typer.Typer) -> None:
    """Wrap every registered command of ``t`` (and its sub-apps) with :func:`range_checked`."""
    for name, info in commands(t):
        if info.callback is not None:
            info.callback = range_checked(info.callback, name)
