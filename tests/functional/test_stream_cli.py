"""Drive `iml-tui simulate --task lid|vtd`, `order`, `budget plan` and `score` on tiny data."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_stream import tiny_stream_flags
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.orders import read_order
from iml_tui.data.stream_synth import LidSynthConfig, VtdSynthConfig, synth_lid, synth_vtd
from iml_tui.engine.scoring import ConfusionCounts, ScoreRow, make_score_row, write_scores
from iml_tui.errors import UserError

runner = CliRunner()
TINY = tiny_stream_flags()


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feats")
    synth_lid(
        root / "lid",
        LidSynthConfig(n_train=20, n_dev=40, n_test=40, features=(("ecapalang", 6), ("wavlm", 4))),
    )
    synth_vtd(
        root / "vtd",
        VtdSynthConfig(
            envs=("rm1_mc20", "hotel_mc19"), sessions=2, segments=40, features=(("wavlm", 6),)
        ),
    )
    return root


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_lid_every_target_in_parallel_then_score(feats: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = [
        "simulate",
        "--task",
        "lid",
        "--split",
        "dev",
        "--feat-root",
        str(feats / "lid"),
        "--features",
        "ecapalang,wavlm",
        "--target",
        "all",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--sim-type",
        "fpstps",
        "--max-fb-samples",
        "4",
        "--n-queries",
        "5",
        "--samples-per-batch",
        "40",
        "--al-method",
        "ent",
        *TINY,
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["dev_bas", "dev_ha", "dev_yo"]
    manifest = json.loads((out / "dev_ha" / "manifest.json").read_text())
    assert manifest["config"]["features"] == ["ecapalang", "wavlm"]
    assert manifest["input_dim"] == 10 * 7 and manifest["n_batches"] == 3
    assert (out / "dev_ha" / "command.txt").read_text().startswith("iml-tui")
    assert "pooled" in res.stdout and "dev_yo" in res.stdout
    mtime = (out / "dev_ha" / "scores.csv").stat().st_mtime_ns
    again = runner.invoke(app, args)  # finished runs are read back
    assert again.exit_code == 0 and (out / "dev_ha" / "scores.csv").stat().st_mtime_ns == mtime
    table = _csv(runner.invoke(app, ["score", str(out), "--csv"]).stdout)
    assert [r["run"] for r in table] == ["dev_bas", "dev_ha", "dev_yo", "pooled"]
    assert all(int(r["n_al"]) == 15 for r in table[:3]) and table[3]["n_boot"] == "24"
    latex = runner.invoke(app, ["score", str(out / "dev_ha"), "--latex"]).stdout
    assert latex.startswith(r"\begin{tabular}{lrrrrrrrrr}") and r"dev\_ha" in latex
    assert r"\% adapt" in latex and latex.rstrip().endswith(r"\end{tabular}")


def test_vtd_environment(feats: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "vtd",
            "--env",
            "rm1_mc20",
            "--feat-root",
            str(feats / "vtd"),
            "--features",
            "wavlm",
            "--out",
            str(tmp_path),
            *TINY,
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "rm1_mc20" / "manifest.json").read_text())
    assert manifest["task"] == "vtd" and manifest["n_batches"] == 2
    assert manifest["boot_source"] == "hotel_mc19"
    assert manifest["config"]["order"] == "sorted"  # from the vtd preset


def test_order_command_matches_simulate(feats: Path, tmp_path: Path) -> None:
    paths = []
    for name, seed in (("a.txt", 5), ("b.txt", 5), ("c.txt", 6)):
        res = runner.invoke(
            app,
            [
                "order",
                "--method",
                "cluster",
                "--split",
                "dev",
                "--seed",
                str(seed),
                "--feat-root",
                str(feats / "lid"),
                "--out",
                str(tmp_path / name),
            ],
        )
        assert res.exit_code == 0, res.output
        paths.append(tmp_path / name)
    a, b, c = (read_order(p, 120) for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sorted(a.tolist()) == list(range(120))
    common = [
        "simulate",
        "--task",
        "lid",
        "--feat-root",
        str(feats / "lid"),
        "--target",
        "ha",
        "--samples-per-batch",
        "40",
        *TINY,
    ]
    runner.invoke(
        app, [*common, "--order", "cluster", "--seed", "5", "--out", str(tmp_path / "seeded")]
    )
    runner.invoke(
        app, [*common, "--order", str(paths[0]), "--seed", "5", "--out", str(tmp_path / "file")]
    )
    assert (tmp_path / "seeded" / "dev_ha" / "scores.csv").read_text() == (
        tmp_path / "file" / "dev_ha" / "scores.csv"
    ).read_text()


def test_budget_plan_round_trip(feats: Path, tmp_path: Path) -> None:
    common = [
        "simulate",
        "--task",
        "lid",
        "--feat-root",
        str(feats / "lid"),
        "--target",
        "yo",
        "--samples-per-batch",
        "40",
        "--n-queries",
        "6",
        *TINY,
    ]
    assert runner.invoke(app, [*common, "--out", str(tmp_path / "ref")]).exit_code == 0
    res = runner.invoke(app, ["budget", "plan", "frontheavy", str(tmp_path / "ref"), "fh"])
    assert res.exit_code == 0, res.output
    plan_dir = tmp_path / "ref" / "budget_plans" / "fh"
    plan = [int(v) for v in (plan_dir / "dev_yo.txt").read_text().split()]
    assert plan == [18, 0, 0]  # 18 queries fill the first batch from the front
    res = runner.invoke(
        app, [*common, "--budget-plan", str(plan_dir), "--out", str(tmp_path / "planned")]
    )
    assert res.exit_code == 0, res.output
    rows = _csv((tmp_path / "planned" / "dev_yo" / "scores.csv").read_text())
    assert [int(r["n_al"]) for r in rows] == plan


def _row(
    b: int, prev: list[ScoreRow], pos: int, neg: int, n_al: int, fn: int, fp: int, pool: int
) -> ScoreRow:
    post = ConfusionCounts(ps=pos if n_al == 0 else 0, ns=neg if n_al == 0 else 0, fns=fn, fps=fp)
    return make_score_row(
        b,
        ConfusionCounts(pos, neg, fn, fp),
        post,
        previous=prev,
        n_target_labelled=0,
        n_samples=pool,
        n_al=n_al,
    )


def test_score_trivial_extremes_are_imlm_one(tmp_path: Path) -> None:
    everything: list[ScoreRow] = []  # the human labels every sample, the model decides nothing
    nothing: list[ScoreRow] = []  # the model never fires and asks nothing
    for b, (pos, neg) in enumerate([(3, 7), (5, 5), (1, 9)]):
        everything.append(
            _row(
                b,
                everything,
                pos,
                neg,
                pos + neg,
                0,
                0,
                sum(p + n for p, n in [(3, 7), (5, 5), (1, 9)][: b + 1]),
            )
        )
        nothing.append(_row(b, nothing, pos, neg, 0, pos, 0, 0))
    for name, rows in (("all", everything), ("none", nothing)):
        (tmp_path / name).mkdir()
        write_scores(tmp_path / name / "scores.csv", rows)
    res = runner.invoke(app, ["score", str(tmp_path / "all"), str(tmp_path / "none"), "--csv"])
    assert res.exit_code == 0, res.output
    table = {r["run"]: r for r in _csv(res.stdout)}
    assert table["all"]["imlm"] == table["none"]["imlm"] == table["pooled"]["imlm"] == "1.0000"
    assert table["all"]["pct_adapt"] == "100.00" and table["none"]["fnr"] == "1.0000"
    shown = runner.invoke(app, ["score", str(tmp_path)])
    assert shown.exit_code == 0 and "1.0000" in shown.stdout and "IMLM" in shown.stdout
    cmp = runner.invoke(
        app, ["score", "--compare", str(tmp_path / "all"), str(tmp_path / "none"), "--csv"]
    )
    assert cmp.exit_code == 0, cmp.output
    by_metric = {r["metric"]: r for r in _csv(cmp.stdout)}
    assert by_metric["fnr"]["mean_a"] == "0.0000" and by_metric["fnr"]["pairs"] == "3"
    assert by_metric["imlm"]["p_value"] == "1"  # per-batch IMLM is 1.0 on both sides


def test_the_original_options_reach_the_run(feats: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    base = ["simulate", "--task", "lid", "--feat-root", str(feats / "lid"), "--target", "ha"]
    args = [
        *base,
        "--out",
        str(out),
        "--samples-per-batch",
        "40",
        "--al-method",
        "combo-rand",
        "--combo",
        "ent,necs",
        "--separate-class-al",
        "--adapt-distr",
        "0.5",
        "--loss",
        "dcf",
        "--dsmax-mult",
        "2",
        "--learn-mult",
        "--learn-error-weight",
        "--monitor",
        "train/acc",
        "--mode",
        "max",
        "--schedule-lr",
        "--lrs-patience",
        "1",
        "--load-best",
        *TINY,
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "dev_ha" / "manifest.json").read_text())["config"]
    want = {
        "al_method": "combo-rand",
        "combo": ["ent", "necs"],
        "separate_class_al": True,
        "loss": "dcf",
        "dsmax_mult": 2.0,
        "learn_mult": True,
        "learn_error_weight": True,
        "monitor": "train/acc",
        "mode": "max",
        "schedule_lr": True,
        "lrs_patience": 1,
        "load_best": True,
    }
    assert {k: cfg[k] for k in want} == want
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--auto-mult", "2", *TINY])
    assert isinstance(bad.exception, UserError) and "inverse" in str(bad.exception)
    wrong = runner.invoke(app, [*base, "--out", str(tmp_path / "c"), "--mode", "up", *TINY])
    assert isinstance(wrong.exception, UserError) and "mode" in str(wrong.exception)
    forest = runner.invoke(
        app, [*base, "--out", str(tmp_path / "d"), "--ensemble", "--al-method", "egl", *TINY]
    )
    assert isinstance(forest.exception, UserError) and "gradients" in str(forest.exception)
    pool = runner.invoke(app, ["simulate", "--load-best"])
    assert isinstance(pool.exception, UserError) and "--load-best" in str(pool.exception)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["simulate", "--task", "lid", "--feat-root", "/nonexistent/feats"], "feature root"),
        (["simulate", "--task", "lid", "--pool-dir", "pools"], "--pool-dir"),
        (["score", "/nonexistent/run"], "run folder not found"),
    ],
)
def test_user_errors_exit_2_with_one_line(args: list[str], needle: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("iml-tui: error:")
