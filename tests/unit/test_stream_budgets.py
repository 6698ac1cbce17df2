"""Query budgets: exact integer plans, plan files, drift detectors, memory controls."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from iml_tui.engine import budgets as bd
from iml_tui.engine.scoring import ConfusionCounts, make_score_row, write_scores
from iml_tui.errors import UserError


def test_round_half_up() -> None:
    assert [bd.round_half_up(v) for v in (0.5, 1.5, 2.5, 2.4999, 20.0)] == [1, 2, 3, 2, 20]


def test_allocate_largest_remainder_ties_to_lowest_index() -> None:
    assert bd.allocate([1, 1, 1, 1], 10).tolist() == [3, 3, 2, 2]
    assert bd.allocate([0, 0, 0], 4).tolist() == [2, 1, 1]  # all zero -> uniform
    assert bd.allocate([1, 3], 0).tolist() == [0, 0]
    assert bd.allocate([], 0).tolist() == []
    with pytest.raises(ValueError):
        bd.allocate([], 3)
    with pytest.raises(ValueError):
        bd.allocate([1, -1], 3)


@pytest.mark.parametrize(
    ("kind", "total", "n", "kwargs", "want"),
    [
        ("uniform", 10, 4, {}, [3, 3, 2, 2]),
        ("linear", 10, 4, {}, [4, 3, 2, 1]),
        # head = ceil(4/4) = 1 batch with half: 4; 4 over 3 batches: 1.33 each -> 2, 1, 1
        ("frontheavy", 8, 4, {}, [4, 2, 1, 1]),
        ("skew", 11, 3, {}, [6, 3, 2]),  # 1 : 1/2 : 1/3 of 11 = 6, 3, 2
        # two sessions, 3 each, spent 2/3 then 1/3 inside
        ("sessions", 6, 4, {"groups": [0, 0, 1, 1]}, [2, 1, 2, 1]),
        ("oracle", 4, 4, {"errors": [0, 5, 5, 0]}, [0, 2, 2, 0]),
        ("oracle", 4, 4, {"errors": [0, 0, 0, 0]}, [1, 1, 1, 1]),
    ],
)
def test_plan_by_hand(kind: str, total: int, n: int, kwargs: dict[str, list[int]],
                      want: list[int]) -> None:
    assert bd.plan_budget(kind, total, n, **kwargs).tolist() == want  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", bd.PLAN_TYPES)
@pytest.mark.parametrize(("total", "n"), [(0, 5), (1, 1), (7, 3), (80, 10), (97, 13), (5, 40)])
def test_every_plan_sums_exactly(kind: str, total: int, n: int) -> None:
    rng = np.random.default_rng(total + n)
    plan = bd.plan_budget(kind, total, n, errors=rng.integers(0, 9, n),
                          groups=np.sort(rng.integers(0, 3, n)))
    assert plan.dtype == np.int64 and len(plan) == n
    assert plan.sum() == total and (plan >= 0).all()


def test_decaying_plans_decay() -> None:
    for kind in ("linear", "geometric", "exponential", "skew", "frontheavy"):
        plan = bd.plan_weights(kind, 20)
        assert (np.diff(plan) <= 1e-12).all() and plan[0] > plan[-1], kind
    w = bd.plan_weights("geometric", 3)
    assert w.tolist() == pytest.approx([1.0, 0.9, 0.81])
    assert bd.plan_weights("exponential", 5)[-1] == pytest.approx(math.exp(-4.0))


def test_unknown_plan_type() -> None:
    with pytest.raises(UserError, match="plan type"):
        bd.plan_budget("lumpy", 3, 3)


def _reference_run(folder: Path, n_al: list[int], pre_fps: list[int]) -> None:
    folder.mkdir(parents=True)
    rows = []
    for b, (q, fp) in enumerate(zip(n_al, pre_fps, strict=True)):
        rows.append(make_score_row(b, ConfusionCounts(10, 50, 2, fp), ConfusionCounts(9, 45, 2, 3),
                                   previous=rows, n_target_labelled=4, n_samples=8 + q,
                                   n_al=q))
    write_scores(folder / "scores.csv", rows)
    (folder / "batches.csv").write_text(
        "pass,n,n_target,group,group_name,n_q,al_method\n"
        + "".join(f"{b},60,10,{b // 2},g,{q},smax\n" for b, q in enumerate(n_al)))


def test_plan_files_keep_each_reference_total(tmp_path: Path) -> None:
    _reference_run(tmp_path / "runs" / "dev_ha", [8, 8, 8, 8, 8], [5, 0, 9, 1, 0])
    _reference_run(tmp_path / "runs" / "dev_yo", [2, 40, 4, 4, 4], [1, 1, 1, 1, 1])
    for kind in bd.PLAN_TYPES:
        paths = bd.write_budget_plans(kind, tmp_path / "runs", kind)
        assert [p.name for p in paths] == ["dev_ha.txt", "dev_yo.txt"]
        ha = bd.read_budget_plan(paths[0].parent, "dev_ha", 5)
        yo = bd.read_budget_plan(paths[0].parent, "dev_yo", 5)
        assert ha.sum() == 40 and yo.sum() == 54, kind
    oracle = bd.read_budget_plan(tmp_path / "runs" / "budget_plans" / "oracle", "dev_ha", 5)
    # errors = pre_fns + pre_fps = [7, 2, 11, 3, 2]: 40 x that / 25 = 11.2 3.2 17.6 4.8 3.2
    assert oracle.tolist() == [11, 3, 18, 5, 3]
    sessions = bd.read_budget_plan(tmp_path / "runs" / "budget_plans" / "sessions", "dev_ha", 5)
    # groups 0 0 1 1 2: 40/3 per session, 2/3 then 1/3 inside: 8.9 4.4 8.9 4.4 13.3
    assert sessions.tolist() == [9, 5, 9, 4, 13]
    with pytest.raises(UserError, match="batches"):
        bd.read_budget_plan(paths[0].parent, "dev_ha", 6)
    with pytest.raises(UserError, match="no budget plan"):
        bd.read_budget_plan(paths[0].parent, "dev_bas", 5)
    with pytest.raises(UserError, match="no runs"):
        bd.write_budget_plans("uniform", tmp_path / "runs" / "budget_plans", "x")


def test_fixed_and_planned_budgets() -> None:
    x = np.zeros((4, 2))
    fixed = bd.QueryBudget(bd.BudgetConfig(n_queries=8))
    assert fixed.for_batch(0, np.ones(4), x) == (8, bd.NO_DRIFT)
    planned = bd.QueryBudget(bd.BudgetConfig(n_queries=8, drift="adwin"), np.array([3, 0]))
    assert [planned.for_batch(b, np.ones(4), x)[0] for b in (0, 1)] == [3, 0]


class _Scripted:
    def __init__(self, states: list[int]) -> None:
        self.states = states

    def update(self, errors: np.ndarray, x: np.ndarray) -> int:
        return self.states.pop(0)


def test_drift_multipliers() -> None:
    budget = bd.QueryBudget(bd.BudgetConfig(n_queries=8, drift="adwin", min_al_samples=2))
    budget.detector = _Scripted([bd.DRIFT, bd.WARNING, bd.NO_DRIFT])
    got = [budget.for_batch(b, np.zeros(3), np.zeros((3, 1))) for b in range(3)]
    assert got == [(40, bd.DRIFT), (20, bd.WARNING), (4, bd.NO_DRIFT)]
    small = bd.QueryBudget(bd.BudgetConfig(n_queries=3, drift="hdddm", min_al_samples=2))
    small.detector = _Scripted([bd.NO_DRIFT, bd.WARNING])
    assert small.for_batch(0, np.zeros(1), np.zeros((1, 1)))[0] == 2  # round(1.5) = 2 >= 2
    assert small.for_batch(1, np.zeros(1), np.zeros((1, 1)))[0] == 8  # round(7.5)


def test_adwin_fires_when_the_error_rate_jumps() -> None:
    rng = np.random.default_rng(0)
    det = bd.AdwinDetector()
    states = [det.update((rng.random(200) < 0.05).astype(int), np.zeros((200, 1)))
              for _ in range(5)]
    assert states == [bd.NO_DRIFT] * 5
    assert det.update((rng.random(200) < 0.8).astype(int), np.zeros((200, 1))) == bd.DRIFT


def test_hellinger_extremes() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(100, 3))
    assert bd.hellinger(a, a, 10) == pytest.approx(0.0)
    assert bd.hellinger(np.zeros((5, 2)), np.ones((5, 2)), 4) == pytest.approx(math.sqrt(2))


def test_hdddm_quiet_on_stationary_batches_fires_on_a_shift() -> None:
    rng = np.random.default_rng(3)
    det = bd.HDDDM()
    states = [det.update(np.zeros(400), rng.normal(size=(400, 4))) for _ in range(8)]
    assert bd.DRIFT not in states
    assert det.update(np.zeros(400), rng.normal(loc=2.0, size=(400, 4))) == bd.DRIFT
    assert det.reference is not None and len(det.reference) == 400  # restarted


def test_memory_keep() -> None:
    passes = np.array([-1, -1, 0, 0, 1, 2, 2, 3])
    boot = passes < 0
    assert bd.memory_keep(passes, boot, 3).all()
    assert bd.memory_keep(passes, boot, 3, forget_n_batches=2).tolist() == [
        True, True, False, False, False, True, True, True]
    assert bd.memory_keep(passes, boot, 3, memory_cap=3).tolist() == [
        True, True, False, False, False, True, True, True]
    assert bd.memory_keep(passes, boot, 3, forget_n_batches=1, memory_cap=5).tolist() == [
        True, True, False, False, False, False, False, True]
