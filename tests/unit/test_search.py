"""Search by example: exact cosine neighbours against brute force, and the session's queue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from labelling_data import make_audio_pool, make_project

from iml_tui.engine.search import nearest, unit
from iml_tui.engine.session import Session, answer_with_oracle


def test_nearest_equals_brute_force_with_exclusions_and_ties(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import iml_tui.engine.search as search

    monkeypatch.setattr(search, "BLOCK_ROWS", 7)  # several blocks
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[20] = x[3]  # a tie: the lower index first
    q = rng.normal(size=6).astype(np.float32)
    idx, sims = nearest(x, q, 5, exclude=[7])
    cos = x @ unit(q)
    brute = [int(i) for i in np.argsort(-cos, kind="stable") if i != 7][:5]
    assert idx.tolist() == brute
    np.testing.assert_allclose(sims, cos[brute], rtol=1e-6)
    idx, _ = nearest(x, x[3], 2)
    assert idx.tolist() == [3, 20]
    assert nearest(x, q, 100, exclude=range(48))[0].size == 2


def test_session_asks_the_neighbours_next_and_keeps_them_through_a_retrain(tmp_path: Path) -> None:
    pool = make_audio_pool(tmp_path / "src")
    make_project(tmp_path / "proj", pool, budgets=[4, 12])
    with Session.open(tmp_path / "proj", "ana") as s:
        assert answer_with_oracle(s, limit=4) == 4 and s.retrain_now()
        current = s.next_item()
        assert current is not None
        x = s.engine.x  # type: ignore[attr-defined]
        labelled = {e.item for e in s._fold.labelled()}
        queued_before = {e.item for e in s._fold.unanswered()}
        assert s.search(current, k=3) == 3
        cos = x @ x[current.index]
        want = [
            int(i) for i in np.argsort(-cos, kind="stable") if i not in labelled | queued_before
        ][:3]
        ids = s.engine.ids  # type: ignore[attr-defined]
        listed = s.search_queue()
        assert [i for i, _ in listed] == [ids[i] for i in want]
        np.testing.assert_allclose([c for _, c in listed], cos[want], atol=1e-4)
        assert s.next_item().index == current.index  # type: ignore[union-attr]
        s.submit(current, s.truth(current))
        assert s.retrain_now()  # a mid-round re-rank keeps the searched clips first
        got = []
        for _ in range(3):
            item = s.next_item()
            assert item is not None and item.why.startswith(f"similar to {current.id}")
            got.append(item.index)
            s.submit(item, s.truth(item))
        assert got == want
        assert s.search_queue() == []


def test_search_and_pool_info_print_csv(tmp_path: Path) -> None:
    import csv
    import io

    from typer.testing import CliRunner

    from iml_tui.cli import app
    from iml_tui.data.store import PoolStore

    pool = make_audio_pool(tmp_path / "src")
    make_project(tmp_path / "proj", pool, budgets=[4, 12])
    store = PoolStore(pool / "train.h5")
    first = store.ids[0]
    res = CliRunner().invoke(
        app, ["search", str(tmp_path / "proj"), "--example", first, "-k", "3", "--csv"]
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["rank", "clip", "cosine", "labels"] and len(rows) == 4
    x = store.pooled()
    cos = x @ x[0]
    want = [store.ids[i] for i in np.argsort(-cos, kind="stable") if i != 0][:3]
    assert [r[1] for r in rows[1:]] == want and all(r[3] == "-" for r in rows[1:])
    res = CliRunner().invoke(app, ["pool", "info", str(pool / "train.h5"), "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    clip = store.clip_labels()
    assert rows[0] == ["class", "positive clips"]
    assert rows[1:] == [
        *([n, str(int(clip[:, i].sum()))] for i, n in enumerate(store.class_list)),
        ["none of these", str(int((clip.max(axis=1) == 0).sum()))],
    ]
