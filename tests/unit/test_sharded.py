"""Sharded exact selection: the same picks as the single-process engine and as brute force."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from pool_data import make_pool
from test_strategies import lattice_pool, random_pool, ref_ft, ref_mis

from iml_tui.data.store import POOLED_KEY, PoolStore, convert_pool
from iml_tui.engine import strategies as st
from iml_tui.engine.one_round import select_from_files
from iml_tui.engine.strategies import farthest as ft_mod
from iml_tui.engine.strategies.sharded import ShardedPool, shard_bounds, sharded_select
from iml_tui.errors import UserError


@pytest.fixture(params=[False, True], ids=["default-first-pass", "tiny-first-pass"])
def tiny_first_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param:
        monkeypatch.setattr(ft_mod, "_SEED_CENTRES", 2)
        monkeypatch.setattr(ft_mod, "_REFINE_BATCH", 3)
    return bool(request.param)


def test_shard_bounds_cover_the_pool() -> None:
    assert shard_bounds(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_bounds(5, 1) == [(0, 5)]
    for n, k in [(7, 7), (100, 4), (13, 5)]:
        b = shard_bounds(n, k)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(b[i][1] == b[i + 1][0] for i in range(k - 1))


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("kind", ["random", "lattice"])
def test_sharded_ft_matches_bruteforce_and_engine(k: int, kind: str, tiny_first_pass: bool) -> None:
    n_pool = 61
    x = random_pool(n_pool, 5, 3) if kind == "random" else lattice_pool(n_pool, 3)
    rng = np.random.default_rng(0)
    base = rng.choice(n_pool, 9, replace=False)
    cand = np.setdiff1d(np.arange(n_pool), base)
    want = st.farthest_traversal(x, 20, base, cand)
    with ShardedPool.from_array(x, k, "inline") as pool:
        got = pool.farthest_traversal(20, base, cand)
        assert got.tolist() == want.tolist() == ref_ft(x, 20, base, cand)
        # empty base: the lowest candidate first, then farthest-first
        assert pool.farthest_traversal(5, [], cand).tolist() == ref_ft(x, 5, [], cand)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("strategy", ["rand", "ft", "mp", "mfft"])
@pytest.mark.parametrize("kind", ["random", "lattice"])
def test_sharded_select_equals_select(k: int, strategy: str, kind: str) -> None:
    n_pool, c = 57, 3
    x = random_pool(n_pool, 6, 5) if kind == "random" else lattice_pool(n_pool, 5)
    gen = np.random.default_rng(1)
    lab = gen.choice(n_pool, 12, replace=False)
    targets = (gen.random((12, c)) < 0.4).astype(np.uint8)
    probs = gen.random((n_pool, c))
    state = st.SelectionState(x=x, labeled=lab, labeled_targets=targets, probs=probs)
    want = st.select(strategy, state, 15, np.random.default_rng(7))
    with ShardedPool.from_array(x, k, "inline") as pool:
        got = sharded_select(pool, strategy, 15, np.random.default_rng(7), lab, targets, probs)
    assert got.tolist() == want.tolist()
    if strategy in ("mp", "mfft"):
        unl = np.setdiff1d(np.arange(n_pool), lab)
        with ShardedPool.from_array(x, k, "inline") as pool:
            _, nn = pool.max_similarity(unl, np.sort(lab))
        order = np.argsort(lab)
        mis = np.count_nonzero((probs[unl] >= 0.5) != targets[order][nn].astype(bool), axis=1)
        assert mis.tolist() == ref_mis(x, unl, lab, targets, probs[unl] >= 0.5)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("strategy", ["rand", "ft", "mfft"])
@pytest.mark.parametrize("k_pos", [0, 2])
def test_sharded_initial_round_equals_engine(k: int, strategy: str, k_pos: int) -> None:
    x = lattice_pool(40, 8)
    clip = (np.random.default_rng(2).random((40, 3)) < 0.2).astype(np.uint8)
    want = st.initial_round(strategy, x, 12, np.random.default_rng(3), k_pos, clip)
    with ShardedPool.from_array(x, k, "inline") as pool:
        got = sharded_select(
            pool, strategy, 12, np.random.default_rng(3), [], k_pos=k_pos, clip_targets=clip
        )
    assert got.tolist() == want.tolist()


def test_process_shards_give_the_same_picks() -> None:
    x = random_pool(50, 4, 11, np.float32)
    base = np.arange(0, 50, 7)
    cand = np.setdiff1d(np.arange(50), base)
    with ShardedPool.from_array(x, 2, "local") as pool:
        got = pool.farthest_traversal(10, base, cand)
        rows = pool.rows([49, 0, 25])
    assert got.tolist() == st.farthest_traversal(x, 10, base, cand).tolist()
    np.testing.assert_array_equal(rows, x[[49, 0, 25]])


def test_each_shard_reports_its_own_process_peak_memory() -> None:
    """Each of two shard processes holds its 98 MiB half and reports at least that; a single
    shard lives in the driver and reports the driver's peak (the whole array, 195 MiB)."""
    x = np.zeros((50_000, 1024), dtype=np.float32)  # 195 MiB, split in two 98 MiB shards
    x[:, 0] = 1.0
    with ShardedPool.from_array(x, 2, "local") as pool:
        peaks = pool.group.call("peak_rss_mb", [(), ()])
    assert all(p >= 1024 * 50_000 * 4 / 2 / 2**20 for p in peaks)
    inline = ShardedPool.from_array(x[:10], 1, "local")
    try:
        assert inline.group.call("peak_rss_mb", [()])[0] >= x.nbytes / 2**20
    finally:
        inline.close()


