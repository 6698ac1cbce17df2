"""The SQLite journal: append-only events, the current-labels view, undo, concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from iml_tui.engine.journal import Journal, NewEvent
from iml_tui.errors import UserError


def test_pragmas_and_append_only(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    db = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    (eid,) = j.append(
        NewEvent(
            "labelled",
            item=3,
            item_id="a@0",
            labels=[2, 0, 2],
            annotator="ana",
            seconds=1.5,
            model_version=0,
            round=0,
            payload={"kind": "pool-query"},
        )
    )
    e = j.events()[0]
    assert (e.id, e.kind, e.item, e.labels, e.annotator, e.seconds) == (
        eid,
        "labelled",
        3,
        (0, 2),
        "ana",
        1.5,
    )
    assert e.payload == {"kind": "pool-query"} and e.ts > 0
    # committed: another connection sees it at once
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    for sql in ("UPDATE events SET item = 4", "DELETE FROM events"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    with pytest.raises(ValueError, match="unknown event kind"):
        j.append(NewEvent("relabelled", item=1))
    j.close()


def test_current_labels_view_and_undo(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.append(
            NewEvent("labelled", item=1, labels=[0], annotator="ana"),
            NewEvent("labelled", item=2, labels=[], annotator="ana"),
            NewEvent("skipped", item=3, annotator="bob"),
            NewEvent("labelled", item=1, labels=[1], annotator="bob"),
        )
        cur = j.current_labels()
        assert {i: e.labels for i, e in cur.items()} == {1: (1,), 2: ()}
        assert j.current_answers()[3].kind == "skipped"
        # undo is a compensating event; bob's relabel of item 1 goes, ana's label is back
        undone = j.undo_last("bob")
        assert undone is not None and undone.item == 1 and undone.labels == (1,)
    with Journal(path) as j:  # across a restart
        assert {i: e.labels for i, e in j.current_labels().items()} == {1: (0,), 2: ()}
        assert j.undo_last("bob").kind == "skipped"  # type: ignore[union-attr]
        assert 3 not in j.current_answers()
        assert j.undo_last("bob") is None
        assert j.undo_last("ana", items=[2]).item == 2  # type: ignore[union-attr]
        assert set(j.current_labels()) == {1}
        kinds = [e.kind for e in j.events()]
        assert kinds.count("undone") == 3 and len(kinds) == 7  # nothing was deleted


def test_meta_first_value_wins(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        j.set_meta("task", "bioacoustic")
        j.set_meta("task", "lid")
        assert j.meta()["task"] == "bioacoustic" and j.meta()["schema_version"] == "2"


def test_not_a_journal_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "j.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="not a usable journal"):
        Journal(bad)


_WRITER = """
import sys
from iml_tui.engine.journal import Journal, NewEvent
j = Journal(sys.argv[1], timeout=30)
who, n = sys.argv[2], int(sys.argv[3])
for i in range(n):
    j.append(NewEvent("labelled", item=i, labels=[i % 3], annotator=who, seconds=0.1))
    with j.transaction():
        j.events(j.last_id() - 1)
        j.append(NewEvent("queried", item=i, annotator=who))
print("ok", flush=True)
"""


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), who, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("ana", "bob")
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with Journal(path) as j:
        ev = j.events()
        assert len(ev) == 4 * n and len({e.id for e in ev}) == 4 * n
        for who in ("ana", "bob"):
            mine = [e for e in ev if e.annotator == who and e.kind == "labelled"]
            assert [e.item for e in mine] == list(range(n))


@pytest.mark.parametrize("damage", ["deleted", "empty"])
def test_missing_or_empty_journal_with_state_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        j.append(NewEvent("labelled", item=0, item_id="a", labels=[1]))
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(b"")
    with pytest.raises(
        UserError,
        match=r"journal\.sqlite: the journal is (missing|empty).*"
        r"restore journal\.sqlite .* move the project folder",
    ):
        Journal(path, expected=True)
    assert not path.exists() or path.stat().st_size == 0  # nothing was created over it
    Journal(path).close()  # without state it is simply a new journal


def test_truncated_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:
        j.append(
            *[
                NewEvent("labelled", item=i, item_id=str(i), labels=[0], payload={"x": "y" * 500})
                for i in range(200)
            ]
        )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"not a usable journal .*restore journal\.sqlite"):
        Journal(path, expected=True)


def test_full_disk_is_reported_as_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(sqlite3, "connect", full)
    with pytest.raises(UserError, match="the disk is full — free some space") as info:
        Journal(tmp_path / "journal.sqlite")
    assert "not a usable journal" not in str(info.value)

    def enospc(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", enospc)
    with pytest.raises(UserError, match="the disk is full"):
        Journal(tmp_path / "sub" / "journal.sqlite")
