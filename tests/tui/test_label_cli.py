"""The ``label`` command: imports textual only when run, refuses what it cannot do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from labelling_data import make_audio_pool
from tui_fakes import headless_label
from typer.testing import CliRunner

from iml_tui.cli import Strategy, Task, app, label_cmd
from iml_tui.engine.journal import Journal
from iml_tui.errors import UserError


def test_cli_import_does_not_load_textual() -> None:
    code = (
        "import sys, iml_tui.cli; "
        "assert 'textual' not in sys.modules and 'iml_tui.tui' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_label_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["label", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--task",
        "--pool-dir",
        "--strategy",
        "--player",
        "--keys",
        "--annotator",
        "--no-autoplay",
        "--port",
        "--feat-root",
        "--target",
        "--env",
        "--sim-type",
        "--samples-per-batch",
    ):
        assert option in result.output


def test_label_without_a_project_or_a_terminal(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["label"])
    assert isinstance(result.exception, UserError) and "no project given" in str(result.exception)
    result = runner.invoke(
        app, ["label", str(tmp_path / "p"), "--task", "bioacoustic", "--pool-dir", str(tmp_path)]
    )
    assert isinstance(result.exception, UserError) and "needs a terminal" in str(result.exception)
    assert not (tmp_path / "p").exists()  # nothing written before the check


def test_label_runs_a_project_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command as a user runs it (headless here): make the project, label one clip, quit."""
    pool = make_audio_pool(tmp_path)
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  label.submit: x\n")
    headless_label(monkeypatch, "1", "x")  # x: the remapped submit key
    project = tmp_path / "project"
    label_cmd(
        project,
        task=Task.bioacoustic,
        pool_dir=pool,
        strategy=Strategy.mfft,
        budgets="4,8",
        audio_root=None,
        annotator="ana",
        player="file",
        port=0,
        keys=keys,
        autoplay=True,
        graphics="halfblock",
        set_=["max_epochs=5", "hidden=16"],
    )
    with Journal(project / "journal.sqlite") as journal:
        labels = journal.current_labels()
    assert [e.labels for e in labels.values()] == [(0,)]
    assert [e.annotator for e in labels.values()] == ["ana"]
    assert "labels in force: 1" in capsys.readouterr().err
