"""fp32 vs bf16 validation and scoring passes: seconds per pass and per round, and the change in
test mAP per budget. Prints a table and writes JSON.

    python benchmarks/bench_eval_precision.py [--scale 0.25 --device auto --max-epochs 10]

Timing: a valid set shaped like the paper's (4600 clips, T=32, D=2048, hidden 1024) with its clip
count multiplied by ``--scale``; a validation pass is ``predict_frames`` over it, a round is one
training at budget ``--budget`` with at most ``--max-epochs`` epochs (each ending in a validation
pass). Accuracy: a small generated pool, ``--strategies`` x ``--seeds`` cold-start runs over the
budgets, once per precision; the table gives bf16 - fp32 test mAP (points) per budget, mean over
seeds (ft picks do not depend on the classifier, so its rows isolate validation and scoring).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
PAPER_VALID, PAPER_T, PAPER_D, PAPER_HIDDEN = 4600, 32, 2048, 1024
PRECISIONS = ("fp32", "bf16")


def _median_seconds(fn: Any, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def time_passes(
    n_valid: int, device: torch.device, repeats: int, budget: int, max_epochs: int
) -> dict[str, Any]:
    """Seconds per validation pass and per capped training round, for each precision."""
    from iml_tui.engine.models.frame_mlp import FrameMLP
    from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier

    rng = np.random.default_rng(0)
    c = 10
    vx = rng.standard_normal((n_valid, PAPER_T, PAPER_D), dtype=np.float32)
    vy = (rng.random((n_valid, PAPER_T, c)) < 0.05).astype(np.uint8)
    tx = rng.standard_normal((budget, PAPER_T, PAPER_D), dtype=np.float32)
    ty = (rng.random((budget, PAPER_T, c)) < 0.05).astype(np.uint8)
    model = FrameMLP(PAPER_D, c, PAPER_HIDDEN, seed=0).eval().to(device)
    out: dict[str, Any] = {}
    ref = predict_frames(model, vx, device)
    for p in PRECISIONS:
        predict_frames(model, vx[:64], device, precision=p)  # warm-up
        pass_s, pass_all = _median_seconds(
            lambda p=p: predict_frames(model, vx, device, precision=p), repeats
        )
        diff = float(np.abs(predict_frames(model, vx, device, precision=p) - ref).max())
        cfg = TrainConfig(
            device=str(device), max_epochs=max_epochs, min_lr=0.0, seed=0, eval_precision=p
        )
        t0 = time.perf_counter()
        res = train_frame_classifier(tx, ty, vx, vy, cfg)
        round_s = time.perf_counter() - t0
        out[p] = {
            "valid_pass_seconds": pass_s,
            "valid_pass_seconds_all": pass_all,
            "round_seconds": round_s,
            "round_epochs": res.epochs_run,
            "round_seconds_per_epoch": round_s / max(1, res.epochs_run),
            "max_abs_prob_diff_vs_fp32": diff,
        }
    out["pass_speedup"] = out["fp32"]["valid_pass_seconds"] / out["bf16"]["valid_pass_seconds"]
    out["round_speedup"] = out["fp32"]["round_seconds"] / out["bf16"]["round_seconds"]
    return out


def map_change(
    work: Path,
    strategies: list[str],
    seeds: list[int],
    budgets: list[int],
    max_epochs: int,
    device: str,
) -> dict[str, Any]:
    """Test mAP per (strategy, budget) for fp32 and bf16 sweeps on one small generated pool."""
    from iml_tui.bench.sweep import run_sweep
    from iml_tui.config import BioacousticConfig
    from iml_tui.data.synth import SynthConfig, synth_pools

    pool = work / "pool"
    synth_pools(pool, SynthConfig(n_train=400, n_valid=120, n_test=120, t=8, d=64, seed=0))
    maps: dict[str, dict[tuple[str, int], list[float]]] = {}
    seconds: dict[str, float] = {}
    for p in PRECISIONS:
        cfg = BioacousticConfig(
            pool_dir=str(pool),
            strategy=strategies,
            start=["cold"],
            budgets=budgets,
            seeds=seeds,
            out=str(work / p),
            hidden=128,
            max_epochs=max_epochs,
            device=device,
            threads=0,
            eval_precision=p,
        )
        result = run_sweep(cfg)
        seconds[p] = result.seconds
        per_key: dict[tuple[str, int], list[float]] = {}
        for spec, recs in sorted(result.records.items(), key=lambda kv: kv[0].seed):
            for r in recs:
                per_key.setdefault((spec.strategy, r.budget), []).append(r.test_map)
        maps[p] = per_key
    rows = []
    for s in strategies:
        for b in budgets:
            f32, b16 = maps["fp32"][(s, b)], maps["bf16"][(s, b)]
            deltas = [100 * (q - f) for f, q in zip(f32, b16, strict=True)]
            rows.append(
                {
                    "strategy": s,
                    "budget": b,
                    "fp32_test_map": 100 * statistics.mean(f32),
                    "bf16_test_map": 100 * statistics.mean(b16),
                    "delta_points_mean": statistics.mean(deltas),
                    "delta_points_per_seed": deltas,
                }
            )
    return {
        "seeds": seeds,
        "budgets": budgets,
        "strategies": strategies,
        "start": "cold",
        "pool": {"n_train": 400, "n_valid": 120, "n_test": 120, "t": 8, "d": 64},
        "max_epochs": max_epochs,
        "sweep_seconds": seconds,
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--scale",
        type=float,
        default=0.25,
        help="fraction of the paper's 4600 valid clips timed (1 = paper size)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--max-epochs", type=int, default=10)
    ap.add_argument("--strategies", default="ft,mfft")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--budgets", default="20,40,60,80")
    ap.add_argument("--map-epochs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "eval_precision.json")
    args = ap.parse_args()

    from iml_tui.devices import resolve_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    n_valid = max(1, round(PAPER_VALID * args.scale))
    print(
        f"timing on {device}: valid ({n_valid}, {PAPER_T}, {PAPER_D}), hidden {PAPER_HIDDEN}, "
        f"budget {args.budget}, {args.max_epochs} epochs per round",
        flush=True,
    )
    timing = time_passes(n_valid, device, args.repeats, args.budget, args.max_epochs)
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = [int(b) for b in args.budgets.split(",")]
    strategies = [s for s in args.strategies.split(",") if s]
    print(f"test mAP: {strategies} cold, seeds {seeds}, budgets {budgets}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        acc = map_change(Path(tmp), strategies, seeds, budgets, args.map_epochs, str(device))

    print(f"\n{'precision':>9} {'s/valid pass':>13} {'s/round':>9} {'epochs':>7} {'max |dp|':>9}")
    for p in PRECISIONS:
        r = timing[p]
        print(
            f"{p:>9} {r['valid_pass_seconds']:13.3f} {r['round_seconds']:9.2f} "
            f"{r['round_epochs']:7d} {r['max_abs_prob_diff_vs_fp32']:9.2e}"
        )
    print(
        f"speed-up bf16/fp32: pass {timing['pass_speedup']:.2f}x, "
        f"round {timing['round_speedup']:.2f}x"
    )
    print(
        f"\n{'strategy':>8} {'budget':>6} {'fp32 mAP%':>9} {'bf16 mAP%':>9} {'delta':>7}  "
        "per seed (points)"
    )
    for row in acc["rows"]:
        per_seed = " ".join(f"{d:+.2f}" for d in row["delta_points_per_seed"])
        print(
            f"{row['strategy']:>8} {row['budget']:6d} {row['fp32_test_map']:9.2f} "
            f"{row['bf16_test_map']:9.2f} "
            f"{row['delta_points_mean']:+7.2f}  {per_seed}"
        )

    report = {
        "what": "fp32 vs bf16 validation / scoring passes",
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "scale": args.scale,
        "valid_shape": [n_valid, PAPER_T, PAPER_D],
        "hidden": PAPER_HIDDEN,
        "budget": args.budget,
        "max_epochs": args.max_epochs,
        "timing": timing,
        "test_map": acc,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
