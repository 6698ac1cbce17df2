"""The labelling session over a project folder (the API is described in the package docstring)."""

from __future__ import annotations

import contextlib
import getpass
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from iml_tui.engine.extents import Extent
from iml_tui.engine.journal import EXTENT_KINDS, Event, Journal, NewEvent
from iml_tui.engine.oracle import SKIPPED, Oracle
from iml_tui.engine.pool_identity import check_pool_rows
from iml_tui.engine.project import Project
from iml_tui.engine.session.backend import SessionBackend
from iml_tui.engine.session.fold import Fold, claim_payload
from iml_tui.engine.session.pool_backend import PoolBackend
from iml_tui.engine.session.retrain import RetrainJob, RetrainStatus
from iml_tui.engine.session.stream_backend import StreamBackend
from iml_tui.engine.session.training_claim import follow_work, waiting_note
from iml_tui.engine.session.types import (
    Item,
    LearningCurve,
    ModelStatus,
    Progress,
    ProgressCb,
    RetrainResult,
)
from iml_tui.errors import UserError


# --- the session ---------------------------------------------------------------------------------
def check_project_data(project: Project) -> None:
    """Read what ``project`` labels (the pool and its valid.h5, or the stream's features) as
    :meth:`Session.open` does, writing nothing to its journal; UserError naming the file."""
    if project.mode == "pool":
        PoolBackend(project)
    else:
        StreamBackend(project)


def default_annotator() -> str:
    """The login name (the annotator recorded when none is given)."""
    try:
        return getpass.getuser() or "annotator"
    except (KeyError, OSError):
        return "annotator"


