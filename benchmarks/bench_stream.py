"""Seconds per stream batch and the wall time of a full dev-split run (SPEC Part B) on this
machine. Prints a table and writes JSON (default benchmarks/results/stream.json).

    python benchmarks/bench_stream.py [--n-per-language 1440 --d 256 --sim-type fpstps]

The data: a synthetic LID corpus of realistic size (3 languages, 1440 dev utterances each =
6 batches of 720, 256-d "ECAPA" features; 500 train utterances each for the out-of-domain
bootstrap). The run: the defaults of the lid preset (context 3 -> 1792-d input, the paper's
model sizes, lr 1e-4, patience 15, max 300 epochs per fit) for one target language, with
corrective feedback (fpstps, 16 per batch) unless --sim-type none. Each batch's time is split
into the gradient-step loops of its fits (``fit_stream_model``) and everything else (prediction,
AL ranking, CF selection, bookkeeping, checkpoint and outputs): the target is overhead < 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n-per-language", type=int, default=1440)
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--target", default="ha")
    ap.add_argument("--sim-type", default="fpstps")
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=18792)
    ap.add_argument("--work", type=Path, default=HERE / "results" / "stream_work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "stream.json")
    args = ap.parse_args()

    from iml_tui.config import StreamConfig
    from iml_tui.data.stream_synth import LidSynthConfig, synth_lid
    from iml_tui.devices import resolve_device
    from iml_tui.engine.paradigms.stream import StreamRun, prepare_inputs

    torch.set_num_threads(args.threads or (os.cpu_count() or 1))
    feats = args.work / f"lid_{args.n_per_language}x3_d{args.d}"
    if not (feats / "ecapalang" / "dev.h5").exists():
        synth_lid(
            feats,
            LidSynthConfig(
                n_train=args.n_train,
                n_dev=args.n_per_language,
                n_test=16,
                features=(("ecapalang", args.d),),
                latent=16,
                seed=0,
            ),
        )
    cfg = replace(
        StreamConfig(),
        feat_root=str(feats),
        split="dev",
        target=args.target,
        sim_type=args.sim_type,
        max_epochs=args.max_epochs,
        seed=args.seed,
        device=args.device,
    )
    run_dir = args.work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    inputs = prepare_inputs(cfg, args.target)
    rows = StreamRun(cfg, inputs, run_dir, resolve_device(args.device)).run(
        lambda ev: print(
            f"  batch {ev.pass_ + 1}/{ev.n_batches}: pre-DCF {ev.pre_dcf:.3f} "
            f"DCF {ev.dcf:.3f} ({ev.n_al} AL + {ev.n_cf} CF)",
            flush=True,
        )
    )
    wall = time.perf_counter() - t0

    import csv

    with (run_dir / "timings.csv").open(newline="") as fh:
        timings = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    per_batch = []
    for t in timings:
        fit = t["fit_al_s"] + t["fit_cf_s"]
        per_batch.append(
            {
                "pass": int(t["pass"]),
                "total_s": t["total_s"],
                "fit_s": fit,
                "overhead_s": t["total_s"] - fit,
                "epochs": int(t["epochs_al"] + t["epochs_cf"]),
                "predict_s": t["predict_s"],
                "query_s": t["query_s"],
                "save_s": t["save_s"],
            }
        )
    total = sum(b["total_s"] for b in per_batch)
    fit_total = sum(b["fit_s"] for b in per_batch)
    epochs = sum(b["epochs"] for b in per_batch)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    report = {
        "what": "streaming paradigm: seconds per batch (gradient steps vs the rest) and a full "
        "dev-split run",
        "data": {
            "languages": 3,
            "dev_per_language": args.n_per_language,
            "train_per_language": args.n_train,
            "feature_dim": args.d,
            "input_dim": inputs.x.shape[1] * (2 * cfg.context + 1),
            "samples_per_batch": cfg.samples_per_batch,
            "n_batches": len(rows),
        },
        "config": {
            "target": args.target,
            "sim_type": args.sim_type,
            "max_fb_samples": cfg.max_fb_samples,
            "n_queries": cfg.n_queries,
            "max_epochs": cfg.max_epochs,
            "patience": cfg.patience,
            "lr": cfg.lr,
        },
        "host": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "device": args.device,
            "torch": torch.__version__,
        },
        "seconds_per_batch_median": statistics.median(b["total_s"] for b in per_batch),
        "seconds_per_batch_mean": total / len(per_batch),
        "gradient_step_seconds": fit_total,
        "overhead_seconds": total - fit_total,
        "overhead_share": (total - fit_total) / total,
        "seconds_per_epoch": fit_total / max(1, epochs),
        "overhead_seconds_per_batch_median": statistics.median(b["overhead_s"] for b in per_batch),
        "full_run_wall_seconds": wall,
        "setup_seconds": manifest["timings"]["setup_s"],
        "final_cum_dcf": rows[-1].cum_dcf,
        "per_batch": per_batch,
    }
    print(f"{'batch':>5} {'total s':>9} {'fit s':>9} {'other s':>9} {'epochs':>7}")
    for b in per_batch:
        print(
            f"{b['pass']:>5} {b['total_s']:>9.2f} {b['fit_s']:>9.2f} {b['overhead_s']:>9.3f} "
            f"{b['epochs']:>7}"
        )
    print(
        f"per batch: median {report['seconds_per_batch_median']:.2f} s; overhead "
        f"{100 * report['overhead_share']:.2f} % of batch time "
        f"(median {report['overhead_seconds_per_batch_median']:.3f} s per batch); "
        f"{report['seconds_per_epoch'] * 1000:.1f} ms per epoch"
    )
    print(f"full dev-split run ({len(rows)} batches, target {args.target}): {wall:.1f} s wall")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
