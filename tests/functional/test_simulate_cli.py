"""Drive `iml-tui simulate`, `select` and `pool synth` on tiny generated pools."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from iml_tui.bench.report import al_results_columns
from iml_tui.bench.sweep import run_sweep
from iml_tui.cli import app
from iml_tui.config import BioacousticConfig
from iml_tui.data.store import PoolStore
from iml_tui.data.synth import SynthConfig, synth_pools
from iml_tui.parallel import runner as runner_mod

runner = CliRunner()
TINY = ["--max-epochs", "4", "--set", "hidden=32", "--threads", "1"]


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pools")
    synth_pools(out, SynthConfig(n_train=160, n_valid=48, n_test=48, t=4, d=16, seed=3))
    return out


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_simulate_writes_every_output(pools: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "bioacoustic",
            "--pool-dir",
            str(pools),
            "--strategy",
            "all",
            "--start",
            "all",
            "--budgets",
            "10,20,30",
            "--seeds",
            "1-2",
            "--out",
            str(out),
            "--warm-k",
            "1",
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    rows = _read_csv(out / "al_results.csv")
    class_list = PoolStore(pools / "train.h5").class_list
    assert list(rows[0].keys()) == al_results_columns(class_list)
    assert len(rows) == 4 * 2 * 3
    assert {(r["sampling_method"], r["pos_init_num"]) for r in rows} == {
        (s, k) for s in ("rand", "ft", "mp", "mfft") for k in ("0", "1")
    }
    assert all(r["n_runs"] == "2" for r in rows)
    for r in rows:  # percentages with two decimals
        assert 0.0 <= float(r["test_cmap_mean"]) <= 100.0
        assert len(r["test_cmap_mean"].split(".")[1]) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["budgets"] == [10, 20, 30]
    assert len(manifest["runs"]) == 16 and "torch" in manifest["versions"]
    assert (out / "learning_curves.png").stat().st_size > 1000
    run = out / "runs" / "mfft_cold_seed1"
    rounds = _read_csv(run / "rounds.csv")
    assert [int(r["budget"]) for r in rounds] == [10, 20, 30]
    selected = [
        int(v)
        for b in (10, 20, 30)
        for v in (run / f"round_{b:05d}" / "selected.txt").read_text().split()
    ]
    assert len(selected) == len(set(selected)) == 30
    counts = sum(int(rounds[-1][f"count_{c}"]) for c in class_list)
    assert counts + int(rounds[-1]["count_Negative"]) >= 30  # multi-label clips count twice
    # the table is printed
    assert "mfft" in res.stdout and "cold" in res.stdout


def _cfg(pools: Path, out: Path) -> BioacousticConfig:
    return BioacousticConfig(
        pool_dir=str(pools),
        strategy=["mfft", "rand"],
        start=["cold"],
        budgets=[10, 20, 30],
        seeds=[1],
        out=str(out),
        max_epochs=4,
        hidden=32,
        threads=1,
    )


def test_interrupted_run_resumes_to_the_same_result(pools: Path, tmp_path: Path) -> None:
    whole = run_sweep(_cfg(pools, tmp_path / "a"))

    class Stop(Exception):
        pass

    seen: list[int] = []

    def interrupt(ev: object) -> None:
        seen.append(1)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(_cfg(pools, tmp_path / "b"), interrupt)
    first = tmp_path / "b" / "runs" / "mfft_cold_seed1" / "round_00010" / "classifier.pt"
    mtime = first.stat().st_mtime_ns
    resumed = run_sweep(_cfg(pools, tmp_path / "b"))
    assert first.stat().st_mtime_ns == mtime  # round 1 was not redone
    for spec, recs in whole.records.items():
        again = resumed.records[spec]
        assert [r.test_map for r in recs] == pytest.approx([r.test_map for r in again])
        assert [r.counts for r in recs] == [r.counts for r in again]
    for name in ("mfft_cold_seed1", "rand_cold_seed1"):
        for b in (10, 20, 30):
            a = (tmp_path / "a" / "runs" / name / f"round_{b:05d}" / "selected.txt").read_text()
            c = (tmp_path / "b" / "runs" / name / f"round_{b:05d}" / "selected.txt").read_text()
            assert a == c


def test_finished_run_is_not_redone(
    pools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_sweep(_cfg(pools, tmp_path / "a"))
    files = sorted((tmp_path / "a" / "runs").rglob("classifier.pt"))
    stamps = [p.stat().st_mtime_ns for p in files]
    again = run_sweep(_cfg(pools, tmp_path / "a"))
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert again.seconds < 30

    # finished runs are read back by the driver: no worker process or Ray task starts
    def no_workers(*_: object) -> None:
        raise AssertionError("a worker was started for a finished run")

    monkeypatch.setattr(runner_mod, "_run_processes", no_workers)
    monkeypatch.setattr(runner_mod, "_run_ray", no_workers)
    names: list[str] = []
    for executor in ("local", "ray"):
        cfg = dataclasses.replace(_cfg(pools, tmp_path / "a"), jobs=2, executor=executor)
        third = run_sweep(cfg, on_run=names.append)
    assert sorted(names) == ["mfft_cold_seed1"] * 2 + ["rand_cold_seed1"] * 2
    assert [r.counts for r in third.records[next(iter(again.records))]] == [
        r.counts for r in again.records[next(iter(again.records))]
    ]


def test_parallel_jobs_match_serial(pools: Path, tmp_path: Path) -> None:
    serial = run_sweep(_cfg(pools, tmp_path / "s"))
    cfg = _cfg(pools, tmp_path / "p")
    cfg.jobs = 2
    parallel = run_sweep(cfg)
    for spec, recs in serial.records.items():
        assert [r.counts for r in recs] == [r.counts for r in parallel.records[spec]]


def test_sharded_runs_pick_what_one_process_picks(pools: Path, tmp_path: Path) -> None:
    """Every strategy, cold and warm, with the selection array in 3 shard processes per run (two
    runs at a time): the same clips every round as one process, the same scores; a rerun redoes
    nothing and its rounds read back reach the progress events."""
    cfg = _cfg(pools, tmp_path / "one")
    cfg.strategy, cfg.start, cfg.warm_k, cfg.max_epochs = (
        ["ft", "mp", "mfft"],
        ["cold", "warm"],
        2,
        2,
    )
    one = run_sweep(cfg)
    sharded = dataclasses.replace(cfg, out=str(tmp_path / "three"), shards=3, jobs=2)
    three = run_sweep(sharded)
    for spec, recs in one.records.items():
        assert [r.counts for r in recs] == [r.counts for r in three.records[spec]]
        for b in cfg.budgets:
            rel = Path("runs") / spec.name / f"round_{b:05d}" / "selected.txt"
            assert (tmp_path / "one" / rel).read_text() == (tmp_path / "three" / rel).read_text()
    files = sorted((tmp_path / "three" / "runs").rglob("state.json"))
    stamps = [p.stat().st_mtime_ns for p in files]
    seen: list[int] = []
    run_sweep(sharded, lambda ev: seen.append(ev.budget))
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert sorted(seen) == sorted(cfg.budgets * len(one.records))  # rounds read back count


def test_changed_config_in_same_folder_is_refused(pools: Path, tmp_path: Path) -> None:
    run_sweep(_cfg(pools, tmp_path / "a"))
    cfg = _cfg(pools, tmp_path / "a")
    cfg.warm_k = 2
    cfg.start = ["warm"]
    run_sweep(cfg)  # other runs: fine
    cfg = _cfg(pools, tmp_path / "a")
    cfg.lr = 1e-2
    with pytest.raises(Exception, match="different configuration"):
        run_sweep(cfg)


def test_select_prints_indices_in_order(pools: Path, tmp_path: Path) -> None:
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("3\n7\n# a comment\n\n11\n")
    res = runner.invoke(
        app,
        [
            "select",
            "--pool",
            str(pools / "train.h5"),
            "--labeled",
            str(labeled),
            "--strategy",
            "ft",
            "-n",
            "5",
            "--seed",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    picks = [int(v) for v in res.stdout.split()]
    assert len(picks) == 5 and not {3, 7, 11} & set(picks)
    # initial round with no labelled indices
    res = runner.invoke(
        app,
        [
            "select",
            "--pool",
            str(pools / "train.h5"),
            "--strategy",
            "rand",
            "-n",
            "4",
            "--seed",
            "2",
        ],
    )
    assert res.exit_code == 0 and len(res.stdout.split()) == 4
    # mfft with scores
    store = PoolStore(pools / "train.h5")
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((store.n, store.c)))
    res = runner.invoke(
        app,
        [
            "select",
            "--pool",
            str(pools / "train.h5"),
            "--labeled",
            str(labeled),
            "--strategy",
            "mfft",
            "-n",
            "6",
            "--scores",
            str(tmp_path / "s.npy"),
            "--threshold",
            "0.5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(set(res.stdout.split())) == 6


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", *args], capture_output=True, text=True, check=False
    )


def test_user_errors_are_one_line_and_exit_2(pools: Path, tmp_path: Path) -> None:
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("1\nfoo\n")
    cases = [
        (
            [
                "select",
                "--pool",
                str(pools / "train.h5"),
                "--labeled",
                str(labeled),
                "--strategy",
                "ft",
                "-n",
                "3",
            ],
            str(labeled),
        ),
        (["select", "--pool", str(tmp_path / "nope.h5"), "--strategy", "ft", "-n", "3"], "nope.h5"),
        (
            [
                "select",
                "--pool",
                str(pools / "train.h5"),
                "--labeled",
                str(tmp_path / "l2.txt"),
                "--strategy",
                "mp",
                "-n",
                "3",
            ],
            "--scores",
        ),
        (
            ["simulate", "--pool-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
            "missing",
        ),
        (["simulate", "--pool-dir", str(pools), "--set", "budgetz=1"], "budgetz"),
        (["simulate", "--pool-dir", str(pools), "--budgets", "10,5"], "budgets"),
        (["simulate", "--pool-dir", str(pools), "--budgets", "10,99999"], "pool size"),
    ]
    (tmp_path / "l2.txt").write_text("1\n2\n")
    for args, needle in cases:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert needle in lines[0], lines[0]


def test_eval_precision_flag_runs_and_bad_values_are_one_line(pools: Path, tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--pool-dir",
            str(pools),
            "--strategy",
            "mfft",
            "--start",
            "cold",
            "--budgets",
            "10,20",
            "--seeds",
            "1",
            "--out",
            str(out),
            "--eval-precision",
            "bf16",
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["eval_precision"] == "bf16"
    spec = json.loads((out / "runs" / "mfft_cold_seed1" / "spec.json").read_text())
    assert spec["train"]["eval_precision"] == "bf16"
    rounds = _read_csv(out / "runs" / "mfft_cold_seed1" / "rounds.csv")
    assert [int(r["budget"]) for r in rounds] == [10, 20]
    cases = [(["--eval-precision", "fp16"], "--eval-precision='fp16' is not one of")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "CUDA is not available"))
    for extra, needle in cases:
        proc = _cli("simulate", "--pool-dir", str(pools), "--out", str(tmp_path / "x"), *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_clip_annotation_trains_by_mil_and_differs_from_frames(pools: Path, tmp_path: Path) -> None:
    common = [
        "simulate",
        "--pool-dir",
        str(pools),
        "--strategy",
        "ft",
        "--start",
        "cold",
        "--budgets",
        "10,20",
        "--seeds",
        "1",
        *TINY,
    ]
    for kind in ("frames", "clips"):
        res = runner.invoke(app, [*common, "--out", str(tmp_path / kind), "--annotation", kind])
        assert res.exit_code == 0, res.output
    spec = json.loads((tmp_path / "clips" / "runs" / "ft_cold_seed1" / "spec.json").read_text())
    assert spec["annotation"] == "clips"
    frames = json.loads((tmp_path / "frames" / "runs" / "ft_cold_seed1" / "spec.json").read_text())
    assert "annotation" not in frames  # run folders from before the key still resume
    a = _read_csv(tmp_path / "frames" / "runs" / "ft_cold_seed1" / "rounds.csv")
    b = _read_csv(tmp_path / "clips" / "runs" / "ft_cold_seed1" / "rounds.csv")
    assert [r["budget"] for r in a] == [r["budget"] for r in b]  # ft: the same picks
    assert [r["valid_map"] for r in a] != [r["valid_map"] for r in b]  # another loss
    proc = _cli(
        "simulate", "--pool-dir", str(pools), "--out", str(tmp_path / "x"), "--annotation", "boxes"
    )
    assert proc.returncode == 2 and "annotation='boxes'" in proc.stderr, proc.stderr


def test_full_reference_is_reported_and_resumed(pools: Path, tmp_path: Path) -> None:
    cfg = _cfg(pools, tmp_path / "f")
    cfg.strategy, cfg.seeds, cfg.full = ["ft"], [1, 2], True
    res = run_sweep(cfg)
    assert [f.seed for f in res.full] == [1, 2]
    assert all(0.0 <= f.test_map <= 1.0 for f in res.full)
    stamp = (tmp_path / "f" / "full" / "seed1" / "classifier.pt").stat().st_mtime_ns
    again = run_sweep(cfg)
    assert (tmp_path / "f" / "full" / "seed1" / "classifier.pt").stat().st_mtime_ns == stamp
    assert [f.test_map for f in again.full] == [f.test_map for f in res.full]
    from iml_tui.bench.report import write_al_results

    write_al_results(res, cfg.warm_k, tmp_path / "al.csv")
    row = _read_csv(tmp_path / "al.csv")[0]
    expected = np.mean([f.test_map for f in res.full]) * 100
    assert float(row["full_test_cmap_mean"]) == pytest.approx(expected, abs=0.006)


def test_pool_synth_and_info_commands(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "pool",
            "synth",
            "--out",
            str(tmp_path / "p"),
            "--n-train",
            "60",
            "--n-valid",
            "20",
            "--n-test",
            "20",
            "--t",
            "2",
            "--d",
            "8",
            "--seed",
            "4",
        ],
    )
    assert res.exit_code == 0, res.output
    store = PoolStore(tmp_path / "p" / "train.h5")
    assert (store.n, store.t, store.d) == (60, 2, 8)
    res = runner.invoke(app, ["pool", "info", str(tmp_path / "p" / "train.h5")])
    assert res.exit_code == 0 and "Mosquito" in res.stdout and "synth" in res.stdout
    res = runner.invoke(
        app,
        [
            "pool",
            "synth",
            "--out",
            str(tmp_path / "q"),
            "--n-train",
            "60",
            "--n-valid",
            "20",
            "--n-test",
            "20",
            "--t",
            "2",
            "--d",
            "8",
            "--classes",
            "a,b",
            "--priors",
            "0.1,0.05",
        ],
    )
    assert res.exit_code == 0, res.output
    assert PoolStore(tmp_path / "q" / "valid.h5").class_list == ["a", "b"]
