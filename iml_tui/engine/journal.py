"""The session journal: an append-only SQLite log of everything that happened in a project.

One table, ``events``; a row is never updated or deleted (triggers refuse it). Kinds:

- ``selected``  an item joined the queue (``round``, ``model_version`` = the queue generation,
  ``payload``: rank, why it was chosen, the model's view of it);
- ``queried``   an item was handed to an annotator (a lease: nobody else gets it meanwhile);
- ``labelled``  an answer: ``labels`` = JSON list of the class indices present ([] = none);
- ``skipped``   the annotator declined the item;
- ``undone``    withdraws the answer whose id is in ``ref`` (the compensating event of undo);
- ``model_trained`` a model was installed (``model_version``; ``payload``: checkpoint file,
  scores); ``training_failed`` a training that did not produce one (``payload``: the error);
- ``imported``  a file of labels was imported (its ``labelled`` events follow, same annotator).
- ``extent``    where an event lies in a clip: ``labels`` = [its class], ``payload``: ``onset`` and
  ``offset`` (seconds from the clip's start); with ``ref`` it replaces (moves) that extent;
- ``extent_removed`` withdraws the extent whose id is in ``ref``.

An extent act is undone like an answer (an ``undone`` event refers to it; undoing a move brings
the extent it replaced back). The extents in force are a view too (``current_extents``): extent
events neither undone nor replaced or removed by an act still in force. Journals written before
extents existed have no such events and open unchanged (the view is added on open).

Every event records when (``ts``, Unix seconds), who (``annotator``) and how long they spent
(``seconds``). The current labels are a view: for each item its latest answer that was not
undone, when that answer is a label (views ``answers``, ``current_answers``,
``current_labels``).

Durability and concurrency: WAL, ``synchronous=FULL``, every write is its own short ``BEGIN
IMMEDIATE`` transaction, committed before the call returns; a busy timeout lets annotators in
separate processes write to the same file.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iml_tui.errors import UserError

KINDS: tuple[str, ...] = (
    "selected",
    "queried",
    "labelled",
    "skipped",
    "undone",
    "model_trained",
    "training_failed",
    "imported",
    "extent",
    "extent_removed",
    "training_claimed",
    "training_released",
)
ANSWER_KINDS: tuple[str, ...] = ("labelled", "skipped")
EXTENT_KINDS: tuple[str, ...] = ("extent", "extent_removed")
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    item INTEGER,
    item_id TEXT,
    labels TEXT,
    annotator TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL DEFAULT 0,
    model_version INTEGER,
    round INTEGER,
    ref INTEGER,
    payload TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_item ON events (item, id);
CREATE INDEX IF NOT EXISTS events_kind_ref ON events (kind, ref);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE VIEW IF NOT EXISTS answers AS
    SELECT e.* FROM events e
    WHERE e.kind IN ('labelled', 'skipped')
      AND NOT EXISTS (SELECT 1 FROM events u WHERE u.kind = 'undone' AND u.ref = e.id);
CREATE VIEW IF NOT EXISTS current_answers AS
    SELECT id, ts, kind, item, item_id, labels, annotator, seconds, model_version, round, payload
    FROM (SELECT a.*, row_number() OVER (PARTITION BY a.item ORDER BY a.id DESC) AS rn
          FROM answers a)
    WHERE rn = 1;
CREATE VIEW IF NOT EXISTS current_labels AS
    SELECT id, ts, item, item_id, labels, annotator, seconds, model_version, round, payload
    FROM current_answers WHERE kind = 'labelled';
CREATE VIEW IF NOT EXISTS current_extents AS
    SELECT e.* FROM events e
    WHERE e.kind = 'extent'
      AND NOT EXISTS (SELECT 1 FROM events u WHERE u.kind = 'undone' AND u.ref = e.id)
      AND NOT EXISTS (
          SELECT 1 FROM events x
          WHERE x.kind IN ('extent', 'extent_removed') AND x.ref = e.id
            AND NOT EXISTS (SELECT 1 FROM events u WHERE u.kind = 'undone' AND u.ref = x.id));
"""

_COLUMNS = (
    "id",
    "ts",
    "kind",
    "item",
    "item_id",
    "labels",
    "annotator",
    "seconds",
    "model_version",
    "round",
    "ref",
    "payload",
)


