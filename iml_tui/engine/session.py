"""A labelling session over a project folder: the engine side of ``iml-tui label``.

One engine for both faces: the TUI's human and the simulator's oracle answer the same items
through this API (:func:`answer_with_oracle` drives a session with an
:class:`~iml_tui.engine.oracle.Oracle`). Every answer is committed to the project's SQLite journal
(:mod:`iml_tui.engine.journal`) before the call returns; resuming = opening the same folder; after
a crash (even ``kill -9``) nothing answered is lost and the same next item comes back.

API (every method below is synchronous and fast — milliseconds — and never trains on the
caller's thread)::

    session = Session.open(project_dir, annotator="ana")   # open or resume (UserError if bad)
    session.mode             "pool" (rounds of a strategy) | "stream" (the IML loop, SPEC B.5)
    session.class_list       class names; labels are indices into it
    session.multi_label      True: any subset of the classes (pool); False: one binary class,
                             present or not (stream: the target language / live speech)
    session.annotator        who labels through this session (recorded with every answer)

    item = session.next_item()      Item | None: the item to show. The same item until it is
                                    answered (also after a restart). None when nothing can be
                                    asked now: the queue waits for a model (model_status().state
                                    "due" or "training"; stream mode always trains between its
                                    questions), or everything is done (progress().done).
    session.submit(item, labels, seconds)   labels: indices of the classes present ([] = none of
                                    them); seconds: time the annotator spent. Committed on return.
    session.skip(item, seconds=0.0) the item is not labelled and not asked again this round.
    session.undo() -> Item | None   withdraws this annotator's last answer (a compensating event;
                                    works across restarts) and returns its item to show again
                                    (``item.previous`` = the withdrawn labels); None: nothing to
                                    undo. Stream mode: only answers not yet used for training.
    session.progress() -> Progress          labelled / budget, round, per-class counts, ...
    session.model_status() -> ModelStatus   version, state, progress, last validation score,
                                            error (thread-safe: poll it from the UI)
    session.learning_curve() -> LearningCurve   score after each model (pool: valid mAP;
                                            stream: pre-DCF of each batch, lower is better)
    session.retrain_due() -> bool   the round (pool) / the question (stream) is fully answered
                                    and the queue waits for a new model

    job = session.start_retrain()   RetrainJob holding a snapshot of the labels (cheap); the
                                    status says "training" from here on. Pool mode: any time
                                    (mid-round the new model re-ranks the rest of the round).
                                    Stream mode: only when retrain_due(). RuntimeError then,
                                    and for a second job while one runs in this session.
    result = job.run(progress_cb, cancelled)   the slow part: run it in a thread worker.
                                    progress_cb(fraction in [0, 1], message); cancelled() -> bool
                                    is polled about once per epoch (stream: between fits).
                                    Never raises for a failed training: see result.error.
    session.swap_model(result) -> bool   installs the model atomically (checkpoint file written
                                    first, then one journal event) and re-ranks the queue;
                                    False, keeping the previous model, when the result failed
                                    (recorded in the journal: hand it every result), was
                                    cancelled or is stale (another process installed a model
                                    first; stream mode: an answer of the question changed).
    session.retrain_now() -> bool   start_retrain + run + swap_model on this thread (scripts).
    session.read_audio(item) -> (x, sr)   the clip's samples (UserError when not locatable).
    session.close()

Threading: a Session is used from one thread (the UI's); ``RetrainJob.run`` touches no session
state except the status that ``model_status()`` reads under a lock. Several processes may open
the same project at once (one annotator each): items are handed out with a lease, so two
annotators never get the same item, and the first process to finish a retraining installs it
for all (the others load its checkpoint on their next call).
"""

from __future__ import annotations

import copy
import getpass
import hashlib
import json
import os
import secrets
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iml_tui.atomic import atomic_torch_save
from iml_tui.data.locate import ClipLocation, Locator
from iml_tui.data.store import PoolStore
from iml_tui.engine import metrics
from iml_tui.engine.journal import Event, Journal, NewEvent
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.engine.oracle import SKIPPED, Oracle, Question, Why
from iml_tui.engine.project import Project
from iml_tui.engine.self_validated import train_self_validated
from iml_tui.engine.strategies import (
    INIT_RULE,
    SelectionState,
    initial_round,
    select,
)
from iml_tui.engine.strategies.farthest import max_similarity
from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier
from iml_tui.errors import UserError

ProgressCb = Callable[[float, str], None]
"""``progress_cb(fraction in [0, 1], message)``, called from the training thread."""
CancelFn = Callable[[], bool]
"""``cancelled() -> bool``: True asks a running training to stop (polled about once per epoch)."""

STATES: tuple[str, ...] = ("none", "ready", "due", "training", "done")


# --- what the face sees --------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One item to show, with everything the screen needs.

    index: row in the pool store (pool) or the stream's sample table (stream). id: the clip id
    (source file + offset). kind: "pool-query" (chosen by the pool strategy), "al-query" (the
    stream model asks), "cf-review" (a model decision to review: corrective feedback) or
    "bootstrap". why: one line for the "why this one" panel; why_fields: the facts behind it
    (strategy, mismatch, neighbour, neighbour_labels, distance, uncertainty, method, ...).
    clip_probs (C,) and frame_probs (T, C) float32: the current model's probabilities (None
    before the first model); predicted: the classes the model says are present (at threshold);
    confidence: the model's probability of its own decision for its least certain class.
    location: where the audio is (None when it cannot be found: ``audio_error`` says why).
    round: pool round (0-based) or stream batch (-1: bootstrap); position: rank in its queue;
    model_version: the model behind the probabilities (0: none); previous: the labels withdrawn
    by undo when the item is shown again (() = it had been labelled "none"; None otherwise).
    """

    index: int
    id: str
    kind: str
    why: str
    why_fields: dict[str, Any]
    clip_probs: np.ndarray | None
    frame_probs: np.ndarray | None
    predicted: tuple[int, ...]
    confidence: float | None
    threshold: float
    location: ClipLocation | None
    audio_error: str
    round: int
    position: int
    model_version: int
    previous: tuple[int, ...] | None = None

    def question(self) -> Question:
        """This item as a one-item :class:`Question` (what an Oracle answers)."""
        why: Why = ("cf-review" if self.kind == "cf-review" else
                    "bootstrap" if self.kind == "bootstrap" else "al-query")
        pred = None if self.clip_probs is None else np.array([int(bool(self.predicted))])
        conf = None if self.confidence is None or pred is None else np.array([self.confidence])
        return Question(items=np.array([self.index]), why=why, pred=pred, confidence=conf,
                        batch=self.round, ids=(self.id,))


@dataclass(frozen=True)
class Progress:
    """labelled / budget: labels in force and the current round's target (stream: labels so far
    plus the questions still open); round / n_rounds (stream: batch / batches); per_class:
    labelled items where each class is present; none: labelled "none of them"; skipped;
    queue_left: items of the current queue not answered yet, and items handed to an annotator
    and not answered yet; done: nothing more to ask;
    mine: answers of this session's annotator; seconds: time they spent."""

    labelled: int
    budget: int
    round: int
    n_rounds: int
    per_class: dict[str, int]
    none: int
    skipped: int
    queue_left: int
    done: bool
    mine: int
    seconds: float


