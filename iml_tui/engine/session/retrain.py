"""A retraining prepared by the session and run off the UI thread, and its shared status."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from iml_tui.engine.session.types import CancelFn, ProgressCb, RetrainResult


class Cancelled(Exception):
    """Raised inside a training when ``cancelled()`` became true."""


class RetrainStatus:
    """The training status one process shows; written by the training thread, read by the UI."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = False
        self.progress = 0.0
        self.message = ""
        self.error = ""

    def begin(self, message: str) -> None:
        with self.lock:
            self.running, self.progress, self.message, self.error = True, 0.0, message, ""

    def update(self, fraction: float, message: str) -> None:
        with self.lock:
            self.progress = float(min(1.0, max(0.0, fraction)))
            self.message = message

    def finish(self, result: RetrainResult) -> None:
        with self.lock:
            self.running = False
            self.progress = 1.0 if result.ok else self.progress
            self.message = (
                "cancelled"
                if result.cancelled
                else "failed"
                if result.error
                else f"model {result.version} ready"
            )
            if result.error:
                self.error = result.error

    def snapshot(self) -> tuple[bool, float, str, str]:
        with self.lock:
            return self.running, self.progress, self.message, self.error


class RetrainJob:
    """A retraining prepared by :meth:`Session.start_retrain`: ``run`` does the slow part.

    Safe to run in another thread while the session keeps serving the UI thread. Call ``run``
    once; hand its result to :meth:`Session.swap_model` (also a failed one: the failure is then
    recorded in the journal).
    """

    def __init__(
        self,
        mode: str,
        base_version: int,
        key: str,
        status: RetrainStatus,
        description: str,
        work: Callable[[ProgressCb, CancelFn], RetrainResult],
    ) -> None:
        self.mode = mode
        self.base_version = base_version
        self.key = key
        self.description = description
        self._status = status
        self._work = work
        self._ran = False

    def run(
        self, progress_cb: ProgressCb | None = None, cancelled: CancelFn | None = None
    ) -> RetrainResult:
        """Train (and select the next queue); never raises for a failed training."""
        if self._ran:
            raise RuntimeError("a RetrainJob runs once; ask the session for a new one")
        self._ran = True
        status = self._status
        t0 = time.perf_counter()

        def progress(fraction: float, message: str) -> None:
            status.update(fraction, message)
            if progress_cb is not None:
                progress_cb(status.progress, message)

        def is_cancelled() -> bool:
            return bool(cancelled is not None and cancelled())

        status.begin(self.description)
        try:
            result = self._work(progress, is_cancelled)
        except Cancelled:
            result = RetrainResult(
                self.mode, self.base_version, self.base_version + 1, self.key, cancelled=True
            )
        except Exception as exc:  # a failed training must not take the session down
            detail = traceback.format_exc(limit=3).strip().splitlines()[-1]
            result = RetrainResult(
                self.mode,
                self.base_version,
                self.base_version + 1,
                self.key,
                error=f"{type(exc).__name__}: {exc}" if str(exc) else detail,
            )
        result.seconds = time.perf_counter() - t0
        status.finish(result)
        return result
