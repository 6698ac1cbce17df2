"""FT with the min-distance vector carried between rounds: the same picks as the definition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_strategies import lattice_pool, random_pool, ref_ft
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.store import write_pool
from iml_tui.engine.strategies import farthest as ft_mod
from iml_tui.engine.strategies import ft_state
from iml_tui.engine.strategies.ft_state import FtState, farthest_round, load_state, save_state


@pytest.mark.parametrize("pool", ["random", "lattice"])
def test_rounds_with_carried_state_match_the_definition(pool: str) -> None:
    x = random_pool(300, 12, seed=4) if pool == "random" else lattice_pool(120, seed=5)
    labeled = np.random.default_rng(0).choice(x.shape[0], size=7, replace=False)
    state = None
    for _ in range(4):
        want = ref_ft(x, 9, labeled, np.arange(x.shape[0]))
        picks, state = farthest_round(x, 9, labeled, state, "k")
        assert picks.tolist() == want
        assert state.base.tolist() == sorted({*labeled.tolist(), *want})
        labeled = np.concatenate([labeled, picks])


def test_a_round_after_labelling_the_picks_skips_the_first_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = random_pool(400, 8, seed=1)
    labeled = np.arange(5)
    picks, state = farthest_round(x, 6, labeled, None, "k")
    calls: list[int] = []
    real = ft_state.first_pass
    monkeypatch.setattr(ft_state, "first_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
    labeled = np.concatenate([labeled, picks])
    again, state2 = farthest_round(x, 6, labeled, state, "k")
    assert calls == []  # carried on: no pass over the whole pool
    assert again.tolist() == ref_ft(x, 6, labeled, np.arange(400))
    assert state2.centres.tolist() == [*state.centres.tolist(), *again.tolist()]
    # only the candidates that reached the top of the heap were measured against the new centres
    cand = np.setdiff1d(np.arange(400), state2.centres)
    assert 0 < int((state2.seen[cand] > state.centres.size).sum()) < cand.size // 2
    # from the first state, with only two of the second round's picks labelled: carried on
    extra = np.concatenate([labeled, again[:2]])
    third, _ = farthest_round(x, 6, extra, state, "k")
    assert calls == [] and third.tolist() == ref_ft(x, 6, extra, np.arange(400))
    # from the second state, whose picks are not all labelled: a fresh round
    assert farthest_round(x, 6, extra, state2, "k")[0].tolist() == third.tolist()
    assert calls == [1]


@pytest.mark.parametrize("seed_centres", [64, 4])
def test_carried_bounds_hold_their_prefix_exactly(
    monkeypatch: pytest.MonkeyPatch, seed_centres: int
) -> None:
    monkeypatch.setattr(ft_mod, "_SEED_CENTRES", seed_centres)  # 4: a seeded first pass
    x = random_pool(150, 6, seed=9)
    labeled = np.random.default_rng(2).choice(150, 40, replace=False)
    state = None
    for _ in range(3):
        picks, state = farthest_round(x, 10, labeled, state, "k")
        assert picks.tolist() == ref_ft(x, 10, labeled, np.arange(150))
        d = 1.0 - x @ x.T
        for i in range(150):
            prefix = state.centres[: state.seen[i]]
            want = d[i, prefix].min() if prefix.size else np.inf
            assert state.bound[i] == pytest.approx(want, abs=1e-12), i
        labeled = np.concatenate([labeled, picks])


def test_state_of_another_pool_or_with_labels_removed_is_not_used() -> None:
    x = random_pool(150, 8, seed=2)
    picks, state = farthest_round(x, 5, np.arange(10), None, "k")
    fewer = np.arange(3)  # labels withdrawn: the saved centres are no longer labelled
    assert not ft_state.state_usable(state, "k", fewer)
    assert farthest_round(x, 5, fewer, state, "k")[0].tolist() == ref_ft(
        x, 5, fewer, np.arange(150)
    )
    poisoned = FtState(state.centres, np.zeros_like(state.bound), state.seen, "k")
    more = np.concatenate([np.arange(10), picks])
    assert ft_state.state_usable(poisoned, "k", more)
    assert not ft_state.state_usable(poisoned, "other", more)
    assert farthest_round(x, 5, more, poisoned, "other")[0].tolist() == ref_ft(
        x, 5, more, np.arange(150)
    )


def test_saved_state_round_trips_and_rejects_other_keys(tmp_path: Path) -> None:
    state = FtState(
        np.array([4, 1], dtype=np.int64),
        np.linspace(0, 1, 6),
        np.array([0, 2, 1, 2, 2, 0]),
        "pool-a",
    )
    path = tmp_path / "ft.npz"
    save_state(path, state)
    back = load_state(path, "pool-a", 6)
    assert back is not None and back.centres.tolist() == [4, 1] and back.base.tolist() == [1, 4]
    np.testing.assert_array_equal(back.bound, state.bound)
    np.testing.assert_array_equal(back.seen, state.seen)
    assert load_state(path, "pool-b", 6) is None and load_state(path, "pool-a", 7) is None
    (tmp_path / "bad.npz").write_text("not numpy")
    assert load_state(tmp_path / "bad.npz", "pool-a", 6) is None
    assert load_state(tmp_path / "missing.npz", "pool-a", 6) is None
    malformed = [
        FtState(np.array([4, 4]), state.bound, state.seen, "pool-a"),  # a centre twice
        FtState(np.array([4, 9]), state.bound, state.seen, "pool-a"),  # outside the pool
        FtState(state.centres, state.bound, np.array([0, 3, 1, 2, 2, 0]), "pool-a"),  # > M
    ]
    for bad in malformed:
        save_state(path, bad)
        assert load_state(path, "pool-a", 6) is None
    np.savez(path, base=np.array([1]), dmin=np.zeros(6), key=np.asarray("pool-a"))  # older format
    assert load_state(path, "pool-a", 6) is None


def test_select_with_state_gives_the_same_rounds(tmp_path: Path) -> None:
    pool = tmp_path / "train.h5"
    rng = np.random.default_rng(0)
    write_pool(
        pool,
        rng.normal(size=(320, 3, 6)).astype(np.float32),
        (rng.random((320, 3, 2)) < 0.2).astype(np.uint8),
        ["a", "b"],
        [f"clip{i}" for i in range(320)],
    )
    runner = CliRunner()
    lab_a, lab_b = tmp_path / "a.txt", tmp_path / "b.txt"
    lab_a.write_text("".join(f"{i}\n" for i in range(0, 320, 2)))  # enough for the seeded pass
    lab_b.write_text(lab_a.read_text())
    state = tmp_path / "ft_state.npz"
    for _ in range(3):
        plain = runner.invoke(
            app,
            ["select", "--pool", str(pool), "--labeled", str(lab_a), "--strategy", "ft", "-n", "7"],
        )
        carried = runner.invoke(
            app,
            [
                "select",
                "--pool",
                str(pool),
                "--labeled",
                str(lab_b),
                "--strategy",
                "ft",
                "-n",
                "7",
                "--state",
                str(state),
            ],
        )
        assert plain.exit_code == 0 and carried.exit_code == 0, carried.output
        assert plain.stdout == carried.stdout and state.is_file()
        lab_a.write_text(lab_a.read_text() + plain.stdout)
        lab_b.write_text(lab_b.read_text() + carried.stdout)
