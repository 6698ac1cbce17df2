"""The journal folded into memory: current answers, claims, the queue, models (append-only)."""

from __future__ import annotations

import hashlib
import json
import os
import socket

from iml_tui.engine.extents import Extent, live_extents
from iml_tui.engine.journal import EXTENT_KINDS, Event


# --- the journal folded into memory --------------------------------------------------------------
class Fold:
    """The state of the journal, updated incrementally (events are append-only)."""

    def __init__(self) -> None:
        self.last = 0
        self.answers: dict[int, list[Event]] = {}
        self.undone: set[int] = set()
        self.current: dict[int, Event] = {}
        self.claims: dict[int, Event] = {}
        self.selected: dict[int, Event] = {}
        self.gen = -1
        self.queue: list[Event] = []
        self.models: list[Event] = []
        self.failures: list[Event] = []
        self.extent_acts: dict[int, list[Event]] = {}
        self._extents: dict[int, list[Extent]] = {}
        self.trainings: list[Event] = []  # training_claimed: who trains on which model
        self.trainings_ended: set[int] = set()  # claims released (failed, cancelled, closed)

    def apply(self, e: Event) -> None:
        self.last = max(self.last, e.id)
        k = e.kind
        if k == "selected" and e.item is not None:
            gen = int(e.model_version or 0)
            if gen > self.gen:
                self.gen, self.queue = gen, []
            if gen == self.gen:
                self.queue.append(e)
            self.selected[e.item] = e
        elif k == "queried" and e.item is not None:
            self.claims[e.item] = e
        elif k in ("labelled", "skipped") and e.item is not None:
            self.answers.setdefault(e.item, []).append(e)
            self.current[e.item] = e
        elif k in EXTENT_KINDS and e.item is not None:
            self.extent_acts.setdefault(e.item, []).append(e)
            self._extents.pop(e.item, None)
        elif k == "undone" and e.ref is not None:
            self.undone.add(e.ref)
            if e.item is not None:
                self._extents.pop(e.item, None)
            if e.item is not None:
                alive = [a for a in self.answers.get(e.item, []) if a.id not in self.undone]
                if alive:
                    self.current[e.item] = alive[-1]
                else:
                    self.current.pop(e.item, None)
        elif k == "model_trained":
            self.models.append(e)
        elif k == "training_failed":
            self.failures.append(e)
            if e.ref is not None:
                self.trainings_ended.add(e.ref)
        elif k == "training_claimed":
            self.trainings.append(e)
        elif k == "training_released" and e.ref is not None:
            self.trainings_ended.add(e.ref)

    def labelled(self) -> list[Event]:
        """Current labels, in the order they were given."""
        return sorted(
            (e for e in self.current.values() if e.kind == "labelled"), key=lambda e: e.id
        )

    def extents(self, item: int) -> list[Extent]:
        """The item's extents in force, in the order they were marked."""
        got = self._extents.get(item)
        if got is None:
            got = self._extents[item] = live_extents(self.extent_acts.get(item, []), self.undone)
        return list(got)

    def marked(self) -> dict[int, list[Extent]]:
        """item -> its extents in force, for every item that has any."""
        out = {i: self.extents(i) for i in self.extent_acts}
        return {i: x for i, x in out.items() if x}

    def skipped(self) -> set[int]:
        return {i for i, e in self.current.items() if e.kind == "skipped"}

    def queue_items(self) -> list[Event]:
        return sorted(self.queue, key=lambda e: (int(e.payload.get("rank", 0)), e.id))

    def unanswered(self) -> list[Event]:
        return [e for e in self.queue_items() if e.item not in self.current]

    def claim_active(self, c: Event) -> bool:
        ans = self.current.get(c.item) if c.item is not None else None
        return ans is None or ans.id < c.id

    def claim_held(self, c: Event, now: float, lease: float) -> bool:
        """Whether ``c`` still keeps its item from the other annotators: not answered since,
        within its lease, and (when it was made on this machine) by a process still running."""
        return self.claim_active(c) and now - c.ts < lease and holder_alive(c)

    def latest_model(self) -> int:
        """The version of the newest model in the journal (0: none yet)."""
        return max((int(m.model_version or 0) for m in self.models), default=0)

    def training_holder(self, base: int, session: str, now: float, lease: float) -> Event | None:
        """The live claim of another session training on model ``base`` (None: this session
        may train). A claim ends with a newer model, a release or a failure, when its lease
        runs out, or when its process (on this machine) is gone; the earliest live one wins."""
        newest = self.latest_model()
        for c in self.trainings:
            v = int(c.model_version or 0)
            if c.id in self.trainings_ended or v != base or newest > v:
                continue
            if now - c.ts >= lease or not holder_alive(c):
                continue
            return None if c.payload.get("session") == session else c
        return None

    def withdrawn(self, item: int) -> tuple[int, ...] | None:
        """Labels of the item's last undone answer, when that is its latest answer event."""
        hist = self.answers.get(item, [])
        if hist and hist[-1].id in self.undone and item not in self.current:
            return hist[-1].labels if hist[-1].kind == "labelled" else None
        return None

    def labels_key(self) -> str:
        """A hash of the labels in force and the extents of the labelled items."""
        body = json.dumps(
            [
                [
                    e.item,
                    list(e.labels or ()),
                    [[x.onset, x.offset, x.cls] for x in self.extents(int(e.item or 0))],
                ]
                for e in sorted(self.labelled(), key=lambda e: int(e.item or 0))
            ]
        )
        return hashlib.sha1(body.encode()).hexdigest()[:16]


HOST = socket.gethostname()


def claim_payload() -> dict[str, object]:
    """What a claim records of its holder, so others can tell when it is gone."""
    return {"pid": os.getpid(), "host": HOST}


def holder_alive(c: Event) -> bool:
    """False when the claim's process ran on this machine and is gone (a crashed or closed
    annotator); True otherwise (another machine's claim is judged by its lease alone)."""
    pid, host = c.payload.get("pid"), c.payload.get("host")
    if pid is None or host != HOST or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
