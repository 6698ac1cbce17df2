"""Your own recordings, end to end through the CLI on generated audio: prepare recordings (labels
for some files only) -> extract -> project new (no valid.h5) -> train -> detect -> tables.

Recordings: 16 kHz noise with 2 s tone calls (1.5 kHz) at known times. mfcc-stats embeds each 2 s
clip (1 s hop) into one frame, so the detections have 1 s resolution; the onset tolerance is 1 s.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from crowsetta.formats.bbox.raven import Raven
from crowsetta.formats.seq.audseq import AudSeq
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.store import PoolStore
from iml_tui.engine.detect_recordings import read_detections
from iml_tui.engine.journal import Journal
from iml_tui.engine.metrics import event_prf
from iml_tui.errors import UserError

SR = 16000
SECONDS = 24.0
CALLS = {  # recording -> call onsets (s); each call lasts 2 s
    "site1/dawn.wav": [3.0, 11.0, 18.0],
    "site1/dusk.wav": [6.0, 15.0],
    "site2/night.wav": [2.0, 9.0, 20.0],
    "site2/noon.wav": [5.0, 13.0],
}
LABELLED = ("site1/dawn.wav", "site2/night.wav")
FAST = [
    "--set",
    "hidden=32",
    "--set",
    "max_epochs=60",
    "--set",
    "lr=0.003",
    "--set",
    "min_lr=0.0001",
    "--set",
    "lr_patience=3",
    "--set",
    "batch_size=16",
]


def _write(root: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * SR)) / SR
    for rel, onsets in CALLS.items():
        x = 0.05 * rng.standard_normal(t.size)
        for on in onsets:
            m = (t >= on) & (t < on + 2.0)
            x[m] += 0.4 * np.sin(2 * np.pi * 1500 * t[m])
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), SR)


def _truth(recordings: tuple[str, ...] | None = None) -> list[tuple[str, float, float, str]]:
    return [
        (rel, on, on + 2.0, "call")
        for rel, ons in CALLS.items()
        if recordings is None or rel in recordings
        for on in ons
    ]


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.output


def _detect_args(chain: dict[str, Path], audio: Path, out: Path, *extra: str) -> list[str]:
    """``detect`` of the chain's project over ``audio`` into ``out`` (events of 1 s at least)."""
    base = ["detect", str(chain["proj"]), "--recordings", str(audio), "--out", str(out)]
    return [*base, "--min-duration", "1", *extra]


