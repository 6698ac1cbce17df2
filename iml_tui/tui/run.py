"""``iml-tui label``: open or create the project, pick a player, run the app, close cleanly."""

from __future__ import annotations

import os
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


def _leave_a_core_to_the_ui() -> None:
    """Background retrainings use every core but one, so key presses never queue behind them
    (the project's ``threads`` setting, when given, wins)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def run_label(project_dir: Path | None, options: Mapping[str, Any], sets: list[str] | None,
              annotator: str | None, player: str, port: int, keys: Path | None,
              autoplay: bool, graphics: str = "auto") -> None:
    """Open (or create) the project, then label it in the terminal until the user quits."""
    from iml_tui.audio.playback import choose_player
    from iml_tui.engine.project import open_or_create
    from iml_tui.engine.session import Session
    from iml_tui.tui.app import make_app
    from iml_tui.tui.widgets.graphics import detect_graphics

    given = {k: v for k, v in options.items() if v is not None}
    folder = project_dir if project_dir is not None else default_project_dir(given)
    if project_dir is None and not given:
        raise UserError("no project given", None,
                        "run `iml-tui label PROJECT_DIR`, or give --task and --pool-dir")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("`iml-tui label` needs a terminal", None,
                        "run it in a terminal (ssh -t, tmux); `iml-tui simulate` runs headless")
    project = open_or_create(folder, given, sets)
    if not project.config.threads:
        _leave_a_core_to_the_ui()
    session = Session.open(project.dir, annotator=annotator)
    try:
        backend = choose_player(player, port)
        try:
            mode = detect_graphics() if graphics == "auto" else graphics
            app = make_app(session, backend, keymap_file=keys, autoplay=autoplay,
                           graphics=mode)
            app.run()
        finally:
            backend.close()
        labelled = session.progress().labelled
    finally:
        session.close()
    sys.stderr.write(f"iml-tui: labels in force: {labelled} ({project.journal_path}); run the "
                     "same command to go on\n")
