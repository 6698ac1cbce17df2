"""Selection strategies (SPEC A.4) against brute-force references on small pools."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import numpy.typing as npt
import pytest

from iml_tui.engine import strategies as st
from iml_tui.engine.strategies import farthest as ft_mod
from iml_tui.errors import UserError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# pools and brute-force references (full distance matrix, float64)


def random_pool(n: int, d: int, seed: int, dtype: type = np.float64) -> npt.NDArray[np.floating]:
    """(n, d) random rows with unit norm."""
    x = np.random.default_rng(seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


# 8 unit axes and 16 (+-1/2)^4 vectors: unit norm, every dot product exact in float64, so
# duplicated rows give exactly tied distances whatever the summation order.
_LATTICE = np.array(
    [s * e for e in np.eye(4) for s in (1.0, -1.0)]
    + [list(v) for v in itertools.product((0.5, -0.5), repeat=4)]
)


def lattice_pool(n: int, seed: int) -> F64:
    """(n, 4) rows drawn with replacement from 24 exact unit vectors: many exact ties."""
    return _LATTICE[np.random.default_rng(seed).integers(0, len(_LATTICE), n)]


def dist(x: npt.NDArray[np.floating]) -> F64:
    x64 = x.astype(np.float64)
    return 1.0 - x64 @ x64.T


def ref_ft(x: npt.NDArray[np.floating], n: int, base: object, cand: object) -> list[int]:
    """FT from the definition: each step the candidate whose min distance to base + picks so far
    is largest (lowest index on ties); empty base -> lowest candidate first."""
    dm = dist(x)
    centres = sorted({int(i) for i in np.asarray(base, dtype=np.int64)})
    rest = sorted({int(i) for i in np.asarray(cand, dtype=np.int64)} - set(centres))
    picks: list[int] = []
    for _ in range(min(n, len(rest))):
        score = dm[np.ix_(rest, centres)].min(axis=1) if centres else np.full(len(rest), np.inf)
        best = max(score)
        s = min(c for c, v in zip(rest, score, strict=True) if v == best)
        picks.append(s)
        centres.append(s)
        rest.remove(s)
    return picks


def ref_mis(
    x: npt.NDArray[np.floating], cand: I64, lab: I64, targets: npt.NDArray, pred: npt.NDArray
) -> list[int]:
    """Hamming(pred[c], targets of c's 1-NN in lab), 1-NN ties -> lowest pool index."""
    dm = dist(x)
    row_of = {int(i): k for k, i in enumerate(lab)}
    out = []
    for k, c in enumerate(cand):
        d = dm[c, lab]
        nn = min(int(j) for j, v in zip(lab, d, strict=True) if v == d.min())
        out.append(int(np.sum(pred[k].astype(bool) != targets[row_of[nn]].astype(bool))))
    return out


def ref_mismatch_select(
    x: npt.NDArray[np.floating],
    n: int,
    mode: str,
    cand: I64,
    lab: I64,
    mis: npt.NDArray,
    rng: np.random.Generator,
) -> list[int]:
    """The group walk of SPEC A.4, with ref_ft inside (mfft) or random_pick (mp)."""
    taken: list[int] = []
    budget = n
    for value in sorted(set(mis.tolist()), reverse=True):
        group = sorted(int(c) for c, m in zip(cand, mis, strict=True) if m == value)
        if len(group) <= budget:
            taken += group
            budget -= len(group)
            continue
        if mode == "mp":
            taken += st.random_pick(budget, np.array(group), rng).tolist()
        else:
            taken += ref_ft(x, budget, list(lab) + taken, group)
        break
    return taken


@pytest.fixture(params=[False, True], ids=["default-blocks", "tiny-blocks"])
def tiny_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Optionally shrink the blocks so that every blocked loop runs many partial blocks."""
    if request.param:
        monkeypatch.setattr(ft_mod, "_MAX_BLOCK_ROWS", 3)
    return bool(request.param)


@pytest.fixture(params=[False, True], ids=["default-first-pass", "tiny-first-pass"])
def tiny_first_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Optionally bound the first pass by 2 base rows and refine 3 candidates at a time, so that
    small bases take the lazy first pass and the traversal folds in most of the base itself."""
    if request.param:
        monkeypatch.setattr(ft_mod, "_SEED_CENTRES", 2)
        monkeypatch.setattr(ft_mod, "_REFINE_BATCH", 3)
    return bool(request.param)


# --------------------------------------------------------------------------------------------
# random_pick


def test_random_pick_basic() -> None:
    cand = np.array([9, 3, 7, 3, 11])
    p = st.random_pick(2, cand, np.random.default_rng(0))
    assert p.dtype == np.int64 and len(p) == 2 and len(set(p.tolist())) == 2
    assert set(p.tolist()) <= {3, 7, 9, 11}
    allp = st.random_pick(10, cand, np.random.default_rng(0))
    assert sorted(allp.tolist()) == [3, 7, 9, 11]
    assert st.random_pick(0, cand, np.random.default_rng(0)).size == 0
    assert st.random_pick(3, np.array([], dtype=np.int64), np.random.default_rng(0)).size == 0
    # depends on the candidate set only, not on its order
    a = st.random_pick(3, np.array([1, 5, 8, 2]), np.random.default_rng(4))
    b = st.random_pick(3, np.array([8, 2, 5, 1]), np.random.default_rng(4))
    assert a.tolist() == b.tolist()
    with pytest.raises(ValueError):
        st.random_pick(-1, cand, np.random.default_rng(0))


def test_random_pick_is_roughly_uniform() -> None:
    rng = np.random.default_rng(0)
    counts = np.zeros(10)
    for _ in range(2000):
        counts[st.random_pick(3, np.arange(10), rng)] += 1
    assert counts.sum() == 6000
    assert np.all(np.abs(counts - 600) < 100)


# --------------------------------------------------------------------------------------------
# farthest traversal


@pytest.mark.parametrize("n_pool", [7, 50, 300])
@pytest.mark.parametrize("n_base", [0, 1, 5, 40])
def test_ft_matches_bruteforce(
    n_pool: int, n_base: int, tiny_blocks: bool, tiny_first_pass: bool
) -> None:
    n_base = min(n_base, n_pool - 2)
    x = random_pool(n_pool, 8, seed=n_pool + n_base)
    rng = np.random.default_rng(n_pool * 7 + n_base)
    base = rng.choice(n_pool, n_base, replace=False)
    cand = np.setdiff1d(np.arange(n_pool), base)
    for n in (1, 3, min(20, n_pool), n_pool):
        got = st.farthest_traversal(x, n, base, cand)
        assert got.dtype == np.int64
        assert got.tolist() == ref_ft(x, n, base, cand)


@pytest.mark.parametrize("seed", range(4))
def test_ft_ties_on_duplicates_pick_lowest_index(
    seed: int, tiny_blocks: bool, tiny_first_pass: bool
) -> None:
    x = lattice_pool(60, seed)
    rng = np.random.default_rng(seed)
    base = rng.choice(60, 3 * seed, replace=False)
    cand = rng.choice(np.setdiff1d(np.arange(60), base), 40, replace=False)
    got = st.farthest_traversal(x, 60, base, cand)
    assert got.tolist() == ref_ft(x, 60, base, cand)
    assert sorted(got.tolist()) == sorted(cand.tolist())


def test_ft_lazy_first_pass_at_default_sizes() -> None:
    # base and candidates both larger than twice the seed centres: the default lazy first pass
    n_pool = 700
    x = random_pool(n_pool, 6, seed=5)
    base = np.random.default_rng(5).choice(n_pool, 300, replace=False)
    cand = np.setdiff1d(np.arange(n_pool), base)
    assert base.size > 2 * ft_mod._SEED_CENTRES and cand.size > 2 * ft_mod._SEED_CENTRES
    assert st.farthest_traversal(x, 25, base, cand).tolist() == ref_ft(x, 25, base, cand)


@pytest.mark.parametrize("n_pending", [0, 1, 7, 30])
def test_traverse_with_pending_base_rows_is_exact(n_pending: int) -> None:
    x = random_pool(120, 5, seed=n_pending)
    rng = np.random.default_rng(n_pending)
    base = np.sort(rng.choice(120, 35, replace=False))
    cand = np.setdiff1d(np.arange(120), base)
    pending = np.sort(rng.choice(base, n_pending, replace=False))
    known = np.setdiff1d(base, pending)
    m = 1.0 - ft_mod.max_similarity(x, cand, known)[0]
    got, _, _ = ft_mod.traverse_bounds(x, 30, cand, m, pending)
    assert got.tolist() == ref_ft(x, 30, base, cand)


def test_spread_subset_is_farthest_first_among_the_rows() -> None:
    e1, e2 = np.eye(2)
    x = np.array([e1, e1, e2, -e1, e2, -e2])
    rows = np.array([0, 1, 2, 4, 5])
    # from row 0 (e1): farthest are e2 rows 2 and 4 and -e2 row 5 (d = 1) -> 2; then row 5
    # (d(-e2, e2) = 2) -> sorted [0, 2, 5]
    assert ft_mod.spread_subset(x, rows, 3).tolist() == [0, 2, 5]
    assert ft_mod.spread_subset(x, rows, 9).tolist() == [0, 1, 2, 4, 5]
    x2 = random_pool(200, 4, seed=1)
    sub = ft_mod.spread_subset(x2, np.arange(50, 200), 10)
    assert sub.size == 10 and np.all(np.diff(sub) > 0) and set(sub.tolist()) <= set(range(50, 200))
    assert 50 in sub.tolist()  # the traversal starts from the first row


def test_ft_hand_computed() -> None:
    e1, e2 = np.eye(2)
    x = np.array([e1, e2, e1, -e1, e2, -e1])
    # m = inf everywhere -> 0; farthest from e1 are the -e1 rows 3 and 5 (d = 2) -> 3; then the
    # e2 rows 1 and 4 (d = 1) -> 1; then every m is 0 -> 2, 4, 5 in index order
    assert st.farthest_traversal(x, 6, [], np.arange(6)).tolist() == [0, 3, 1, 2, 4, 5]
    assert st.farthest_traversal(x, 2, [3], [0, 1, 2, 4]).tolist() == [0, 1]


def test_ft_edge_cases() -> None:
    x = random_pool(30, 5, seed=1)
    # empty base: first pick = lowest candidate
    assert st.farthest_traversal(x, 1, [], [17, 4, 22])[0] == 4
    # n >= |candidates|: every candidate exactly once; candidates in base are never picked
    got = st.farthest_traversal(x, 99, [1, 2], [5, 2, 9, 5, 14])
    assert sorted(got.tolist()) == [5, 9, 14]
    assert got.tolist() == ref_ft(x, 99, [1, 2], [5, 9, 14])
    assert st.farthest_traversal(x, 0, [1], [3, 4]).size == 0
    assert st.farthest_traversal(x, 3, [1], []).size == 0
    with pytest.raises(ValueError):
        st.farthest_traversal(x, 2, [1], [30])
    with pytest.raises(ValueError):
        st.farthest_traversal(x, -1, [1], [3])


def test_ft_float32_runs_in_float32() -> None:
    x32 = random_pool(200, 16, seed=3, dtype=np.float32)
    got = st.farthest_traversal(x32, 20, np.arange(10), np.arange(10, 200))
    assert len(set(got.tolist())) == 20 and got.min() >= 10
    # well-separated random data: float32 agrees with the float64 reference
    assert got.tolist() == ref_ft(x32, 20, np.arange(10), np.arange(10, 200))


# --------------------------------------------------------------------------------------------
# mismatch degree and the MP / MFFT group walk


@pytest.mark.parametrize("n_pool", [7, 50, 300])
def test_mismatch_degree_matches_bruteforce(n_pool: int, tiny_blocks: bool) -> None:
    rng = np.random.default_rng(n_pool)
    for x in (random_pool(n_pool, 6, seed=n_pool), lattice_pool(n_pool, seed=n_pool)):
        lab = rng.permutation(rng.choice(n_pool, max(2, n_pool // 5), replace=False))
        cand = rng.permutation(np.setdiff1d(np.arange(n_pool), lab))
        targets = rng.integers(0, 2, (lab.size, 4))
        pred = rng.integers(0, 2, (cand.size, 4))
        got = st.mismatch_degree(x, cand, lab, targets, pred)
        assert got.dtype == np.int64
        assert got.tolist() == ref_mis(x, cand, lab, targets, pred)


def test_mismatch_degree_tie_takes_lowest_pool_index() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    # rows 0 and 2 identical; 2 is annotated first but 0 has the lower pool index
    lab = np.array([2, 0])
    targets = np.array([[1, 1, 1], [0, 0, 0]])
    got = st.mismatch_degree(x, [1, 3], lab, targets, np.array([[0, 0, 0], [1, 0, 1]]))
    # candidate 1 (e2) is equally far from both -> row 0's targets (000): mis 0
    # candidate 3 is nearest to rows 0/2 -> row 0's targets (000): mis 2
    assert got.tolist() == [0, 2]
    with pytest.raises(ValueError):
        st.mismatch_degree(x, [1], [], np.zeros((0, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError):
        st.mismatch_degree(x, [1], [0], np.array([[2, 0, 0]]), np.zeros((1, 3)))


MIS_CASES = {
    "all-zero": lambda k, r: np.zeros(k, dtype=np.int64),
    "several-groups": lambda k, r: r.integers(0, 4, k),
    "few-high": lambda k, r: np.where(r.random(k) < 0.1, r.integers(1, 3, k), 0),
    "all-equal-high": lambda k, r: np.full(k, 2),
}


@pytest.mark.parametrize("mode", ["mp", "mfft"])
@pytest.mark.parametrize("case", sorted(MIS_CASES))
@pytest.mark.parametrize("n_pool", [7, 50, 300])
def test_mismatch_select_matches_reference(
    mode: str, case: str, n_pool: int, tiny_blocks: bool
) -> None:
    rng = np.random.default_rng(n_pool)
    x = random_pool(n_pool, 8, seed=n_pool) if n_pool != 50 else lattice_pool(n_pool, 5)
    lab = rng.choice(n_pool, max(1, n_pool // 6), replace=False)
    cand = rng.permutation(np.setdiff1d(np.arange(n_pool), lab))
    mis = MIS_CASES[case](cand.size, rng)
    counts = np.bincount(mis)
    budgets = {1, 2, 5, cand.size - 1, cand.size, cand.size + 3}
    # a budget that exactly exhausts the highest group(s), and one that ends inside a group
    budgets |= {int(counts[-1]), int(counts[-1]) + 1}
    for n in sorted(b for b in budgets if b >= 0):
        got = st.mismatch_select(x, n, mode, cand, lab, mis, np.random.default_rng(9))
        want = ref_mismatch_select(x, n, mode, cand, lab, mis, np.random.default_rng(9))
        assert got.tolist() == want, (n, case)
        assert len(got) == min(n, cand.size) and len(set(got.tolist())) == len(got)


def test_mismatch_select_group_walk_by_hand() -> None:
    x = random_pool(12, 4, seed=0)
    cand = np.array([11, 3, 8, 5, 1, 9, 7])
    mis = np.array([2, 0, 2, 1, 1, 1, 0])
    # groups: mis 2 -> [8, 11], mis 1 -> [1, 5, 9], mis 0 -> [3, 7]
    pick = st.mismatch_select(x, 5, "mp", cand, [0], mis, np.random.default_rng(0))
    assert pick.tolist() == [8, 11, 1, 5, 9]
    pick = st.mismatch_select(x, 6, "mp", cand, [0], mis, np.random.default_rng(0))
    assert pick[:5].tolist() == [8, 11, 1, 5, 9] and pick[5] in (3, 7)
    pick = st.mismatch_select(x, 3, "mfft", cand, [0], mis, np.random.default_rng(0))
    assert pick[:2].tolist() == [8, 11]
    assert pick[2:].tolist() == ref_ft(x, 1, [0, 8, 11], [1, 5, 9])
    pick = st.mismatch_select(x, 1, "mp", cand, [0], mis, np.random.default_rng(0))
    assert pick.tolist()[0] in (8, 11)
    with pytest.raises(ValueError):
        st.mismatch_select(x, 1, "bogus", cand, [0], mis, np.random.default_rng(0))
    with pytest.raises(ValueError):
        st.mismatch_select(x, 1, "mp", cand, [3], mis, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# select(): the round API


def make_state(
    x: npt.NDArray[np.floating], n_lab: int, seed: int, agree: bool = False
) -> st.SelectionState:
    """A state with n_lab random annotations, 3 classes; agree=True makes the classifier
    predict exactly the 1-NN labelled neighbour's targets (no mismatches)."""
    rng = np.random.default_rng(seed)
    n_pool = x.shape[0]
    lab = rng.permutation(rng.choice(n_pool, n_lab, replace=False))
    targets = rng.integers(0, 2, (n_lab, 3))
    probs = rng.random((n_pool, 3))
    if agree:
        dm = dist(x)[:, lab]
        nn = np.argmin(dm, axis=1)
        probs = np.where(targets[nn] == 1, 0.9, 0.1)
    return st.SelectionState(x=x, labeled=lab, labeled_targets=targets, probs=probs)


@pytest.mark.parametrize("n_pool", [50, 300])
def test_no_mismatch_mfft_is_ft_and_mp_is_random(n_pool: int) -> None:
    x = random_pool(n_pool, 8, seed=1)
    state = make_state(x, 10, seed=2, agree=True)
    unlabeled = np.setdiff1d(np.arange(n_pool), state.labeled)
    assert state.probs is not None
    pred = state.probs[unlabeled] >= 0.5
    mis = st.mismatch_degree(x, unlabeled, state.labeled, state.labeled_targets, pred)
    assert not mis.any()
    for n in (1, 20):
        mfft = st.select("mfft", state, n, np.random.default_rng(3))
        assert mfft.tolist() == st.select("ft", state, n, np.random.default_rng(3)).tolist()
        assert mfft.tolist() == ref_ft(x, n, state.labeled, unlabeled)
        mp = st.select("mp", state, n, np.random.default_rng(3))
        assert mp.tolist() == st.select("rand", state, n, np.random.default_rng(3)).tolist()
        assert mp.tolist() == st.random_pick(n, unlabeled, np.random.default_rng(3)).tolist()


def test_select_mismatch_strategies_match_reference() -> None:
    x = random_pool(120, 8, seed=4)
    state = make_state(x, 15, seed=5)
    assert state.probs is not None
    unlabeled = np.setdiff1d(np.arange(120), state.labeled)
    pred = state.probs[unlabeled] >= 0.5
    mis = np.array(ref_mis(x, unlabeled, state.labeled, state.labeled_targets, pred))
    assert len(set(mis.tolist())) > 1
    for mode in ("mp", "mfft"):
        for n in (5, 30, 60):
            got = st.select(mode, state, n, np.random.default_rng(6))
            want = ref_mismatch_select(
                x, n, mode, unlabeled, state.labeled, mis, np.random.default_rng(6)
            )
            assert got.tolist() == want
            assert not set(got.tolist()) & set(state.labeled.tolist())


def test_select_rand_ft_and_errors() -> None:
    x = random_pool(60, 8, seed=7)
    state = make_state(x, 6, seed=8)
    unlabeled = np.setdiff1d(np.arange(60), state.labeled)
    assert st.select("ft", state, 7, np.random.default_rng(0)).tolist() == ref_ft(
        x, 7, state.labeled, unlabeled
    )
    r = st.select("rand", state, 70, np.random.default_rng(0))
    assert sorted(r.tolist()) == unlabeled.tolist()
    no_probs = st.SelectionState(x=x, labeled=state.labeled, labeled_targets=state.labeled_targets)
    for name in ("mp", "mfft"):
        with pytest.raises(ValueError, match="probs"):
            st.select(name, no_probs, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rand, ft, mp, mfft") as err:
        st.select("uncertainty", state, 5, np.random.default_rng(0))
    assert isinstance(err.value, UserError)
    with pytest.raises(ValueError):
        st.get_strategy("nope")
    with pytest.raises(ValueError):
        st.initial_round("nope", x, 5, np.random.default_rng(0))


def test_select_without_labels_is_a_cold_initial_round() -> None:
    x = random_pool(40, 8, seed=9)
    empty = st.SelectionState(x=x, labeled=np.zeros(0, np.int64), labeled_targets=np.zeros((0, 3)))
    for name in st.STRATEGIES:
        got = st.select(name, empty, 10, np.random.default_rng(1))
        assert got.tolist() == st.initial_round(name, x, 10, np.random.default_rng(1)).tolist()


def test_selection_state_validation() -> None:
    x = random_pool(20, 4, seed=0)
    with pytest.raises(ValueError, match="normalised"):
        st.SelectionState(x=x * 3, labeled=np.array([1]), labeled_targets=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="repeat"):
        st.SelectionState(x=x, labeled=np.array([1, 1]), labeled_targets=np.zeros((2, 2)))
    with pytest.raises(ValueError):
        st.SelectionState(x=x, labeled=np.array([1]), labeled_targets=np.zeros((2, 2)))
    with pytest.raises(ValueError):
        st.SelectionState(
            x=x, labeled=np.array([1]), labeled_targets=np.zeros((1, 2)), probs=np.zeros((20, 3))
        )
    lab32 = np.array([1], dtype=np.int32)
    ok = st.SelectionState(x=st.l2_normalize(x * 3), labeled=lab32, labeled_targets=np.eye(1, 2))  # type: ignore[arg-type]
    assert ok.labeled.dtype == np.int64


def test_strategy_objects_are_thin_wrappers() -> None:
    x = random_pool(80, 8, seed=10)
    state = make_state(x, 8, seed=11)
    for name in st.STRATEGIES:
        obj: st.Strategy = st.get_strategy(name)
        assert obj.name == name
        a = obj.query(state, 9, np.random.default_rng(2))
        assert a.tolist() == st.select(name, state, 9, np.random.default_rng(2)).tolist()


# --------------------------------------------------------------------------------------------
# initial round


@pytest.mark.parametrize("strategy", st.STRATEGIES)
def test_initial_round_cold(strategy: str) -> None:
    x = random_pool(100, 8, seed=12)
    got = st.initial_round(strategy, x, 20, np.random.default_rng(3))
    assert got.dtype == np.int64 and len(got) == 20 and len(set(got.tolist())) == 20
    if st.INIT_RULE[strategy] == "ft":
        rest = np.setdiff1d(np.arange(100), got[:1])
        assert got[1:].tolist() == ref_ft(x, 19, got[:1], rest)
    assert len(st.initial_round(strategy, x, 500, np.random.default_rng(3))) == 100
    assert st.initial_round(strategy, x, 0, np.random.default_rng(3)).size == 0


@pytest.mark.parametrize("strategy", st.STRATEGIES)
def test_initial_round_warm(strategy: str) -> None:
    n_pool, k = 120, 3
    x = random_pool(n_pool, 8, seed=13)
    rng = np.random.default_rng(14)
    targets = np.zeros((n_pool, 5), dtype=np.uint8)
    owner = rng.permutation(n_pool)
    edges = np.cumsum([0, 10, 2, 0, 5, 1])  # positives per class; class 2 has none
    for c in range(5):
        targets[owner[edges[c] : edges[c + 1]], c] = 1
    both = owner[0]  # a class-0 positive that is also class-4 positive
    targets[both, 4] = 1
    got = st.initial_round(strategy, x, 15, np.random.default_rng(1), k_pos=k, clip_targets=targets)
    assert len(got) == 15 and len(set(got.tolist())) == 15
    want_per_class = [3, 2, 0, 3]
    i = 0
    for c, w in enumerate(want_per_class):
        assert all(targets[got[i : i + w], c] == 1), c
        i += w
    # class 4: min(k, positives not already taken)
    n4 = 1 + (both not in got[:8])
    assert all(targets[got[i : i + n4], 4] == 1)
    i += n4
    if st.INIT_RULE[strategy] == "ft":
        rest = np.setdiff1d(np.arange(n_pool), got[:i])
        assert got[i:].tolist() == ref_ft(x, 15 - i, got[:i], rest)
    # budget smaller than the positives: stops at n, positives only
    small = st.initial_round(
        strategy, x, 4, np.random.default_rng(1), k_pos=k, clip_targets=targets
    )
    assert len(small) == 4 and all(targets[small[:3], 0] == 1) and targets[small[3], 1] == 1
    with pytest.raises(ValueError):
        st.initial_round(strategy, x, 4, np.random.default_rng(1), k_pos=2)


def test_initial_round_warm_skips_clips_already_taken() -> None:
    x = random_pool(30, 8, seed=20)
    targets = np.zeros((30, 3), dtype=np.uint8)
    targets[[4, 9, 21], 0] = 1
    targets[[4, 9, 21], 1] = 1  # the same three clips: 2 for class 0 leave 1 for class 1
    targets[[2, 9], 2] = 1
    for seed in range(5):
        got = st.initial_round("mp", x, 8, np.random.default_rng(seed), 2, targets)
        assert sorted(got[:3].tolist()) == [4, 9, 21]
        assert len(set(got.tolist())) == 8
        # class 2: clip 9 is already taken by class 0 or 1 -> only clip 2
        assert got[3] == 2 and targets[got[4:], :].sum() == 0


def test_initial_round_warm_counts_like_the_paper() -> None:
    x = random_pool(400, 8, seed=15)
    rng = np.random.default_rng(16)
    cls = rng.integers(-1, 7, 400)  # one class per clip or none (-1)
    cls[cls == 3] = -1  # a class with no positives
    cls[np.flatnonzero(cls == 2)[2:]] = -1  # a rare class with 2 positives
    targets = np.zeros((400, 7), dtype=np.uint8)
    targets[np.flatnonzero(cls >= 0), cls[cls >= 0]] = 1
    for strategy in st.STRATEGIES:
        got = st.initial_round(strategy, x, 50, np.random.default_rng(0), 5, targets)
        assert len(got) == 50 and len(set(got.tolist())) == 50
        per_class = targets[got[:27]].sum(axis=0)
        assert per_class.tolist() == [5, 5, 2, 0, 5, 5, 5]


@pytest.mark.parametrize("strategy", st.STRATEGIES)
def test_reproducible_for_a_seed_and_different_across_seeds(strategy: str) -> None:
    x = random_pool(300, 8, seed=17)
    state = make_state(x, 12, seed=18)
    targets = (np.random.default_rng(0).random((300, 4)) < 0.2).astype(np.uint8)

    def run(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        first = st.initial_round(strategy, x, 20, rng)
        warm = st.initial_round(strategy, x, 20, rng, k_pos=2, clip_targets=targets)
        later = st.select(strategy, state, 20, rng)
        return first.tolist() + warm.tolist() + later.tolist()

    assert run(1) == run(1)
    assert run(1) != run(2)


# --------------------------------------------------------------------------------------------
# memory: never an N x N matrix


def test_no_n_by_n_allocation() -> None:
    n_pool = 3000
    x = random_pool(n_pool, 16, seed=19)
    state = make_state(x[:10], 1, seed=0)  # warm imports and caches outside the trace
    del state
    lab = np.arange(0, n_pool, 2)
    targets = np.zeros((lab.size, 3), dtype=np.uint8)
    probs = np.full((n_pool, 3), 0.1)
    state = st.SelectionState(x=x, labeled=lab, labeled_targets=targets, probs=probs)
    tracemalloc.start()
    try:
        st.farthest_traversal(x, 50, lab, np.arange(1, n_pool, 2))
        st.farthest_traversal(x, 50, [], np.arange(n_pool))
        st.select("mfft", state, 50, np.random.default_rng(0))
        st.initial_round("ft", x, 50, np.random.default_rng(0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n_pool * n_pool * 8 / 4, peak