@dataclass(frozen=True)
class NewEvent:
    """An event to append (``id`` and ``ts`` are given by the journal)."""

    kind: str
    item: int | None = None
    item_id: str | None = None
    labels: Sequence[int] | None = None
    annotator: str = ""
    seconds: float = 0.0
    model_version: int | None = None
    round: int | None = None
    ref: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One journal row; ``labels`` decoded (None for events without labels)."""

    id: int
    ts: float
    kind: str
    item: int | None
    item_id: str | None
    labels: tuple[int, ...] | None
    annotator: str
    seconds: float
    model_version: int | None
    round: int | None
    ref: int | None
    payload: dict[str, Any]


def _event(row: Sequence[Any]) -> Event:
    labels = None if row[5] is None else tuple(int(v) for v in json.loads(row[5]))
    return Event(
        id=int(row[0]),
        ts=float(row[1]),
        kind=str(row[2]),
        item=None if row[3] is None else int(row[3]),
        item_id=row[4],
        labels=labels,
        annotator=str(row[6]),
        seconds=float(row[7]),
        model_version=None if row[8] is None else int(row[8]),
        round=None if row[9] is None else int(row[9]),
        ref=None if row[10] is None else int(row[10]),
        payload=json.loads(row[11]) if row[11] else {},
    )


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    name = getattr(exc, "sqlite_errorname", "")
    return "disk is full" in str(exc).lower() or name == "SQLITE_FULL"


def _disk_error(exc: BaseException, path: Path) -> UserError:
    """A full disk named as such; other OS errors say what the system said."""
    if _is_full(exc):
        return UserError("the disk is full", path, "free some space and open the project again")
    if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return UserError(
            f"cannot open the journal ({exc})",
            path,
            "another program holds it: close that program and try again",
        )
    return UserError(
        f"cannot open the journal ({exc})", path, "check the folder exists and is writable"
    )


class Journal:
    """An open journal file (created when missing). Not shared between threads: open one per
    thread or process (they may all write at once)."""

    def __init__(self, path: str | Path, timeout: float = 30.0, expected: bool = False) -> None:
        """``expected``: the project already holds state (models, a ``-wal`` file), so a missing
        or empty file is damage, not a new journal."""
        self.path = Path(path)
        recover = (
            f"restore {self.path.name} (or its -wal file) from a backup, or move the "
            "project folder away to start a new project"
        )
        if expected and (not self.path.exists() or self.path.stat().st_size == 0):
            state = "missing" if not self.path.exists() else "empty (0 bytes)"
            raise UserError(
                f"the journal is {state} but the project holds models or other state",
                self.path,
                recover,
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # an expected journal is opened read-write only: SQLite must never create it anew
            target = f"{self.path.absolute().as_uri()}?mode=rw" if expected else str(self.path)
            self._db = sqlite3.connect(
                target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=expected
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = FULL")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if str(check).lower() != "ok":
                raise sqlite3.DatabaseError(f"damaged: {check}")
            self._db.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                # an older journal gains the views above; its version says so from now on
                + f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version' "
                + f"AND CAST(value AS INTEGER) < {SCHEMA_VERSION};"
                + "COMMIT;"
            )
        except OSError as exc:
            raise _disk_error(exc, self.path) from exc
        except sqlite3.DatabaseError as exc:
            if _is_full(exc):
                raise _disk_error(exc, self.path) from exc
            if getattr(exc, "sqlite_errorname", "") in (
                "SQLITE_BUSY",
                "SQLITE_LOCKED",
                "SQLITE_CANTOPEN",
                "SQLITE_READONLY",
                "SQLITE_PERM",
                "SQLITE_IOERR",
            ):
                raise _disk_error(exc, self.path) from exc
            raise UserError(f"not a usable journal ({exc})", self.path, recover) from exc
        if str(mode).lower() != "wal":
            raise UserError(
                f"SQLite refused WAL mode ({mode})",
                self.path,
                "keep the project on a local file system",
            )
        self._lock = threading.Lock()

    # --- writing ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction; a full disk is a UserError (what was committed before is kept)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except (sqlite3.OperationalError, OSError) as exc:
            if _is_full(exc):
                raise UserError(
                    "the disk is full; this change was not saved",
                    self.path,
                    "free some space and do it again (earlier labels are kept)",
                ) from exc
            raise

    @contextmanager
    def transaction(self) -> Iterator[Journal]:
        """A write transaction (``BEGIN IMMEDIATE``: other writers wait): read the latest state
        and append events atomically; committed (durably) when the block exits."""
        with self._lock, self._write():
            yield self

    def append(self, *events: NewEvent) -> list[int]:
        """Append ``events``; returns their ids. Inside :meth:`transaction` they join it, else
        they are committed (fsync) before this returns."""
        if self._db.in_transaction:
            return self._insert(events)
        with self._lock, self._write():
            return self._insert(events)

    def _insert(self, events: Sequence[NewEvent]) -> list[int]:
        ids: list[int] = []
        now = time.time()
        for e in events:
            if e.kind not in KINDS:
                raise ValueError(f"unknown event kind {e.kind!r}: use one of {KINDS}")
            labels = None if e.labels is None else json.dumps(sorted({int(v) for v in e.labels}))
            cur = self._db.execute(
                "INSERT INTO events (ts, kind, item, item_id, labels, annotator, seconds, "
                "model_version, round, ref, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    e.kind,
                    e.item,
                    e.item_id,
                    labels,
                    e.annotator,
                    float(e.seconds),
                    e.model_version,
                    e.round,
                    e.ref,
                    json.dumps(e.payload, default=_jsonable),
                ),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    def set_meta(self, key: str, value: str) -> None:
        """Set a project fact once; a key already set keeps its first value."""
        self.append_meta({key: value})

    def append_meta(self, values: dict[str, str]) -> None:
        """Set several facts at once (first value wins, as :meth:`set_meta`)."""

        def put() -> None:
            for k, v in values.items():
                self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, v))

        if self._db.in_transaction:
            put()
            return
        with self._lock, self._write():
            put()

    # --- reading ---------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """Every project fact set with :meth:`set_meta`."""
        return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def events(self, since: int = 0, kinds: Sequence[str] | None = None) -> list[Event]:
        """Events with id > ``since`` in id order, optionally only of ``kinds``."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM events WHERE id > ?"
        args: list[Any] = [since]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            args.extend(kinds)
        return [_event(r) for r in self._db.execute(sql + " ORDER BY id", args)]

    def item_names(self) -> list[tuple[int, str]]:
        """Every distinct (item index, item id) pair the events name, by index."""
        sql = (
            "SELECT DISTINCT item, item_id FROM events WHERE item IS NOT NULL AND item_id IS NOT "
            "NULL ORDER BY item"
        )
        return [(int(i), str(n)) for i, n in self._db.execute(sql)]

    def last_id(self) -> int:
        row = self._db.execute("SELECT max(id) FROM events").fetchone()
        return int(row[0] or 0)

    def current_labels(self) -> dict[int, Event]:
        """item -> its current ``labelled`` event (the view ``current_labels``)."""
        sql = (
            "SELECT id, ts, 'labelled', item, item_id, labels, annotator, seconds, "
            "model_version, round, NULL, payload FROM current_labels ORDER BY id"
        )
        return {int(r[3]): _event(r) for r in self._db.execute(sql)}

    def current_answers(self) -> dict[int, Event]:
        """item -> its current answer, ``labelled`` or ``skipped`` (the view
        ``current_answers``)."""
        sql = (
            "SELECT id, ts, kind, item, item_id, labels, annotator, seconds, model_version, "
            "round, NULL, payload FROM current_answers ORDER BY id"
        )
        return {int(r[3]): _event(r) for r in self._db.execute(sql)}

    def current_extents(self) -> dict[int, list[Event]]:
        """item -> its extents in force, in the order they were marked (the view
        ``current_extents``)."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM current_extents ORDER BY id"
        out: dict[int, list[Event]] = {}
        for r in self._db.execute(sql):
            e = _event(r)
            out.setdefault(int(e.item or 0), []).append(e)
        return out

    def last_act(
        self, annotator: str, items: Sequence[int] | None = None, extents: bool = True
    ) -> Event | None:
        """``annotator``'s latest answer or (with ``extents``) extent act not yet undone
        (optionally among ``items``): what undo withdraws next."""
        kinds = ANSWER_KINDS + (EXTENT_KINDS if extents else ())
        sql = (
            f"SELECT {', '.join(_COLUMNS)} FROM events e WHERE annotator = ? "
            f"AND kind IN ({', '.join('?' * len(kinds))}) "
            "AND NOT EXISTS (SELECT 1 FROM events u WHERE u.kind = 'undone' AND u.ref = e.id)"
        )
        args: list[Any] = [annotator, *kinds]
        if items is not None:
            if not items:
                return None
            sql += f" AND item IN ({', '.join('?' * len(items))})"
            args.extend(int(i) for i in items)
        row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return None if row is None else _event(row)

    def undo_last(
        self, annotator: str, items: Sequence[int] | None = None, seconds: float = 0.0
    ) -> Event | None:
        """Withdraw ``annotator``'s latest answer that is still in force (optionally only among
        ``items``) by appending an ``undone`` event; returns the withdrawn answer, or None."""
        with self.transaction():
            target = self.last_answer(annotator, items)
            if target is None:
                return None
            self._insert(
                [
                    NewEvent(
                        "undone",
                        item=target.item,
                        item_id=target.item_id,
                        annotator=annotator,
                        seconds=seconds,
                        ref=target.id,
                        round=target.round,
                    )
                ]
            )
            return target

    def last_answer(self, annotator: str, items: Sequence[int] | None = None) -> Event | None:
        """``annotator``'s latest answer not yet undone (optionally among ``items``)."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM answers WHERE annotator = ?"
        args: list[Any] = [annotator]
        if items is not None:
            if not items:
                return None
            sql += f" AND item IN ({', '.join('?' * len(items))})"
            args.extend(int(i) for i in items)
        row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return None if row is None else _event(row)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays in payloads become plain numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