def test_more_shards_than_rows_and_bad_counts() -> None:
    x = random_pool(4, 3, 0)
    with ShardedPool.from_array(x, 9, "inline") as pool:
        assert len(pool.bounds) == 4
        assert pool.farthest_traversal(4, [], np.arange(4)).tolist() == ref_ft(
            x, 4, [], np.arange(4)
        )
    with pytest.raises(UserError, match="shards"):
        ShardedPool.from_array(x, 0, "inline")


def test_convert_to_float16_and_select_from_the_store(tmp_path: Path) -> None:
    src = tmp_path / "pool.h5"
    make_pool(src, n=45, t=3, d=8, c=3, seed=4)
    dst = convert_pool(src, tmp_path / "pool16.h5", "float16")
    with h5py.File(dst, "r") as f:
        assert f[POOLED_KEY].dtype == np.float16
        assert f["embeddings"].shape == (45, 3, 8)
    store = PoolStore(dst)
    x32 = store.pooled()
    assert x32.dtype == np.float32
    np.testing.assert_allclose(x32, PoolStore(src).pooled(), atol=1e-3)
    np.testing.assert_array_equal(store.pooled_rows(10, 20), x32[10:20])
    labeled = tmp_path / "lab.txt"
    labeled.write_text("".join(f"{i}\n" for i in (3, 17, 30)))
    single = select_from_files(dst, labeled, "ft", 8, 0)
    for k in (2, 3):
        assert (
            select_from_files(dst, labeled, "ft", 8, 0, shards=k, executor="local").tolist()
            == single.tolist()
        )
    cold = select_from_files(dst, None, "mfft", 6, 1, warm_k=1)
    assert select_from_files(dst, None, "mfft", 6, 1, warm_k=1, shards=2).tolist() == cold.tolist()


def test_convert_refuses_bad_dtype_and_overwrite(tmp_path: Path) -> None:
    src = tmp_path / "pool.h5"
    make_pool(src, n=10)
    with pytest.raises(UserError, match="dtype"):
        convert_pool(src, tmp_path / "o.h5", "int8")
    with pytest.raises(UserError, match="overwrite"):
        convert_pool(src, src, "float16")
    with pytest.raises(UserError, match="--state"):
        select_from_files(src, None, "ft", 3, 0, state=tmp_path / "s.npz", shards=2)
