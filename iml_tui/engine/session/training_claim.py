"""One training per model when several annotators share a project.

Before a session trains it appends a ``training_claimed`` event (model it starts from, pid, host,
session token) in one journal transaction; a session that finds another's live claim on the same
model trains nothing and waits for that model instead (:func:`follow_work`), then loads its
checkpoint. A claim ends with a newer model, a ``training_failed`` or ``training_released`` event
naming it, the project's lease, or as soon as its process (on this machine) is gone; the waiting
session then claims and trains itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from iml_tui.engine.journal import Event, Journal
from iml_tui.engine.session.fold import holder_alive
from iml_tui.engine.session.retrain import Cancelled
from iml_tui.engine.session.types import CancelFn, ProgressCb, RetrainResult

POLL_SECONDS = 0.2
"""How often a waiting session looks for the model (seconds)."""

_ENDS = ["model_trained", "training_failed", "training_released"]


def waiting_note(holder: Event) -> str:
    """What the status line says while another annotator's process trains."""
    return f"model being trained by {holder.annotator}'s session; it is loaded when ready"


def follow_work(
    journal_path: Path, mode: str, holder: Event, key: str, lease: float
) -> Callable[[ProgressCb, CancelFn], RetrainResult]:
    """The work of a job that waits for ``holder``'s training (model ``holder.model_version``).

    Returns an ``adopted`` result once a newer model is in the journal (``swap_model`` loads
    it), or a cancelled one when the claim ended without a model (the caller then trains).
    Reads the journal on its own connection, so it never blocks the session's thread."""
    base = int(holder.model_version or 0)

    def work(progress: ProgressCb, cancelled: CancelFn) -> RetrainResult:
        progress(0.0, waiting_note(holder))
        with Journal(journal_path, expected=True) as j:
            since = holder.id
            while True:
                for e in j.events(since, kinds=_ENDS):
                    since = e.id
                    if e.kind == "model_trained" and int(e.model_version or 0) > base:
                        return RetrainResult(
                            mode, base, int(e.model_version or 0), key, adopted=True
                        )
                    if e.ref == holder.id:
                        return RetrainResult(mode, base, base + 1, key, cancelled=True)
                if time.time() - holder.ts >= lease or not holder_alive(holder):
                    return RetrainResult(mode, base, base + 1, key, cancelled=True)
                if cancelled():
                    raise Cancelled
                time.sleep(POLL_SECONDS)

    return work
