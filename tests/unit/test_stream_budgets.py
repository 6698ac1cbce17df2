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


P = bd.PlanParams


@pytest.mark.parametrize(
    ("kind", "total", "n", "kwargs", "want"),
    [
        ("uniform", 10, 4, {}, [3, 3, 2, 2]),
        # whole batches from the front: 720, 720, the rest 260
        ("frontheavy", 1700, 4, {}, [720, 720, 260, 0]),
        ("frontheavy", 5, 4, {"sizes": [2, 2, 2, 2]}, [2, 2, 1, 0]),
        ("frontheavy", 1000, 3, {"sizes": [720, 500, 720]}, [720, 280, 0]),
        ("linear", 10, 4, {}, [4, 3, 2, 1]),
        # batch 0 pinned to 6; 4 over 3 : 2 : 1 = 2, 1.33, 0.67 -> 2, 1, 1
        ("linear", 10, 4, {"params": P(initial_value=6)}, [6, 2, 1, 1]),
        # (1 - 0.5)^k: 1, 0.5, 0.25 of 7 = 4, 2, 1
        ("exponential", 7, 3, {"params": P(p=0.5)}, [4, 2, 1]),
        # batch 0 pinned to 2; 5 over 0.5 : 0.25 = 3.33, 1.67 -> 3, 2
        ("exponential", 7, 3, {"params": P(p=0.5, initial_value=2)}, [2, 3, 2]),
        # no regulariser pull and u0 = 1 (the mean): r = 1, the uniform plan
        ("geometric", 10, 4, {"params": P(lam_r=0.0, initial_value=2.5)}, [3, 3, 2, 2]),
        # the listed batches share the total, ties to the lowest index
        ("sessions", 10, 5, {"params": P(sessions=(0, 3, 4))}, [4, 0, 0, 3, 3]),
        # default: the first batch of each run of one group
        ("sessions", 6, 4, {"groups": [0, 0, 1, 1]}, [3, 0, 3, 0]),
        # 4 each, the other 4 by targets 0 : 5 : 5 : 0
        ("oracle", 20, 4, {"targets": [0, 5, 5, 0]}, [4, 6, 6, 4]),
        ("oracle", 4, 4, {"targets": [0, 5, 5, 0]}, [1, 1, 1, 1]),  # floor = total // n
        ("oracle", 18, 4, {"targets": [0, 0, 0, 0]}, [5, 5, 4, 4]),
    ],
)
def test_plan_by_hand(
    kind: str, total: int, n: int, kwargs: dict[str, object], want: list[int]
) -> None:
    assert bd.plan_budget(kind, total, n, **kwargs).tolist() == want  # type: ignore[arg-type]


def test_skew_by_hand() -> None:
    # x = (b + 1) / 2 = 0.5, 1 with a = 0.5: ray = 2 e^-0.5, 4 e^-2 -> shares
    ray = np.array([2 * math.exp(-0.5), 4 * math.exp(-2.0)])
    w = 0.5 * ray / ray.sum() + 0.25
    want = bd.allocate(w, 100).tolist()
    assert want == [round(100 * w[0]), 100 - round(100 * w[0])]
    assert bd.plan_budget("skew", 100, 2, params=P(a=0.5)).tolist() == want
    # a Rayleigh head with a uniform floor: the peak near b = a n, never below half the mean
    plan = bd.plan_budget("skew", 800, 100, params=P(a=0.25))
    assert plan[24] == plan.max() and plan.min() >= 4 and plan.sum() == 800


def test_geometric_fit() -> None:
    # lam_r = 0 and a = 16 pinned near its start: 16 (1 - r^10) / (1 - r) = 80 -> r = 0.8317
    a, r = bd.fit_geometric(80, 10, lam_r=0.0, initial_value=16)
    assert a == pytest.approx(16.0, abs=1e-6)
    assert a * sum(r**k for k in range(10)) == pytest.approx(80.0, rel=1e-6)
    assert r == pytest.approx(0.8317, abs=1e-4)
    # a stronger regulariser gives a smaller ratio; the plan keeps the total
    assert bd.fit_geometric(80, 10, lam_r=1.0)[1] < bd.fit_geometric(80, 10, lam_r=0.01)[1]
    plan = bd.plan_budget("geometric", 80, 10)
    assert plan.sum() == 80 and (np.diff(plan) <= 0).all() and plan[0] > plan[-1]


