"""AL ranking of a stream batch: each method on tiny hand-computed cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from iml_tui.engine.models.comp_class import CompClassModel
from iml_tui.engine.strategies import stream_queries as sq
from iml_tui.errors import UserError

torch.set_num_threads(1)

# a: p = .5/.5, lse = ln 2      b: max p = .881, lse = 2.127     c: p = .5/.5, lse = ln 2 - 3
# d: max p = .731, lse = 1.313  e: p = .5/.5, lse = 5 + ln 2
LOGITS = np.array([[0.0, 0.0], [2.0, 0.0], [-3.0, -3.0], [0.0, 1.0], [5.0, 5.0]])


class Linear2(nn.Module):
    """head_input = identity; logits = head(x)."""

    def __init__(self, weight: list[list[float]], bias: list[float]) -> None:
        super().__init__()
        self.head = nn.Linear(len(weight[0]), 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor(weight))
            self.head.bias.copy_(torch.tensor(bias))

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(x)
        return out


def _rank(method: str, **kw: object) -> list[int]:
    return sq.rank_queries(method, LOGITS, None, None, None, None, **kw).tolist()  # type: ignore[arg-type]


def test_uncertainty_scores_by_hand() -> None:
    smax = sq.query_scores("smax", LOGITS)
    assert smax == pytest.approx(
        [-0.5, -1 / (1 + math.exp(-2)), -0.5, -1 / (1 + math.exp(-1)), -0.5]
    )
    ent = sq.query_scores("ent", LOGITS)
    assert ent[0] == pytest.approx(math.log(2)) and ent[4] == pytest.approx(math.log(2))
    necs = sq.query_scores("necs", LOGITS)
    assert necs == pytest.approx(
        [
            -math.log(2),
            -(2 + math.log(1 + math.exp(-2))),
            3 - math.log(2),
            -math.log(1 + math.e),
            -5 - math.log(2),
        ]
    )


def test_uncertainty_rankings_and_ties_by_lowest_index() -> None:
    assert _rank("smax") == [0, 2, 4, 3, 1]
    assert _rank("ent") == [0, 2, 4, 3, 1]
    assert _rank("necs") == [2, 0, 3, 1, 4]


def test_combos() -> None:
    # rank sums: smax ranks 0:0 2:1 4:2 3:3 1:4; necs ranks 2:0 0:1 3:2 1:3 4:4
    assert _rank("rank") == [0, 2, 3, 4, 1]
    assert _rank("split", combo=("necs", "smax")) == [2, 0, 3, 4, 1]
    assert _rank("split", combo=("smax", "necs")) == [0, 2, 4, 3, 1]
    with pytest.raises(UserError, match="two or more"):
        _rank("rank", combo=("smax",))
    with pytest.raises(UserError, match="cannot contain"):
        _rank("split", combo=("smax", "rank"))


def test_plateau_switches_on_mean_max_softmax() -> None:
    # uncertain batch (mean max p < 0.9): smax
    assert _rank("plateau") == _rank("smax")
    # confident batch: max p = .99995, .982, .731 -> mean .904 > .9: necs
    conf = np.array([[10.0, 0.0], [0.0, 4.0], [20.0, 19.0]])
    got = sq.rank_queries("plateau", conf, None, None, None, None).tolist()
    assert got == [1, 0, 2]
    assert sq.rank_queries("smax", conf, None, None, None, None).tolist() == [2, 1, 0]


def test_rand_is_a_seeded_permutation() -> None:
    lg = np.zeros((50, 2))
    a = sq.rank_queries("rand", lg, None, None, None, np.random.default_rng(1))
    b = sq.rank_queries("rand", lg, None, None, None, np.random.default_rng(1))
    c = sq.rank_queries("rand", lg, None, None, None, np.random.default_rng(2))
    assert np.array_equal(np.sort(a), np.arange(50))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match="rng"):
        sq.rank_queries("rand", lg, None, None, None, None)


def test_cover_kcenter_greedy_by_hand() -> None:
    x = np.array([[1.0, 0.0], [5.0, 0.0], [6.0, 0.0], [-2.0, 0.0]])
    lab = np.array([[0.0, 0.0]])
    z4 = np.zeros((4, 2))
    # 6 is farthest (6); then -2 (2); then 1 and 5 both at 1 -> lowest index
    assert sq.rank_queries("cover-kcenter", z4, x, lab, None, None).tolist() == [2, 3, 0, 1]
    got = sq.rank_queries("cover-kcenter", z4, x, lab, None, None, n_select=1).tolist()
    assert got == [2, 3, 0, 1]
    # no labelled pool: all at infinity, the first pick is index 0
    x3 = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    got = sq.rank_queries("cover-kcenter", np.zeros((3, 2)), x3, None, None, None).tolist()
    assert got == [0, 2, 1]
    assert sq.query_scores("cover-kcenter", z4, x, lab) == pytest.approx([1, 5, 6, 2])


def test_egl_last_by_hand_and_against_autograd() -> None:
    m = Linear2([[1.0, -0.5], [0.3, 2.0]], [0.1, -0.2])
    zero = Linear2([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0])
    # h = 0, p = .5/.5: sum_k p_k ||p - e_k|| * sqrt(0 + 1) = sqrt(0.5)
    assert sq.egl_last_scores(zero, np.zeros((1, 2))) == pytest.approx([math.sqrt(0.5)])
    x = np.array([[0.0, 0.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 4.0]], dtype=np.float32)
    want = []
    for row in x:
        xt = torch.tensor(row[None])
        p = torch.softmax(m.logits(xt), 1)[0].detach()
        total = 0.0
        for k in range(2):
            m.zero_grad()
            nn.functional.cross_entropy(m.logits(xt), torch.tensor([k])).backward()
            assert m.head.weight.grad is not None and m.head.bias.grad is not None
            g2 = m.head.weight.grad.pow(2).sum() + m.head.bias.grad.pow(2).sum()
            total += float(p[k]) * math.sqrt(float(g2))
        want.append(total)
    got = sq.query_scores("egl-last", np.zeros((4, 2)), x, None, m)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)  # float32 autograd
    assert sq.rank_queries("egl-last", np.zeros((4, 2)), x, None, m, None).tolist() == list(
        np.argsort(-np.array(want), kind="stable")
    )
    with pytest.raises(ValueError, match="model"):
        sq.rank_queries("egl-last", np.zeros((4, 2)), x, None, None, None)


def test_pert_rand_flips_near_the_boundary_only() -> None:
    m = Linear2([[0.0], [1.0]], [0.0, 0.0])  # logits [0, x]: decision x > 0
    x = np.array([[5.0], [0.0005], [-3.0], [-0.0005]], dtype=np.float32)
    z4 = np.zeros((4, 2))
    s = sq.query_scores("pert-rand", z4, x, None, m, np.random.default_rng(0), n_pert=64)
    assert s[0] == 0.0 and s[2] == 0.0
    assert 0.25 < s[1] < 0.75 and 0.25 < s[3] < 0.75
    # a perturbation of x = 0.0005 flips exactly when its sign is -1
    order = sq.rank_queries("pert-rand", np.zeros((4, 2)), x, None, m, np.random.default_rng(0))
    assert set(order[:2].tolist()) == {1, 3} and order[2:].tolist() == [0, 2]
    again = sq.query_scores(
        "pert-rand", np.zeros((4, 2)), x, None, m, np.random.default_rng(0), n_pert=64
    )
    assert np.array_equal(s, again)
    # larger perturbations flip more
    big = sq.query_scores(
        "pert-rand", z4, x, None, m, np.random.default_rng(0), n_pert=64, pert_eps=10.0
    )
    assert big[0] > 0 and big[2] > 0


def _tiny_model() -> CompClassModel:
    """A small stream model with non-trivial BN running statistics, in train mode."""
    m = CompClassModel(3, comp_hidden=(5, 4), emb_dim=3, cls_hidden=(4, 4), seed=1)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # spread the outputs so the scores differ between items
        m.train()
        m(torch.from_numpy(np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)))
    return m


def test_egl_over_all_parameters_against_an_autograd_loop() -> None:
    m = _tiny_model()
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    m.eval()
    want = []
    for row in x:
        xt = torch.tensor(row[None])
        p = torch.softmax(m.logits(xt), 1)[0].detach()
        total = 0.0
        for k in range(2):
            m.zero_grad()
            nn.functional.nll_loss(torch.log_softmax(m.logits(xt), 1), torch.tensor([k])).backward()
            g2 = sum(float(q.grad.pow(2).sum()) for q in m.parameters() if q.grad is not None)
            total += float(p[k]) * math.sqrt(g2)
        want.append(total)
    m.zero_grad()
    m.train()
    before = [b.clone() for b in m.buffers()]
    # one item per Jacobian chunk and all at once give the same scores
    for max_floats in (1, 10**8):
        got = sq.egl_scores(m, x, max_floats=max_floats)
        assert got == pytest.approx(want, rel=1e-4)
    assert np.ptp(want) > 0.01 * max(want)  # the items really differ
    assert m.training and all(torch.equal(a, b) for a, b in zip(before, m.buffers(), strict=True))
    assert sq.query_scores("egl", np.zeros((7, 2)), x, None, m) == pytest.approx(want, rel=1e-4)
    # more than the last layer: egl-last is a different quantity
    assert not np.allclose(sq.egl_last_scores(m, x), want, rtol=1e-3)
    with pytest.raises(ValueError, match="torch model"):
        sq.egl_scores(object(), x)  # type: ignore[arg-type]


def test_pert_against_a_hand_loop_over_coordinates() -> None:
    m = _tiny_model()
    rng = np.random.default_rng(3)
    far = rng.normal(size=(40, 3)).astype(np.float32)
    eps = 0.05
    m.eval()
    with torch.no_grad():
        dec = m.logits(torch.from_numpy(far)).argmax(1).numpy()
        a, b = far[dec == 1][0], far[dec == 0][0]
        lo, hi = 0.0, 1.0  # bisect the segment a -> b for the decision boundary
        for _ in range(40):
            mid = (lo + hi) / 2
            xm = torch.from_numpy((a + mid * (b - a))[None])
            lo, hi = (mid, hi) if int(m.logits(xm).argmax(1)) == 1 else (lo, mid)
        step = (b - a) / np.linalg.norm(b - a)
        near = [a + lo * (b - a) + t * step for t in (-0.03, -0.01, 0.01, 0.03)]
        x = np.concatenate([np.array(near), far[:5]]).astype(np.float32)
        base = m.logits(torch.from_numpy(x)).argmax(1).numpy()
        want = []
        for i, row in enumerate(x):
            decisions = [int(base[i])]  # the unperturbed input is one of the 2D + 1
            for j in range(3):
                for sign in (1.0, -1.0):
                    xp = row.copy()
                    xp[j] += np.float32(sign * eps)
                    decisions.append(int(m.logits(torch.from_numpy(xp[None])).argmax(1)))
            want.append(sum(d != base[i] for d in decisions) / 7)
    m.train()
    got = sq.query_scores("pert", np.zeros((9, 2)), x, None, m, pert_eps=eps)
    assert got.tolist() == pytest.approx(want)
    assert max(want) > 0 and min(want) == 0  # items near the boundary flip, far ones do not
    # a linear boundary x1 > 0: only items within eps of it flip, under exactly one perturbation
    lin = Linear2([[0.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    xl = np.array([[0.0005, 9.0], [-0.0005, 0.0], [3.0, 0.0]], dtype=np.float32)
    assert sq.pert_scores(lin, xl).tolist() == pytest.approx([1 / 5, 1 / 5, 0.0])
    assert sq.pert_scores(lin, xl, eps=10.0).tolist() == pytest.approx([1 / 5, 1 / 5, 1 / 5])


def _kmedian_objective(x: np.ndarray, chosen: list[int]) -> float:
    return sum(min(float(np.linalg.norm(xi - x[c])) for c in chosen) for xi in x)


def test_cover_is_greedy_k_median_by_brute_force() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 2))
    order, gain = sq.cover_order(x)
    assert sorted(order.tolist()) == list(range(7))
    chosen: list[int] = []
    prev = 7 * max(float(np.linalg.norm(a - b)) for a in x for b in x)
    for c in order.tolist():
        # the pick minimises the objective over every single addition (all subsets chosen + {c})
        objs = {j: _kmedian_objective(x, [*chosen, j]) for j in range(7) if j not in chosen}
        assert objs[c] == pytest.approx(min(objs.values()))
        assert gain[c] == pytest.approx(prev - objs[c])
        prev = objs[c]
        chosen.append(c)
    assert np.all(np.diff(gain[order]) <= 1e-9)  # submodular: gains never grow
    # the first pick is the medoid: the optimal 1-subset
    medoid = min(range(7), key=lambda j: _kmedian_objective(x, [j]))
    assert order[0] == medoid
    # greedy, not the optimal k-subset: on two far clusters the first pick leans towards the
    # other cluster; the pair it ends with is no better than the best of all pairs
    xc = np.concatenate([rng.normal(size=(4, 2)) * 0.3, rng.normal(size=(4, 2)) * 0.3 + 50.0])
    best = min(itertools.combinations(range(8), 2), key=lambda s: _kmedian_objective(xc, list(s)))
    got = sq.rank_queries("cover", np.zeros((8, 2)), xc, None, None, None, n_select=2)
    assert {int(got[0]) // 4, int(got[1]) // 4} == {0, 1}  # one in each cluster
    assert _kmedian_objective(xc, got[:2].tolist()) >= _kmedian_objective(xc, list(best)) - 1e-12
    # n_select bounds the greedy part; the rest follow by the objective if added next
    part, _ = sq.cover_order(x, n_select=2)
    assert part[:2].tolist() == order[:2].tolist()
    rest = sorted(
        (j for j in range(7) if j not in part[:2]),
        key=lambda j: (_kmedian_objective(x, [*part[:2].tolist(), j]), j),
    )
    assert part[2:].tolist() == rest


def test_cover_is_k_median_not_farthest_first_by_hand() -> None:
    # points 0, 1, 2, 10 on a line: the medoid is 1 (sum 1 + 1 + 9 = 11, vs 2: 2 + 1 + 8 = 11,
    # tie -> lowest index 1); then 10 (objective 2); farthest-first from nothing starts at 0
    x = np.array([[0.0], [1.0], [2.0], [10.0]])
    order, gain = sq.cover_order(x)
    assert order.tolist() == [1, 3, 0, 2]
    assert gain[1] == pytest.approx(40 - 11) and gain[3] == pytest.approx(11 - 2)
    assert gain[0] == pytest.approx(1.0) and gain[2] == pytest.approx(1.0)
    assert sq.rank_queries("cover-kcenter", np.zeros((4, 2)), x, None, None, None)[0] == 0


def test_rank_sums_true_ranks_over_every_listed_method() -> None:
    # smax ranks 0:0 2:1 4:2 3:3 1:4; necs 2:0 0:1 3:2 1:3 4:4; ent = smax order [0, 2, 4, 3, 1]
    # sums: 0: 0+1+0 = 1, 1: 4+3+4 = 11, 2: 1+0+1 = 2, 3: 3+2+3 = 8, 4: 2+4+2 = 8
    assert _rank("rank", combo=("smax", "necs", "ent")) == [0, 2, 3, 4, 1]
    # not the sum of the argsort outputs (items at each position): smax [0,2,4,3,1] +
    # necs [2,0,3,1,4] = [2, 2, 7, 4, 5] would put items 0 and 1 first
    assert sq.rank_sum([np.array([0, 2, 4, 3, 1]), np.array([2, 0, 3, 1, 4])]).tolist() == [
        0,
        2,
        3,
        4,
        1,
    ]
    with pytest.raises(UserError, match="two or more"):
        _rank("rank", combo=("smax",))
    with pytest.raises(UserError, match="exactly two"):
        _rank("split", combo=("smax", "necs", "ent"))


def test_real_model_methods_restore_mode() -> None:
    m = CompClassModel(3, comp_hidden=(8,), emb_dim=4, cls_hidden=(8,), seed=0)
    m.train()
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    with torch.no_grad():
        m.eval()
        logits = m.logits(torch.from_numpy(x)).numpy()
        m.train()
    for method in sq.METHODS:
        o = sq.rank_queries(
            method, logits, x, x[:2], m, np.random.default_rng(0), clf=_FirstChooser()
        )
        assert np.array_equal(np.sort(o), np.arange(12)), method
    assert m.training


class _FirstChooser:
    """combo-clf stub: always the first method; keeps the features it was shown."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.seen.append(np.asarray(x))
        return np.zeros(len(x), dtype=np.int64)


def test_unknown_method() -> None:
    with pytest.raises(UserError, match="unknown AL method"):
        _rank("bald")
    with pytest.raises(UserError, match="unknown AL method"):
        sq.query_scores("bald", LOGITS)
