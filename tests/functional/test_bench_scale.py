"""benchmarks/bench_scale.py on a tiny pool: its sharded picks are the single-process engine's."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from iml_tui.data.store import PoolStore
from iml_tui.engine.strategies import SelectionState, select

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_scale.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pool_file_holds_a_float16_unit_norm_selection_array(tmp_path: Path) -> None:
    path = _bench().make_pool(tmp_path / "p.h5", 300, d=32)
    store = PoolStore(path)
    assert (store.n, store.t, store.d) == (300, 1, 32)
    assert store.pooled_dtype() == np.float16
    norms = np.linalg.norm(store.pooled_rows(0, 300), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=2e-3)


def test_sharded_ft_picks_match_select_and_every_k_agrees(tmp_path: Path) -> None:
    out, work = tmp_path / "scale.json", tmp_path / "work"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--sizes",
            "600",
            "--shards",
            "1,2",
            "--strategies",
            "ft,mfft",
            "--labeled",
            "40",
            "--batch",
            "10",
            "--batches",
            "1",
            "--work",
            str(work),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["strategy"], r["shards"]) for r in rows] == [
        ("ft", 1),
        ("ft", 2),
        ("mfft", 1),
        ("mfft", 2),
    ]
    assert all(r["batch_seconds_median"] > 0 and r["shard_peak_rss_mb"] > 0 for r in rows)

    rng = np.random.default_rng(0)  # run_one's draws, in its order
    lab = rng.choice(600, size=40, replace=False).astype(np.int64)
    targets = (rng.random((600, 10)) < 0.1).astype(np.uint8)
    x = PoolStore(work / "pool_n600_d1024_f16.h5").pooled_rows(0, 600)
    state = SelectionState(
        x=x, labeled=lab, labeled_targets=targets[lab], probs=None, threshold=0.5
    )
    want = select("ft", state, 10, rng)
    assert hashlib.sha256(want.tobytes()).hexdigest()[:16] == rows[0]["picks_sha256"]


def _row(n: int, k: int, driver: float, shard: float, seconds: float) -> dict[str, object]:
    return {
        "n": n,
        "shards": k,
        "strategy": "ft",
        "driver_peak_rss_mb": driver,
        "shard_peak_rss_mb": shard,
        "batch_seconds_median": seconds,
    }


def test_findings_name_where_one_process_runs_out_and_shards_do_not() -> None:
    # peak per process = 100 MB + 3 MB per 1,000 rows held, exactly
    rows = [
        _row(1_000_000, 1, 3100.0, 3100.0, 4.0),
        _row(1_000_000, 2, 120.0, 1600.0, 2.0),
        _row(1_000_000, 4, 120.0, 850.0, 5.0),
        _row(200_000, 1, 700.0, 700.0, 1.0),
    ]
    found = _bench().findings(rows, limit_gib=2.0, extrapolate_n=4_000_000)
    big = next(e for e in found["by_size"] if e["n"] == 1_000_000)
    assert big["k"]["1"]["fits"] is False and big["k"]["2"]["fits"] is True
    assert big["fewest_shards_that_fit"] == 2
    assert big["k"]["2"]["speedup_vs_one_process"] == 2.0
    assert big["k"]["4"]["peak_per_process_gib"] == 850.0 / 1024
    line = next(s for s in found["lines"] if s.startswith("N=1,000,000 ft"))
    assert "one process runs out of a 2 GiB worker, 2 shards" in line
    assert next(s for s in found["lines"] if s.startswith("N=200,000")).count("fits") == 2
    ext = found["extrapolated"]
    assert ext["mb_per_1k_rows"] == pytest.approx(3.0) and ext["mb_fixed"] == pytest.approx(100.0)
    # 4M rows: 100 + 12,000 MB in one process; (2048 - 100) / 3 = 649,333 rows per shard -> 7
    assert ext["one_process_gib"] == pytest.approx(12_100 / 1024)
    assert ext["fewest_shards_that_fit"] == 7
    assert found["lines"][-1].startswith("EXTRAPOLATED (not measured)")
