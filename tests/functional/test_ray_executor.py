"""The Ray executor on a real local cluster (2 CPUs): sharded select, a sweep and extraction give
what the local executor gives."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pool_data import make_pool
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.engine.one_round import select_from_files

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_sharded_select_through_ray_actors_matches_one_process(
    cluster: None, tmp_path: Path, shards: int
) -> None:
    pool = tmp_path / "pool.h5"
    make_pool(pool, n=60, seed=shards)
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("3\n17\n")
    single = select_from_files(pool, labeled, "ft", 8, seed=1)
    sharded = select_from_files(pool, labeled, "ft", 8, seed=1, shards=shards, executor="ray")
    assert sharded.tolist() == single.tolist()


def test_sweep_on_ray_gives_the_local_results_and_resumes(cluster: None, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "pool",
            "synth",
            "--out",
            str(tmp_path / "pools"),
            "--n-train",
            "200",
            "--n-valid",
            "60",
            "--n-test",
            "60",
            "--t",
            "4",
            "--d",
            "8",
        ],
    )
    assert res.exit_code == 0, res.output
    common = [
        "simulate",
        "--pool-dir",
        str(tmp_path / "pools"),
        "--strategy",
        "rand,ft",
        "--start",
        "cold",
        "--budgets",
        "10,20",
        "--seeds",
        "1",
        "--max-epochs",
        "3",
    ]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "ray"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "local"), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert _results(tmp_path / "ray") == _results(tmp_path / "local")
    rounds = sorted((tmp_path / "ray" / "runs").glob("*/rounds.csv"))
    before = [p.stat().st_mtime_ns for p in rounds]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "ray"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    assert [p.stat().st_mtime_ns for p in rounds] == before


def _results(out: Path) -> list[dict[str, str]]:
    """al_results.csv rows without the timing columns."""
    with (out / "al_results.csv").open() as f:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(f)]


def test_extract_on_ray_writes_the_local_store(cluster: None, tmp_path: Path) -> None:
    import soundfile as sf

    from iml_tui.data.store import PoolStore

    src = tmp_path / "rec"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i, seconds in enumerate((23.0, 12.5)):
        sf.write(src / f"site{i}.wav", 0.1 * rng.standard_normal(int(16000 * seconds)), 16000)
    res = runner.invoke(
        app,
        [
            "prepare",
            "recordings",
            "--source",
            str(src),
            "--classes",
            "A,B",
            "--out",
            str(tmp_path / "prep"),
        ],
    )
    assert res.exit_code == 0, res.output
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        res = runner.invoke(
            app,
            [
                "extract",
                "--input",
                str(tmp_path / "prep"),
                "--out",
                str(tmp_path / f"{name}.h5"),
                "--batch-size",
                "2",
                *extra,
            ],
        )
        assert res.exit_code == 0, res.output
    a, b = PoolStore(tmp_path / "local.h5"), PoolStore(tmp_path / "ray.h5")
    assert a.n == b.n == 6
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.embeddings(), b.embeddings())


def test_stream_runs_on_ray_give_the_local_scores_and_resume(cluster: None, tmp_path: Path) -> None:
    from iml_tui.data.stream_synth import LidSynthConfig, synth_lid

    feats = tmp_path / "lid"
    synth_lid(feats, LidSynthConfig(n_train=20, n_dev=40, n_test=40, features=(("wavlm", 4),)))
    common = [
        "simulate",
        "--task",
        "lid",
        "--split",
        "dev",
        "--feat-root",
        str(feats),
        "--features",
        "wavlm",
        "--target",
        "all",
        "--n-queries",
        "5",
        "--samples-per-batch",
        "40",
        "--al-method",
        "ent",
        "--threads",
        "1",
        *[f"--set={kv}" for kv in STREAM_TINY],
    ]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "ray"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "local"), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    runs = sorted(p.name for p in (tmp_path / "local").iterdir() if p.is_dir())
    assert runs == ["dev_bas", "dev_ha", "dev_yo"]
    for run in runs:
        assert _scores(tmp_path / "ray" / run) == _scores(tmp_path / "local" / run)
    written = sorted((tmp_path / "ray").glob("*/scores.csv"))
    before = [p.stat().st_mtime_ns for p in written]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "ray"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    assert [p.stat().st_mtime_ns for p in written] == before


STREAM_TINY = (
    "comp_hidden=16",
    "embed_dim=8",
    "class_hidden=16",
    "max_epochs=10",
    "patience=2",
    "lr=0.003",
)


def _scores(run: Path) -> list[dict[str, str]]:
    """scores.csv rows of one stream run without the timing columns."""
    with (run / "scores.csv").open() as f:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(f)]
