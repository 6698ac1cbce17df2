"""``iml-tui search``: the pool clips most like an example, and (``--queue``) asked next."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.cli.common import CSV_HELP, app, emit_table


@app.command("search")
def search_cmd(
    project: Annotated[Path, typer.Argument(help="A bioacoustic project folder.")],
    example: Annotated[
        str,
        typer.Option(
            help="A clip of the pool (its id, relative/path.ext@offset) or an audio file "
            "FILE[@offset] (embedded by the pool's encoder)."
        ),
    ],
    k: Annotated[int, typer.Option("-k", help="How many neighbours.")] = 10,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue/--no-queue",
            help="Put the unlabelled ones first in the project's queue "
            "(`iml-tui label` asks them next).",
        ),
    ] = False,
    annotator: Annotated[
        str | None,
        typer.Option(help="With --queue: recorded as who queued them (default: the login name)."),
    ] = None,
    device: Annotated[str, typer.Option(help="Encoder device for an audio file.")] = "cpu",
    as_csv: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """Nearest neighbours of an example in the pool (cosine on the pooled embeddings, exact)."""
    from iml_tui.data.store import PoolStore
    from iml_tui.engine.example_query import resolve_example
    from iml_tui.engine.export import current_labels
    from iml_tui.engine.project import Project
    from iml_tui.engine.search import nearest
    from iml_tui.errors import UserError

    proj = Project.load(project)
    if proj.mode != "pool":
        raise UserError(
            "search by example works on pool (bioacoustic) projects",
            proj.dir,
            "give a project made with --task bioacoustic",
        )
    store = PoolStore(Path(proj.config.pool_dir) / "train.h5")
    ex = resolve_example(store, example, device)
    labels = {r.id: r.labels for r in current_labels(proj)}
    skip = () if ex.index is None else (ex.index,)
    idx, sims = nearest(store.pooled(), ex.vector, k, exclude=skip)
    ids, names = store.ids, store.class_list
    rows = []
    for r, (i, c) in enumerate(zip(idx.tolist(), sims.tolist(), strict=True), start=1):
        got = labels.get(ids[i])
        text = "-" if got is None else (", ".join(names[j] for j in got) or "none")
        rows.append([str(r), ids[i], f"{c:.3f}", text])
    emit_table(
        f"{len(idx)} clips most like {ex.name}",
        ["rank", "clip", "cosine", "labels"],
        rows,
        as_csv,
        frozenset({"rank", "cosine"}),
    )
    if queue:
        from iml_tui.engine.session import Session

        with Session.open(proj.dir, annotator) as session:
            n = session.search(ex.index if ex.index is not None else ex.vector, k, ex.name)
        sys.stdout.write(
            f"queued {n} unlabelled clip(s) first; `iml-tui label {proj.dir}` asks them next\n"
        )
