"""A damaged or missing journal is never taken for a new project; a full disk is a full disk."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from labelling_data import FAST_TRAIN, make_audio_pool

from iml_tui.engine.journal import Journal, NewEvent
from iml_tui.engine.project import Project, ProjectConfig, open_or_create
from iml_tui.engine.session import Session, answer_with_oracle
from iml_tui.errors import UserError

DAMAGES = ("deleted", "empty", "garbage", "truncated")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_pool(tmp_path_factory.mktemp("damage_pool"))


def _config(pool: Path) -> ProjectConfig:
    return ProjectConfig(pool_dir=str(pool), strategy="ft", budgets=[4, 8], seed=3, **FAST_TRAIN)  # type: ignore[arg-type]


def _labelled(tmp_path: Path, pool: Path) -> Path:
    """A project with 3 labels and no checkpoint yet (the first training is at 4)."""
    proj = Project.create(tmp_path / "proj", _config(pool)).dir
    with Session.open(proj, "ana") as s:
        answer_with_oracle(s, lambda item: [0], limit=3, seconds=1.0)
    assert not any((proj / "models").iterdir())
    return proj


def _damage(journal: Path, how: str) -> None:
    for side in ("-wal", "-shm"):
        journal.with_name(journal.name + side).unlink(missing_ok=True)
    if how == "deleted":
        journal.unlink()
    elif how == "empty":
        journal.write_bytes(b"")
    elif how == "garbage":
        journal.write_bytes(bytes(range(256)) * 64)
    else:
        data = journal.read_bytes()
        journal.write_bytes(data[: len(data) // 2])


def test_a_new_project_has_its_journal(tmp_path: Path, pool: Path) -> None:
    proj = Project.create(tmp_path / "p", _config(pool))
    assert proj.journal_path.stat().st_size > 0
    with proj.open_journal() as j:
        assert j.last_id() == 0


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_journal_is_refused_everywhere(tmp_path: Path, pool: Path, how: str) -> None:
    proj = _labelled(tmp_path, pool)
    journal = proj / "journal.sqlite"
    with Journal(journal) as j:
        assert len(j.current_labels()) == 3
    _damage(journal, how)
    before = journal.read_bytes() if journal.exists() else None
    state = {"deleted": "missing", "empty": "empty"}.get(how, "not a usable journal")
    for opener in (
        lambda: Project.load(proj).open_journal(),
        lambda: Session.open(proj, "ana"),
        lambda: Session.open(open_or_create(proj, {"pool_dir": str(pool)}).dir),
        lambda: Project.create(proj, _config(pool)).open_journal(),
    ):
        with pytest.raises(UserError, match=state) as info:
            opener()
        msg = str(info.value)
        assert msg.startswith(f"{journal}: ") and "\n" not in msg
        assert "restore journal.sqlite" in msg and "move the project folder away" in msg
        assert (journal.read_bytes() if journal.exists() else None) == before
    for cmd in (
        ["export", str(proj), "--out", str(tmp_path / "labels.csv")],
        ["import-labels", str(proj), str(tmp_path / "none.csv")],
    ):
        (tmp_path / "none.csv").write_text("id,labels\n")
        proc = subprocess.run(
            [sys.executable, "-m", "iml_tui", *cmd], capture_output=True, text=True
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and f"{journal}: " in proc.stderr
        assert (journal.read_bytes() if journal.exists() else None) == before
    assert not (tmp_path / "labels.csv").exists()


def test_creating_over_a_used_folder_without_project_yaml_is_refused(
    tmp_path: Path, pool: Path
) -> None:
    proj = _labelled(tmp_path, pool)
    (proj / "project.yaml").unlink()
    journal = (proj / "journal.sqlite").read_bytes()
    with pytest.raises(UserError, match=r"project\.yaml is missing but journal\.sqlite holds"):
        open_or_create(proj, {"pool_dir": str(pool), "strategy": "ft"})
    assert not (proj / "project.yaml").exists()
    assert (proj / "journal.sqlite").read_bytes() == journal
    (proj / "journal.sqlite").unlink()
    (proj / "models" / "round_001.pt").write_bytes(b"checkpoint")
    with pytest.raises(UserError, match=r"project\.yaml is missing but models/ holds"):
        Project.create(proj, _config(pool))
    assert not (proj / "journal.sqlite").exists()


def test_full_disk_while_writing_is_reported_as_full(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        j.append(NewEvent("labelled", item=0, item_id="a", labels=[1]))
        pages = j._db.execute("PRAGMA page_count").fetchone()[0]
        j._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk holds no more pages
        big = [
            NewEvent("labelled", item=i, item_id=str(i), labels=[0], payload={"x": "y" * 4000})
            for i in range(1, 20)
        ]
        with pytest.raises(UserError, match="the disk is full; this change was not saved"):
            j.append(*big)
        with pytest.raises(UserError, match="disk is full"), j.transaction():
            j.append(*big)
        assert [e.item for e in j.events()] == [0]  # committed labels kept, nothing half-done
        assert not j._db.in_transaction


def test_busy_journal_is_not_called_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(UserError) as info:
            Journal(path, timeout=0.2, expected=True)
        assert "not a usable journal" not in str(info.value)
        assert "locked" in str(info.value) and "another program holds it" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    Journal(path, expected=True).close()