def test_sessions_outside_the_stream() -> None:
    with pytest.raises(UserError, match="sessions"):
        bd.plan_budget("sessions", 3, 3, params=P(sessions=(0, 7)))


@pytest.mark.parametrize("kind", bd.PLAN_TYPES)
@pytest.mark.parametrize(("total", "n"), [(0, 5), (1, 1), (7, 3), (80, 10), (97, 13), (5, 40)])
def test_every_plan_sums_exactly(kind: str, total: int, n: int) -> None:
    rng = np.random.default_rng(total + n)
    plan = bd.plan_budget(
        kind, total, n, errors=rng.integers(0, 9, n), groups=np.sort(rng.integers(0, 3, n))
    )
    assert plan.dtype == np.int64 and len(plan) == n
    assert plan.sum() == total and (plan >= 0).all()


def test_decaying_plans_decay() -> None:
    for kind in ("linear", "geometric", "exponential", "frontheavy"):
        plan = bd.plan_budget(kind, 400, 20, sizes=[30] * 20)
        assert (np.diff(plan) <= 0).all() and plan[0] > plan[-1], kind


def test_unknown_plan_type() -> None:
    with pytest.raises(UserError, match="plan type"):
        bd.plan_budget("lumpy", 3, 3)


def _reference_run(folder: Path, n_al: list[int], pre_fps: list[int]) -> None:
    folder.mkdir(parents=True)
    rows = []
    for b, (q, fp) in enumerate(zip(n_al, pre_fps, strict=True)):
        rows.append(
            make_score_row(
                b,
                ConfusionCounts(10, 50, 2, fp),
                ConfusionCounts(9, 45, 2, 3),
                previous=rows,
                n_target_labelled=4,
                n_samples=8 + q,
                n_al=q,
            )
        )
    write_scores(folder / "scores.csv", rows)
    (folder / "batches.csv").write_text(
        "pass,n,n_target,group,group_name,n_q,al_method\n"
        + "".join(f"{b},60,{10 * (b + 1)},{b // 2},g,{q},smax\n" for b, q in enumerate(n_al))
    )


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
    # 4 each; the other 20 by targets 10 20 30 40 50: 1.33 2.67 4 5.33 6.67 -> 1 3 4 5 7
    assert oracle.tolist() == [5, 7, 8, 9, 11]
    sessions = bd.read_budget_plan(tmp_path / "runs" / "budget_plans" / "sessions", "dev_ha", 5)
    # groups 0 0 1 1 2: sessions start at 0, 2, 4; 40 / 3 = 13.3 each, the extra one to batch 0
    assert sessions.tolist() == [14, 0, 13, 0, 13]
    front = bd.read_budget_plan(tmp_path / "runs" / "budget_plans" / "frontheavy", "dev_yo", 5)
    assert front.tolist() == [54, 0, 0, 0, 0]  # batches of 60: the first one takes all 54
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


def test_drift_multipliers_truncate() -> None:
    budget = bd.QueryBudget(bd.BudgetConfig(n_queries=8, drift="adwin", min_al_samples=2))
    budget.detector = _Scripted([bd.DRIFT, bd.WARNING, bd.NO_DRIFT])
    got = [budget.for_batch(b, np.zeros(3), np.zeros((3, 1))) for b in range(3)]
    assert got == [(40, bd.DRIFT), (20, bd.WARNING), (4, bd.NO_DRIFT)]
    odd = bd.QueryBudget(bd.BudgetConfig(n_queries=3, drift="hdddm", min_al_samples=0))
    odd.detector = _Scripted([bd.NO_DRIFT, bd.WARNING])
    assert odd.for_batch(0, np.zeros(1), np.zeros((1, 1)))[0] == 1  # int(1.5)
    assert odd.for_batch(1, np.zeros(1), np.zeros((1, 1)))[0] == 7  # int(7.5)
    # no floor (the original's min_al_samples bounds only separate_class_al): int(3 / 2)
    floor = bd.QueryBudget(bd.BudgetConfig(n_queries=3, drift="hdddm", min_al_samples=2))
    floor.detector = _Scripted([bd.NO_DRIFT])
    assert floor.for_batch(0, np.zeros(1), np.zeros((1, 1)))[0] == 1


