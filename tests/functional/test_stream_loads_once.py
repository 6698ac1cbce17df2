"""`simulate --task lid` checks the config once and reads each LID store once, however many
places ask for the split (counted by wrapping the reader and the check; `label --task lid`:
tests/tui/test_label_stream_cli.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from stream_counts import count_checks_and_reads
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.stream_synth import LidSynthConfig, synth_lid

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
    return root, count_checks_and_reads(monkeypatch)


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
