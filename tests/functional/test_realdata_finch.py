"""Real recordings through the real path: Bengalese finch songs -> DCASE layout -> `prepare dcase`
-> `extract` -> a short `simulate --task bioacoustic`.

Data: ``../shared/realdata/bengalese_finch_gy6or6_sed`` (44 songs of one bird, 16 kHz FLAC,
``labels.csv``: file,label,onset,offset; see its SOURCE.md), read in place (the environment variable
``IML_TUI_REALDATA`` may point at another ``realdata`` folder); nothing is copied into the
repository: the converted set lives in pytest's tmp_path, its audio as symbolic links.

Mapping to the DCASE Validation_Set layout (one class per recording, as in the AL set):
- classes: the four most frequent syllable types (``i`` 541, ``e`` 378, ``a`` 192, ``b`` 191
  events), named ``syllable_<type>``;
- the 44 recordings, in file order, are dealt round-robin into four recording sets (datasets
  ``BF1``..``BF4``, 11 recordings each); set k is annotated for class k only: its syllables of that
  type are POS rows of ``Q``, the unclassifiable ``-`` / ``x`` events UNK, every other syllable is
  left out (background), exactly like a DCASE validation file annotated for one species;
- ``DCASE2024_task5_validation_set_classes.csv`` lists (dataset, recording, class).
"""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.store import PoolStore

FINCH = "bengalese_finch_gy6or6_sed"
N_CLASSES = 4
UNK_LABELS = ("-", "x")


def _realdata() -> Path:
    env = os.environ.get("IML_TUI_REALDATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def finch_to_dcase(finch: Path, root: Path) -> list[str]:
    """Write the Validation_Set layout of the finch songs under ``root``; returns the classes."""
    with open(finch / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    counts = Counter(r["label"] for r in rows if r["label"] not in UNK_LABELS)
    top = [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    top = top[:N_CLASSES]
    files = sorted({r["file"] for r in rows})
    table = []
    for j, rel in enumerate(files):
        k = j % N_CLASSES
        dataset, stem = f"BF{k + 1}", Path(rel).stem
        folder = root / "Development_Set" / "Validation_Set" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        audio = folder / f"{stem}.flac"
        try:
            audio.symlink_to(finch / rel)
        except OSError:
            shutil.copy(finch / rel, audio)
        events = sorted(
            (float(r["onset"]), float(r["offset"]), "POS" if r["label"] == top[k] else "UNK")
            for r in rows
            if r["file"] == rel and (r["label"] == top[k] or r["label"] in UNK_LABELS)
        )
        with open(folder / f"{stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Audiofilename", "Starttime", "Endtime", "Q"])
            w.writerows([f"{stem}.flac", f"{s:.5f}", f"{e:.5f}", v] for s, e, v in events)
        table.append([dataset, stem, f"S{k}", f"syllable {top[k]}"])
    with open(root / "DCASE2024_task5_validation_set_classes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "recording", "class_code", "class_name"])
        w.writerows(table)
    return [f"syllable_{t}" for t in top]


def test_finch_songs_prepare_extract_simulate(tmp_path: Path) -> None:
    finch = _realdata() / FINCH
    if not (finch / "labels.csv").is_file():
        pytest.skip(
            f"real recordings not available at {finch} (set IML_TUI_REALDATA to the "
            "realdata folder)"
        )
    runner = CliRunner()
    classes = finch_to_dcase(finch, tmp_path / "src")
    assert classes == ["syllable_i", "syllable_e", "syllable_a", "syllable_b"]
    res = runner.invoke(
        app,
        [
            "prepare",
            "dcase",
            "--source",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "prepared"),
            "--division",
            "al",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "syllable_i" in res.output
    pools = tmp_path / "pools"
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(tmp_path / "prepared" / "al"),
            "--out",
            str(pools),
            "--encoder",
            "mfcc-stats",
            "--batch-size",
            "32",
        ],
    )
    assert res.exit_code == 0, res.output
    train = PoolStore(pools / "train.h5")
    assert train.class_list == classes and train.n >= 44
    positives = train.clip_labels().sum(axis=0)
    assert (positives > 0).all()  # every class has positive train clips
    for split in ("valid", "test"):
        assert PoolStore(pools / f"{split}.h5").n >= 20
    out = tmp_path / "runs"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "bioacoustic",
            "--pool-dir",
            str(pools),
            "--strategy",
            "mfft,rand",
            "--start",
            "cold",
            "--budgets",
            "10,20",
            "--seeds",
            "1",
            "--max-epochs",
            "3",
            "--set",
            "hidden=32",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    with open(out / "al_results.csv", newline="") as f:
        results = list(csv.DictReader(f))
    assert len(results) == 4 and {r["sampling_method"] for r in results} == {"mfft", "rand"}
    assert all(0.0 <= float(r["test_cmap_mean"]) <= 100.0 for r in results)
