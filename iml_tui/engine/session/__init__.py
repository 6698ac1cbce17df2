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
    session.undo() -> Item | None   withdraws this annotator's last act (a compensating event;
                                    works across restarts): an answer, whose item it returns to
                                    show again (``item.previous`` = the withdrawn labels), or an
                                    extent marked, moved or removed (its item, answers as they
                                    are); None: nothing to undo. Stream mode: only answers not
                                    yet used for training.
    session.add_extent(item, onset, offset, cls) -> Extent   marks where an event of class cls
                                    lies in the clip (seconds from its start); committed on
                                    return, undone by undo() like an answer. Pool clips with an
                                    extent for every class of their label train on their frames.
    session.move_extent(item, extent_id, onset, offset) -> Extent   new bounds (undo: the old)
    session.remove_extent(item, extent_id) -> Extent   withdraws one (undo brings it back)
    session.extents(item) -> list[Extent]   the extents in force, in the order marked
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
annotators never get the same item, and one session trains per model (a training claim in the
journal, released like an item claim when its process is gone): the others' ``start_retrain``
jobs wait for that model and ``swap_model`` loads its checkpoint.
"""

from iml_tui.engine.session.backend import SessionBackend
from iml_tui.engine.session.pool_backend import PoolBackend
from iml_tui.engine.session.retrain import RetrainJob
from iml_tui.engine.session.session import (
    Session,
    answer_with_oracle,
    check_project_data,
    default_annotator,
)
from iml_tui.engine.session.stream_backend import StreamBackend, stream_store_attrs
from iml_tui.engine.session.types import (
    STATES,
    CancelFn,
    Item,
    LearningCurve,
    ModelStatus,
    Progress,
    ProgressCb,
    RetrainResult,
)

__all__ = [
    "STATES",
    "CancelFn",
    "Item",
    "LearningCurve",
    "ModelStatus",
    "PoolBackend",
    "Progress",
    "ProgressCb",
    "RetrainJob",
    "RetrainResult",
    "Session",
    "SessionBackend",
    "StreamBackend",
    "answer_with_oracle",
    "check_project_data",
    "default_annotator",
    "stream_store_attrs",
]
