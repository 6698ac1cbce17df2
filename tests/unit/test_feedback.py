"""Corrective feedback selection and class-balanced query split, on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from iml_tui.engine import feedback as fb
from iml_tui.errors import UserError

#               0  1  2  3  4  5  6  7  8  9
Y = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 1])
P = np.array([1, 1, 1, 0, 0, 1, 1, 0, 0, 1])
# groups in stream order: fps 0 2 6 | tps 1 5 9 | fns 3 8 | tns 4 7
CONF = np.array([0.6, 0.9, 0.95, 0.7, 0.55, 0.6, 0.8, 0.99, 0.51, 0.75])


@pytest.mark.parametrize(
    ("sim_type", "want"),
    [
        ("fpstps", ("fps", "tps")),
        ("fnstns", ("fns", "tns")),
        ("all", ("all",)),
        ("FPS,tps", ("fps", "tps")),
        (["tns", "fps"], ("tns", "fps")),
        ("fpsfps", ("fps",)),
        (None, ()),
        ("", ()),
        ("none", ()),
    ],
)
def test_parse_sim_type(sim_type: str | list[str] | None, want: tuple[str, ...]) -> None:
    assert fb.parse_sim_type(sim_type) == want


@pytest.mark.parametrize("bad", ["fpstp", "xyz", ["fps", "oops"]])
def test_parse_sim_type_rejects(bad: str | list[str]) -> None:
    with pytest.raises(UserError, match="sim_type"):
        fb.parse_sim_type(bad)


def test_groups_in_stream_order() -> None:
    g = fb.feedback_groups(Y, P, None, ("fps", "tps", "fns", "tns", "all"))
    assert [x.tolist() for x in g] == [[0, 2, 6], [1, 5, 9], [3, 8], [4, 7], list(range(10))]


def test_interleave_round_robin_and_cut() -> None:
    assert fb.select_feedback(Y, P, None, "fpstps", 16).tolist() == [0, 1, 2, 5, 6, 9]
    assert fb.select_feedback(Y, P, None, "fpstps", 3).tolist() == [0, 1, 2]
    assert fb.select_feedback(Y, P, None, "fpstps", 0).tolist() == []
    # An exhausted group drops out; the others go on.
    assert fb.select_feedback(Y, P, None, "fnstps", None).tolist() == [3, 1, 8, 5, 9]
    # "all" is the stream itself; repeats across groups are kept once.
    assert fb.select_feedback(Y, P, None, "all", 4).tolist() == [0, 1, 2, 3]
    assert fb.select_feedback(Y, P, None, "fnsall", 5).tolist() == [3, 0, 8, 1, 2]
    assert fb.select_feedback(Y, P, None, None, 16).tolist() == []


def test_rank_cf_orders_errors_most_confident_and_hits_least_confident_first() -> None:
    g = fb.feedback_groups(Y, P, CONF, ("fps", "tps", "fns", "tns", "all"), rank_cf=True)
    assert g[0].tolist() == [2, 6, 0]  # fps by conf 0.95, 0.8, 0.6
    assert g[1].tolist() == [5, 9, 1]  # tps by conf 0.6, 0.75, 0.9
    assert g[2].tolist() == [3, 8]  # fns by conf 0.7, 0.51
    assert g[3].tolist() == [4, 7]  # tns by conf 0.55, 0.99
    assert g[4].tolist() == list(range(10))
    assert fb.select_feedback(Y, P, CONF, "fpstps", 4, rank_cf=True).tolist() == [2, 5, 6, 9]
    with pytest.raises(ValueError, match="confidences"):
        fb.feedback_groups(Y, P, None, ("fps",), rank_cf=True)


def test_rank_cf_ties_keep_stream_order() -> None:
    y = np.zeros(4, dtype=int)
    p = np.ones(4, dtype=int)
    got = fb.select_feedback(y, p, np.array([0.7, 0.9, 0.7, 0.9]), "fps", None, rank_cf=True)
    assert got.tolist() == [1, 3, 0, 2]


def test_remaining_limits_candidates() -> None:
    queried = np.array([0, 1])
    mask = np.ones(10, dtype=bool)
    mask[queried] = False
    by_mask = fb.select_feedback(Y, P, None, "fpstps", 16, remaining=mask)
    by_idx = fb.select_feedback(Y, P, None, "fpstps", 16, remaining=np.flatnonzero(mask))
    assert by_mask.tolist() == by_idx.tolist() == [2, 5, 6, 9]


def test_cf_label_counts() -> None:
    chosen = fb.select_feedback(Y, P, None, "fpstps", 5)
    assert fb.cf_label_counts(Y, chosen) == (2, 3)


@pytest.mark.parametrize(
    ("args", "want"),
    [
        # p (N_t + N_n + n_q) - N_t = 0.5 * (4 + 4 + 8) - 4 = 4
        ((0.5, 4, 4, 8, 10), 4),
        # 0.5 * (2 + 10 + 8) - 2 = 8 -> capped by n_q = 8
        ((0.5, 2, 10, 8, 10), 8),
        # capped by the predicted targets
        ((0.5, 2, 10, 8, 3), 3),
        # negative -> 0
        ((0.2, 10, 2, 8, 10), 0),
        # 0.3 * 17 - 3 = 2.1 -> 2
        ((0.3, 3, 6, 8, 10), 2),
        # 0.5 * 9 - 2 = 2.5 -> 3 -> capped by n_q = 1
        ((0.5, 2, 6, 1, 10), 1),
    ],
)
def test_adapt_distr_split(args: tuple[float, int, int, int, int], want: int) -> None:
    assert fb.adapt_distr_split(*args) == want


def test_adapt_distr_split_rounds_half_up() -> None:
    assert fb.adapt_distr_split(0.5, 2, 5, 4, 10) == 4  # 0.5 * 11 - 2 = 3.5 -> 4
    assert fb.adapt_distr_split(0.5, 2, 3, 4, 10) == 3  # 0.5 * 9 - 2 = 2.5 -> 3


def test_split_queries() -> None:
    ranking = np.array([4, 0, 3, 1, 2, 5])
    pred = np.array([1, 0, 1, 0, 1, 0])  # targets in AL order 4 0 2; non-targets 3 1 5
    assert fb.split_queries(ranking, pred, 4, 1).tolist() == [4, 3, 1, 5]
    assert fb.split_queries(ranking, pred, 4, 2).tolist() == [4, 0, 3, 1]
    # too few predicted non-targets: top up from the ranking
    assert fb.split_queries(ranking, pred, 5, 0).tolist() == [3, 1, 5, 4, 0]
    assert fb.split_queries(ranking, pred, 10, 3).tolist() == [4, 0, 2, 3, 1, 5]
