"""`iml-tui encoder train-utterance` end to end: prepare lid, train, resume, extract with the
trained folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import torch
from lid_tones import make_lid_tones
from typer.testing import CliRunner

from iml_tui.cli import app

torch.set_num_threads(1)
runner = CliRunner()


def test_train_utterance_resume_and_extract(tmp_path: Path) -> None:
    make_lid_tones(tmp_path / "src", per_split=(4, 2, 1))
    res = runner.invoke(
        app, ["prepare", "lid", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "prep")]
    )
    assert res.exit_code == 0, res.output
    args = [
        "encoder",
        "train-utterance",
        "--data",
        str(tmp_path / "prep"),
        "--out",
        str(tmp_path / "enc"),
        "--channels",
        "16",
        "--embedding-dim",
        "8",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]
    res = runner.invoke(app, [*args, "--epochs", "1"])
    assert res.exit_code == 0, res.output
    assert "epoch 1: loss" in res.output and "dev accuracy" in res.output
    assert "best dev accuracy" in res.output and "--encoder ecapa" in res.output
    res = runner.invoke(app, [*args, "--epochs", "2"])  # resumes: only epoch 2 runs
    assert res.exit_code == 0, res.output
    assert "epoch 2: loss" in res.output and "epoch 1:" not in res.output

    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(tmp_path / "prep" / "dev"),
            "--out",
            str(tmp_path / "dev.h5"),
            "--encoder",
            "ecapa",
            "--checkpoint",
            str(tmp_path / "enc"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "dev.h5") as f:
        assert f["embeddings"].shape == (6, 1, 8)


def test_user_error_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from iml_tui.cli import main; main()",
            "encoder",
            "train-utterance",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no prepared train split" in proc.stderr