@dataclass(frozen=True)
class ModelStatus:
    """version: the installed model (0 = none yet); state: "none" (no model, none needed
    yet), "ready", "due" (the queue waits for a retraining), "training" (this process runs
    one), "done"; progress in [0, 1] and message of a running training; score / score_name:
    the last validation score (pool: "valid mAP", stream: "pre-DCF" of the last batch, lower is
    better); trained_on: labels the model saw; error: why the last training failed ("" if it
    did not)."""

    version: int
    state: str
    progress: float
    message: str
    score: float | None
    score_name: str
    trained_on: int
    error: str


@dataclass(frozen=True)
class LearningCurve:
    """Score after each model: points (labels used, score); ``higher_is_better``."""

    metric: str
    higher_is_better: bool
    points: list[tuple[int, float]]


@dataclass
class RetrainResult:
    """What :meth:`RetrainJob.run` produced; hand it to :meth:`Session.swap_model`.

    ok: a model to install (error None, not cancelled). version: the version it gets;
    base_version: the model it replaces. scores: validation numbers; n_labelled: labels used;
    seconds: wall time; file: the checkpoint written (next to the journal).
    """

    mode: str
    base_version: int
    version: int
    key: str
    error: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    n_labelled: int = 0
    file: Path | None = None
    queue: list[NewEvent] = field(default_factory=list)
    state: Any = None
    round: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


class _Cancelled(Exception):
    """Raised inside a training when ``cancelled()`` became true."""


class _Status:
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
            self.message = ("cancelled" if result.cancelled else
                            "failed" if result.error else f"model {result.version} ready")
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

    def __init__(self, mode: str, base_version: int, key: str, status: _Status, description: str,
                 work: Callable[[ProgressCb, CancelFn], RetrainResult]) -> None:
        self.mode = mode
        self.base_version = base_version
        self.key = key
        self.description = description
        self._status = status
        self._work = work
        self._ran = False

    def run(self, progress_cb: ProgressCb | None = None,
            cancelled: CancelFn | None = None) -> RetrainResult:
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
        except _Cancelled:
            result = RetrainResult(self.mode, self.base_version, self.base_version + 1, self.key,
                                   cancelled=True)
        except Exception as exc:  # a failed training must not take the session down
            detail = traceback.format_exc(limit=3).strip().splitlines()[-1]
            result = RetrainResult(self.mode, self.base_version, self.base_version + 1, self.key,
                                   error=f"{type(exc).__name__}: {exc}" if str(exc) else detail)
        result.seconds = time.perf_counter() - t0
        status.finish(result)
        return result


# --- the journal folded into memory --------------------------------------------------------------
class _Fold:
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
        elif k == "undone" and e.ref is not None:
            self.undone.add(e.ref)
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

    def labelled(self) -> list[Event]:
        """Current labels, in the order they were given."""
        return sorted((e for e in self.current.values() if e.kind == "labelled"),
                      key=lambda e: e.id)

    def skipped(self) -> set[int]:
        return {i for i, e in self.current.items() if e.kind == "skipped"}

    def queue_items(self) -> list[Event]:
        return sorted(self.queue, key=lambda e: (int(e.payload.get("rank", 0)), e.id))

    def unanswered(self) -> list[Event]:
        return [e for e in self.queue_items() if e.item not in self.current]

    def claim_active(self, c: Event) -> bool:
        ans = self.current.get(c.item) if c.item is not None else None
        return ans is None or ans.id < c.id

    def withdrawn(self, item: int) -> tuple[int, ...] | None:
        """Labels of the item's last undone answer, when that is its latest answer event."""
        hist = self.answers.get(item, [])
        if hist and hist[-1].id in self.undone and item not in self.current:
            return hist[-1].labels if hist[-1].kind == "labelled" else None
        return None

    def labels_key(self) -> str:
        body = json.dumps([[e.item, list(e.labels or ())] for e in
                           sorted(self.labelled(), key=lambda e: int(e.item or 0))])
        return hashlib.sha1(body.encode()).hexdigest()[:16]


def _checkpoint_path(models_dir: Path, mode: str, version: int) -> Path:
    return models_dir / f"{mode}_v{version:04d}_{os.getpid()}_{secrets.token_hex(3)}.pt"


def _names(class_list: Sequence[str], labels: Sequence[int]) -> str:
    return ", ".join(class_list[i] for i in labels) if labels else "none"


# --- pool mode -----------------------------------------------------------------------------------
def _next_round(budgets: Sequence[int], n_labelled: int) -> int | None:
    """The first round whose budget exceeds the labels in force (None: every budget reached)."""
    for r, b in enumerate(budgets):
        if b > n_labelled:
            return r
    return None


