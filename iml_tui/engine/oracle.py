"""The question a model asks and whoever answers it: the simulator's ground truth or a human.

Both faces of the tool share these objects. The streaming paradigm (and later the TUI session)
builds a :class:`Question` — which items, why they are asked, what the model currently decides
about them — and hands it to an :class:`Oracle`. The headless simulator uses
:class:`TruthOracle`, which answers from the stored labels; the terminal UI replaces it with an
object that shows the items to a person and returns what they said (issue 6). The loop never
reads ground truth itself: every label that becomes training data comes through ``answer``.

Answers are 0/1 labels, one per item, in the question's order; :data:`SKIPPED` (-1) marks an
item the answerer declined (a human may skip). Skipped items are not used for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Why = Literal["al-query", "cf-review", "bootstrap"]
WHYS: tuple[str, ...] = ("al-query", "cf-review", "bootstrap")
SKIPPED = -1


@dataclass(frozen=True)
class Question:
    """One request for labels.

    items: (k,) int64 indices into the stream's sample table (the split or environment being
    processed). why: "al-query" (the model asks about items it chose), "cf-review" (the human
    reviews the model's own decisions; corrective feedback) or "bootstrap" (labels taken before
    the stream starts, ``boot_in``). pred: (k,) int64 the model's decisions (1 = target), or None
    when it has none yet. confidence: (k,) float the model's probability of its own decision.
    batch: the stream pass the question belongs to (-1 before the stream). ids: the items' ids
    (file + offset), for a face that shows or plays them.
    """

    items: np.ndarray
    why: Why
    pred: np.ndarray | None = None
    confidence: np.ndarray | None = None
    batch: int = -1
    ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        items = np.asarray(self.items, dtype=np.int64).ravel()
        object.__setattr__(self, "items", items)
        if self.why not in WHYS:
            raise ValueError(f"unknown question kind {self.why!r}: use one of {WHYS}")
        for name in ("pred", "confidence"):
            value = getattr(self, name)
            if value is not None and np.asarray(value).shape != items.shape:
                raise ValueError(
                    f"{name} has shape {np.asarray(value).shape}, expected {items.shape}"
                )
        if self.ids and len(self.ids) != len(items):
            raise ValueError(f"{len(self.ids)} ids for {len(items)} items")

    def __len__(self) -> int:
        return len(self.items)


@runtime_checkable
class Oracle(Protocol):
    """Whoever labels: ``answer`` returns (k,) int64 labels in {0, 1} or :data:`SKIPPED`."""

    def answer(self, question: Question) -> np.ndarray: ...


class TruthOracle:
    """The simulator's oracle: answers every question from ground-truth labels (n,) in {0, 1}.

    Keeps a tally of what it was asked (``asked``: items per question kind) so a run can report
    the human effort a real session would have cost.
    """

    def __init__(self, labels: np.ndarray | Sequence[int]) -> None:
        y = np.asarray(labels).astype(np.int64).ravel()
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError("truth labels must be 0 or 1")
        self._y = y
        self.asked: dict[str, int] = dict.fromkeys(WHYS, 0)

    def answer(self, question: Question) -> np.ndarray:
        """Labels (k,) int64 of the question's items."""
        if len(question) and (question.items.min() < 0 or question.items.max() >= len(self._y)):
            raise IndexError(f"question items out of range for {len(self._y)} samples")
        self.asked[question.why] += len(question)
        return self._y[question.items].copy()


def answered(question: Question, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask (k,) bool of the answered items, their labels) after checking the answer's shape
    and values (0, 1, or :data:`SKIPPED`)."""
    lab = np.asarray(labels).astype(np.int64).ravel()
    if lab.shape != question.items.shape:
        raise ValueError(f"the oracle answered {lab.shape[0]} labels for {len(question)} items")
    bad = (lab != 0) & (lab != 1) & (lab != SKIPPED)
    if bad.any():
        raise ValueError(f"the oracle answered {int(lab[bad][0])}: labels are 0, 1 or -1 (skip)")
    keep = lab != SKIPPED
    return keep, lab[keep]
