"""Seconds per training round (SPEC A.3: fresh classifier, Adam, ReduceLROnPlateau on valid mAP)
at budgets 50 and 500 on this machine. Prints a table and writes JSON.

    python benchmarks/bench_training.py [--t 32 --d 2048 --n-valid 4600 --repeats 3]

Paper scale (T=32, D=2048, a 4600-clip valid set) is the default. `--max-epochs` caps the epochs of
each round; the JSON records the epochs run, seconds per epoch, and the share of time spent in the
per-epoch validation pass.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def _epoch_printer(budget: int) -> Callable[[int, float], None]:
    from iml_tui.engine.metrics import map_text

    def show(epoch: int, valid_map: float) -> None:
        if epoch % 10 == 0:
            print(f"  budget {budget} epoch {epoch}: valid mAP {map_text(valid_map)}", flush=True)

    return show


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--t", type=int, default=32)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-valid", type=int, default=4600)
    ap.add_argument("--budgets", default="50,500")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=5000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=HERE / "results" / "training_work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "training.json")
    args = ap.parse_args()

    from iml_tui.data.store import PoolStore
    from iml_tui.data.synth import SynthConfig, synth_pools
    from iml_tui.devices import resolve_device
    from iml_tui.engine.trainer import TrainConfig, train_frame_classifier

    work = args.work / f"t{args.t}_d{args.d}_v{args.n_valid}"
    if not (work / "valid.h5").exists():
        synth_pools(
            work,
            SynthConfig(
                n_train=args.n_train, n_valid=args.n_valid, n_test=64, t=args.t, d=args.d, seed=0
            ),
        )
    train, valid = PoolStore(work / "train.h5"), PoolStore(work / "valid.h5")
    vx, vy = valid.embeddings(), valid.frame_labels()
    labels = train.frame_labels()
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    results = {}
    for budget in (int(b) for b in args.budgets.split(",")):
        secs, epochs = [], []
        stops: list[str] = []
        for rep in range(args.repeats):
            idx = np.sort(rng.choice(train.n, size=budget, replace=False))
            cfg = replace(TrainConfig(), seed=rep, device=args.device, max_epochs=args.max_epochs)
            t0 = time.perf_counter()
            res = train_frame_classifier(
                train.embeddings(idx), labels[idx], vx, vy, cfg, _epoch_printer(budget)
            )
            secs.append(time.perf_counter() - t0)
            epochs.append(res.epochs_run)
            stops.append(res.stop_reason)
        per_epoch = [s / e for s, e in zip(secs, epochs, strict=True)]
        results[str(budget)] = {
            "seconds_median": statistics.median(secs),
            "seconds": secs,
            "epochs": epochs,
            "stop_reasons": stops,
            "seconds_per_epoch_median": statistics.median(per_epoch),
        }
        print(
            f"budget {budget:4d}: {statistics.median(secs):8.1f} s per round "
            f"(median of {args.repeats}; epochs {epochs}; "
            f"{statistics.median(per_epoch):.2f} s/epoch)"
        )
    report = {
        "what": "seconds per AL training round",
        "t": args.t,
        "d": args.d,
        "n_valid": args.n_valid,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "max_epochs": args.max_epochs,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
