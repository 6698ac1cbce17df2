"""The Ray executor on a real local cluster (2 CPUs): sharded select, a sweep (plain and with
sharded runs), the lid and vtd streams and extraction give what the local executor gives, and a
rerun redoes nothing."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pool_data import make_pool
from tiny_stream import tiny_stream_flags
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.engine.one_round import select_from_files
from iml_tui.errors import UserError

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


@pytest.mark.parametrize("shards", [1, 2])
def test_sweep_on_ray_gives_the_local_results_and_resumes(
    cluster: None, tmp_path: Path, shards: int
) -> None:
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
        "rand,mfft",
        "--start",
        "cold",
        "--budgets",
        "10,20",
        "--seeds",
        "1",
        "--max-epochs",
        "3",
    ]
    on_ray = [*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--shards", str(shards)]
    res = runner.invoke(app, on_ray)
    assert res.exit_code == 0, res.output
    assert "rounds" in res.output and "4/4" in res.output and "runs 2/2" in res.output
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "local"), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert _results(tmp_path / "ray") == _results(tmp_path / "local")
    for name in ("rand_cold_seed1", "mfft_cold_seed1"):
        for b in (10, 20):
            rel = Path("runs") / name / f"round_{b:05d}" / "selected.txt"
            assert (tmp_path / "ray" / rel).read_text() == (tmp_path / "local" / rel).read_text()
    written = sorted((tmp_path / "ray" / "runs").rglob("*.*"))
    before = [p.stat().st_mtime_ns for p in written]
    res = runner.invoke(app, on_ray)
    assert res.exit_code == 0, res.output
    assert [p.stat().st_mtime_ns for p in written] == before
    assert "4/4" in res.output and "runs 2/2" in res.output


def _results(out: Path) -> list[dict[str, str]]:
    """al_results.csv rows without the timing columns."""
    with (out / "al_results.csv").open() as f:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(f)]


TINY_STREAM = tiny_stream_flags(max_epochs=6, lr=None)


@pytest.fixture(scope="module")
def stream_feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from iml_tui.data.stream_synth import LidSynthConfig, VtdSynthConfig, synth_lid, synth_vtd

    root = tmp_path_factory.mktemp("feats")
    synth_lid(
        root / "lid",
        LidSynthConfig(n_train=20, n_dev=40, n_test=40, features=(("ecapalang", 6),)),
    )
    synth_vtd(
        root / "vtd",
        VtdSynthConfig(
            envs=("rm1_mc20", "hotel_mc19"), sessions=2, segments=30, features=(("wavlm", 6),)
        ),
    )
    return root


STREAMS = {
    "lid": [
        "--split",
        "dev",
        "--target",
        "all",
        "--features",
        "ecapalang",
        "--n-queries",
        "5",
        "--samples-per-batch",
        "40",
        "--sim-type",
        "fpstps",
    ],
    "vtd": ["--env", "all", "--features", "wavlm", "--sim-type", "fpstps"],
}


@pytest.mark.parametrize("task", ["lid", "vtd"])
def test_stream_runs_on_ray_give_the_local_scores_and_resume(
    cluster: None, stream_feats: Path, tmp_path: Path, task: str
) -> None:
    """Every target language (lid) or environment (vtd) as a Ray task: the scores of the local
    executor; a rerun reads every run back and rewrites nothing."""
    common = [
        "simulate",
        "--task",
        task,
        "--feat-root",
        str(stream_feats / task),
        *STREAMS[task],
        *TINY_STREAM,
    ]
    on_ray = [*common, "--out", str(tmp_path / "ray"), "--executor", "ray"]
    res = runner.invoke(app, on_ray)
    assert res.exit_code == 0, res.output
    runs = sorted(p.name for p in (tmp_path / "ray").iterdir())
    assert len(runs) >= 2 and f"runs {len(runs)}/{len(runs)}" in res.output
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "local"), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == runs
    for run in runs:
        assert _scores(tmp_path / "ray" / run) == _scores(tmp_path / "local" / run)
    written = sorted(p for p in (tmp_path / "ray").rglob("*") if p.is_file())
    before = [p.stat().st_mtime_ns for p in written]
    res = runner.invoke(app, on_ray)
    assert res.exit_code == 0, res.output
    assert [p.stat().st_mtime_ns for p in written] == before
    assert f"runs {len(runs)}/{len(runs)}" in res.output


def test_stream_run_stopped_here_is_finished_on_ray(
    cluster: None, stream_feats: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lid sweep stopped after its first batch in this process resumes with --executor ray
    (another executor, other resource requests): the finished batch is not redone and every
    run scores what an uninterrupted local sweep scores."""
    from iml_tui.bench import stream_runs

    common = [
        "simulate",
        "--task",
        "lid",
        "--feat-root",
        str(stream_feats / "lid"),
        *STREAMS["lid"],
        *TINY_STREAM,
    ]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "whole")])
    assert res.exit_code == 0, res.output

    class Stop(Exception):
        pass

    run_all = stream_runs.run_all

    def stopped(cfg: Any, command: str, on_event: Any, planned: Any, on_run: Any) -> Any:
        def stop(ev: Any) -> None:
            on_event(ev)
            raise Stop

        return run_all(cfg, command, stop, planned, on_run)

    monkeypatch.setattr(stream_runs, "run_all", stopped)
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "b")])
    assert isinstance(res.exception, Stop)
    monkeypatch.setattr(stream_runs, "run_all", run_all)
    (first,) = [p.parent for p in (tmp_path / "b").glob("*/checkpoint.pt")]
    assert len(_scores(first)) == 1
    kept = (first / "scores.csv").read_text().splitlines()[1]
    on_ray = ["--executor", "ray", "--cpus-per-run", "0.5"]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "b"), *on_ray])
    assert res.exit_code == 0, res.output
    assert (first / "scores.csv").read_text().splitlines()[1] == kept
    runs = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == runs
    for run in runs:
        assert _scores(tmp_path / "b" / run) == _scores(tmp_path / "whole" / run)


def test_a_task_user_error_comes_back_as_its_one_line(cluster: None) -> None:
    from iml_tui.parallel.runner import ExecutorOptions, Task, run_tasks

    # local functions travel by value (the workers cannot import this test module)
    def refuse(state: None, emit: Any, x: int) -> int:
        raise UserError(f"clip {x} is bad", "/data/pool.h5", "drop it")

    def no_setup() -> None:
        return None

    with pytest.raises(UserError) as info:
        run_tasks([Task(0, refuse, (7,))], ExecutorOptions("ray"), no_setup)
    assert str(info.value) == "/data/pool.h5: clip 7 is bad — drop it"


def _scores(run_dir: Path) -> list[dict[str, str]]:
    """scores.csv rows without timing columns."""
    with (run_dir / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    return [{k: v for k, v in r.items() if "second" not in k and "time" not in k} for r in rows]


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
    from iml_tui.features.extract import extract_features

    def stop_after_two_chunks(label: str, done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # this process encodes two chunks, then stops
        extract_features(
            tmp_path / "prep", tmp_path / "ray.h5", batch_size=2, progress=stop_after_two_chunks
        )
    chunks = tmp_path / "ray.h5.chunks"
    assert len(list(chunks.glob("chunk_*.npz"))) == 2
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
    assert "2 chunk(s) resumed" in res.output and not chunks.exists()  # the Ray tasks did the rest
    a, b = PoolStore(tmp_path / "local.h5"), PoolStore(tmp_path / "ray.h5")
    assert a.n == b.n == 6
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.embeddings(), b.embeddings())
