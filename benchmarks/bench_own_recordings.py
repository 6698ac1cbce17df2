"""Your own recordings, measured on real ones: the Bengalese finch songs in ../shared/realdata as
raw audio, labels withheld except an Audacity label file for every ``--every``-th recording.
Prints the figures and writes JSON (benchmarks/results/own_recordings.json).

    python benchmarks/bench_own_recordings.py [--encoder birdnet] [--every 4] [--out DIR]

Chain (the real CLI, in one process): prepare recordings --classes song --clip 10 --hop 5
--labels <audacity files> -> extract (birdnet, hop 1 s: 8 windows of 3 s per clip; or
mfcc-stats) -> project new (no valid.h5: threshold and mAP out of fold) -> train -> detect
--merge-gap G --min-duration M.

Truth: one ``song`` event per bout, the recording's syllables merged across gaps shorter than
0.5 s. Scores: event-level precision, recall and F1 of the detections (a detection matches an
unmatched true bout of the same recording whose onset is within ``--tolerance`` seconds), over
the recordings whose labels were withheld and over all. Timings: wall seconds of extract and of
detect per audio hour.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FINCH = "bengalese_finch_gy6or6_sed"
BOUT_GAP = 0.5
FAST_TRAIN = [
    "--set",
    "hidden=256",
    "--set",
    "max_epochs=200",
    "--set",
    "lr=0.001",
    "--set",
    "min_lr=0.00005",
    "--set",
    "lr_patience=5",
]


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, Python, platform, load average now."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def realdata() -> Path:
    env = os.environ.get("IML_TUI_REALDATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "realdata"


def song_bouts(finch: Path) -> dict[str, list[tuple[float, float]]]:
    """Recording (path relative to audio/) -> its bouts (onset, offset) in seconds."""
    by_file: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with open(finch / "labels.csv", newline="") as f:
        for r in csv.DictReader(f):
            rel = r["file"].removeprefix("audio/")
            by_file[rel].append((float(r["onset"]), float(r["offset"])))
    bouts: dict[str, list[tuple[float, float]]] = {}
    for rel, events in sorted(by_file.items()):
        merged: list[list[float]] = []
        for on, off in sorted(events):
            if merged and on - merged[-1][1] < BOUT_GAP:
                merged[-1][1] = max(merged[-1][1], off)
            else:
                merged.append([on, off])
        bouts[rel] = [(a, b) for a, b in merged]
    return bouts


def _cli(args: list[str]) -> str:
    from typer.testing import CliRunner

    from iml_tui.cli import app

    res = CliRunner().invoke(app, args)
    if res.exit_code != 0:
        raise SystemExit(
            f"iml-tui {' '.join(args)} failed ({res.exit_code}):\n{res.output}\n{res.exception!r}"
        )
    return res.output


def run_chain(
    work: Path,
    encoder: str = "birdnet",
    every: int = 4,
    tolerance: float = 1.5,
    merge_gap: float = 1.0,
    min_duration: float = 1.0,
) -> dict[str, Any]:
    """The whole chain under ``work``; returns the figures (see the module doc)."""
    from iml_tui.engine.detect_recordings import read_detections
    from iml_tui.engine.metrics import event_prf

    finch = realdata() / FINCH
    if not (finch / "labels.csv").is_file():
        raise SystemExit(f"real recordings not found at {finch} (set IML_TUI_REALDATA)")
    audio = finch / "audio"
    bouts = song_bouts(finch)
    names = sorted(bouts)
    given = names[::every]
    labels = work / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for rel in given:
        stem = Path(rel).name.removesuffix(".flac")
        (labels / f"{stem}.txt").write_text(
            "".join(f"{a:.5f}\t{b:.5f}\tsong\n" for a, b in bouts[rel])
        )
    prep, pool, proj, det = work / "prep", work / "pool", work / "proj", work / "det"
    _cli(
        [
            "prepare",
            "recordings",
            "--source",
            str(audio),
            "--classes",
            "song",
            "--out",
            str(prep),
            "--clip",
            "10",
            "--hop",
            "5",
            "--labels",
            str(labels),
        ]
    )
    t0 = time.perf_counter()
    _cli(["extract", "--input", str(prep), "--out", str(pool / "train.h5"), "--encoder", encoder])
    extract_s = time.perf_counter() - t0
    _cli(
        [
            "project",
            "new",
            str(proj),
            "--pool-dir",
            str(pool),
            "--strategy",
            "mfft",
            "--budgets",
            "100,200",
            *FAST_TRAIN,
        ]
    )
    t0 = time.perf_counter()
    trained = _cli(["train", str(proj)]).strip().splitlines()[-1]
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _cli(
        [
            "detect",
            str(proj),
            "--recordings",
            str(audio),
            "--out",
            str(det),
            "--merge-gap",
            str(merge_gap),
            "--min-duration",
            str(min_duration),
        ]
    )
    detect_s = time.perf_counter() - t0
    rows = read_detections(det / "detections.csv")
    found = [(r, a, b, c) for r, a, b, c, _ in rows]
    truth = [(rel, a, b, "song") for rel in names for a, b in bouts[rel]]
    withheld = set(names) - set(given)
    audio_h = sum(_duration(audio / rel) for rel in names) / 3600
    return {
        "encoder": encoder,
        "recordings": len(names),
        "labelled_recordings": len(given),
        "audio_hours": round(audio_h, 4),
        "onset_tolerance_s": tolerance,
        "merge_gap_s": merge_gap,
        "min_duration_s": min_duration,
        "train": trained,
        "withheld": event_prf(
            [d for d in found if d[0] in withheld],
            [t for t in truth if t[0] in withheld],
            tolerance,
        ),
        "all": event_prf(found, truth, tolerance),
        "extract_s_per_audio_hour": round(extract_s / audio_h, 1),
        "train_s": round(train_s, 1),
        "detect_s_per_audio_hour": round(detect_s / audio_h, 1),
        "outputs": str(det),
    }


def _duration(path: Path) -> float:
    from iml_tui.audio import io as audio_io

    return audio_io.info(path).duration


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", default="birdnet", choices=["birdnet", "mfcc-stats"])
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=1.5)
    ap.add_argument("--merge-gap", type=float, default=1.0)
    ap.add_argument("--min-duration", type=float, default=1.0)
    ap.add_argument("--work", type=Path, default=None, help="keep the outputs here")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "own_recordings.json")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        fig = run_chain(work, a.encoder, a.every, a.tolerance, a.merge_gap, a.min_duration)
    if a.work is None:
        fig.pop("outputs")  # a temporary folder, gone now
    fig["machine"] = machine()
    for part in ("withheld", "all"):
        s = fig[part]
        print(
            f"{part:9s} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  "
            f"({int(s['tp'])} of {int(s['true'])} bouts, {int(s['predicted'])} detections)"
        )
    print(
        f"{fig['train']}; extract {fig['extract_s_per_audio_hour']} s/audio-h, detect "
        f"{fig['detect_s_per_audio_hour']} s/audio-h, train {fig['train_s']} s"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(fig, indent=2) + "\n")
    print(f"-> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
