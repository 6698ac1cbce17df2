"""Stream orders, batches, context stacking and order files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from iml_tui.data import orders as od
from iml_tui.errors import UserError


def _labels(n_per_class: int = 300, k: int = 5) -> np.ndarray:
    return np.repeat(np.arange(k), n_per_class)[
        np.random.default_rng(0).permutation(n_per_class * k)
    ]


def _mean_run_length(seq: np.ndarray) -> float:
    changes = int(np.count_nonzero(seq[1:] != seq[:-1]))
    return len(seq) / (changes + 1)


@pytest.mark.parametrize("make", [od.random_order, od.cluster_order])
def test_orders_are_seeded_permutations(
    make: Callable[[np.ndarray, np.random.Generator], np.ndarray],
) -> None:
    y = _labels()
    a = make(y, np.random.default_rng(1))
    assert a.dtype == np.int64
    assert np.array_equal(np.sort(a), np.arange(len(y)))
    assert np.array_equal(a, make(y, np.random.default_rng(1)))
    assert not np.array_equal(a, make(y, np.random.default_rng(2)))


def test_cluster_order_has_long_single_class_runs() -> None:
    y = _labels()
    rand = y[od.random_order(y, np.random.default_rng(3))]
    clus = y[od.cluster_order(y, np.random.default_rng(3))]
    assert _mean_run_length(rand) < 2.0
    assert _mean_run_length(clus) > 10 * _mean_run_length(rand)
    # at most K chunks x K classes runs
    assert np.count_nonzero(clus[1:] != clus[:-1]) + 1 <= 25


def test_cluster_order_chunks_respect_minimum_and_cap() -> None:
    # Two classes of very different size; string labels work too.
    y = np.array(["a"] * 200 + ["b"] * 40)
    o = od.cluster_order(y, np.random.default_rng(5))
    assert np.array_equal(np.sort(o), np.arange(240))
    with pytest.raises(ValueError, match="cannot fill"):
        od.cluster_order(np.arange(5), np.random.default_rng(0))
    assert len(od.cluster_order(np.zeros(0), np.random.default_rng(0))) == 0


def test_make_order_dispatch() -> None:
    y = _labels(20, 2)
    assert np.array_equal(
        od.make_order("random", y, np.random.default_rng(0)),
        od.random_order(y, np.random.default_rng(0)),
    )
    with pytest.raises(UserError, match="unknown order kind"):
        od.make_order("kmeans", y, np.random.default_rng(0))


def test_batches_drop_the_remainder() -> None:
    b = od.batches(np.arange(10), samples_per_batch=4)
    assert b.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert od.batches(np.arange(1500)).shape == (2, 720)
    assert od.batches(np.arange(3), 4).shape == (0, 4)


def test_with_context_by_hand() -> None:
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    got = od.with_context(x, context=1)
    want = np.array(
        [
            [0, 0, 1, 10, 2, 20],
            [1, 10, 2, 20, 3, 30],
            [2, 20, 3, 30, 0, 0],
        ],
        dtype=float,
    )
    assert np.array_equal(got, want)
    # default context 3 -> 7 blocks; the sample itself is the middle block
    x5 = np.arange(10, dtype=np.float32).reshape(5, 2)
    c3 = od.with_context(x5)
    assert c3.shape == (5, 14) and c3.dtype == np.float32
    assert np.array_equal(c3[:, 6:8], x5)
    assert np.array_equal(c3[0, :6], np.zeros(6))
    assert np.array_equal(c3[4, 8:], [0, 0, 0, 0, 0, 0])
    assert np.array_equal(c3[2], np.r_[0, 0, x5.ravel(), 0, 0])
    assert np.array_equal(od.with_context(x, context=0), x)


def test_with_context_pads_at_batch_edges() -> None:
    x = np.arange(5, dtype=float)[:, None] + 1  # rows 1..5
    got = od.with_context(x, context=1, batch_size=2)
    want = np.array([[0, 1, 2], [1, 2, 0], [0, 3, 4], [3, 4, 0], [0, 5, 0]], dtype=float)
    assert np.array_equal(got, want)
    with pytest.raises(ValueError):
        od.with_context(np.zeros(3), context=1)


@pytest.mark.parametrize("name", ["order.txt", "order.npy"])
def test_order_file_roundtrip(tmp_path: Path, name: str) -> None:
    o = od.random_order(np.zeros(50), np.random.default_rng(0))
    p = od.write_order(tmp_path / name, o)
    back = od.read_order(p, n=50)
    assert back.dtype == np.int64 and np.array_equal(back, o)


def test_order_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no order file"):
        od.read_order(tmp_path / "none.txt")
    (tmp_path / "bad.txt").write_text("1\nx\n")
    with pytest.raises(UserError, match="not an order file"):
        od.read_order(tmp_path / "bad.txt")
    (tmp_path / "dup.txt").write_text("1\n1\n")
    with pytest.raises(UserError, match="repeated"):
        od.read_order(tmp_path / "dup.txt")
    (tmp_path / "big.txt").write_text("0\n7\n")
    with pytest.raises(UserError, match="out of range"):
        od.read_order(tmp_path / "big.txt", n=5)
    (tmp_path / "neg.txt").write_text("-1\n")
    with pytest.raises(UserError, match="negative"):
        od.read_order(tmp_path / "neg.txt")
    np.save(tmp_path / "f.npy", np.zeros(3))
    with pytest.raises(UserError, match="not an order file"):
        od.read_order(tmp_path / "f.npy")
