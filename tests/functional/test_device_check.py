"""benchmarks/device_check.sh on the CPU with tiny sizes, and its refusal of a missing GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHON": sys.executable, "WORK": str(tmp_path / "work"), **env}
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=full, check=False, timeout=600
    )


@pytest.mark.slow
def test_cpu_run_times_every_step(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    proc = _run(
        tmp_path,
        DEVICE="cpu",
        N_TRAIN="120",
        N_VALID="40",
        N_TEST="40",
        T="8",
        D="16",
        BUDGET="20",
        MAX_EPOCHS="2",
        PRECISIONS="fp32 bf16",
        EXTRACT_MINUTES="0.5",
        BATCH="4",
        OUT=str(out),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert set(summary["steps_seconds"]) == {
        "pool synth",
        "simulate round (fp32)",
        "simulate round (bf16)",
        "prepare dcase (al)",
        "extract cnn14 (cpu)",
    }
    assert all(float(s) > 0 for s in summary["steps_seconds"].values())
    assert sum(summary["extract_clips"].values()) > 0
    assert "fp32: train" in proc.stdout and "bf16: train" in proc.stdout
    rounds = tmp_path / "work" / "sim_bf16" / "runs" / "rand_cold_seed1" / "rounds.csv"
    assert rounds.read_text().splitlines()[1].startswith("20,20,")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_stops_at_once(tmp_path: Path) -> None:
    proc = _run(tmp_path, DEVICE="cuda")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "device check: device 'cuda' asked for but CUDA is not available — use --device cpu or auto"
    ]
    assert not (tmp_path / "work" / "pool").exists()
