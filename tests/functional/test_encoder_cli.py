"""`iml-tui encoder train` / `encoder eval` end to end on the tiny generated SL division."""

from __future__ import annotations

from pathlib import Path

import torch
from audio_corpora import make_dcase_dev
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.dcase import prepare_dcase
from iml_tui.features import get_encoder

torch.set_num_threads(1)
runner = CliRunner()


def test_encoder_train_resume_and_eval(tmp_path: Path) -> None:
    make_dcase_dev(tmp_path / "src")
    prepare_dcase(tmp_path / "src", tmp_path / "prep", "sl")
    args = [
        "encoder",
        "train",
        "--data",
        str(tmp_path / "prep"),
        "--out",
        str(tmp_path / "run"),
        "--from-scratch",
        "--widths",
        "4,4,8,8,8,16",
        "--hidden",
        "16",
        "--batch-size",
        "2",
        "--steps-per-epoch",
        "1",
        "--device",
        "cpu",
    ]
    res = runner.invoke(app, [*args, "--epochs", "1"])
    assert res.exit_code == 0, res.output
    assert "epoch 1: loss" in res.output and "best valid mAP" in res.output
    res = runner.invoke(app, [*args, "--epochs", "2"])  # resumes: only epoch 2 runs
    assert res.exit_code == 0, res.output
    assert "epoch 2: loss" in res.output and "epoch 1:" not in res.output
    best = tmp_path / "run" / "encoder_best.pt"
    assert get_encoder("cnn14", checkpoint=best, device="cpu").dim == 16
    res = runner.invoke(
        app,
        [
            "encoder",
            "eval",
            "--checkpoint",
            str(best),
            "--data",
            str(tmp_path / "prep" / "sl"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    for name in ("Bird_one", "Hyena_giggle", "Tachybaptus_ruficollis_song", "mAP (macro)"):
        assert name in res.output
    res = runner.invoke(
        app,
        [
            "encoder",
            "train",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "x"),
            "--from-scratch",
        ],
    )
    assert res.exit_code != 0 and "no SL division" in str(res.exception)
