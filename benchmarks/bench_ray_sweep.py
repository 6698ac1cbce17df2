"""A sweep of 16 short simulated runs (4 strategies x 2 starts x 2 seeds) with
``--executor ray`` on a local Ray instance against ``--jobs 2``, in the same process run; prints
the wall times and the overhead of Ray per run, and writes JSON
(benchmarks/results/ray_sweep.json).

    python benchmarks/bench_ray_sweep.py [--n-train 600] [--budgets 10,20] [--repeats 1]

Both arms run the real command (``iml-tui simulate --task bioacoustic``) on the same generated
pools (``iml-tui pool synth``) into fresh output folders, with one torch thread per run; the
results must be equal (timing columns aside), which the script checks. Ray's arm includes
starting the local instance and its workers (what a user pays on one machine); the overhead
per run is (ray - jobs 2) / 16 x 2 (two runs at a time in both arms).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMING = ("seconds", "time", "_s")


def _cli(args: list[str]) -> None:
    from typer.testing import CliRunner

    from iml_tui.cli import app

    res = CliRunner().invoke(app, args)
    if res.exit_code != 0:
        raise SystemExit(f"iml-tui {' '.join(args)} failed:\n{res.output}\n{res.exception!r}")


def _results(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    pools = work / "pools"
    _cli(
        [
            "pool",
            "synth",
            "--out",
            str(pools),
            "--n-train",
            str(args.n_train),
            "--n-valid",
            "120",
            "--n-test",
            "120",
            "--t",
            "4",
            "--d",
            "32",
            "--seed",
            "0",
        ]
    )
    base = [
        "simulate",
        "--task",
        "bioacoustic",
        "--pool-dir",
        str(pools),
        "--strategy",
        "rand,ft,mp,mfft",
        "--start",
        "cold,warm",
        "--seeds",
        "1,2",
        "--budgets",
        args.budgets,
        "--max-epochs",
        str(args.max_epochs),
        "--threads",
        "1",
        "--set",
        "hidden=64",
    ]
    times: dict[str, list[float]] = {"jobs2": [], "ray": []}
    results: dict[str, list[dict[str, str]]] = {}
    for k in range(args.repeats):
        for arm, extra in (("jobs2", ["--jobs", "2"]), ("ray", ["--executor", "ray"])):
            out = work / f"{arm}_{k}"
            t0 = time.perf_counter()
            _cli([*base, *extra, "--out", str(out)])
            times[arm].append(time.perf_counter() - t0)
            results[arm] = _results(out / "al_results.csv")
    same = results["jobs2"] == results["ray"]
    med = {arm: statistics.median(v) for arm, v in times.items()}
    return {
        "runs": 16,
        "n_train": args.n_train,
        "budgets": args.budgets,
        "max_epochs": args.max_epochs,
        "repeats": args.repeats,
        "wall_s": times,
        "median_wall_s": med,
        "ray_over_jobs2": med["ray"] / med["jobs2"],
        "ray_overhead_s_per_run": (med["ray"] - med["jobs2"]) / 16 * 2,
        "identical_results": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--budgets", default="10,20")
    ap.add_argument("--max-epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ray_sweep.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fig = run(a, Path(tmp))
    fig["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_after": list(os.getloadavg()),
    }
    m = fig["median_wall_s"]
    print(
        f"16 runs: --jobs 2 {m['jobs2']:.1f} s, --executor ray {m['ray']:.1f} s "
        f"(x{fig['ray_over_jobs2']:.2f}; {fig['ray_overhead_s_per_run']:.2f} s per run); "
        f"identical results: {fig['identical_results']}"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(fig, indent=2) + "\n")


if __name__ == "__main__":
    main()
