"""Event tables into a project (``import-labels PROJECT TABLES``): Raven, Audacity and CSV event
tables label every clip of their recordings (hand-computed against a brute-force overlap), with
extents clipped to each clip; a second import replaces the first; detect's own tables read
back; bad tables are one line, exit 2, and the journal is untouched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.engine.import_events import table_recording
from iml_tui.engine.journal import Journal

SR = 8000
SECONDS = 9.0
CLIP, HOP = 2.0, 1.0
RECORDINGS = ("site1/dawn.wav", "site1/dusk.wav", "site2/noon.wav")


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.output


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imp")
    rng = np.random.default_rng(0)
    for rel in RECORDINGS:
        path = root / "audio" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.05 * rng.standard_normal(int(SECONDS * SR))).astype(np.float32), SR)
    prep, pool, proj = root / "prep", root / "pool", root / "proj"
    _ok(
        [
            "prepare",
            "recordings",
            "--source",
            str(root / "audio"),
            "--classes",
            "call,song",
            "--out",
            str(prep),
            "--clip",
            str(CLIP),
            "--hop",
            str(HOP),
        ]
    )
    _ok(
        [
            "extract",
            "--input",
            str(prep),
            "--out",
            str(pool / "train.h5"),
            "--encoder",
            "mfcc-stats",
        ]
    )
    _ok(["project", "new", str(proj), "--pool-dir", str(pool), "--budgets", "10,20"])
    return proj


@pytest.fixture
def proj(project: Path, tmp_path: Path) -> Path:
    """A fresh copy of the project (its journal), on the same pool."""
    shutil.copytree(project, tmp_path / "proj")
    return tmp_path / "proj"


def _journal(
    proj: Path,
) -> tuple[dict[str, tuple[int, ...]], dict[str, list[tuple[float, float, int]]]]:
    """item id -> labels in force; item id -> extents in force (onset, offset, class)."""
    with Journal(proj / "journal.sqlite") as j:
        labels = {str(e.item_id): tuple(e.labels or ()) for e in j.current_labels().values()}
        extents = {
            str(evs[0].item_id): sorted(
                (e.payload["onset"], e.payload["offset"], (e.labels or (0,))[0]) for e in evs
            )
            for evs in j.current_extents().values()
        }
    return labels, extents


def _expected(
    truth: dict[str, list[tuple[float, float, int]]],
) -> tuple[dict[str, tuple[int, ...]], dict[str, list[tuple[float, float, int]]]]:
    """Brute force: every clip of each recording in ``truth``, its overlapping events."""
    labels: dict[str, tuple[int, ...]] = {}
    extents: dict[str, list[tuple[float, float, int]]] = {}
    n = 1 + int(np.ceil((SECONDS - CLIP) / HOP - 1e-9))
    for rel, events in truth.items():
        for k in range(n):
            lo = k * HOP
            cid = f"{rel}@{lo:g}"
            inside = [(a, b, c) for a, b, c in events if a < lo + CLIP and b > lo]
            labels[cid] = tuple(sorted({c for *_, c in inside}))
            if inside:
                extents[cid] = sorted(
                    (round(max(a - lo, 0.0), 6), round(min(b - lo, CLIP), 6), c)
                    for a, b, c in inside
                )
    return labels, extents


def _tables(root: Path) -> Path:
    """dawn: an Audacity file (two calls, one song); noon: a Raven table named as Raven names
    it (one call); dusk: an empty Audacity file (no events at all)."""
    (root / "site1").mkdir(parents=True)
    (root / "site2").mkdir()
    (root / "site1" / "dawn.txt").write_text("0.5\t1.25\tcall\n3.0\t5.5\tcall\n6.2\t6.9\tsong\n")
    (root / "site1" / "dusk.txt").write_text("")
    (root / "site2" / "noon.Table.1.selections.txt").write_text(
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
        "High Freq (Hz)\tAnnotation\n"
        "1\tSpectrogram 1\t1\t7.5\t9.0\t0\t4000\tcall\n"
    )
    return root


TRUTH = {
    "site1/dawn.wav": [(0.5, 1.25, 0), (3.0, 5.5, 0), (6.2, 6.9, 1)],
    "site1/dusk.wav": [],
    "site2/noon.wav": [(7.5, 9.0, 0)],
}


def test_tables_label_every_clip_of_their_recordings(proj: Path, tmp_path: Path) -> None:
    out = _ok(["import-labels", str(proj), str(_tables(tmp_path / "reviewed"))])
    want_labels, want_extents = _expected(TRUTH)
    labels, extents = _journal(proj)
    assert labels == want_labels
    assert extents == want_extents
    assert len(labels) == 3 * 8  # 9 s at a 2 s clip and 1 s hop: 8 clips per recording
    assert extents["site1/dawn.wav@3"] == [(0.0, 2.0, 0)]  # hand-computed: 3.0-5.5 over 3-5
    assert extents["site1/dawn.wav@5"] == [(0.0, 0.5, 0), (1.2, 1.9, 1)]
    assert labels["site1/dawn.wav@5"] == (0, 1)
    negatives = sum(not v for v in want_labels.values())
    n_ext = sum(len(v) for v in want_extents.values())
    assert f"imported 24 clip label(s) of 3 recording(s) ({negatives} without events, " in out
    assert f"{n_ext} extent(s)) as import:reviewed" in out


def test_a_second_import_replaces_the_first(proj: Path, tmp_path: Path) -> None:
    _ok(["import-labels", str(proj), str(_tables(tmp_path / "first"))])
    csv = tmp_path / "second.csv"  # dawn reviewed again as a CSV: one call moved, song gone
    csv.write_text(
        "file,onset,offset,label\nsite1/dawn.wav,0.5,1.25,call\nsite1/dawn.wav,4,6,call\n"
    )
    out = _ok(["import-labels", str(proj), str(csv)])
    assert "earlier extent(s) replaced" in out
    truth = {**TRUTH, "site1/dawn.wav": [(0.5, 1.25, 0), (4.0, 6.0, 0)]}
    want_labels, want_extents = _expected(truth)
    assert _journal(proj) == (want_labels, want_extents)


def test_detect_tables_name_their_recordings() -> None:
    root = Path("/x/raven")
    assert table_recording(root / "site1" / "dawn.Table.1.selections.txt", root) == "site1/dawn"
    assert table_recording(root / "noon.txt", root) == "noon"
    assert table_recording(Path("/y/dusk.Table.2.selections.txt"), Path("/y")) == "dusk"


def test_exported_raven_tables_import_back(proj: Path, tmp_path: Path) -> None:
    """export writes a selection per clip extent (overlapping pieces of a call); they join."""
    _ok(["import-labels", str(proj), str(_tables(tmp_path / "reviewed"))])
    before = _journal(proj)
    _ok(["export", str(proj), "--format", "raven", "--out", str(tmp_path / "raven")])
    _ok(["import-labels", str(proj), str(tmp_path / "raven")])
    labels, extents = _journal(proj)
    assert labels == before[0]
    assert extents == before[1]


def _fails(proj: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", "import-labels", str(proj), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "text,needle",
    [
        (
            "file,onset,offset,label\nsite3/far.wav,1,2,call\n",
            "1 recording(s) named by the tables are not in the pool, e.g. 'site3/far.wav'",
        ),
        (
            "file,onset,offset,label\nsite1/dawn.wav,1,2,frog\n",
            "class 'frog' is not a class of the project",
        ),
        ("file,onset,offset,label\nsite1/dawn.wav,2,1,call\n", "ends before it starts"),
        ("file,onset,offset,label\nsite1/dawn.wav,one,2,call\n", "bad.csv"),
    ],
)
def test_bad_tables_are_one_line_and_keep_the_journal(
    proj: Path, tmp_path: Path, text: str, needle: str
) -> None:
    _ok(["import-labels", str(proj), str(_tables(tmp_path / "reviewed"))])
    before = _journal(proj)
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    proc = _fails(proj, str(bad))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert _journal(proj) == before


def test_skip_unknown_imports_the_rest(proj: Path, tmp_path: Path) -> None:
    csv = tmp_path / "some.csv"
    csv.write_text("file,onset,offset,label\nsite3/far.wav,1,2,call\nsite2/noon.wav,7.5,9,call\n")
    res = CliRunner().invoke(app, ["import-labels", str(proj), str(csv), "--skip-unknown"])
    assert res.exit_code == 0, res.output
    assert "skipped 1 recording(s) not in the pool, e.g. site3/far.wav" in res.output
    want_labels, want_extents = _expected({"site2/noon.wav": TRUTH["site2/noon.wav"]})
    assert _journal(proj) == (want_labels, want_extents)


def test_status_counts_what_the_import_wrote(proj: Path, tmp_path: Path) -> None:
    import json

    assert "model: none yet" in _ok(["project", "status", str(proj)])
    _ok(["import-labels", str(proj), str(_tables(tmp_path / "reviewed"))])
    want_labels, want_extents = _expected(TRUTH)
    st = json.loads(_ok(["project", "status", str(proj), "--json"]))
    assert st["items"] == 24 and st["labelled"] == 24
    assert st["per_class"] == {
        "call": sum(0 in v for v in want_labels.values()),
        "song": sum(1 in v for v in want_labels.values()),
    }
    assert st["negatives"] == sum(not v for v in want_labels.values())
    assert st["extents"] == sum(map(len, want_extents.values()))
    assert st["clips_with_extents"] == len(want_extents)
    assert st["budgets"] == [10, 20] and st["next_budget"] is None and st["model"] is None
    ((who,),) = [[a] for a in st["annotators"]]
    assert who["name"] == "import:reviewed" and who["labels"] == 24
    assert who["median_seconds"] is None  # imports carry no labelling time
    text = _ok(["project", "status", str(proj)])
    assert "24 items, 24 labelled (100.0 %)" in text and "every budget reached" in text
    assert f"labels: call {st['per_class']['call']}, song {st['per_class']['song']}" in text


def test_status_of_a_stream_project(tmp_path: Path) -> None:
    import json

    from iml_tui.data.stream_synth import LidSynthConfig, synth_lid
    from iml_tui.engine.export import catalog
    from iml_tui.engine.project import Project

    root = tmp_path / "lid"
    synth_lid(root, LidSynthConfig(n_train=10, n_dev=20, n_test=5, features=(("ecapalang", 6),)))
    proj = tmp_path / "proj"
    _ok(["project", "new", str(proj), "--task", "lid", "--feat-root", str(root), "--target", "ha"])
    ids = catalog(Project.load(proj)).ids
    labels = tmp_path / "labels.csv"
    labels.write_text(f"id,labels\n{ids[0]},ha\n{ids[1]},none\n{ids[2]},ha\n")
    _ok(["import-labels", str(proj), str(labels)])
    st = json.loads(_ok(["project", "status", str(proj), "--json"]))
    assert st["mode"] == "stream" and st["items"] == len(ids) == 3 * 20  # dev: 3 languages
    assert st["labelled"] == 3 and st["per_class"] == {"ha": 2} and st["negatives"] == 1
    assert st["budgets"] == [] and st["model"] is None
    assert "labels: ha 2, none 1" in _ok(["project", "status", str(proj)])
