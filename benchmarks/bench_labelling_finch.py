"""Labelling real recordings through the screen: the Bengalese finch songs in ../shared/realdata as
raw audio with every label withheld, labelled in the Textual app (driven by its Pilot) by an oracle
that reads the withheld labels, then run over all the recordings. Prints the figures and writes
JSON (benchmarks/results/labelling_finch.json).

    python benchmarks/bench_labelling_finch.py [--encoder birdnet|mfcc-stats]
        [--strategies mfft,rand] [--checkpoints 20,40,80] [--annotation clips|extents]
        [--clip 5 --hop 2.5]

Chain: prepare recordings --classes song --clip 5 --hop 2.5 (no labels: every clip unknown) ->
extract -> project new --strategy S --budgets 20,40,80 (no valid.h5: threshold and mAP out of
fold) -> per checkpoint n: open the labelling screen on the project, answer until n clips are
labelled, quit -> train -> detect, scored against the withheld bouts.

Oracle: a clip is ``song`` when a bout overlaps it by at least ``MIN_OVERLAP`` seconds; with
``--annotation extents`` it also marks each bout's extent inside the clip on the spectrogram (the
screen's onset / offset keys at the playback cursor), so those clips train with strong frame
targets; ``clips`` answers the class only (weak labels, multiple-instance loss). Truth and scores
are those of bench_own_recordings.py: one event per bout (syllables merged across gaps under
0.5 s), a detection matches an unmatched bout of the same recording whose onset is within
``--tolerance`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_own_recordings import (  # noqa: E402
    FAST_TRAIN,
    FINCH,
    _cli,
    machine,
    realdata,
    song_bouts,
)

CLIP_S = 5.0
HOP_S = 2.5
MIN_OVERLAP = 0.3
SIZE = (120, 40)

Extent = tuple[float, float]
Answer = tuple[list[int], list[Extent]]


def clip_table(prep: Path) -> dict[str, tuple[str, float, float]]:
    """Item id -> (recording relative path, offset s, duration s) from prepare's clips.csv."""
    out: dict[str, tuple[str, float, float]] = {}
    with open(prep / "clips.csv", newline="") as f:
        for r in csv.DictReader(f):
            rel = r["id"].rsplit("@", 1)[0]
            out[r["id"]] = (rel, float(r["offset"]), float(r["duration"]))
    return out


def oracle(
    clips: dict[str, tuple[str, float, float]], bouts: dict[str, list[Extent]]
) -> Callable[[str], Answer]:
    """Item id -> (class indices, extents within the clip in seconds) of the withheld truth."""

    def answer(item_id: str) -> Answer:
        rel, off, dur = clips[item_id]
        extents = []
        for on, end in bouts.get(rel, []):
            a, b = max(on, off), min(end, off + dur)
            if b - a >= MIN_OVERLAP:
                extents.append((a - off, b - off))
        return ([0] if extents else []), extents

    return answer


