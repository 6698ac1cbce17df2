"""``iml-tui label``: open or create the project, pick a player, run the app, close cleanly."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iml_tui.errors import UserError


def default_project_dir(options: Mapping[str, Any]) -> Path:
    """Where a project made from command-line options lives when no folder is given."""
    task = options.get("task") or "bioacoustic"
    strategy = options.get("strategy") or "mfft"
    return Path(f"label-{task}-{strategy}")


def run_label(project_dir: Path | None, options: Mapping[str, Any], sets: list[str] | None,
              annotator: str | None, player: str, keys: Path | None, autoplay: bool) -> None:
    """Open (or create) the project, then label it in the terminal until the user quits."""
    from iml_tui.audio.playback import make_player
    from iml_tui.engine.project import open_or_create
    from iml_tui.engine.session import Session
    from iml_tui.tui.app import make_app

    given = {k: v for k, v in options.items() if v is not None}
    folder = project_dir if project_dir is not None else default_project_dir(given)
    if project_dir is None and not given:
        raise UserError("no project given", None,
                        "run `iml-tui label PROJECT_DIR`, or give --task and --pool-dir")
    project = open_or_create(folder, given, sets)
    if not sys.stdout.isatty():
        raise UserError("`iml-tui label` needs a terminal", None,
                        "run it in a terminal (ssh -t, tmux); `iml-tui simulate` runs headless")
    session = Session.open(project.dir, annotator=annotator)
    backend = make_player(player, project.dir / "clips")
    try:
        app = make_app(session, backend, keymap_file=keys, autoplay=autoplay)
        app.run()
    finally:
        backend.stop()
        session.close()
    progress = session.progress()
    sys.stderr.write(f"iml-tui: {progress.labelled} labels in {project.dir} (journal: "
                     f"{project.journal_path.name}); run the same command to go on\n")
