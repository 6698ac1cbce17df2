"""A pool project's journal names its clips by row index and id; both must still agree with the
pool store, or labels would land on other clips. :func:`check_pool_rows` refuses a pool whose rows
moved (re-prepared with more recordings, or another pool at the same path), and
:func:`repool` carries a project's labels and marked extents over to a new pool by id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from iml_tui.data.store import PoolStore
from iml_tui.engine.journal import Journal, NewEvent
from iml_tui.engine.project import Project
from iml_tui.errors import UserError


def check_pool_rows(journal: Journal, ids: list[str], store: Path, project: Path) -> None:
    """UserError when an item the journal names is not the pool's row of that index."""
    for index, name in journal.item_names():
        here = ids[index] if 0 <= index < len(ids) else None
        if here != name:
            where = f"row {index} is {here!r}" if here is not None else f"has {len(ids)} rows"
            raise UserError(
                f"the pool changed under the project: its journal labels {name!r} as row "
                f"{index}, but the pool {where}",
                project,
                f"point the project back at the pool it was made with ({store}), or carry the "
                "labels over by id: `iml-tui project repool PROJECT --pool-dir NEW --out NEW_DIR`",
            )


def check_project_pool(project: Project, ids: list[str]) -> None:
    """:func:`check_pool_rows` for a pool project's own journal and pool rows ``ids``."""
    if project.mode != "pool":
        return
    store = Path(project.config.pool_dir) / "train.h5"
    with project.open_journal() as j:
        check_pool_rows(j, ids, store, project.dir)


@dataclass(frozen=True)
class RepoolResult:
    """What a repool carried: labels and extents, and ids the new pool lacks."""

    project: Path
    labels: int
    extents: int
    missing: list[str]


def repool(project_dir: str | Path, pool_dir: str | Path, out: str | Path) -> RepoolResult:
    """A new project at ``out`` on ``pool_dir`` with the settings of ``project_dir`` and its
    labels and extents in force, matched to the new pool's rows by id (those the new pool lacks
    are listed, not carried). The old project is only read; the new one trains afresh."""
    old = Project.load(project_dir)
    if old.mode != "pool":
        raise UserError(
            "repool moves pool (bioacoustic) projects", old.dir, "give a --task bioacoustic project"
        )
    new_store = PoolStore(Path(pool_dir) / "train.h5")
    old_store = PoolStore(Path(old.config.pool_dir) / "train.h5")
    if list(new_store.class_list) != list(old_store.class_list):
        raise UserError(
            f"the new pool's classes {list(new_store.class_list)} are not the project's "
            f"{list(old_store.class_list)}",
            new_store.path,
            "prepare the new pool with the same --classes, in the same order",
        )
    rows = {name: i for i, name in enumerate(new_store.ids)}
    with old.open_journal() as j:
        labels = list(j.current_labels().values())
        extents = [e for evs in j.current_extents().values() for e in evs]
    missing = sorted({str(e.item_id) for e in labels + extents if str(e.item_id) not in rows})
    cfg = dataclasses.replace(old.config, pool_dir=str(Path(pool_dir).resolve()))
    target = Path(out)
    if (target / "project.yaml").exists() or (target.exists() and any(target.iterdir())):
        raise UserError(
            "the folder for the new project is not empty", target, "choose a new --out folder"
        )
    project = Project.create(target, cfg)
    who = f"repool:{old.dir.name}"

    def moved(e: object) -> bool:
        return str(getattr(e, "item_id", "")) in rows

    carried = [e for e in extents if moved(e)] + [e for e in labels if moved(e)]
    with project.open_journal() as nj, nj.transaction():
        nj.append(
            NewEvent(
                "imported",
                annotator=who,
                payload={
                    "file": str(old.dir.resolve()),
                    "labels": sum(moved(e) for e in labels),
                    "extents": sum(moved(e) for e in extents),
                    "missing": len(missing),
                },
            ),
            *(
                NewEvent(
                    e.kind,
                    item=rows[str(e.item_id)],
                    item_id=e.item_id,
                    labels=list(e.labels or ()),
                    annotator=e.annotator,
                    seconds=e.seconds,
                    payload=dict(e.payload),
                )
                for e in carried
            ),
        )
    return RepoolResult(
        project.dir,
        sum(moved(e) for e in labels),
        sum(moved(e) for e in extents),
        missing,
    )