class Session:
    """A labelling session of one annotator over a project (see the module docstring)."""

    def __init__(
        self, project: Project, engine: SessionBackend, journal: Journal, annotator: str
    ) -> None:
        self.project = project
        self.engine = engine
        self.journal = journal
        self.annotator = annotator
        self._fold = Fold()
        self._status = RetrainStatus()
        self._load_error = ""
        self._token = uuid.uuid4().hex  # tells this session's training claims from others'
        self._training_claim: int | None = None  # id of this session's open training claim

    @classmethod
    def open(cls, project_dir: str | Path | Project, annotator: str | None = None) -> Session:
        """Open (or resume) the project in ``project_dir`` for ``annotator`` (default: the
        login name). Reads the pool or stream, replays the journal and, for a new project,
        selects the first queue. A :class:`Project` just opened or created (and so checked) is
        taken as it is; a folder's ``project.yaml`` is read and checked."""
        project = project_dir if isinstance(project_dir, Project) else Project.load(project_dir)
        engine: SessionBackend = (
            PoolBackend(project) if project.mode == "pool" else StreamBackend(project)
        )
        journal = project.open_journal()
        if isinstance(engine, PoolBackend):
            try:
                check_pool_rows(journal, engine.ids, engine.store.path, project.dir)
            except UserError:
                journal.close()
                raise
        journal.append_meta(
            {
                "task": project.config.task,
                "mode": project.mode,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        who = (annotator or default_annotator()).strip()
        if not who:
            raise UserError("the annotator name is empty", None, "give --annotator NAME")
        session = cls(project, engine, journal, who)
        with journal.transaction():
            events = engine.opening_events(journal)
            if events:
                journal.append(*events)
        session._sync()
        session._ensure_queue()
        return session

    # -- facts --
    @property
    def mode(self) -> str:
        return self.engine.mode

    @property
    def class_list(self) -> list[str]:
        return list(self.engine.class_list)

    @property
    def multi_label(self) -> bool:
        return self.engine.multi_label

    # -- journal --
    def _sync(self) -> None:
        for e in self.journal.events(self._fold.last):
            self._fold.apply(e)
        models = self._fold.models
        if models and int(models[-1].model_version or 0) > self.engine.version:
            try:
                self.engine.load(models[-1])
                self._load_error = ""
            except Exception as exc:  # keep the model we have; say why
                self._load_error = f"cannot load model {models[-1].model_version}: {exc}"

    def _ensure_queue(self) -> None:
        if self._fold.gen >= 0:
            return
        events = self.engine.first_queue(self._fold)
        if not events:
            return
        with self.journal.transaction():
            self._sync()
            if self._fold.gen < 0:
                self.journal.append(*events)
        self._sync()

    def _done(self) -> bool:
        return self.engine.done(self._fold)

    def _due(self) -> bool:
        return self.engine.due(self._fold)

    def _key(self) -> str:
        return self.engine.key(self._fold)

    # -- items --
    def _item(self, index: int) -> Item:
        f = self._fold
        sel = f.selected.get(index)
        view = self.engine.item_view(sel, index)
        item_id = self.engine.ids[index]
        location, error = None, ""
        try:
            location = self.engine.locator.locate(item_id)
        except UserError as exc:
            error = str(exc)
        return Item(
            index=index,
            id=item_id,
            kind=view["kind"],
            why=view["why"],
            why_fields=view["why_fields"],
            clip_probs=view["clip_probs"],
            frame_probs=view["frame_probs"],
            predicted=tuple(view["predicted"]),
            confidence=view["confidence"],
            threshold=float(view["threshold"]),
            location=location,
            audio_error=error,
            round=int(sel.round or 0) if sel is not None and sel.round is not None else 0,
            position=int(sel.payload.get("rank", 0)) if sel is not None else 0,
            model_version=self.engine.version,
            previous=f.withdrawn(index),
        )

    def _eligible(self, now: float) -> Event | None:
        f, lease = self._fold, self.project.config.lease_seconds
        if not self.engine.asking():
            return None
        for e in f.unanswered():
            c = f.claims.get(int(e.item or 0))
            if c is not None and c.annotator != self.annotator and f.claim_held(c, now, lease):
                continue
            return e
        return None

    def _my_claim(self) -> Event | None:
        mine = [
            c
            for c in self._fold.claims.values()
            if c.annotator == self.annotator and self._fold.claim_active(c)
        ]
        return max(mine, key=lambda c: c.id) if mine else None

    def next_item(self) -> Item | None:
        """The item to show now (see the module docstring); hands it to this annotator."""
        self._sync()
        mine = self._my_claim()
        if mine is not None and mine.payload.get("pid") not in (None, os.getpid()):
            # a claim of this annotator's earlier process: renew it for this one (unless another
            # annotator took the item over since, seeing that process gone)
            with self._writing():
                self._sync()
                again = self._my_claim()
                if again is not None and again.id == mine.id:
                    self.journal.append(self._claim(mine))
            self._sync()
            mine = self._my_claim()
        if mine is not None:
            return self._item(int(mine.item or 0))
        if self._eligible(time.time()) is None:
            return None
        with self._writing():
            self._sync()
            e = self._eligible(time.time())
            if e is None:
                return None
            self.journal.append(self._claim(e))
        self._sync()
        return self._item(int(e.item or 0))

    def _check_labels(self, labels: Sequence[int]) -> list[int]:
        out = sorted({int(v) for v in labels})
        c = len(self.engine.class_list)
        bad = [v for v in out if not 0 <= v < c]
        if bad:
            raise ValueError(
                f"label index {bad[0]} is not a class: use 0..{c - 1} "
                f"({', '.join(self.engine.class_list)})"
            )
        return out

    def submit(self, item: Item, labels: Sequence[int], seconds: float = 0.0) -> None:
        """Record the answer: ``labels`` = indices of the classes present ([] = none of them),
        ``seconds`` = time spent. Committed to the journal before this returns (in the same
        commit the next item is handed to this annotator, so ``next_item`` writes nothing)."""
        lab = self._check_labels(labels)
        self._answer(self._answer_event("labelled", item, seconds, lab))

    def skip(self, item: Item, seconds: float = 0.0) -> None:
        """Decline the item: not labelled, not asked again this round (undo brings it back)."""
        self._answer(self._answer_event("skipped", item, seconds))

    def _claim(self, entry: Event) -> NewEvent:
        """The event that hands ``entry``'s item to this annotator (recording this process)."""
        return NewEvent(
            "queried",
            item=entry.item,
            item_id=entry.item_id,
            annotator=self.annotator,
            model_version=self.engine.version,
            round=entry.round,
            payload=claim_payload(),
        )

    def _answer_event(
        self, kind: str, item: Item, seconds: float, labels: list[int] | None = None
    ) -> NewEvent:
        """A ``labelled`` / ``skipped`` event for ``item`` after ``seconds`` (at least 0)."""
        return NewEvent(
            kind,
            item=item.index,
            item_id=item.id,
            labels=labels,
            annotator=self.annotator,
            seconds=max(0.0, float(seconds)),
            model_version=self.engine.version,
            round=item.round,
            payload={"kind": item.kind},
        )

    def _answer(self, answer: NewEvent) -> None:
        """Append an answer and, in the same transaction, claim this annotator's next item."""
        with self._writing():
            self._sync()
            self.journal.append(answer)
            self._sync()  # this connection sees its own uncommitted events
            if self._my_claim() is None:
                e = self._eligible(time.time())
                if e is not None:
                    self.journal.append(self._claim(e))
        self._sync()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A journal transaction; if it fails, the in-memory fold is rebuilt from the file."""
        try:
            with self.journal.transaction():
                yield
        except BaseException:
            self._fold = Fold()
            self._sync()
            raise

    # -- extents --
    def extents(self, item: Item | int) -> list[Extent]:
        """The extents in force of ``item`` (events marked in it), in the order marked."""
        self._sync()
        return self._fold.extents(item if isinstance(item, int) else item.index)

    def _check_extent(self, onset: float, offset: float, cls: int) -> tuple[float, float, int]:
        on, off = float(onset), float(offset)
        if not (np.isfinite(on) and np.isfinite(off)) or on < 0 or off <= on:
            raise ValueError(f"an extent needs 0 <= onset < offset, got [{on:g}, {off:g}] s")
        return on, off, self._check_labels([cls])[0]

    def _extent_act(self, event: NewEvent) -> int:
        with self._writing():
            ids = self.journal.append(event)
        self._sync()
        return ids[0]

    def add_extent(
        self, item: Item, onset: float, offset: float, cls: int, seconds: float = 0.0
    ) -> Extent:
        """Mark an event of class ``cls`` from ``onset`` to ``offset`` s of the clip (committed
        on return; undone by :meth:`undo` like an answer). ValueError on a bad extent."""
        on, off, c = self._check_extent(onset, offset, cls)
        eid = self._extent_act(
            NewEvent(
                "extent",
                item=item.index,
                item_id=item.id,
                labels=[c],
                annotator=self.annotator,
                seconds=max(0.0, float(seconds)),
                model_version=self.engine.version,
                round=item.round,
                payload={"onset": on, "offset": off},
            )
        )
        return Extent(eid, on, off, c)

    def _live(self, item: Item, extent_id: int) -> Extent:
        for x in self.extents(item):
            if x.id == extent_id:
                return x
        raise ValueError(f"extent {extent_id} is not in force on {item.id}")

    def move_extent(
        self, item: Item, extent_id: int, onset: float, offset: float, cls: int | None = None
    ) -> Extent:
        """Replace extent ``extent_id`` of ``item`` by [onset, offset) (its class unless
        ``cls``); undo brings the old one back."""
        old = self._live(item, extent_id)
        on, off, c = self._check_extent(onset, offset, old.cls if cls is None else cls)
        eid = self._extent_act(
            NewEvent(
                "extent",
                item=item.index,
                item_id=item.id,
                labels=[c],
                annotator=self.annotator,
                model_version=self.engine.version,
                round=item.round,
                ref=old.id,
                payload={"onset": on, "offset": off},
            )
        )
        return Extent(eid, on, off, c)

    def remove_extent(self, item: Item, extent_id: int) -> Extent:
        """Withdraw extent ``extent_id`` of ``item`` (undo brings it back); returns it."""
        old = self._live(item, extent_id)
        self._extent_act(
            NewEvent(
                "extent_removed",
                item=item.index,
                item_id=item.id,
                labels=[old.cls],
                annotator=self.annotator,
                model_version=self.engine.version,
                round=item.round,
                ref=old.id,
            )
        )
        return old

    def undo(self) -> Item | None:
        """Withdraw this annotator's last act still in force, an answer or an extent act
        (marked, moved, removed); returns its item to show (None: nothing to undo). An undone
        answer's item comes back unanswered; an undone extent act leaves the answers as they
        are. Stream mode: only acts on items of the open question."""
        self._sync()
        items = self.engine.undo_items()
        with self._writing():
            self._sync()
            target = self.journal.last_act(self.annotator, items)
            if target is None:
                return None
            undone = NewEvent(
                "undone",
                item=target.item,
                item_id=target.item_id,
                annotator=self.annotator,
                ref=target.id,
                round=target.round,
                model_version=self.engine.version,
            )
            if target.kind in EXTENT_KINDS:  # the item stays as it is: answered or on screen
                self.journal.append(undone)
            else:
                self.journal.append(undone, self._claim(target))
        self._sync()
        return self._item(int(target.item or 0))

    # -- state --
    def progress(self) -> Progress:
        """Where the labelling stands (see :class:`Progress`)."""
        self._sync()
        f = self._fold
        labelled = f.labelled()
        names = self.engine.class_list
        counts = Counter(c for e in labelled for c in (e.labels or ()))
        lease, now = self.project.config.lease_seconds, time.time()
        held = {
            int(c.item or 0)
            for c in f.claims.values()
            if f.claim_active(c) and (c.annotator == self.annotator or f.claim_held(c, now, lease))
        }
        left = len({int(e.item or 0) for e in f.unanswered()} | held)
        rnd, budget = self.engine.round_and_budget(f, len(labelled), left)
        mine = [
            a
            for hist in f.answers.values()
            for a in hist
            if a.annotator == self.annotator and a.id not in f.undone
        ]
        return Progress(
            labelled=len(labelled),
            budget=budget,
            round=rnd,
            n_rounds=self.engine.n_rounds,
            per_class={names[c]: int(counts.get(c, 0)) for c in range(len(names))},
            none=sum(1 for e in labelled if not e.labels),
            skipped=len(f.skipped()),
            queue_left=left,
            done=self._done(),
            mine=len(mine),
            seconds=float(sum(a.seconds for a in mine)),
        )

    def model_status(self) -> ModelStatus:
        """The model's state (see :class:`ModelStatus`)."""
        self._sync()
        running, prog, msg, err = self._status.snapshot()
        f = self._fold
        if not err and f.failures and (not f.models or f.failures[-1].id > f.models[-1].id):
            err = str(f.failures[-1].payload.get("error", "training failed"))
        err = err or self._load_error
        state = (
            "training"
            if running
            else "done"
            if self._done()
            else "due"
            if self._due()
            else "ready"
            if self.engine.version
            else "none"
        )
        return ModelStatus(
            version=self.engine.version,
            state=state,
            progress=prog,
            message=msg,
            score=self.engine.scores.get(self.engine.score_key),
            score_name=self.engine.score_name,
            trained_on=self.engine.trained_on,
            error=err,
        )

    def learning_curve(self) -> LearningCurve:
        """The score of every model so far (see :class:`LearningCurve`)."""
        self._sync()
        return self.engine.learning_curve(self._fold)

    def retrain_due(self) -> bool:
        """True when the queue waits for a new model (start one with :meth:`start_retrain`)."""
        self._sync()
        return self._due()

    # -- models --
    def start_retrain(self) -> RetrainJob:
        """Snapshot the labels for a retraining; run the job's ``run`` in a worker thread.

        Pool mode: any time (mid-round, the new model re-ranks the rest of the round; at the
        end of a round it selects the next one). Stream mode: only when :meth:`retrain_due`
        (RuntimeError otherwise), as is a second job while one runs in this session.
        One session trains per model (:mod:`~iml_tui.engine.session.training_claim`): when
        another annotator's session already trains on the installed model, the job waits for
        that model instead and :meth:`swap_model` loads it.
        """
        self._sync()
        if self._status.snapshot()[0]:
            raise RuntimeError("a retraining is already running in this session")
        key = self._key()
        base = self.engine.version
        lease = self.project.config.lease_seconds
        own = self.engine.job_work(self._fold, key)  # RuntimeError when nothing can train yet
        with self._writing():
            self._sync()
            holder = self._fold.training_holder(base, self._token, time.time(), lease)
            if holder is None:
                claim = NewEvent(
                    "training_claimed",
                    annotator=self.annotator,
                    model_version=base,
                    payload={**claim_payload(), "session": self._token, "key": key},
                )
                self._training_claim = self.journal.append(claim)[0]
        self._sync()
        if holder is not None:
            what = waiting_note(holder)
            self._status.begin(what)
            work = follow_work(self.project.journal_path, self.engine.mode, holder, key, lease)
            return RetrainJob(self.engine.mode, base, key, self._status, what, work)
        what = self.engine.training_description
        self._status.begin(what)
        return RetrainJob(self.engine.mode, base, key, self._status, what, own)

    def _release(
        self,
        kind: str,
        model_version: int,
        seconds: float = 0.0,
        payload: dict[str, object] | None = None,
    ) -> None:
        """End this session's training claim with a ``kind`` event (failed or released)."""
        ref, self._training_claim = self._training_claim, None
        self.journal.append(
            NewEvent(
                kind,
                annotator=self.annotator,
                model_version=model_version,
                seconds=seconds,
                ref=ref,
                payload=dict(payload or {}),
            )
        )

    def swap_model(self, result: RetrainResult) -> bool:
        """Install ``result`` (checkpoint already on disk, then one journal event with the new
        queue) and re-rank the queue; False, keeping the model, when it failed (the error is
        recorded in the journal), was cancelled or is stale."""
        if result.mode != self.engine.mode:
            raise ValueError(f"a {result.mode} result for a {self.engine.mode} session")
        if result.adopted:  # another session trained it: load its checkpoint
            self._sync()
            return self.engine.version > result.base_version
        if not result.ok:
            if result.error:
                self._release(
                    "training_failed",
                    model_version=result.base_version,
                    seconds=result.seconds,
                    payload={"error": result.error},
                )
            elif result.cancelled and self._training_claim is not None:
                self._release("training_released", model_version=result.base_version)
            self._sync()
            return False
        ids: list[int] = []
        with self.journal.transaction():
            self._sync()
            stale = self.engine.version != result.base_version or self._key() != result.key
            if not stale:
                ids = self.journal.append(
                    self.engine.model_event(result), *self.engine.fit_queue(result, self._fold)
                )
        if not ids:
            if result.file is not None:
                result.file.unlink(missing_ok=True)
            with self._status.lock:
                self._status.message = "discarded: the labels changed while it trained"
            self._sync()
            return False
        self._training_claim = None
        ev = self.journal.events(ids[0] - 1, kinds=["model_trained"])[0]
        self.engine.install_result(result, ev)
        self._sync()
        return True

    def bridge(self) -> int:
        """At a round boundary, while the model trains: queue the next round as the installed
        model (or the first-round rule) picks it, so the next item shows at once; the new model
        re-ranks the rest when it is swapped in. Returns the items queued (0: nothing to do)."""
        self._sync()
        with self._writing():
            self._sync()
            events = self.engine.bridge_events(self._fold)
            if events:
                self.journal.append(*events)
        self._sync()
        return len(events)

    def search(self, example: Item | int | np.ndarray, k: int = 10, label: str = "") -> int:
        """Queue the ``k`` unlabelled pool clips most like ``example`` (an item, a pool index,
        or a (D,) embedding; cosine on the pooled embeddings) before the rest of the queue, so
        they are asked next. Pool mode only (ValueError otherwise). Returns how many."""
        from iml_tui.engine.session.pool_backend import PoolBackend

        if not isinstance(self.engine, PoolBackend):
            raise ValueError("search by example works on pool projects")
        if isinstance(example, Item):
            query, name = self.engine.x[example.index], example.id
        elif isinstance(example, int | np.integer):
            query, name = self.engine.x[int(example)], self.engine.ids[int(example)]
        else:
            query, name = np.asarray(example, dtype=np.float32), label or "the example"
        with self._writing():
            self._sync()
            events = self.engine.search_events(self._fold, query, k, name)
            if events:
                self.journal.append(*events)
        self._sync()
        return len(events)

    def search_queue(self) -> list[tuple[str, float]]:
        """The clips queued by searches by example and not yet answered, in the order they are
        asked: (item id, cosine to the example)."""
        self._sync()
        found = [e for e in self._fold.unanswered() if e.payload.get("rule") == "search"]
        found.sort(key=lambda e: (int(e.payload.get("rank", 0)), e.id))
        return [(str(e.item_id), float(e.payload.get("cosine", float("nan")))) for e in found]

    def retrain_now(self, progress_cb: ProgressCb | None = None) -> bool:
        """start_retrain + run + swap_model on this thread; True when a model was installed."""
        return self.swap_model(self.start_retrain().run(progress_cb))

    # -- audio and truth --
    def read_audio(self, item: Item) -> tuple[np.ndarray, int]:
        """The clip's samples (n,) float32 and sample rate (UserError when not locatable)."""
        return self.engine.locator.read(item.id)

    def truth(self, item: Item) -> list[int]:
        """The stored ground truth of ``item`` (simulated annotators, tests, benchmarks)."""
        return self.engine.truth(item.index)

    def close(self) -> None:
        """Release this session's training claim (others may train now) and close the journal."""
        if self._training_claim is not None:
            # closing must not fail; a claim not released ends with its process
            with contextlib.suppress(Exception):
                self._release("training_released", model_version=self.engine.version)
        self.journal.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer_with_oracle(
    session: Session,
    answer: Oracle | Callable[[Item], Sequence[int]] | None = None,
    limit: int | None = None,
    seconds: float = 0.0,
) -> int:
    """Drive ``session`` like an annotator would, retraining on this thread whenever the queue
    waits; stops after ``limit`` answers or when done; returns the number of answers.

    ``answer``: an :class:`~iml_tui.engine.oracle.Oracle` (the simulator's, e.g.
    ``TruthOracle``; it answers each item's :meth:`Item.question` with 1, 0 or SKIPPED; binary
    sessions only), or a function item -> class indices, or None for the stored truth. A failed
    training raises RuntimeError.
    """
    if isinstance(answer, Oracle) and session.multi_label:
        raise ValueError("an Oracle answers 0/1; give a multi-class pool a function of the item")
    n = 0
    while limit is None or n < limit:
        item = session.next_item()
        if item is None:
            if not session.retrain_due():
                break
            if not session.retrain_now():
                err = session.model_status().error
                if err:
                    raise RuntimeError(f"retraining failed: {err}")
            continue
        if isinstance(answer, Oracle):
            got = int(np.asarray(answer.answer(item.question())).ravel()[0])
            if got == SKIPPED:
                session.skip(item, seconds)
            else:
                session.submit(item, [0] if got == 1 else [], seconds)
        else:
            session.submit(
                item, answer(item) if answer is not None else session.truth(item), seconds
            )
        n += 1
    return n
