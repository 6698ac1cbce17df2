"""Background work that yields the CPU to the UI thread.

A retraining uses the cores flat out; with two cores, a key press would queue behind it. On Linux
each thread has its own nice value, so the training thread lowers its own priority and the
scheduler runs the UI first whenever both want a core (elsewhere this is a no-op).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
BACKGROUND_NICE = 10


def lower_this_thread(nice: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value by ``nice``; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
        return True
    return False


def run_in_background_thread(fn: Callable[[], T], name: str = "iml-tui-background") -> T:
    """Run ``fn`` on a fresh low-priority thread and wait for it (its exception re-raised).

    A fresh thread, because a lowered priority cannot always be raised again: pooled threads
    (Textual's worker executor) must keep theirs.
    """
    box: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        lower_this_thread()
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]
