"""Where a labelling project stands (``iml-tui project status``), read from its journal alone:
labels in force per class, marked extents, who labelled how much and how fast, the rounds'
budgets, and the latest model (its scores, and whether labels came in since it was trained).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iml_tui.engine.export import catalog, current_labels
from iml_tui.engine.pool_identity import check_project_pool
from iml_tui.engine.project import Project


@dataclass(frozen=True)
class AnnotatorStatus:
    """One annotator's labels in force: how many, median seconds per label (None for imports
    and other labels without a time), and when the last was given (Unix s)."""

    name: str
    labels: int
    median_seconds: float | None
    last_ts: float


@dataclass(frozen=True)
class ModelStatus:
    """The latest trained model: version, labels it saw, its scores, whether labels changed."""

    version: int
    trained_on: int
    scores: dict[str, float]
    stale: bool
    ts: float


@dataclass(frozen=True)
class ProjectStatus:
    """A project at a glance (see the module doc)."""

    project: str
    task: str
    mode: str
    items: int
    labelled: int
    per_class: dict[str, int]
    negatives: int
    clips_with_extents: int
    extents: int
    budgets: list[int]
    next_budget: int | None
    annotators: list[AnnotatorStatus]
    model: ModelStatus | None
    last_ts: float | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        import dataclasses

        return dataclasses.asdict(self)


def project_status(project_dir: str | Path) -> ProjectStatus:
    """Read the project's journal (and its pool's ids, which must still match) into a
    :class:`ProjectStatus`."""
    project = Project.load(project_dir)
    cat = catalog(project)
    check_project_pool(project, cat.ids)
    rows = current_labels(project)
    with project.open_journal() as j:
        extents = j.current_extents()
        models = j.events(0, kinds=["model_trained"])
    names = cat.class_list
    per_class = Counter(names[c] for r in rows for c in r.labels if c < len(names))
    by_who: dict[str, list[float]] = defaultdict(list)
    last_of: dict[str, float] = {}
    for r in rows:
        if r.seconds > 0:
            by_who[r.annotator].append(r.seconds)
        else:
            by_who.setdefault(r.annotator, [])
        last_of[r.annotator] = max(last_of.get(r.annotator, 0.0), r.ts)
    counts = Counter(r.annotator for r in rows)
    annotators = [
        AnnotatorStatus(
            name,
            counts[name],
            statistics.median(by_who[name]) if by_who[name] else None,
            last_of[name],
        )
        for name in sorted(counts, key=lambda n: (-counts[n], n))
    ]
    model = None
    if models:
        last = models[-1]
        trained_on = int(last.payload.get("n_labelled", 0))
        model = ModelStatus(
            int(last.model_version or 0),
            trained_on,
            {str(k): float(v) for k, v in (last.payload.get("scores") or {}).items()},
            trained_on != len(rows),
            last.ts,
        )
    budgets = list(project.config.budgets) if project.mode == "pool" else []
    next_budget = next((b for b in budgets if b > len(rows)), None)
    stamps = [r.ts for r in rows] + ([model.ts] if model else [])
    return ProjectStatus(
        project=str(project.dir),
        task=project.config.task,
        mode=project.mode,
        items=len(cat.ids),
        labelled=len(rows),
        per_class={c: per_class.get(c, 0) for c in cat.class_list},
        negatives=sum(1 for r in rows if not r.labels),
        clips_with_extents=sum(1 for evs in extents.values() if evs),
        extents=sum(len(evs) for evs in extents.values()),
        budgets=budgets,
        next_budget=next_budget,
        annotators=annotators,
        model=model,
        last_ts=max(stamps) if stamps else None,
    )
