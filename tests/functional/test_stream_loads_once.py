"""`simulate --task lid` and `label --task lid` check the config once and read each LID store
once, however many places ask for the split (counted by wrapping the reader and the check)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from typer.testing import CliRunner

import iml_tui.bench.stream_runs as stream_runs
import iml_tui.data.stream_data as sd
import iml_tui.engine.paradigms.stream as st
from iml_tui.cli import Task, app, label_cmd
from iml_tui.data.stream_synth import LidSynthConfig, synth_lid
from iml_tui.tui.app import LabelApp

SMALL = {
    "comp_hidden": 16,
    "embed_dim": 8,
    "class_hidden": 16,
    "max_epochs": 3,
    "patience": 2,
    "n_queries": 2,
}


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Counter[str]]:
    root = tmp_path / "lid"
    synth_lid(root, LidSynthConfig(n_train=20, n_dev=40, n_test=10, features=(("ecapalang", 6),)))
    counts: Counter[str] = Counter()
    read, check = sd._read_store, st.validate_config

    def counted_read(path: Path, fix: str) -> Any:
        counts[f"read {path.parent.name}/{path.name}"] += 1
        return read(path, fix)

    def counted_check(cfg: Any) -> None:
        counts["validate"] += 1
        check(cfg)

    monkeypatch.setattr(sd, "_LOADED", {})
    monkeypatch.setattr(sd, "_read_store", counted_read)
    for module in (st, stream_runs):
        monkeypatch.setattr(module, "validate_config", counted_check)
    return root, counts


@pytest.mark.parametrize("target", ["ha", "all"])
def test_simulate_lid_checks_once_and_reads_each_store_once(
    counted: tuple[Path, Counter[str]], tmp_path: Path, target: str
) -> None:
    root, counts = counted
    sets = [x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")]
    args = ["simulate", "--task", "lid", "--feat-root", str(root), "--features", "ecapalang"]
    args += ["--target", target, "--samples-per-batch", "40", "--threads", "1"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "runs"), *sets])
    assert res.exit_code == 0, res.output
    # the streamed split (dev) and the bootstrap split (train), for one run or three
    assert counts == {"validate": 1, "read ecapalang/dev.h5": 1, "read ecapalang/train.h5": 1}


def test_label_lid_checks_once_and_reads_each_store_once(
    counted: tuple[Path, Counter[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, counts = counted
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    original = LabelApp.run

    def headless_run(self: LabelApp) -> None:
        async def pilot(p: Pilot[None]) -> None:
            await p.pause()
            await p.press("q")

        original(self, headless=True, size=(100, 30), auto_pilot=pilot)

    monkeypatch.setattr(LabelApp, "run", headless_run)
    label_cmd(
        tmp_path / "proj",
        task=Task.lid,
        pool_dir=None,
        strategy=None,
        budgets=None,
        audio_root=None,
        annotator="ana",
        player="file",
        port=0,
        keys=None,
        autoplay=False,
        graphics="halfblock",
        feat_root=str(root),
        target="ha",
        env=None,
        sim_type=None,
        samples_per_batch=30,
        set_=[f"stream.{k}={v}" for k, v in SMALL.items()],
    )
    assert (tmp_path / "proj" / "project.yaml").is_file()
    assert counts == {"validate": 1, "read ecapalang/dev.h5": 1, "read ecapalang/train.h5": 1}
