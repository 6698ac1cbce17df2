"""``detect`` over an archive in one process against ``--jobs N`` local processes, on real audio:
the Bengalese finch songs of ../shared/realdata linked ``--copies`` times into one archive (the
project is the one bench_own_recordings.py builds: BirdNET, labels for every 4th recording).
Prints the figures and writes JSON (benchmarks/results/detect_workers.json).

    python benchmarks/bench_detect_workers.py [--copies 4] [--jobs 2] [--repeats 3]

Each repeat runs ``iml-tui detect`` as a whole process into a fresh folder, once per setting, the
settings in turn (so drift of the machine falls on both alike). Quoted: the median wall seconds
of each setting, seconds per audio hour, and the median of the per-repeat ratios. The detections
of every run are checked against those of the first one-process run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_own_recordings import FINCH, _duration, machine, realdata, run_chain  # noqa: E402


def _archive(root: Path, copies: int) -> tuple[Path, float]:
    """``copies`` links of every finch recording under ``root``; (folder, audio hours)."""
    audio = realdata() / FINCH / "audio"
    files = sorted(audio.rglob("*.flac"))
    seconds = 0.0
    for k in range(copies):
        for f in files:
            link = root / f"copy{k}" / f.relative_to(audio)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
            seconds += _duration(f)
    return root, seconds / 3600


def _detect(project: Path, archive: Path, out: Path, jobs: int) -> float:
    cmd = [
        sys.executable,
        "-m",
        "iml_tui.cli",
        "detect",
        str(project),
        "--recordings",
        str(archive),
        "--out",
        str(out),
        "--merge-gap",
        "1",
        "--min-duration",
        "1",
        "--jobs",
        str(jobs),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"detect --jobs {jobs} failed ({proc.returncode}):\n{proc.stderr}")
    return wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "detect_workers.json")
    args = ap.parse_args(argv)
    from iml_tui.engine.detect_recordings import read_detections

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_chain(work / "chain")
        archive, hours = _archive(work / "archive", args.copies)
        walls: dict[int, list[float]] = {1: [], args.jobs: []}
        reference = None
        same = True
        for r in range(args.repeats):
            for jobs in walls:
                out = work / f"det_{jobs}_{r}"
                walls[jobs].append(_detect(work / "chain" / "proj", archive, out, jobs))
                rows = [row[:4] for row in read_detections(out / "detections.csv")]
                reference = rows if reference is None else reference
                same &= rows == reference
        ratios = [a / b for a, b in zip(walls[1], walls[args.jobs], strict=True)]
        fig = {
            "archive_recordings": len(list(archive.rglob("*.flac"))),
            "audio_hours": round(hours, 4),
            "encoder": "birdnet",
            "repeats": args.repeats,
            "wall_s": {str(j): [round(w, 2) for w in ws] for j, ws in walls.items()},
            "median_wall_s": {str(j): round(statistics.median(ws), 2) for j, ws in walls.items()},
            "median_s_per_audio_hour": {
                str(j): round(statistics.median(ws) / hours, 1) for j, ws in walls.items()
            },
            "median_speedup": round(statistics.median(ratios), 3),
            "same_detections": same,
            "machine": machine(),
        }
    print(
        f"detect over {fig['archive_recordings']} recordings ({fig['audio_hours']} audio h, "
        f"BirdNET): median {fig['median_wall_s']['1']} s in one process, "
        f"{fig['median_wall_s'][str(args.jobs)]} s with --jobs {args.jobs} "
        f"(speedup {fig['median_speedup']}x, median of {args.repeats} paired runs); "
        f"same detections: {same}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fig, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