class _FakeAdwin:
    """Fires on the listed sample counts (1-based), as river's ADWIN checks every clock."""

    def __init__(self, fire_at: set[int]) -> None:
        self.fire_at, self.seen, self.drift_detected = fire_at, 0, False

    def update(self, x: float) -> None:
        self.seen += 1
        self.drift_detected = self.seen in self.fire_at


def test_one_adwin_schedule_by_hand() -> None:
    det = bd.AdwinDetector()
    det.adwin = _FakeAdwin({75, 100, 150, 325})  # type: ignore[assignment]
    states = [det.update(np.zeros(60), np.zeros((60, 1))) for _ in range(6)]
    # samples 1-60 none; 61-120: 75 (a clock-25 check only) and 100 (a clock-50 one) -> drift;
    # 121-180: 150 -> drift; 181-300 none; 301-360: 325 -> warning
    assert states == [bd.NO_DRIFT, bd.DRIFT, bd.DRIFT, bd.NO_DRIFT, bd.NO_DRIFT, bd.WARNING]
    assert det.detections == 4


def test_one_adwin_on_scripted_errors() -> None:
    from river.drift import ADWIN

    # 275 correct then 100 wrong: river's clock-25 ADWIN fires on sample 300 (a clock-50 check)
    seq = np.r_[np.zeros(275), np.ones(100)]
    ref = ADWIN(delta=0.002, clock=25)
    fired = []
    for i, e in enumerate(seq, 1):
        ref.update(float(e))
        if ref.drift_detected:
            fired.append(i)
    assert fired == [300]
    det = bd.AdwinDetector(0.002)
    assert [det.update(seq[i : i + 75], np.zeros((75, 1))) for i in range(0, 375, 75)] == [
        bd.NO_DRIFT,
        bd.NO_DRIFT,
        bd.NO_DRIFT,
        bd.DRIFT,
        bd.NO_DRIFT,
    ]
    # 300 correct then wrong: it fires on sample 325, between clock-50 checks: a warning
    seq = np.r_[np.zeros(300), np.ones(100)]
    det = bd.AdwinDetector(0.002)
    assert [det.update(seq[i : i + 100], np.zeros((100, 1))) for i in range(0, 400, 100)] == [
        bd.NO_DRIFT,
        bd.NO_DRIFT,
        bd.NO_DRIFT,
        bd.WARNING,
    ]
    budget = bd.QueryBudget(bd.BudgetConfig(n_queries=8, drift="adwin"))
    assert [
        budget.for_batch(b, seq[b * 100 : (b + 1) * 100], np.zeros((100, 1))) for b in range(4)
    ] == [(4, 0), (4, 0), (4, 0), (20, bd.WARNING)]


def test_drift_column_without_a_budget() -> None:
    from river.drift import ADWIN

    seq = np.r_[np.zeros(300), np.ones(100)]
    ref = ADWIN(delta=0.002, clock=4)
    fired = [i for i, e in enumerate(seq, 1) if ref.update(float(e)) or ref.drift_detected]
    assert fired == [312]  # clock 4 sees it sooner than clock 25 (325)
    fixed = bd.QueryBudget(bd.BudgetConfig(n_queries=8))
    planned = bd.QueryBudget(bd.BudgetConfig(n_queries=8), np.array([1, 2, 3, 4]))
    for budget, n_q in ((fixed, [8] * 4), (planned, [1, 2, 3, 4])):
        got = [
            budget.for_batch(b, seq[b * 100 : (b + 1) * 100], np.zeros((100, 1))) for b in range(4)
        ]
        assert got == list(zip(n_q, [0, 0, 0, 1], strict=True))


def test_adwin_fires_when_the_error_rate_jumps() -> None:
    rng = np.random.default_rng(0)
    det = bd.AdwinDetector()
    states = [
        det.update((rng.random(200) < 0.05).astype(int), np.zeros((200, 1))) for _ in range(5)
    ]
    assert states == [bd.NO_DRIFT] * 5
    assert det.update((rng.random(200) < 0.8).astype(int), np.zeros((200, 1))) != bd.NO_DRIFT
    with pytest.raises(UserError, match="clock"):
        bd.AdwinDetector(warn_clock=25, drift_clock=40)


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
        True,
        True,
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    assert bd.memory_keep(passes, boot, 3, memory_cap=3).tolist() == [
        True,
        True,
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    assert bd.memory_keep(passes, boot, 3, forget_n_batches=1, memory_cap=5).tolist() == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
