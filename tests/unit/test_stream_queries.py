"""AL ranking of a stream batch: each method on tiny hand-computed cases."""

from __future__ import annotations

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
    with pytest.raises(UserError, match="exactly two"):
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


def test_cover_greedy_by_hand() -> None:
    x = np.array([[1.0, 0.0], [5.0, 0.0], [6.0, 0.0], [-2.0, 0.0]])
    lab = np.array([[0.0, 0.0]])
    # 6 is farthest (6); then -2 (2); then 1 and 5 both at 1 -> lowest index
    assert sq.rank_queries("cover", np.zeros((4, 2)), x, lab, None, None).tolist() == [2, 3, 0, 1]
    assert sq.rank_queries("cover", np.zeros((4, 2)), x, lab, None, None, n_select=1).tolist() == [
        2,
        3,
        0,
        1,
    ]
    # no labelled pool: all at infinity, the first pick is index 0
    x3 = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    assert sq.rank_queries("cover", np.zeros((3, 2)), x3, None, None, None).tolist() == [0, 2, 1]
    assert sq.query_scores("cover", np.zeros((4, 2)), x, lab) == pytest.approx([1, 5, 6, 2])


def test_egl_by_hand_and_against_autograd() -> None:
    m = Linear2([[1.0, -0.5], [0.3, 2.0]], [0.1, -0.2])
    zero = Linear2([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0])
    # h = 0, p = .5/.5: sum_k p_k ||p - e_k|| * sqrt(0 + 1) = sqrt(0.5)
    assert sq.egl_scores(zero, np.zeros((1, 2))) == pytest.approx([math.sqrt(0.5)])
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
    got = sq.query_scores("egl", np.zeros((4, 2)), x, None, m)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)  # float32 autograd
    assert sq.rank_queries("egl", np.zeros((4, 2)), x, None, m, None).tolist() == list(
        np.argsort(-np.array(want), kind="stable")
    )
    with pytest.raises(ValueError, match="model"):
        sq.rank_queries("egl", np.zeros((4, 2)), x, None, None, None)


def test_pert_flips_near_the_boundary_only() -> None:
    m = Linear2([[0.0], [1.0]], [0.0, 0.0])  # logits [0, x]: decision x > 0
    x = np.array([[5.0], [0.0005], [-3.0], [-0.0005]], dtype=np.float32)
    s = sq.query_scores("pert", np.zeros((4, 2)), x, None, m, np.random.default_rng(0), n_pert=64)
    assert s[0] == 0.0 and s[2] == 0.0
    assert 0.25 < s[1] < 0.75 and 0.25 < s[3] < 0.75
    # a perturbation of x = 0.0005 flips exactly when its sign is -1
    order = sq.rank_queries("pert", np.zeros((4, 2)), x, None, m, np.random.default_rng(0))
    assert set(order[:2].tolist()) == {1, 3} and order[2:].tolist() == [0, 2]
    again = sq.query_scores(
        "pert", np.zeros((4, 2)), x, None, m, np.random.default_rng(0), n_pert=64
    )
    assert np.array_equal(s, again)
    # larger perturbations flip more
    big = sq.query_scores(
        "pert", np.zeros((4, 2)), x, None, m, np.random.default_rng(0), n_pert=64, pert_eps=10.0
    )
    assert big[0] > 0 and big[2] > 0


def test_real_model_methods_restore_mode() -> None:
    m = CompClassModel(3, comp_hidden=(8,), emb_dim=4, cls_hidden=(8,), seed=0)
    m.train()
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    with torch.no_grad():
        m.eval()
        logits = m.logits(torch.from_numpy(x)).numpy()
        m.train()
    for method in sq.METHODS:
        o = sq.rank_queries(method, logits, x, x[:2], m, np.random.default_rng(0))
        assert np.array_equal(np.sort(o), np.arange(12)), method
    assert m.training


def test_unknown_method() -> None:
    with pytest.raises(UserError, match="unknown AL method"):
        _rank("bald")
    with pytest.raises(UserError, match="unknown AL method"):
        sq.query_scores("bald", LOGITS)
