"""The bridge between the session's answers and what the widgets draw.

It calls the session (``iml_tui.engine.session``), reads each item's audio, computes its
spectrogram and turns the session's progress / model status into :mod:`~iml_tui.tui.views`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from iml_tui.errors import UserError
from iml_tui.tui.protocols import ExtentLike, ItemLike, RetrainJobLike, SessionLike
from iml_tui.tui.views import ItemView, ModelView, ProgressView
from iml_tui.tui.widgets.prediction import confidence_of
from iml_tui.tui.widgets.spectrogram import SpectrogramData, spectrogram_data


@dataclass(frozen=True)
class Shown:
    """An item on screen: the session's item, its view, its audio and its picture.

    ``audio_error`` says why there is no audio (then ``audio`` is empty and ``spectrogram``
    None): the item can still be answered, the screen says what is missing.
    """

    item: ItemLike
    view: ItemView
    audio: tuple[np.ndarray, int]
    spectrogram: SpectrogramData | None
    audio_error: str = ""


def _array(value: object) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64)


SEARCH_K = 10  # clips queued by one search by example
KIND_TEXT = {
    "pool-query": "query",
    "al-query": "query",
    "cf-review": "review",
    "bootstrap": "bootstrap",
}


class Bridge:
    """Session calls for the main screen, with results already shaped for drawing."""

    def __init__(self, session: SessionLike[Any, Any]) -> None:
        self.session = session
        self.class_list: tuple[str, ...] = tuple(session.class_list)
        self.multi_label = bool(session.multi_label)
        self.mode = str(session.mode)
        self.score_name = session.learning_curve().metric

    # --- items ------------------------------------------------------------------------------

    def shown(self, item: ItemLike, preset: Sequence[int] | None = None) -> Shown:
        """Read the item's audio and build everything the screen draws for it."""
        view = self.item_view(item, preset)
        try:
            x, sr = self.session.read_audio(item)
        except UserError as exc:
            return Shown(item, view, (np.zeros(0, dtype=np.float32), 1), None, str(exc))
        if self.mode == "stream" and sr > 0:
            view = replace(view, name=f"{view.name} · {len(x) / sr:.1f} s")
        spec = spectrogram_data(x, sr, view.frame_probs, self.class_list)
        return Shown(item, view, (np.asarray(x, dtype=np.float32), int(sr)), spec)

    def display_name(self, item: ItemLike) -> str:
        """What the screen and the player call the item: its id in pool mode; in stream mode a
        neutral ``#<position>`` (Common Voice file names carry the language, i.e. the answer;
        the journal and the exports keep the real id)."""
        return f"#{int(item.index) + 1}" if self.mode == "stream" else str(item.id)

    def item_view(self, item: ItemLike, preset: Sequence[int] | None = None) -> ItemView:
        """The session's item as an :class:`ItemView`.

        Ticked at first: the model's decision when the item is one to review (corrective
        feedback); nothing for a plain query or an undone answer (it comes back unanswered, the
        withdrawn labels are shown as a hint only, see :meth:`previous_text`).
        """
        if preset is None:
            review = item.kind == "cf-review" and item.previous is None
            preset = item.predicted if review else ()
        probs = _array(item.clip_probs)
        confidence = item.confidence
        if confidence is None:
            confidence = confidence_of(probs, self.multi_label)
        return ItemView(
            item_id=str(item.id),
            name=self.display_name(item),
            index=int(item.index),
            why=str(item.why),
            kind=KIND_TEXT.get(item.kind, item.kind),
            probs=probs,
            frame_probs=_array(item.frame_probs),
            confidence=confidence,
            preset=frozenset(int(i) for i in preset),
            threshold=float(item.threshold),
        )

    def next(self) -> Shown | None:
        """The next item to show, or None when nothing can be asked now."""
        item = self.session.next_item()
        return None if item is None else self.shown(item)

    def submit(self, item: ItemLike, labels: Sequence[int], seconds: float) -> None:
        """Commit a label (the session writes it to the journal before returning)."""
        self.session.submit(item, list(labels), seconds)

    def skip(self, item: ItemLike, seconds: float) -> None:
        """Skip an item."""
        self.session.skip(item, seconds)

    def previous_text(self, item: ItemLike) -> str | None:
        """The withdrawn answer of an undone item in words, or None."""
        if item.previous is None:
            return None
        names = [self.class_list[int(i)] for i in item.previous]
        return ", ".join(names) if names else "none"

    def undo(self) -> Shown | None:
        """Withdraw the last act: an answer (its item comes back unanswered) or an extent act
        (its item, answers unchanged)."""
        item = self.session.undo()
        return None if item is None else self.shown(item)

    # --- event extents ----------------------------------------------------------------------

    def extents(self, item: ItemLike) -> list[ExtentLike]:
        """The events marked in ``item``, in the order marked."""
        return list(self.session.extents(item))

    def add_extent(
        self, item: ItemLike, onset: float, offset: float, cls: int, seconds: float
    ) -> None:
        """Mark an event [onset, offset) s of class ``cls`` (committed on return)."""
        self.session.add_extent(item, onset, offset, cls, seconds)

    def move_extent(
        self, item: ItemLike, extent_id: int, onset: float, offset: float, cls: int | None = None
    ) -> None:
        """Give extent ``extent_id`` new bounds, or another class (committed on return)."""
        self.session.move_extent(item, extent_id, onset, offset, cls)

    def remove_extent(self, item: ItemLike, extent_id: int) -> None:
        """Delete extent ``extent_id`` (committed on return; undo brings it back)."""
        self.session.remove_extent(item, extent_id)

    def waiting_reason(self) -> str:
        """Why there is no item: the model is training, or the work is done."""
        if self.session.progress().done:
            return "All done: every question of the budget is answered. Press q to quit."
        status = self.session.model_status()
        if status.state == "training":
            return "Waiting for the model being trained; the queue is re-ranked with it…"
        if status.error:
            return (
                "The last training failed; the previous model stays. Press Enter to try "
                "training again."
            )
        return "Waiting for a model before the next question (press Enter to retry)."

    # --- status -----------------------------------------------------------------------------

    def progress(self) -> ProgressView:
        """Labelled / budget, round, per-class counts."""
        p = self.session.progress()
        pairs = tuple((str(k), int(v)) for k, v in p.per_class.items())
        return ProgressView(
            labelled=int(p.labelled),
            budget=int(p.budget) or None,
            round=max(int(p.round) + 1, 0),
            n_rounds=int(p.n_rounds),
            round_name="round" if self.mode == "pool" else "batch",
            skipped=int(p.skipped),
            class_counts=pairs,
            none_count=int(p.none),
            annotator=str(self.session.annotator),
            done=bool(p.done),
        )

    def model(self) -> ModelView:
        """Version, training state, last validation score, the learning curve."""
        m = self.session.model_status()
        curve = self.session.learning_curve()
        training = float(m.progress) if m.state == "training" else None
        return ModelView(
            version=int(m.version),
            score=None if m.score is None else float(m.score),
            score_name=str(m.score_name or curve.metric),
            training=training,
            training_note=str(m.message) if training else "",
            error=str(m.error or ""),
            curve=tuple((int(n), float(s)) for n, s in curve.points),
        )

    # --- training ---------------------------------------------------------------------------

    def retrain_due(self) -> bool:
        """Does the session want a new model now?"""
        return bool(self.session.retrain_due())

    def start_retrain(self) -> RetrainJobLike[Any] | None:
        """A training job with a snapshot of the labels (cheap), or None."""
        return self.session.start_retrain()

    def search(self, item: ItemLike, k: int = SEARCH_K) -> int:
        """Queue the ``k`` clips most like ``item`` next; how many (ValueError: not a pool)."""
        return int(self.session.search(item, k))

    def search_queue(self) -> list[tuple[str, float]]:
        """The searched clips still to ask, in order: (item id, cosine to the example)."""
        return [(str(i), float(c)) for i, c in self.session.search_queue()]

    def fill_while_training(self) -> bool:
        """Queue items to ask while the model trains (pool rounds); whether any were queued."""
        return self.session.bridge() > 0

    def swap(self, result: object) -> tuple[bool, str]:
        """Install ``result`` atomically; (installed, the error when training failed)."""
        ok = bool(self.session.swap_model(result))
        return ok, "" if ok else str(getattr(result, "error", None) or "")
