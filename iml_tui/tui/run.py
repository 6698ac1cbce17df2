"""``iml-tui label``: open or create the project, pick a player, run the app, close cleanly."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from iml_tui.errors import UserError

if TYPE_CHECKING:
    from iml_tui.engine.project import Project

STREAM_KEYS = ("feat_root", "target", "env", "sim_type", "samples_per_batch")
"""``label`` options that go to the stream section of a new lid / vtd project."""


def default_project_dir(options: Mapping[str, Any]) -> Path:
    """Where a project made from command-line options lives when no folder is given:
    ``label-<task>-<strategy>`` (pool), ``label-<task>-<target or env>`` (stream)."""
    task = options.get("task") or "bioacoustic"
    if task in ("lid", "vtd"):
        stream = options.get("stream") or {}
        what = stream.get("target") if task == "lid" else stream.get("env")
        return Path(f"label-{task}-{what or 'demo'}")
    strategy = options.get("strategy") or "mfft"
    return Path(f"label-{task}-{strategy}")


def _leave_a_core_to_the_ui() -> None:
    """Background retrainings use every core but one, so key presses never queue behind them
    (the project's ``threads`` setting, when given, wins)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def stream_sets(sets: list[str] | None) -> dict[str, Any]:
    """The ``--set stream.KEY=value`` pairs as {KEY: value}."""
    out: dict[str, Any] = {}
    for item in sets or []:
        key, _, raw = item.partition("=")
        key = key.strip()
        if key.startswith("stream.") and "=" in item:
            out[key[len("stream.") :]] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def prepare_stream_options(
    folder: Path,
    options: dict[str, Any],
    sets: list[str] | None,
    existing: Project | None = None,
) -> list[str]:
    """Fill ``options["stream"]`` of a lid / vtd project from the data (see
    :mod:`iml_tui.engine.stream_setup`); returns notes to show. A pool task with stream
    options is refused. ``existing``: the project already in ``folder`` (read once)."""
    from iml_tui.engine.project import PROJECT_FILE, STREAM_TASKS

    given = {k: v for k, v in (options.get("stream") or {}).items() if v is not None}
    task = options.get("task")
    if task is None and given and existing is not None:
        task = existing.config.task  # resuming with the options it was made with
    if task not in STREAM_TASKS:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UserError(
                f"{flags} do(es) not apply to --task {task or 'bioacoustic'}",
                None,
                "give --task lid or --task vtd, or drop the option",
            )
        return []
    explicit = {**stream_sets(sets), **given}
    new = not (folder / PROJECT_FILE).is_file()
    if not new and not explicit:
        options.pop("stream", None)
        return []
    from iml_tui.bench.progress import rate_progress
    from iml_tui.demo.assets import is_demo, resolve_feat_root
    from iml_tui.engine.stream_setup import stream_options

    with rate_progress("items") as progress:
        if not new:  # resuming: only what was given is compared with the project's settings
            if is_demo(explicit.get("feat_root")):
                explicit["feat_root"] = resolve_feat_root(task, explicit["feat_root"], progress)
            options["stream"] = explicit
            return []
        setup = stream_options(task, explicit, progress)
    options["stream"] = setup.stream
    return setup.notes


def discard_new_project(folder: Path, existed: bool) -> None:
    """Remove what creating a project wrote in ``folder`` (a failed first start must not leave
    a folder that blocks the corrected command); a folder that existed before stays."""
    from iml_tui.engine.project import JOURNAL_FILE, MODELS_DIR, PROJECT_FILE

    if not existed:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in (
        PROJECT_FILE,
        PROJECT_FILE + ".tmp",
        JOURNAL_FILE,
        JOURNAL_FILE + "-wal",
        JOURNAL_FILE + "-shm",
        JOURNAL_FILE + "-journal",
    ):
        (folder / name).unlink(missing_ok=True)
    for name in (MODELS_DIR, "stream"):
        shutil.rmtree(folder / name, ignore_errors=True)


def create_project(
    folder: Path, options: dict[str, Any], sets: list[str] | None
) -> tuple[Any, list[str]]:
    """``project new``: make the project with the checks ``label`` makes (stream options filled
    and checked against the data, the pool or stream features read), without opening a session;
    a failed check leaves no project behind. Returns (the Project, notes to show)."""
    from iml_tui.engine.project import PROJECT_FILE, Project, project_config
    from iml_tui.engine.session import check_project_data

    notes = prepare_stream_options(folder, options, sets)
    existed = folder.exists()
    new = not (folder / PROJECT_FILE).is_file()
    try:
        project = Project.create(folder, project_config(options, sets))
        check_project_data(project)
    except BaseException:
        if new and (folder / PROJECT_FILE).is_file():
            discard_new_project(folder, existed)
        raise
    return project, notes


def run_label(
    project_dir: Path | None,
    options: Mapping[str, Any],
    sets: list[str] | None,
    annotator: str | None,
    player: str,
    port: int,
    keys: Path | None,
    autoplay: bool,
    graphics: str = "auto",
) -> None:
    """Open (or create) the project, then label it in the terminal until the user quits."""
    from iml_tui.engine.project import PROJECT_FILE, Project
    from iml_tui.engine.session import Session

    given = {k: v for k, v in options.items() if v is not None and v != {}}
    folder = project_dir if project_dir is not None else default_project_dir(given)
    if project_dir is None and not given:
        raise UserError(
            "no project given",
            None,
            "run `iml-tui label PROJECT_DIR`, or give --task and --pool-dir",
        )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(
            "`iml-tui label` needs a terminal",
            None,
            "run it in a terminal (ssh -t, tmux); `iml-tui simulate` runs headless",
        )
    new = not (folder / PROJECT_FILE).is_file()
    existing = None if new else Project.load(folder)  # read and checked once
    notes = prepare_stream_options(folder, given, sets, existing)
    existed = folder.exists()
    try:
        from iml_tui.engine.project import open_or_create

        project = open_or_create(folder, given, sets, existing)
        session = Session.open(project, annotator=annotator)
    except BaseException:
        if new and (folder / PROJECT_FILE).is_file():
            discard_new_project(folder, existed)
        raise
    for note in notes:
        sys.stderr.write(f"iml-tui: note: {note}\n")
    try:
        _run_app(session, project.dir, player, port, keys, autoplay, graphics, notes)
        labelled = session.progress().labelled
    finally:
        session.close()
    sys.stderr.write(
        f"iml-tui: labels in force: {labelled} ({project.journal_path}); run the "
        "same command to go on\n"
    )


def _run_app(
    session: Any,
    project_dir: Path,
    player: str,
    port: int,
    keys: Path | None,
    autoplay: bool,
    graphics: str,
    notes: list[str],
) -> None:
    from iml_tui.audio.playback import choose_player
    from iml_tui.tui.app import make_app
    from iml_tui.tui.widgets.graphics import (
        IMAGE_MODES,
        colour_advice,
        detect_graphics,
        image_widget,
    )

    if not session.project.config.threads:
        _leave_a_core_to_the_ui()
    backend = choose_player(
        player, port, state_file=project_dir / "player.json", who=session.annotator
    )
    try:
        mode = detect_graphics() if graphics == "auto" else graphics
        if mode in IMAGE_MODES:
            image_widget(mode)  # asks the terminal its cell size while Textual is not reading
        advice = colour_advice()
        app = make_app(
            session,
            backend,
            keymap_file=keys,
            autoplay=autoplay,
            graphics=mode,
            notes=[*notes, *([advice] if advice else [])],
        )
        app.run()
    finally:
        backend.close()
