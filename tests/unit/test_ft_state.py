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
        monkeypatch: pytest.MonkeyPatch) -> None:
    x = random_pool(200, 8, seed=1)
    labeled = np.arange(5)
    picks, state = farthest_round(x, 6, labeled, None, "k")
    calls: list[int] = []
    real = ft_state.min_distance_to
    monkeypatch.setattr(ft_state, "min_distance_to",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    labeled = np.concatenate([labeled, picks])
    again, _ = farthest_round(x, 6, labeled, state, "k")
    assert len(calls) == 1  # only folding the new picks into the carried vector
    assert again.tolist() == ref_ft(x, 6, labeled, np.arange(200))
    extra = np.concatenate([labeled, again[:2]])  # two of them labelled, plus nothing else
    _, _ = farthest_round(x, 6, extra, state, "k")
    assert len(calls) == 3  # the two new labels against the pool, then the fold


def test_state_of_another_pool_or_with_labels_removed_is_not_used() -> None:
    x = random_pool(150, 8, seed=2)
    picks, state = farthest_round(x, 5, np.arange(10), None, "k")
    fewer = np.arange(3)  # labels withdrawn: the saved base is no longer labelled
    assert farthest_round(x, 5, fewer, state, "k")[0].tolist() == ref_ft(x, 5, fewer,
                                                                          np.arange(150))
    poisoned = FtState(state.base, np.zeros_like(state.dmin), "k")
    more = np.concatenate([np.arange(10), picks])
    assert farthest_round(x, 5, more, poisoned, "other")[0].tolist() == \
        ref_ft(x, 5, more, np.arange(150))


def test_saved_state_round_trips_and_rejects_other_keys(tmp_path: Path) -> None:
    state = FtState(np.array([1, 4], dtype=np.int64), np.linspace(0, 1, 6).astype(np.float32),
                    "pool-a")
    path = tmp_path / "ft.npz"
    save_state(path, state)
    back = load_state(path, "pool-a", 6)
    assert back is not None and back.base.tolist() == [1, 4]
    np.testing.assert_array_equal(back.dmin, state.dmin)
    assert load_state(path, "pool-b", 6) is None and load_state(path, "pool-a", 7) is None
    (tmp_path / "bad.npz").write_text("not numpy")
    assert load_state(tmp_path / "bad.npz", "pool-a", 6) is None
    assert load_state(tmp_path / "missing.npz", "pool-a", 6) is None


def test_select_with_state_gives_the_same_rounds(tmp_path: Path) -> None:
    pool = tmp_path / "train.h5"
    rng = np.random.default_rng(0)
    write_pool(pool, rng.normal(size=(120, 3, 6)).astype(np.float32),
               (rng.random((120, 3, 2)) < 0.2).astype(np.uint8), ["a", "b"],
               [f"clip{i}" for i in range(120)])
    runner = CliRunner()
    lab_a, lab_b = tmp_path / "a.txt", tmp_path / "b.txt"
    lab_a.write_text("0\n5\n9\n")
    lab_b.write_text("0\n5\n9\n")
    state = tmp_path / "ft_state.npz"
    for _ in range(3):
        plain = runner.invoke(app, ["select", "--pool", str(pool), "--labeled", str(lab_a),
                                    "--strategy", "ft", "-n", "7"])
        carried = runner.invoke(app, ["select", "--pool", str(pool), "--labeled", str(lab_b),
                                      "--strategy", "ft", "-n", "7", "--state", str(state)])
        assert plain.exit_code == 0 and carried.exit_code == 0, carried.output
        assert plain.stdout == carried.stdout and state.is_file()
        lab_a.write_text(lab_a.read_text() + plain.stdout)
        lab_b.write_text(lab_b.read_text() + carried.stdout)


@pytest.mark.parametrize("block_bytes", [8, 2**25])
def test_min_distance_to_matches_brute_force(monkeypatch: pytest.MonkeyPatch,
                                             block_bytes: int) -> None:
    monkeypatch.setattr(ft_mod, "_BLOCK_BYTES", block_bytes)
    x = random_pool(90, 5, seed=3)
    cols = np.array([4, 17, 60, 61], dtype=np.int64)
    want = (1.0 - x @ x[cols].T).min(axis=1)
    np.testing.assert_allclose(ft_mod.min_distance_to(x, cols), want, atol=1e-12)
    assert np.isinf(ft_mod.min_distance_to(x, np.zeros(0, dtype=np.int64))).all()
