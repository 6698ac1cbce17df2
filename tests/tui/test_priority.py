"""Background work runs on a fresh thread at a lower priority."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from iml_tui.tui.priority import BACKGROUND_NICE, run_in_background_thread


def test_result_priority_and_errors() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def nice_of_this_thread() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    got = run_in_background_thread(nice_of_this_thread)
    if sys.platform.startswith("linux"):
        assert got == min(base + BACKGROUND_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # caller's kept

    def boom() -> None:
        raise ValueError("training broke")

    with pytest.raises(ValueError, match="training broke"):
        run_in_background_thread(boom)