def _detect(
    chain: dict[str, Path], audio: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """The same as a process of its own (exit status and stderr as a user sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", *_detect_args(chain, audio, out, *extra)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("own")
    audio = root / "audio"
    _write(audio)
    ann = root / "calls.csv"
    with open(ann, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "onset", "offset", "label"])
        for rel, on, off, label in _truth(LABELLED):
            w.writerow([rel, on, off, label])
    prep, pool, proj, det = root / "prep", root / "pool", root / "proj", root / "det"
    _ok(
        [
            "prepare",
            "recordings",
            "--source",
            str(audio),
            "--classes",
            "call,other",
            "--out",
            str(prep),
            "--clip",
            "2",
            "--hop",
            "1",
            "--labels",
            str(ann),
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
    _ok(
        [
            "project",
            "new",
            str(proj),
            "--pool-dir",
            str(pool),
            "--strategy",
            "mfft",
            "--budgets",
            "60,80",
            *FAST,
        ]
    )
    out = _ok(["train", str(proj)])
    assert "mAP estimated from" in out
    _ok(["detect", str(proj), "--recordings", str(audio), "--out", str(det), "--min-duration", "1"])
    return {"audio": audio, "pool": pool, "proj": proj, "det": det, "root": root}


def test_pool_marks_unannotated_clips_unknown(chain: dict[str, Path]) -> None:
    store = PoolStore(chain["pool"] / "train.h5")
    known = store.known()
    ids = store.ids
    per_file = {
        rel: {bool(k) for i, k in zip(ids, known, strict=True) if i.startswith(rel + "@")}
        for rel in CALLS
    }
    assert per_file == {rel: {rel in LABELLED} for rel in CALLS}
    assert not store.all_known


def test_detections_match_the_calls(chain: dict[str, Path]) -> None:
    rows = read_detections(chain["det"] / "detections.csv")
    found = [(r, a, b, c) for r, a, b, c, _ in rows]
    unseen = tuple(r for r in CALLS if r not in LABELLED)
    scores = event_prf([d for d in found if d[0] in unseen], _truth(unseen), onset_tolerance=1.0)
    every = event_prf(found, _truth(), onset_tolerance=1.0)
    print(f"unlabelled recordings: {scores}; all: {every}")
    assert scores["recall"] == 1.0 and scores["precision"] >= 0.75
    assert every["f1"] >= 0.85
    assert all(0.0 <= s <= 1.0 for *_, s in rows)


def test_tables_read_back_through_crowsetta(chain: dict[str, Path]) -> None:
    rows = read_detections(chain["det"] / "detections.csv")
    for rel in CALLS:
        stem = rel[: -len(".wav")]
        mine = [(a, b, c) for r, a, b, c, _ in rows if r == rel]
        raven = Raven.from_file(
            chain["det"] / "raven" / f"{stem}.Table.1.selections.txt", annot_col="Annotation"
        ).df
        got = list(
            zip(raven["begin_time_s"], raven["end_time_s"], raven["annotation"], strict=True)
        )
        assert [(round(a, 3), round(b, 3), c) for a, b, c in got] == mine
        aud = AudSeq.from_file(chain["det"] / "audacity" / f"{stem}.txt")
        assert [round(float(a), 3) for a in aud.start_times] == [m[0] for m in mine]


def test_detect_resumes_and_rethresholds(chain: dict[str, Path], tmp_path: Path) -> None:
    det = tmp_path / "det"
    shutil.copytree(chain["det"], det)
    first = (det / "detections.csv").read_text()
    res = CliRunner().invoke(app, _detect_args(chain, chain["audio"], det))
    assert res.exit_code == 0, res.output
    assert "4 recording(s) resumed" in res.output
    assert (det / "detections.csv").read_text() == first
    _ok(
        [
            "detect",
            str(chain["proj"]),
            "--recordings",
            str(chain["audio"]),
            "--out",
            str(det),
            "--threshold",
            "1.0",
        ]
    )
    assert read_detections(det / "detections.csv") == []


def _fails(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, UserError), (args, res.output, res.exception)
    return str(res.exception)


def test_readers_refuse_unknown_labels(chain: dict[str, Path]) -> None:
    msg = _fails(
        [
            "select",
            "--pool",
            str(chain["pool"] / "train.h5"),
            "--strategy",
            "ft",
            "-n",
            "3",
            "--warm-k",
            "2",
        ]
    )
    assert "unknown is not negative" in msg and "train.h5" in msg


def test_bad_detect_is_one_line_exit_2(chain: dict[str, Path]) -> None:
    proc = _detect(chain, chain["root"] / "missing", chain["root"] / "x")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "recordings folder not found" in proc.stderr


@pytest.mark.parametrize(
    "recordings,extra,needle",
    [
        ("{root}/none", [], "recordings folder not found"),
        ("{audio}", ["--threshold", "1.5"], "--threshold=1.5 is out of range [0, 1]"),
        ("{audio}", ["--threshold", "nan"], "--threshold=nan is out of range [0, 1]"),
        ("{root}/prep", [], "no audio files"),
        ("{audio}", ["--threshold", "frog=0.5"], "--threshold names 'frog', not a class"),
        ("{audio}", ["--threshold", "call=2"], "is out of range [0, 1]"),
        ("{audio}", ["--threshold", "call=x"], "--threshold 'call=x': not CLASS=P"),
    ],
)
def test_detect_bad_input(
    chain: dict[str, Path], recordings: str, extra: list[str], needle: str
) -> None:
    where = Path(recordings.format(**{k: str(v) for k, v in chain.items()}))
    assert needle in _fails(_detect_args(chain, where, chain["root"] / "x", *extra))


def test_interrupted_recording_resumes_at_its_first_missing_part(
    chain: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iml_tui.engine import detect_recordings as dr

    real = dr.predict_frames
    calls = [0]

    def counting(*args: object, **kw: object) -> object:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dr, "PART_CLIPS", 5)
    monkeypatch.setattr(dr, "predict_frames", counting)
    args = [
        "detect",
        str(chain["proj"]),
        "--recordings",
        str(chain["audio"]),
        "--out",
        str(tmp_path / "det"),
        "--min-duration",
        "1",
        "--batch-size",
        "5",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 130
    assert len(list((tmp_path / "det" / ".frames").rglob("part_*.npy"))) == 2
    calls[0] = -100
    _ok(args)
    # 23 clips per recording -> 5 parts each; the two saved parts are not scored again
    assert calls[0] + 100 == 4 * 5 - 2
    assert not list((tmp_path / "det" / ".frames").rglob("part_*.npy"))
    ref = read_detections(chain["det"] / "detections.csv")
    got = read_detections(tmp_path / "det" / "detections.csv")
    assert [r[:4] for r in got] == [r[:4] for r in ref]
    assert np.allclose([r[4] for r in got], [r[4] for r in ref], atol=1e-3)


def test_search_by_example_from_a_pool_id_and_from_audio(chain: dict[str, Path]) -> None:
    out = _ok(["search", str(chain["proj"]), "--example", "site2/noon.wav@5", "-k", "3"])
    assert "3 clips most like site2/noon.wav@5" in out
    # the same clip given as audio (file@offset) is embedded again and finds itself first
    audio = chain["audio"] / "site2" / "noon.wav"
    out = _ok(["search", str(chain["proj"]), "--example", f"{audio}@5", "-k", "1"])
    assert "site2/noon.wav@5" in out and "1.000" in out
    out = _ok(
        [
            "search",
            str(chain["proj"]),
            "--example",
            "site2/noon.wav@5.0",
            "-k",
            "2",
            "--queue",
            "--annotator",
            "ana",
        ]
    )
    assert "queued 2 unlabelled clip(s)" in out
    with Journal(chain["proj"] / "journal.sqlite") as j:
        searched = [e for e in j.events(0, kinds=["selected"]) if e.payload.get("rule") == "search"]
    assert len(searched) == 2 and searched[0].payload["example"] == "site2/noon.wav@5"
    assert "neither a clip of the pool" in _fails(
        ["search", str(chain["proj"]), "--example", "nowhere.wav@3"]
    )


def _same_detections(got_csv: Path, ref_csv: Path) -> None:
    got, ref = read_detections(got_csv), read_detections(ref_csv)
    assert [r[:4] for r in got] == [r[:4] for r in ref]
    assert np.allclose([r[4] for r in got], [r[4] for r in ref], atol=1e-4)


@pytest.mark.parametrize("extra", [["--jobs", "2"], ["--executor", "ray", "--cpus-per-run", "1"]])
def test_detect_on_workers_gives_the_detections_of_one_process(
    chain: dict[str, Path], tmp_path: Path, extra: list[str]
) -> None:
    if extra[1] == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    proc = _detect(chain, chain["audio"], tmp_path / "det", *extra)
    assert proc.returncode == 0, proc.stderr
    _same_detections(tmp_path / "det" / "detections.csv", chain["det"] / "detections.csv")
    for rel in CALLS:  # the same tables, recording by recording
        stem = rel[: -len(".wav")]
        for table in (f"raven/{stem}.Table.1.selections.txt", f"audacity/{stem}.txt"):
            assert (tmp_path / "det" / table).is_file()
    assert not list((tmp_path / "det" / ".frames").rglob("part_*.npy"))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_unreadable_recordings_are_skipped_and_the_rest_written(
    chain: dict[str, Path], tmp_path: Path, jobs: str
) -> None:
    audio = tmp_path / "audio"
    shutil.copytree(chain["audio"], audio)
    (audio / "site3").mkdir()
    (audio / "site3" / "garbage.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    sf.write(audio / "site3" / "empty.wav", np.zeros(0, dtype=np.float32), SR)
    bad = 0.05 * np.random.default_rng(1).standard_normal(int(6 * SR)).astype(np.float32)
    bad[3 * SR] = np.nan
    sf.write(audio / "site3" / "nan.wav", bad, SR, subtype="FLOAT")
    out = tmp_path / "det"
    proc = _detect(chain, audio, out, "--jobs", jobs)
    assert proc.returncode == 3, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("iml-tui: skipped: ")]
    assert sorted(line.split(": ")[2] for line in skipped) == [
        "site3/empty.wav",
        "site3/garbage.wav",
        "site3/nan.wav",
    ]
    assert "NaN or inf samples near 2 s" in proc.stderr  # the first 2 s clip holding 3.0 s
    assert "holds no samples" in proc.stderr
    assert "iml-tui: 3 recording(s) skipped, the others written (exit status 3)" in proc.stderr
    _same_detections(out / "detections.csv", chain["det"] / "detections.csv")
    assert not (out / "raven" / "site3").exists()
    # the files fixed (here: removed), the same command resumes the four and exits 0
    shutil.rmtree(audio / "site3")
    again = _detect(chain, audio, out, "--jobs", jobs)
    assert again.returncode == 0, again.stderr
    assert "4 recording(s) resumed" in again.stderr
    _same_detections(out / "detections.csv", chain["det"] / "detections.csv")


def test_detect_with_no_readable_recording_is_one_line(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    proc = _detect(chain, audio, tmp_path / "det")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "none of the 1 audio file(s) can be read" in proc.stderr


def test_reviewed_detections_import_back_and_train(chain: dict[str, Path], tmp_path: Path) -> None:
    """The loop over an archive: detect's Raven tables (here taken as reviewed unchanged) go
    back into a copy of the project as labels of every clip of those recordings, then train."""
    proj = tmp_path / "proj"
    shutil.copytree(chain["proj"], proj)
    out = _ok(["import-labels", str(proj), str(chain["det"] / "raven")])
    rows = read_detections(chain["det"] / "detections.csv")
    n_clips = len(PoolStore(chain["pool"] / "train.h5").ids)  # 4 recordings, all covered
    assert f"imported {n_clips} clip label(s) of 4 recording(s)" in out
    with Journal(proj / "journal.sqlite") as j:
        labelled = j.current_labels()
        marked = j.current_extents()
    assert len(labelled) == n_clips
    for rel in CALLS:  # a clip is a call clip exactly when a detection overlaps it
        spans = [(a, b) for r, a, b, *_ in rows if r == rel]
        for e in labelled.values():
            rec, _, off = str(e.item_id).rpartition("@")
            if rec == rel:
                hit = any(a < float(off) + 2.0 and b > float(off) for a, b in spans)
                assert bool(e.labels) == hit, e.item_id
    assert sum(len(v) for v in marked.values()) >= len(rows)
    assert "trained on" in _ok(["train", str(proj)])


def test_per_class_thresholds(chain: dict[str, Path], tmp_path: Path) -> None:
    det = tmp_path / "det"
    shutil.copytree(chain["det"], det)  # the frames are kept: only the events change
    out = _ok(_detect_args(chain, chain["audio"], det, "--threshold", "call=1.0"))
    assert "threshold call 1.000, other " in out
    ref = read_detections(chain["det"] / "detections.csv")
    got = read_detections(det / "detections.csv")
    assert [r for r in got if r[3] == "call"] == []  # no frame reaches 1.0
    assert [r for r in got if r[3] == "other"] == [r for r in ref if r[3] == "other"]


def test_summary_counts_the_detections(chain: dict[str, Path]) -> None:
    rows = read_detections(chain["det"] / "detections.csv")
    with open(chain["det"] / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert {(r["recording"], r["class"]) for r in summary} == {
        (rec, c) for rec in CALLS for c in ("call", "other")
    }  # every class of every recording, zeros included
    for r in summary:
        mine = [d for d in rows if d[0] == r["recording"] and d[3] == r["class"]]
        assert int(r["events"]) == len(mine)
        assert float(r["event_seconds"]) == pytest.approx(
            sum(b - a for _, a, b, *_ in mine), abs=0.01
        )
        assert float(r["seconds"]) == pytest.approx(SECONDS, abs=1e-3)
        assert float(r["per_hour"]) == pytest.approx(len(mine) * 3600 / SECONDS, abs=0.01)
