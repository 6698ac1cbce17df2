"""Sequence features in a stream run: `extract -o segments=K` stores K frames per segment and
`simulate --rnn-layers N` reads them through the GRU; an order-only task that a mean-pooled
embedding cannot solve and the GRU can."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_corpora import make_vtd
from tiny_stream import tiny_stream_flags
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.store import PoolMeta, write_pool
from iml_tui.errors import UserError

runner = CliRunner()
TINY = tiny_stream_flags(rnn_hidden=8)


def _vtd(feats: Path, features: str, out: Path, *extra: str) -> list[str]:
    return [
        "simulate",
        "--task",
        "vtd",
        "--env",
        "hotel_mc19",
        "--feat-root",
        str(feats),
        "--features",
        features,
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated VTD corpus, prepared and extracted with mfcc-stats over 4 spans per segment."""
    root = tmp_path_factory.mktemp("seq")
    src = make_vtd(root / "vtd")
    res = runner.invoke(app, ["prepare", "vtd", "--source", str(src), "--out", str(root / "prep")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(root / "prep"),
            "--out",
            str(root / "feats" / "mfcc"),
            "-o",
            "segments=4",
            "--batch-size",
            "8",
        ],
    )
    assert res.exit_code == 0, res.output
    return root / "feats"


def test_extracted_sequences_run_through_the_gru(segments: Path, tmp_path: Path) -> None:
    out = tmp_path / "gru"
    args = _vtd(segments, "mfcc", out, "--rnn-layers", "1", *TINY)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "hotel_mc19" / "manifest.json").read_text())
    context = manifest["config"]["context"]
    assert manifest["input_frames"] == 4 * (2 * context + 1)
    assert manifest["input_dim"] == 120 * 4 * (2 * context + 1)
    assert manifest["config"]["rnn_layers"] == 1


def test_sequences_without_the_gru_and_with_the_forest_are_one_line(
    segments: Path, tmp_path: Path
) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", *_vtd(segments, "mfcc", tmp_path / "a", *TINY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"iml-tui: error: {segments / 'mfcc'}/")
    assert "T = 4 frames" in lines[0] and "--rnn-layers" in lines[0]
    assert not (tmp_path / "a" / "hotel_mc19" / "scores.csv").exists()
    forest = _vtd(segments, "mfcc", tmp_path / "b", "--ensemble", "--rnn-layers", "1")
    res = runner.invoke(app, [*forest, *TINY])
    assert isinstance(res.exception, UserError)
    assert "rnn_layers" in str(res.exception) and "ensemble" in str(res.exception)


def _ordered_stores(root: Path, seed: int = 0) -> None:
    """Two environments of two sessions; each segment is T = 6 frames of D = 3. Live segments rise
    along dimension 0 and playback segments fall through the same values, so the mean over
    frames holds no class information. ``seq`` keeps the frames, ``mean`` their mean (T = 1)."""
    rng = np.random.default_rng(seed)
    t, d, n = 6, 3, 120
    ramp = np.linspace(-1.0, 1.0, t)
    for env in ("rm1_mc20", "hotel_mc19"):
        for s in range(2):
            y = rng.permutation(np.arange(n) % 2).astype(np.uint8)
            x = 0.3 * rng.normal(size=(n, t, d))
            x[:, :, 0] += np.where(y[:, None] == 1, ramp[None, :], ramp[None, ::-1])
            x[:, :, 1] += rng.normal(size=(n, 1))
            ids = [f"session{s}/{k:05d}" for k in range(n)]
            meta = PoolMeta(encoder="synthetic-order", clip_seconds=5.0, hop_seconds=5.0)
            write_pool(
                root / "seq" / env / f"session{s}.h5",
                x.astype(np.float32),
                np.repeat(y[:, None, None], t, axis=1),
                ["live"],
                ids,
                meta,
            )
            write_pool(
                root / "mean" / env / f"session{s}.h5",
                x.mean(axis=1, keepdims=True).astype(np.float32),
                y[:, None, None],
                ["live"],
                ids,
                meta,
            )


def _pre_feedback_error(run: Path) -> float:
    """Share of the streamed segments the model decided wrongly before any feedback."""
    with open(run / "hotel_mc19" / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    wrong = sum(int(r["pre_fns"]) + int(r["pre_fps"]) for r in rows)
    seen = sum(int(r["pre_ps"]) + int(r["pre_ns"]) for r in rows)
    assert seen == 240
    return wrong / seen


def test_the_gru_hears_the_order_a_mean_cannot(tmp_path: Path) -> None:
    _ordered_stores(tmp_path / "feats")
    common = [
        "--set",
        "bootstrap=60",
        "--set",
        "n_queries=4",
        "--set",
        "context=0",
        "--set",
        "comp_hidden=32",
        "--set",
        "embed_dim=16",
        "--set",
        "class_hidden=32",
        "--set",
        "rnn_hidden=16",
        "--set",
        "max_epochs=40",
        "--set",
        "patience=5",
        "--set",
        "lr=0.01",
        "--threads",
        "1",
    ]
    gru_out, mean_out = tmp_path / "gru", tmp_path / "mean"
    res = runner.invoke(
        app, [*_vtd(tmp_path / "feats", "seq", gru_out, "--rnn-layers", "1"), *common]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*_vtd(tmp_path / "feats", "mean", mean_out), *common])
    assert res.exit_code == 0, res.output
    gru, mean = _pre_feedback_error(gru_out), _pre_feedback_error(mean_out)
    assert gru < 0.15 and mean > 0.3, (gru, mean)