class _PoolEngine:
    """Pool mode: rounds of the project's strategy over ``<pool_dir>/train.h5``."""

    mode = "pool"
    multi_label = True

    def __init__(self, project: Project) -> None:
        cfg = project.config
        self.project = project
        self.cfg = cfg
        pool_dir = Path(cfg.pool_dir)
        self.store = PoolStore(pool_dir / "train.h5")
        valid = pool_dir / "valid.h5"
        # without a labelled valid.h5 the annotator's own labels validate (self_validated.py)
        self.valid_path: Path | None = valid if valid.is_file() else None
        self.class_list = list(self.store.class_list)
        self.ids = self.store.ids
        self.n = self.store.n
        self.x = np.asarray(self.store.pooled())
        self.locator = Locator(self.store.attrs, cfg.audio_root or None)
        self.train_cfg = TrainConfig(
            lr=cfg.lr, batch_size=cfg.batch_size, lr_factor=cfg.lr_factor,
            lr_patience=cfg.lr_patience, lr_threshold=cfg.lr_threshold, min_lr=cfg.min_lr,
            max_epochs=cfg.max_epochs, hidden=cfg.hidden, seed=cfg.seed, device=cfg.device,
            threads=cfg.threads or None)
        self.model: FrameMLP | None = None
        self.threshold = 0.5
        self.version = 0
        self.scores: dict[str, float] = {}
        self.trained_on = 0
        self._valid: tuple[np.ndarray, np.ndarray] | None = None
        self._valid_lock = threading.Lock()
        self._item_cache: dict[int, tuple[int, np.ndarray]] = {}
        self._truth: np.ndarray | None = None

    @property
    def n_rounds(self) -> int:
        return len(self.cfg.budgets)

    @property
    def score_name(self) -> str:
        if self.valid_path is not None:
            return "valid mAP"
        n = int(self.scores.get("n_oof", self.trained_on))
        std = self.scores.get("valid_map_std")
        spread = f", ±{std:.2f}" if std is not None else ""
        return f"mAP estimated from {n} labels{spread}"

    def pool_label_events(self, journal: Journal) -> list[NewEvent]:
        """``labelled`` events for the clips whose labels the pool knows (recordings prepared
        with annotations), once per project; [] for pools without a known-label mask."""
        if not self.store.has_known_mask:
            return []
        if any(e.payload.get("source") == "pool" for e in journal.events(0, kinds=["imported"])):
            return []
        rows = np.flatnonzero(self.store.known())
        clip = self.store.clip_labels(rows)
        who = "import:train.h5"
        return [NewEvent("imported", annotator=who,
                         payload={"source": "pool", "file": str(self.store.path),
                                  "rows": int(rows.size)}),
                *(NewEvent("labelled", item=int(i), item_id=self.ids[int(i)],
                           labels=[int(c) for c in np.flatnonzero(clip[k])], annotator=who,
                           payload={"kind": "import"}) for k, i in enumerate(rows))]

    # -- models --
    def load(self, ev: Event) -> None:
        """Install the model of a ``model_trained`` event (written by any process)."""
        path = self.project.dir / str(ev.payload["file"])
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.install(FrameMLP.from_state_dict(saved["state_dict"]).eval(), ev)

    def install(self, model: FrameMLP, ev: Event) -> None:
        self.model = model
        self.version = int(ev.model_version or 0)
        self.threshold = float(ev.payload.get("threshold", 0.5))
        self.scores = {k: float(v) for k, v in ev.payload.get("scores", {}).items()}
        self.trained_on = int(ev.payload.get("n_labelled", 0))
        self._item_cache.clear()

    def _valid_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.valid_path is None:
            raise ValueError("this pool has no valid.h5")
        with self._valid_lock:
            if self._valid is None:
                v = PoolStore(self.valid_path)
                if v.class_list != self.class_list or v.d != self.store.d:
                    raise UserError(f"valid.h5 has classes {v.class_list} and D={v.d}; train.h5 "
                                    f"{self.class_list}, D={self.store.d}", v.path,
                                    "both must come from the same encoder and class list")
                self._valid = (v.embeddings(), v.frame_labels())
            return self._valid

    # -- selection --
    def targets(self, labelled: Sequence[Event]) -> tuple[np.ndarray, np.ndarray]:
        """(L,) pool indices in labelling order and their (L, C) clip-level 0/1 targets."""
        idx = np.array([int(e.item or 0) for e in labelled], dtype=np.int64)
        y = np.zeros((len(idx), len(self.class_list)), dtype=np.uint8)
        for k, e in enumerate(labelled):
            y[k, list(e.labels or ())] = 1
        return idx, y

    def choose(self, n: int, lab: np.ndarray, y: np.ndarray, skipped: set[int],
               probs: np.ndarray | None, threshold: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, str]:
        """Up to ``n`` new pool indices by the project's strategy (skipped items left out) and
        the rule used ("mfft", or the first-round rule when there is no model yet)."""
        strategy = self.cfg.strategy
        extra = len(skipped - set(lab.tolist()))
        want = min(n + extra, self.n - len(lab))
        if want <= 0:
            return np.zeros(0, np.int64), strategy
        if lab.size == 0:
            rule = INIT_RULE[strategy]
            picks = initial_round(strategy, self.x, want, rng)
        else:
            rule = strategy if (probs is not None or strategy in ("rand", "ft")) \
                else INIT_RULE[strategy]
            state = SelectionState(x=self.x, labeled=lab, labeled_targets=y,
                                   probs=probs if rule in ("mp", "mfft") else None,
                                   threshold=threshold)
            picks = select(rule, state, want, rng)
        keep = np.array([int(p) not in skipped for p in picks], dtype=bool)
        return np.asarray(picks[keep][:n], dtype=np.int64), rule

    def queue_events(self, picks: np.ndarray, rule: str, lab: np.ndarray, y: np.ndarray,
                     probs: np.ndarray | None, threshold: float, gen: int, round_: int
                     ) -> list[NewEvent]:
        """``selected`` events for the picks, each with why it was chosen."""
        if picks.size == 0:
            return []
        sim = nn = None
        if lab.size:
            sim, nn = max_similarity(self.x, picks, lab)
        out: list[NewEvent] = []
        names = self.class_list
        for k, i in enumerate(picks.tolist()):
            f: dict[str, Any] = {"strategy": self.cfg.strategy, "rule": rule, "rank": k}
            nbr_txt = ""
            if sim is not None and nn is not None and nn[k] >= 0:
                j = int(nn[k])
                nbr = [int(c) for c in np.flatnonzero(y[j])]
                f.update(neighbour=int(lab[j]), neighbour_id=self.ids[int(lab[j])],
                         neighbour_labels=[names[c] for c in nbr],
                         distance=round(float(1.0 - sim[k]), 4))
                nbr_txt = f"nearest labelled clip ({_names(names, nbr)}) at distance " \
                          f"{f['distance']:.2f}"
            pred: list[int] = []
            if probs is not None:
                pred = [int(c) for c in np.flatnonzero(probs[i] >= threshold)]
                f["predicted"] = [names[c] for c in pred]
                if sim is not None and nn is not None and nn[k] >= 0:
                    f["mismatch"] = int(np.count_nonzero(
                        (probs[i] >= threshold) != y[int(nn[k])].astype(bool)))
            if rule in ("mp", "mfft") and "mismatch" in f:
                why = (f"mismatch {f['mismatch']}: the model says {_names(names, pred)}; its "
                       f"{nbr_txt}")
            elif rule == "ft":
                why = (f"farthest from what is labelled: {nbr_txt}" if nbr_txt else
                       "first pick: spread over the pool (farthest-first)")
                if rule != self.cfg.strategy:
                    why = f"no model yet, {self.cfg.strategy} starts farthest-first: " + why
            else:
                why = "random pick" + (f"; {nbr_txt}" if nbr_txt else "")
            f["why"] = why
            out.append(NewEvent("selected", item=int(i), item_id=self.ids[int(i)],
                                model_version=gen, round=round_, payload=f))
        return out

    def first_queue(self, fold: _Fold) -> list[NewEvent]:
        """The queue before any model: the first round (after imported labels, if any)."""
        labelled = fold.labelled()
        r = _next_round(self.cfg.budgets, len(labelled))
        if r is None:
            return []
        lab, y = self.targets(labelled)
        n = self.cfg.budgets[r] - len(labelled)
        rng = np.random.default_rng([self.cfg.seed, r, 0])
        picks, rule = self.choose(n, lab, y, fold.skipped(), None, 0.5, rng)
        return self.queue_events(picks, rule, lab, y, None, 0.5, 0, r)

    # -- the retraining --
    def job_work(self, fold: _Fold, status_key: str) -> Callable[[ProgressCb, CancelFn],
                                                                  RetrainResult]:
        labelled = fold.labelled()
        lab, y = self.targets(labelled)
        now, lease = time.time(), self.cfg.lease_seconds
        # items on someone's screen stay theirs: not re-picked, and they count as picked
        held = {int(c.item or 0) for c in fold.claims.values()
                if fold.claim_active(c) and now - c.ts < lease}
        skipped = fold.skipped() | held
        unanswered = fold.unanswered()
        exhausted = not unanswered
        cur_round = int(fold.queue[0].round or 0) if fold.queue else 0
        if exhausted:
            r = _next_round(self.cfg.budgets, len(lab))
            n = 0 if r is None else max(0, self.cfg.budgets[r] - len(lab) - len(held))
            round_ = cur_round if r is None else r
        else:
            round_ = cur_round
            n = sum(1 for e in unanswered if int(e.item or 0) not in held)
        base = self.version
        version = base + 1
        models_dir = self.project.models_dir
        strategy = self.cfg.strategy
        train_cfg = self.train_cfg
        labels_key = fold.labels_key()

        def work(progress: ProgressCb, cancelled: CancelFn) -> RetrainResult:
            if lab.size == 0:
                raise ValueError("nothing is labelled yet: label some items first")
            progress(0.0, "reading the labelled clips")
            tx = self.store.embeddings(lab)
            ty = self.frame_targets(lab, y, tx.shape[1])
            span = np.log(train_cfg.lr / train_cfg.min_lr)

            def share(epoch: int) -> float:
                # lr halves on plateaus until below min_lr: a rough share of the way
                return min(0.95, epoch / train_cfg.max_epochs + 0.02 * epoch / (1 + span))

            extra: dict[str, float] = {}
            if self.valid_path is not None:
                vx, vy = self._valid_arrays()

                def on_epoch(epoch: int, valid_map: float) -> None:
                    if cancelled():
                        raise _Cancelled
                    progress(0.8 * share(epoch), f"epoch {epoch}: valid mAP "
                             f"{100 * valid_map:.1f}")

                res = train_frame_classifier(tx, ty, vx, vy, train_cfg, progress=on_epoch)
                state_dict, epochs, best = res.state_dict, res.epochs_run, res.best_epoch
                model = FrameMLP.from_state_dict(state_dict).eval()
                progress(0.8, "scoring the validation clips")
                vp = predict_frames(model, vx, "cpu")
                thr, vf1 = metrics.best_global_threshold(vp, vy)
                vmap, _ = metrics.frame_map(vp, vy)
            else:
                def on_fold(fold: int, k: int, epoch: int, held_map: float) -> None:
                    if cancelled():
                        raise _Cancelled
                    what = (f"fold {fold + 1}/{k}" if fold < k else "final model on all labels")
                    progress(0.8 * (fold + share(epoch)) / (k + 1),
                             f"{what}, epoch {epoch}: held-out mAP {100 * held_map:.1f}")

                sv = train_self_validated(tx, ty, train_cfg, seed=self.cfg.seed,
                                          progress=on_fold)
                state_dict, epochs, best = sv.state_dict, sv.epochs, sv.epochs
                model = FrameMLP.from_state_dict(state_dict).eval()
                thr, vf1, vmap = sv.oof.threshold, sv.oof.f1, sv.est_map
                extra = {"valid_map_std": sv.est_map_std, "n_oof": float(sv.oof.n_labels),
                         "folds": float(sv.k)}
            probs = None
            if n > 0 and strategy in ("mp", "mfft"):
                progress(0.85, "predicting the pool")
                blocks = []
                for start, block in self.store.iter_blocks():
                    if cancelled():
                        raise _Cancelled
                    blocks.append((start, predict_frames(model, block, "cpu").max(axis=1)))
                probs = np.zeros((self.n, len(self.class_list)), np.float32)
                for start, p in blocks:
                    probs[start:start + p.shape[0]] = p
            queue: list[NewEvent] = []
            if n > 0:
                progress(0.95, f"selecting {n} clips ({strategy})")
                rng = np.random.default_rng([self.cfg.seed, round_, version])
                picks, rule = self.choose(n, lab, y, skipped, probs, thr, rng)
                queue = self.queue_events(picks, rule, lab, y, probs, thr, version, round_)
            path = _checkpoint_path(models_dir, "pool", version)
            atomic_torch_save({"state_dict": state_dict, "threshold": thr,
                                "labelled": lab.tolist(), "class_list": self.class_list}, path)
            name = "valid mAP" if self.valid_path is not None else "estimated mAP"
            progress(1.0, f"model {version}: {name} {100 * vmap:.1f}")
            scores = {"valid_map": float(vmap), "valid_f1": float(vf1), "threshold": float(thr),
                      "epochs": float(epochs), "best_epoch": float(best), **extra}
            return RetrainResult("pool", base, version, status_key, scores=scores,
                                 n_labelled=int(lab.size), file=path, queue=queue, state=model,
                                 round=round_, info={"threshold": float(thr),
                                                     "labels_key": labels_key,
                                                     "no_more": n > 0 and not queue})
        return work

    def model_event(self, result: RetrainResult) -> NewEvent:
        return NewEvent("model_trained", model_version=result.version, round=result.round,
                        seconds=result.seconds,
                        payload={"file": str(Path(result.file or "").relative_to(
                            self.project.dir)), "threshold": result.info["threshold"],
                            "scores": result.scores, "n_labelled": result.n_labelled,
                            "labels_key": result.info["labels_key"],
                            "no_more": result.info["no_more"]})

    def install_result(self, result: RetrainResult, ev: Event) -> None:
        self.install(result.state, ev)

    # -- what the screen shows --
    def probs_of(self, item: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.model is None:
            return None, None
        cached = self._item_cache.get(item)
        if cached is None or cached[0] != self.version:
            emb = self.store.embeddings(np.array([item], dtype=np.int64))
            frames = predict_frames(self.model, emb, "cpu")[0]
            if len(self._item_cache) > 256:
                self._item_cache.clear()
            self._item_cache[item] = (self.version, frames)
            cached = self._item_cache[item]
        frames = cached[1]
        return frames.max(axis=0), frames

    def item_view(self, sel: Event | None, item: int) -> dict[str, Any]:
        clip, frames = self.probs_of(item)
        f = dict(sel.payload) if sel is not None else {}
        why = str(f.pop("why", "")) or "asked again"
        out: dict[str, Any] = {"kind": "pool-query", "why": why, "why_fields": f,
                               "clip_probs": clip, "frame_probs": frames,
                               "threshold": self.threshold, "predicted": (), "confidence": None}
        if clip is not None:
            pred = clip >= self.threshold
            out["predicted"] = tuple(int(c) for c in np.flatnonzero(pred))
            out["confidence"] = float(np.min(np.where(pred, clip, 1.0 - clip)))
        return out

    def truth(self, item: int) -> list[int]:
        """The store's own clip labels of ``item`` (for simulated annotators)."""
        if self._truth is None:
            self.store.require_known(np.array([item]), "a simulated annotator")
            self._truth = self.store.clip_labels(np.flatnonzero(self.store.known()))
            if not self.store.all_known:
                full = np.zeros((self.n, len(self.class_list)), np.uint8)
                full[self.store.known()] = self._truth
                self._truth = full
        else:
            self.store.require_known(np.array([item]), "a simulated annotator")
        return [int(c) for c in np.flatnonzero(self._truth[item])]

    def frame_targets(self, lab: np.ndarray, y: np.ndarray, t: int) -> np.ndarray:
        """(L, T, C) training targets of the labelled pool rows ``lab`` with clip labels y (L, C).

        A clip whose labels came with the recordings (the pool's known-label mask) and still
        agree with the journal keeps its annotated frame extents; other clips carry their clip
        labels on every frame."""
        ty = np.repeat(y[:, None, :], t, axis=1)
        if not self.store.has_known_mask or lab.size == 0:
            return ty
        known = np.flatnonzero(self.store.known()[lab])
        if known.size:
            frames = self.store.frame_labels(allow_unknown=True)[lab[known]]
            agree = (frames.max(axis=1) == y[known]).all(axis=1)
            ty[known[agree]] = frames[agree]
        return ty

    def learning_curve(self, fold: _Fold) -> LearningCurve:
        pts = [(int(e.payload.get("n_labelled", 0)),
                float(e.payload.get("scores", {}).get("valid_map", float("nan"))))
               for e in fold.models]
        name = "valid mAP" if self.valid_path is not None else "estimated mAP (out-of-fold)"
        return LearningCurve(name, True, pts)


# --- stream mode ---------------------------------------------------------------------------------
@dataclass
class _StreamState:
    """Everything the stream loop carries between questions (saved with each model)."""

    model_state: dict[str, torch.Tensor]
    rng_state: Mapping[str, Any]
    budget: Any
    st: Any  # paradigms.stream._State, None before the bootstrap is answered
    phase: str  # boot-question | boot-fit | al | cf | done
    step: Any  # paradigms.stream.BatchStep of the batch in progress
    question: Question | None


class _NoOracle:
    """The session drives the loop's step functions itself; nothing may ask an oracle."""

    def answer(self, question: Question) -> np.ndarray:
        raise RuntimeError("a labelling session answers through Session.submit")


def stream_store_attrs(cfg: Any) -> dict[str, Any]:
    """Attributes of the (first) feature store a stream config reads: where its audio is."""
    base = Path(cfg.feat_root) / cfg.features[0]
    name = cfg.split if cfg.task == "lid" else cfg.env
    candidates = [base / f"{name}.h5"]
    if (base / name).is_dir():
        candidates += sorted((base / name).glob("*.h5"))
    for path in candidates:
        if path.is_file():
            return PoolStore(path).attrs
    return {}


class _StreamEngine:
    """Stream mode: the B.5 loop (AL queries, then the model's decisions to review), one
    question at a time, with the human as the oracle."""

    mode = "stream"
    multi_label = False
    score_name = "pre-DCF"

    def __init__(self, project: Project) -> None:
        from iml_tui.engine.paradigms.stream import StreamRun, build_model, prepare_inputs

        self.project = project
        scfg = project.config.stream_config()
        self.scfg = scfg
        target = scfg.target if scfg.task == "lid" else scfg.env
        self.inputs = prepare_inputs(scfg, target)
        self.run = StreamRun(scfg, self.inputs, project.dir / "stream", torch.device("cpu"),
                             oracle=_NoOracle())
        self.class_list = [self.inputs.target]
        self.ids = self.inputs.ids
        self.n = len(self.ids)
        self.locator = Locator(stream_store_attrs(scfg), project.config.audio_root or None)
        self.version = 0
        self.n_rounds = self.inputs.n_batches
        model = build_model(scfg, self.run.dim, torch.device("cpu"))
        rng = np.random.default_rng([scfg.seed, 1])
        from iml_tui.engine.budgets import QueryBudget

        budget = QueryBudget(self.run.budget_cfg, self.run.plan)
        q = self.run.bootstrap_question()
        st = self.run.bootstrap_state(None, None) if q is None else None
        self.state = _StreamState(
            model_state={k: v.detach().clone() for k, v in model.state_dict().items()},
            rng_state=rng.bit_generator.state, budget=budget, st=st,
            phase="boot-fit" if q is None else "boot-question", step=None, question=q)
        self._model_cache: tuple[int, Any] | None = None

    @property
    def trained_on(self) -> int:
        st = self.state.st
        return 0 if st is None else len(st.pool_y)

    @property
    def scores(self) -> dict[str, float]:
        st = self.state.st
        if st is None or not st.rows:
            return {}
        return {"pre_dcf": float(st.rows[-1].pre_dcf), "dcf": float(st.rows[-1].dcf)}

    # -- models --
    def load(self, ev: Event) -> None:
        path = self.project.dir / str(ev.payload["file"])
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.install(state, ev)

    def install(self, state: _StreamState, ev: Event) -> None:
        self.state = state
        self.version = int(ev.model_version or 0)

    def install_result(self, result: RetrainResult, ev: Event) -> None:
        self.install(result.state, ev)
        st = self.state.st
        if st is not None and st.rows:
            from iml_tui.engine.scoring import write_scores

            out = self.project.dir / "stream"
            out.mkdir(parents=True, exist_ok=True)
            write_scores(out / "scores.csv.tmp", st.rows)
            (out / "scores.csv.tmp").replace(out / "scores.csv")

    def model_event(self, result: RetrainResult) -> NewEvent:
        return NewEvent("model_trained", model_version=result.version, round=result.round,
                        seconds=result.seconds,
                        payload={"file": str(Path(result.file or "").relative_to(
                            self.project.dir)), "scores": result.scores,
                            "n_labelled": result.n_labelled, "phase": result.info["phase"]})

    # -- questions --
    def question_events(self, state: _StreamState, gen: int) -> list[NewEvent]:
        q = state.question
        if q is None or not len(q):
            return []
        step = state.step
        out = []
        target = self.inputs.target
        for k, i in enumerate(q.items.tolist()):
            f: dict[str, Any] = {"rank": k, "kind": q.why}
            if q.pred is not None and q.confidence is not None:
                pred, conf = int(q.pred[k]), float(q.confidence[k])
                f.update(pred=pred, confidence=round(conf, 4),
                         prob=round(conf if pred == 1 else 1.0 - conf, 4))
            if q.why == "al-query" and step is not None:
                f["method"] = step.method
                if step.scores is not None:
                    f["uncertainty"] = round(float(step.scores[k]), 4)
                detail = (f"{step.method} score {f['uncertainty']:.3f}" if "uncertainty" in f
                          else f"rank {k + 1} by {step.method}")
                f["why"] = (f"the model asks: {detail} (confidence {f.get('confidence', 0):.2f});"
                            f" {step.n_q} of {len(step.idx)} in batch {step.b + 1}")
            elif q.why == "cf-review":
                says = target if f.get("pred") == 1 else f"not {target}"
                f["why"] = (("model detection to review" if f.get("pred") == 1 else
                             "model decision to review") +
                            f": it says {says} (confidence {f.get('confidence', 0):.2f})")
            else:
                f["why"] = "bootstrap: labelled before the stream starts"
            out.append(NewEvent("selected", item=int(i), item_id=self.ids[int(i)],
                                model_version=gen, round=q.batch, payload=f))
        return out

    def first_queue(self, fold: _Fold) -> list[NewEvent]:
        return self.question_events(self.state, 0)

    def answers(self, fold: _Fold) -> np.ndarray | None:
        """The current question's answers (1 / 0 / SKIPPED), None while one is open."""
        q = self.state.question
        if q is None:
            return np.zeros(0, np.int64)
        out = np.zeros(len(q), np.int64)
        for k, i in enumerate(q.items.tolist()):
            e = fold.current.get(int(i))
            if e is None:
                return None
            out[k] = SKIPPED if e.kind == "skipped" else int(0 in (e.labels or ()))
        return out

    def key(self, fold: _Fold) -> str:
        a = self.answers(fold)
        return f"{self.version}:" + ("open" if a is None else ",".join(map(str, a.tolist())))

    def due(self, fold: _Fold) -> bool:
        ph = self.state.phase
        if ph == "done":
            return False
        return ph == "boot-fit" or self.answers(fold) is not None

    def job_work(self, fold: _Fold, status_key: str) -> Callable[[ProgressCb, CancelFn],
                                                                  RetrainResult]:
        from iml_tui.engine.paradigms.stream import build_model

        labels = self.answers(fold)
        if labels is None:
            raise RuntimeError("nothing to train yet: answer the open question first")
        state = copy.deepcopy(self.state)
        run, scfg, base = self.run, self.scfg, self.version
        version = base + 1
        models_dir = self.project.models_dir
        n_batches = self.inputs.n_batches

        def work(progress: ProgressCb, cancelled: CancelFn) -> RetrainResult:
            model = build_model(scfg, run.dim, torch.device("cpu"))
            model.load_state_dict(state.model_state)
            rng = np.random.default_rng()
            rng.bit_generator.state = state.rng_state
            phase, st, step, q, lab = state.phase, state.st, state.step, state.question, labels
            budget = state.budget
            while True:
                if cancelled():
                    raise _Cancelled
                if phase in ("boot-question", "boot-fit"):
                    if phase == "boot-question":
                        st = run.bootstrap_state(q, lab)
                    progress(0.1, f"fitting on the bootstrap ({len(st.pool_y)} items)")
                    run.fit(model, st, rng)
                    phase = "next"
                elif phase == "al":
                    run.take_al_answers(step, st, model, lab)
                    progress(0.2, f"batch {step.b + 1}: fitting on {len(st.pool_y)} labels")
                    step.tm.fit_al_s, step.tm.epochs_al = run.fit(model, st, rng)
                    cq = run.cf_question(step, model)
                    if cq is not None and len(cq):
                        phase, q = "cf", cq
                        break
                    if cq is not None:
                        run.take_cf_answers(step, st, cq, np.zeros(0, np.int64))
                    run.end_batch(step, st)
                    phase = "next"
                elif phase == "cf" and q is not None:
                    if run.take_cf_answers(step, st, q, lab):
                        progress(0.5, f"batch {step.b + 1}: fitting on the reviewed decisions")
                        step.tm.fit_cf_s, step.tm.epochs_cf = run.fit(model, st, rng)
                    run.end_batch(step, st)
                    phase = "next"
                if phase == "next":
                    b = len(st.rows)
                    if b >= n_batches:
                        phase, step, q = "done", None, None
                        break
                    progress(0.8, f"batch {b + 1}: ranking its samples")
                    step, q = run.begin_batch(b, model, rng, budget, st)
                    phase = "al"
                    if len(q):
                        break
                    lab = np.zeros(0, np.int64)
            new = _StreamState(
                model_state={k: v.detach().clone() for k, v in model.state_dict().items()},
                rng_state=rng.bit_generator.state, budget=budget, st=st, phase=phase, step=step,
                question=q)
            path = _checkpoint_path(models_dir, "stream", version)
            atomic_torch_save(new, path)
            scores = ({"pre_dcf": float(st.rows[-1].pre_dcf), "dcf": float(st.rows[-1].dcf)}
                      if st.rows else {})
            progress(1.0, f"model {version} ready")
            rnd = -1 if step is None else int(step.b)
            return RetrainResult("stream", base, version, status_key, scores=scores,
                                 n_labelled=len(st.pool_y), file=path,
                                 queue=self.question_events(new, version), state=new, round=rnd,
                                 info={"phase": phase})
        return work

    # -- what the screen shows --
    def item_view(self, sel: Event | None, item: int) -> dict[str, Any]:
        f = dict(sel.payload) if sel is not None else {}
        why = str(f.pop("why", "")) or "asked again"
        out: dict[str, Any] = {"kind": str(f.get("kind", "al-query")), "why": why,
                               "why_fields": f, "clip_probs": None, "frame_probs": None,
                               "threshold": 0.5, "predicted": (), "confidence": None}
        if "prob" in f:
            p = np.array([f["prob"]], dtype=np.float32)
            out.update(clip_probs=p, frame_probs=p[None, :], predicted=(0,) if f["pred"] else (),
                       confidence=float(f["confidence"]))
        return out

    def truth(self, item: int) -> list[int]:
        return [0] if int(self.inputs.y[item]) == 1 else []

    def learning_curve(self, fold: _Fold) -> LearningCurve:
        st = self.state.st
        rows = [] if st is None else st.rows
        return LearningCurve("pre-DCF", False, [(int(r.n_samples), float(r.pre_dcf))
                                                for r in rows])


# --- the session ---------------------------------------------------------------------------------
def default_annotator() -> str:
    """The login name (the annotator recorded when none is given)."""
    try:
        return getpass.getuser() or "annotator"
    except (KeyError, OSError):
        return "annotator"


class Session:
    """A labelling session of one annotator over a project (see the module docstring)."""

    def __init__(self, project: Project, engine: _PoolEngine | _StreamEngine, journal: Journal,
                 annotator: str) -> None:
        self.project = project
        self.engine = engine
        self.journal = journal
        self.annotator = annotator
        self._fold = _Fold()
        self._status = _Status()
        self._load_error = ""

    @classmethod
    def open(cls, project_dir: str | Path, annotator: str | None = None) -> Session:
        """Open (or resume) the project in ``project_dir`` for ``annotator`` (default: the
        login name). Reads the pool or stream, replays the journal and, for a new project,
        selects the first queue."""
        project = Project.load(project_dir)
        engine: _PoolEngine | _StreamEngine = (
            _PoolEngine(project) if project.mode == "pool" else _StreamEngine(project))
        journal = project.open_journal()
        journal.append_meta({"task": project.config.task, "mode": project.mode,
                             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        who = (annotator or default_annotator()).strip()
        if not who:
            raise UserError("the annotator name is empty", None, "give --annotator NAME")
        session = cls(project, engine, journal, who)
        if isinstance(engine, _PoolEngine):
            with journal.transaction():
                events = engine.pool_label_events(journal)
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
        f = self._fold
        if isinstance(self.engine, _StreamEngine):
            return self.engine.state.phase == "done"
        if f.unanswered() or not f.models or self.engine.version == 0:
            return False
        last = f.models[-1].payload
        if last.get("labels_key") != f.labels_key():
            return False
        return (_next_round(self.engine.cfg.budgets, len(f.labelled())) is None
                or bool(last.get("no_more")))

    def _due(self) -> bool:
        if isinstance(self.engine, _StreamEngine):
            return self.engine.due(self._fold)
        return not self._fold.unanswered() and not self._done()

    def _key(self) -> str:
        if isinstance(self.engine, _StreamEngine):
            return self.engine.key(self._fold)
        return str(self.engine.version)

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
        return Item(index=index, id=item_id, kind=view["kind"], why=view["why"],
                    why_fields=view["why_fields"], clip_probs=view["clip_probs"],
                    frame_probs=view["frame_probs"], predicted=tuple(view["predicted"]),
                    confidence=view["confidence"], threshold=float(view["threshold"]),
                    location=location, audio_error=error,
                    round=int(sel.round or 0) if sel is not None and sel.round is not None else 0,
                    position=int(sel.payload.get("rank", 0)) if sel is not None else 0,
                    model_version=self.engine.version, previous=f.withdrawn(index))

    def _eligible(self, now: float) -> Event | None:
        f, lease = self._fold, self.project.config.lease_seconds
        if isinstance(self.engine, _StreamEngine) and self.engine.state.question is None:
            return None
        for e in f.unanswered():
            c = f.claims.get(int(e.item or 0))
            if c is not None and c.annotator != self.annotator and f.claim_active(c) \
                    and now - c.ts < lease:
                continue
            return e
        return None

    def _my_claim(self) -> Event | None:
        mine = [c for c in self._fold.claims.values()
                if c.annotator == self.annotator and self._fold.claim_active(c)]
        return max(mine, key=lambda c: c.id) if mine else None

    def next_item(self) -> Item | None:
        """The item to show now (see the module docstring); hands it to this annotator."""
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
            self.journal.append(NewEvent("queried", item=e.item, item_id=e.item_id,
                                         annotator=self.annotator,
                                         model_version=self.engine.version, round=e.round))
        self._sync()
        return self._item(int(e.item or 0))

    def _check_labels(self, labels: Sequence[int]) -> list[int]:
        out = sorted({int(v) for v in labels})
        c = len(self.engine.class_list)
        bad = [v for v in out if not 0 <= v < c]
        if bad:
            raise ValueError(f"label index {bad[0]} is not a class: use 0..{c - 1} "
                             f"({', '.join(self.engine.class_list)})")
        return out

    def submit(self, item: Item, labels: Sequence[int], seconds: float = 0.0) -> None:
        """Record the answer: ``labels`` = indices of the classes present ([] = none of them),
        ``seconds`` = time spent. Committed to the journal before this returns (in the same
        commit the next item is handed to this annotator, so ``next_item`` writes nothing)."""
        lab = self._check_labels(labels)
        self._answer(NewEvent("labelled", item=item.index, item_id=item.id, labels=lab,
                              annotator=self.annotator, seconds=max(0.0, float(seconds)),
                              model_version=self.engine.version, round=item.round,
                              payload={"kind": item.kind}))

    def skip(self, item: Item, seconds: float = 0.0) -> None:
        """Decline the item: not labelled, not asked again this round (undo brings it back)."""
        self._answer(NewEvent("skipped", item=item.index, item_id=item.id,
                              annotator=self.annotator, seconds=max(0.0, float(seconds)),
                              model_version=self.engine.version, round=item.round,
                              payload={"kind": item.kind}))

    def _answer(self, answer: NewEvent) -> None:
        """Append an answer and, in the same transaction, claim this annotator's next item."""
        with self._writing():
            self._sync()
            self.journal.append(answer)
            self._sync()  # this connection sees its own uncommitted events
            if self._my_claim() is None:
                e = self._eligible(time.time())
                if e is not None:
                    self.journal.append(NewEvent("queried", item=e.item, item_id=e.item_id,
                                                 annotator=self.annotator,
                                                 model_version=self.engine.version,
                                                 round=e.round))
        self._sync()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A journal transaction; if it fails, the in-memory fold is rebuilt from the file."""
        try:
            with self.journal.transaction():
                yield
        except BaseException:
            self._fold = _Fold()
            self._sync()
            raise

    def undo(self) -> Item | None:
        """Withdraw this annotator's last answer still in force; returns its item to show again
        (None: nothing to undo). Stream mode: only answers of the open question."""
        self._sync()
        items: list[int] | None = None
        if isinstance(self.engine, _StreamEngine):
            q = self.engine.state.question
            items = [] if q is None else [int(i) for i in q.items]
        with self._writing():
            self._sync()
            target = self.journal.last_answer(self.annotator, items)
            if target is None:
                return None
            self.journal.append(
                NewEvent("undone", item=target.item, item_id=target.item_id,
                         annotator=self.annotator, ref=target.id, round=target.round,
                         model_version=self.engine.version),
                NewEvent("queried", item=target.item, item_id=target.item_id,
                         annotator=self.annotator, round=target.round,
                         model_version=self.engine.version))
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
        held = {int(c.item or 0) for c in f.claims.values() if f.claim_active(c)
                and (c.annotator == self.annotator or now - c.ts < lease)}
        left = len({int(e.item or 0) for e in f.unanswered()} | held)
        if isinstance(self.engine, _StreamEngine):
            step = self.engine.state.step
            rnd = self.engine.n_rounds if self.engine.state.phase == "done" else (
                -1 if step is None else int(step.b))
            budget = len(labelled) + left
        else:
            rnd = int(f.queue[0].round or 0) if f.queue else 0
            budgets = self.engine.cfg.budgets
            budget = budgets[min(rnd, len(budgets) - 1)]
        mine = [a for hist in f.answers.values() for a in hist
                if a.annotator == self.annotator and a.id not in f.undone]
        return Progress(labelled=len(labelled), budget=budget, round=rnd,
                        n_rounds=self.engine.n_rounds,
                        per_class={names[c]: int(counts.get(c, 0)) for c in range(len(names))},
                        none=sum(1 for e in labelled if not e.labels),
                        skipped=len(f.skipped()), queue_left=left, done=self._done(),
                        mine=len(mine), seconds=float(sum(a.seconds for a in mine)))

    def model_status(self) -> ModelStatus:
        """The model's state (see :class:`ModelStatus`)."""
        self._sync()
        running, prog, msg, err = self._status.snapshot()
        f = self._fold
        if not err and f.failures and (not f.models or f.failures[-1].id > f.models[-1].id):
            err = str(f.failures[-1].payload.get("error", "training failed"))
        err = err or self._load_error
        state = ("training" if running else "done" if self._done() else
                 "due" if self._due() else "ready" if self.engine.version else "none")
        scores = self.engine.scores
        key = "valid_map" if self.engine.mode == "pool" else "pre_dcf"
        return ModelStatus(version=self.engine.version, state=state, progress=prog,
                           message=msg, score=scores.get(key), score_name=self.engine.score_name,
                           trained_on=self.engine.trained_on, error=err)

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
        """
        self._sync()
        if self._status.snapshot()[0]:
            raise RuntimeError("a retraining is already running in this session")
        key = self._key()
        work = self.engine.job_work(self._fold, key)
        what = ("retraining on the labels" if self.engine.mode == "pool" else
                "fitting the stream model")
        self._status.begin(what)
        return RetrainJob(self.engine.mode, self.engine.version, key, self._status, what, work)

    def swap_model(self, result: RetrainResult) -> bool:
        """Install ``result`` (checkpoint already on disk, then one journal event with the new
        queue) and re-rank the queue; False, keeping the model, when it failed (the error is
        recorded in the journal), was cancelled or is stale."""
        if result.mode != self.engine.mode:
            raise ValueError(f"a {result.mode} result for a {self.engine.mode} session")
        if not result.ok:
            if result.error:
                self.journal.append(NewEvent("training_failed", annotator=self.annotator,
                                             model_version=result.base_version,
                                             seconds=result.seconds,
                                             payload={"error": result.error}))
            self._sync()
            return False
        ids: list[int] = []
        with self.journal.transaction():
            self._sync()
            stale = self.engine.version != result.base_version or self._key() != result.key
            if not stale:
                ids = self.journal.append(self.engine.model_event(result), *result.queue)
        if not ids:
            if result.file is not None:
                result.file.unlink(missing_ok=True)
            with self._status.lock:
                self._status.message = "discarded: the labels changed while it trained"
            self._sync()
            return False
        ev = self.journal.events(ids[0] - 1, kinds=["model_trained"])[0]
        self.engine.install_result(result, ev)
        self._sync()
        return True

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
        self.journal.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer_with_oracle(session: Session,
                       answer: Oracle | Callable[[Item], Sequence[int]] | None = None,
                       limit: int | None = None, seconds: float = 0.0) -> int:
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
            session.submit(item, answer(item) if answer is not None else session.truth(item),
                           seconds)
        n += 1
    return n
