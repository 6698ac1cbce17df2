"""Event extents: journal view and fold against a brute force, undo of extent acts, an old
journal opened, frame targets by hand, training targets, export read back with crowsetta."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crowsetta.formats.bbox.raven import Raven
from labelling_data import make_audio_pool, make_project

from iml_tui.engine.export import export_labels
from iml_tui.engine.extents import Extent, extent_frames
from iml_tui.engine.journal import Journal, NewEvent
from iml_tui.engine.session import Session
from iml_tui.engine.session import pool_backend as pool_backend_module
from iml_tui.engine.session.fold import Fold


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_pool(tmp_path_factory.mktemp("extents_pool"))


def test_view_and_fold_agree_with_a_brute_force(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    with Journal(tmp_path / "j.sqlite") as j:
        live: dict[int, dict[int, tuple[float, float]]] = {0: {}, 1: {}}  # brute force
        history: list[tuple[int, int, str, int | None]] = []  # (event id, item, kind, ref)
        for _ in range(120):
            item = int(rng.integers(2))
            roll = rng.random()
            if roll < 0.4 or not live[item]:
                on = float(rng.integers(0, 10)) / 10
                (eid,) = j.append(
                    NewEvent("extent", item=item, labels=[0], payload={"onset": on, "offset": 2.0})
                )
                live[item][eid] = (on, 2.0)
                history.append((eid, item, "extent", None))
            elif roll < 0.6:
                ref = int(rng.choice(list(live[item])))
                (eid,) = j.append(
                    NewEvent(
                        "extent",
                        item=item,
                        labels=[0],
                        ref=ref,
                        payload={"onset": 0.0, "offset": 1.0},
                    )
                )
                del live[item][ref]
                live[item][eid] = (0.0, 1.0)
                history.append((eid, item, "extent", ref))
            elif roll < 0.8:
                ref = int(rng.choice(list(live[item])))
                (eid,) = j.append(NewEvent("extent_removed", item=item, labels=[0], ref=ref))
                del live[item][ref]
                history.append((eid, item, "extent_removed", ref))
            elif history:  # undo the newest act still in force
                eid, it, kind, ref = history.pop()
                j.append(NewEvent("undone", item=it, ref=eid))
                if kind == "extent":
                    del live[it][eid]
                if ref is not None:
                    old = next(e for e in j.events() if e.id == ref)
                    live[it][ref] = (old.payload["onset"], old.payload["offset"])
        view = {i: sorted(e.id for e in evs) for i, evs in j.current_extents().items()}
        fold = Fold()
        for e in j.events():
            fold.apply(e)
        want = {i: sorted(x) for i, x in live.items() if x}
        assert view == want
        assert {i: [x.id for x in xs] for i, xs in fold.marked().items()} == want


def test_an_old_journal_opens_with_its_events(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.append(NewEvent("labelled", item=3, item_id="a@0", labels=[1], annotator="ana"))
    db = sqlite3.connect(path)  # as a journal written before extents existed
    db.execute("DROP VIEW current_extents")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with Journal(path) as j:
        assert j.meta()["schema_version"] == "2"
        assert j.current_extents() == {}
        assert j.current_labels()[3].labels == (1,)


def test_extent_frames_by_hand() -> None:
    x = [Extent(1, 0.6, 1.1, 0), Extent(2, 1.5, 2.0, 2)]
    got = extent_frames(x, 2.0, 4, 3)  # frames of 0.5 s
    want = np.zeros((4, 3), np.uint8)
    want[[1, 2], 0] = 1  # [0.5, 1.0) and [1.0, 1.5) meet [0.6, 1.1)
    want[3, 2] = 1  # [1.5, 2.0); touching [1.0, 1.5) does not count
    np.testing.assert_array_equal(got, want)
    spans = np.array([[0.0, 1.0], [0.5, 1.5], [1.0, 2.0]])  # overlapping windows
    got = extent_frames(x, 2.0, 3, 3, spans)
    want = np.zeros((3, 3), np.uint8)
    want[:, 0] = 1  # every window meets [0.6, 1.1)
    want[2, 2] = 1  # only [1.0, 2.0) meets [1.5, 2.0)
    np.testing.assert_array_equal(got, want)


def test_session_extent_acts_and_undo(tmp_path: Path, pool: Path) -> None:
    make_project(tmp_path / "proj", pool)
    with Session.open(tmp_path / "proj", "ana") as s:
        item = s.next_item()
        assert item is not None
        a = s.add_extent(item, 0.2, 0.8, 1)
        b = s.add_extent(item, 1.0, 1.4, 0)
        with pytest.raises(ValueError, match="onset < offset"):
            s.add_extent(item, 0.9, 0.9, 0)
        with pytest.raises(ValueError, match="not a class"):
            s.add_extent(item, 0.1, 0.9, 7)
        m = s.move_extent(item, a.id, 0.3, 0.9)
        assert [(x.onset, x.offset, x.cls) for x in s.extents(item)] == [
            (1.0, 1.4, 0),
            (0.3, 0.9, 1),
        ]
        s.remove_extent(item, b.id)
        with pytest.raises(ValueError, match="not in force"):
            s.remove_extent(item, b.id)
        assert s.extents(item) == [m]
        s.submit(item, [1])
        back = s.undo()  # the answer first
        assert back is not None and back.id == item.id and back.previous == (1,)
        assert s.extents(item) == [m] and s.progress().labelled == 0
        assert s.undo() is not None and len(s.extents(item)) == 2  # the removal
        assert s.undo() is not None and {x.id for x in s.extents(item)} == {a.id, b.id}
        s.undo()
        s.undo()
        assert s.extents(item) == [] and s.undo() is None
    with Session.open(tmp_path / "proj", "bo") as other:  # another annotator sees the same
        assert other.extents(item.index) == []


def test_marked_clips_train_on_their_extents(
    tmp_path: Path, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(tmp_path / "proj", pool, budgets=[3, 6])
    seen: dict[str, Any] = {}
    real = pool_backend_module.train_frame_classifier

    def spy(tx: np.ndarray, ty: np.ndarray, *args: Any, **kw: Any) -> Any:
        seen["ty"], seen["weak"] = ty.copy(), kw["weak"].copy()
        return real(tx, ty, *args, **kw)

    monkeypatch.setattr(pool_backend_module, "train_frame_classifier", spy)
    with Session.open(tmp_path / "proj", "ana") as s:
        marked = s.next_item()
        assert marked is not None
        s.add_extent(marked, 0.6, 1.1, 0)
        s.add_extent(marked, 1.5, 2.0, 2)
        s.submit(marked, [0, 2])
        partly = s.next_item()
        assert partly is not None
        s.add_extent(partly, 0.0, 0.4, 1)  # class 2 labelled without an extent: weak
        s.submit(partly, [1, 2])
        clip_only = s.next_item()
        assert clip_only is not None
        s.add_extent(clip_only, 0.0, 0.4, 1)  # a class not in the label: ignored
        s.submit(clip_only, [0])
        assert s.retrain_now()
    ty, weak = seen["ty"], seen["weak"]
    assert weak.tolist() == [False, True, True]
    want = np.zeros((4, 3), np.uint8)
    want[[1, 2], 0] = 1
    want[3, 2] = 1
    np.testing.assert_array_equal(ty[0], want)
    np.testing.assert_array_equal(ty[1].max(axis=0), [0, 1, 1])  # clip labels (max is all MIL uses)
    np.testing.assert_array_equal(ty[2].max(axis=0), [1, 0, 0])


def _norm(rows: list[tuple[str, float, float, str, str]]) -> list[tuple[Any, ...]]:
    return sorted((i, round(float(a), 5), round(float(b), 5), c, e) for i, a, b, c, e in rows)


def test_export_writes_extents_and_flags_clip_labels(tmp_path: Path, pool: Path) -> None:
    make_project(tmp_path / "proj", pool)
    with Session.open(tmp_path / "proj", "ana") as s:
        first = s.next_item()
        assert first is not None
        s.add_extent(first, 0.25, 0.75, 0)
        s.add_extent(first, 1.0, 1.5, 0)
        s.submit(first, [0, 1])  # frog: a clip label
        second = s.next_item()
        assert second is not None
        s.submit(second, [2])
    res = export_labels(tmp_path / "proj", "raven", tmp_path / "raven")
    assert res.written == 4 and not res.unlocated
    rows = []
    for table in sorted((tmp_path / "raven").glob("*.Table.1.selections.txt")):
        assert table.read_text().split("\n", 1)[0].split("\t")[:8] == [
            "Selection",
            "View",
            "Channel",
            "Begin Time (s)",
            "End Time (s)",
            "Low Freq (Hz)",
            "High Freq (Hz)",
            "Begin File",
        ]
        df = Raven.from_file(table).df
        rows += [
            (r["Item ID"], r.begin_time_s, r.end_time_s, r.annotation, r["Extent"])
            for _, r in df.iterrows()
        ]

    def offset(item_id: str) -> float:
        return float(item_id.split("@")[1])

    o1, o2 = offset(first.id), offset(second.id)
    want = [
        (first.id, o1 + 0.25, o1 + 0.75, "bird", "marked"),
        (first.id, o1 + 1.0, o1 + 1.5, "bird", "marked"),
        (first.id, o1, o1 + 2.0, "frog", "clip"),
        (second.id, o2, o2 + 2.0, "insect", "clip"),
    ]
    assert _norm(rows) == _norm(want)
    # the event CSV holds the same events
    export_labels(tmp_path / "proj", "events", tmp_path / "events.csv")
    with open(tmp_path / "events.csv", newline="") as f:
        got = [
            (r["item_id"], float(r["onset"]), float(r["offset"]), r["class"], r["extent"])
            for r in csv.DictReader(f)
        ]
    assert _norm(got) == _norm(want)


def test_export_cli_events_format(tmp_path: Path, pool: Path) -> None:
    from typer.testing import CliRunner

    from iml_tui.cli import app

    make_project(tmp_path / "proj", pool)
    with Session.open(tmp_path / "proj", "ana") as s:
        item = s.next_item()
        assert item is not None
        s.add_extent(item, 0.5, 1.0, 1)
        s.submit(item, [1])
    out = tmp_path / "ev.csv"
    res = CliRunner().invoke(
        app, ["export", str(tmp_path / "proj"), "--format", "events", "--out", str(out)]
    )
    assert res.exit_code == 0 and f"1 event(s) -> {out}" in res.output, res.output
    (row,) = list(csv.DictReader(out.open(newline="")))
    assert (row["class"], row["extent"], row["item_id"]) == ("frog", "marked", item.id)
    assert float(row["offset"]) - float(row["onset"]) == pytest.approx(0.5)