async def _label_until(
    project: Path, n: int, answer: Callable[[str], Answer], extents: bool, clip_dir: Path
) -> dict[str, float]:
    """Answer in the labelling screen until ``n`` clips are labelled; seconds per answer."""
    from iml_tui.audio.playback import FilePlayer
    from iml_tui.engine.journal import Journal
    from iml_tui.engine.session import Session
    from iml_tui.tui.app import make_app

    sys.path.insert(0, str(HERE.parent / "tests" / "tui"))
    from pilot_marking import mark_event  # the drag an annotator makes over the spectrogram

    with Journal(project / "journal.sqlite") as journal:
        done = len(journal.current_labels())
    key_s: list[float] = []
    with Session.open(project, annotator="oracle") as session:
        app = make_app(session, FilePlayer(clip_dir), cursor=False, audio_thread=False)
        async with app.run_test(size=SIZE) as pilot:
            loop = asyncio.get_running_loop()
            while done < n:
                deadline = loop.time() + 120
                while app.main.current is None and loop.time() < deadline:
                    await app.workers.wait_for_complete()
                    await pilot.pause(0.05)
                shown = app.main.current
                if shown is None:
                    raise SystemExit(f"no item to label after {done} labels in {project}")
                classes, marks = answer(shown.view.item_id)
                if extents and marks:
                    for on, off in marks:
                        await mark_event(pilot, on, off, 0)
                else:
                    for c in classes:
                        await pilot.press(str(c + 1))
                t0 = time.perf_counter()
                await pilot.press("enter")
                key_s.append(time.perf_counter() - t0)
                done += 1
            await app.workers.wait_for_complete()
    key_s.sort()
    return {"key_to_next_p50_s": key_s[len(key_s) // 2] if key_s else float("nan")}


def run(
    work: Path,
    encoder: str,
    strategies: list[str],
    checkpoints: list[int],
    annotation: str,
    clip_s: float,
    hop_s: float,
    tolerance: float,
    merge_gap: float,
    min_duration: float,
) -> dict[str, Any]:
    """The chain under ``work`` for each strategy; returns the figures (see the module doc)."""
    from iml_tui.engine.detect_recordings import read_detections
    from iml_tui.engine.metrics import event_prf

    finch = realdata() / FINCH
    if not (finch / "labels.csv").is_file():
        raise SystemExit(f"real recordings not found at {finch} (set IML_TUI_REALDATA)")
    audio = finch / "audio"
    bouts = song_bouts(finch)
    truth = [(rel, a, b, "song") for rel in sorted(bouts) for a, b in bouts[rel]]
    prep, pool = work / "prep", work / "pool"
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
            str(clip_s),
            "--hop",
            str(hop_s),
        ]
    )
    clips = clip_table(prep)
    answer = oracle(clips, bouts)
    t0 = time.perf_counter()
    _cli(["extract", "--input", str(prep), "--out", str(pool / "train.h5"), "--encoder", encoder])
    extract_s = time.perf_counter() - t0
    positives = sum(1 for i in clips if answer(i)[0])
    results: dict[str, list[dict[str, Any]]] = {}
    for strategy in strategies:
        proj = work / f"proj-{strategy}"
        budgets = ",".join(str(n) for n in checkpoints)
        _cli(
            [
                "project",
                "new",
                str(proj),
                "--pool-dir",
                str(pool),
                "--strategy",
                strategy,
                "--budgets",
                budgets,
                *FAST_TRAIN,
            ]
        )
        rows = []
        for n in checkpoints:
            t0 = time.perf_counter()
            keys = asyncio.run(
                _label_until(proj, n, answer, annotation == "extents", work / "clips")
            )
            label_s = time.perf_counter() - t0
            trained = _cli(["train", str(proj)]).strip().splitlines()[-1]
            det = work / f"det-{strategy}-{n}"
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
            found = [(r, a, b, c) for r, a, b, c, _ in read_detections(det / "detections.csv")]
            labelled_pos = _labelled_positives(proj, clips, answer)
            rows.append(
                {
                    "labels": n,
                    "positives_labelled": labelled_pos,
                    "train": trained,
                    "labelling_s": round(label_s, 1),
                    **keys,
                    **event_prf(found, truth, tolerance),
                }
            )
        results[strategy] = rows
    return {
        "encoder": encoder,
        "annotation": annotation,
        "clip_s": clip_s,
        "hop_s": hop_s,
        "clips": len(clips),
        "clips_with_song": positives,
        "recordings": len(bouts),
        "bouts": len(truth),
        "onset_tolerance_s": tolerance,
        "merge_gap_s": merge_gap,
        "min_duration_s": min_duration,
        "extract_s": round(extract_s, 1),
        "strategies": results,
    }


def _labelled_positives(
    project: Path, clips: dict[str, tuple[str, float, float]], answer: Callable[[str], Answer]
) -> int:
    from iml_tui.engine.journal import Journal

    with Journal(project / "journal.sqlite") as journal:
        ids = [str(e.item_id) for e in journal.current_labels().values()]
    return sum(1 for i in ids if answer(i)[0])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", default="birdnet", choices=["birdnet", "mfcc-stats"])
    ap.add_argument("--strategies", default="mfft,rand")
    ap.add_argument("--checkpoints", default="20,40,80")
    ap.add_argument("--annotation", default="clips", choices=["clips", "extents"])
    ap.add_argument("--clip", type=float, default=CLIP_S, help="clip length, seconds")
    ap.add_argument("--hop", type=float, default=HOP_S, help="clip hop, seconds")
    ap.add_argument("--tolerance", type=float, default=1.5)
    ap.add_argument("--merge-gap", type=float, default=1.0)
    ap.add_argument("--min-duration", type=float, default=1.0)
    ap.add_argument("--work", type=Path, default=None, help="keep the outputs here")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "labelling_finch.json")
    a = ap.parse_args(argv)
    strategies = [s for s in a.strategies.split(",") if s]
    checkpoints = [int(n) for n in a.checkpoints.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        fig = run(
            work,
            a.encoder,
            strategies,
            checkpoints,
            a.annotation,
            a.clip,
            a.hop,
            a.tolerance,
            a.merge_gap,
            a.min_duration,
        )
    fig["machine"] = machine()
    print(
        f"{fig['clips']} clips of {fig['clip_s']} s ({fig['clips_with_song']} with song), "
        f"{fig['bouts']} bouts in {fig['recordings']} recordings; {fig['encoder']}, "
        f"{fig['annotation']}; onset tolerance {fig['onset_tolerance_s']} s"
    )
    for strategy, rows in fig["strategies"].items():
        for r in rows:
            print(
                f"{strategy:5s} {r['labels']:4d} labels ({r['positives_labelled']:3d} song)  "
                f"P {r['precision']:.3f}  R {r['recall']:.3f}  F1 {r['f1']:.3f}  "
                f"({int(r['tp'])}/{int(r['true'])} bouts, {int(r['predicted'])} detections)"
            )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(fig, indent=2) + "\n")
    print(f"-> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
