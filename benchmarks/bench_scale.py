"""Sharded exact selection at scale: seconds per pick batch and peak memory for ft (and mfft) on
generated pools of N clips with D=1024 float16 selection arrays, K shard processes or K Ray
actors of a local Ray instance (``--executor ray``). Prints a table and writes JSON.

    python benchmarks/bench_scale.py [--sizes 21414,200000 --shards 1,2,4 --big]
    python benchmarks/bench_scale.py --sizes 200000,1000000 --executor ray --keep

Each pool file holds the selection array ``derived/pooled_max_l2`` (N, D) float16 of clustered,
L2-normalised rows; its (N, 1, D) embeddings dataset is declared but never written (selection
never reads it), so a million-row pool costs 2 GB of disk, not 4 GB more. ``--big`` adds
N = 1,000,000. Every (N, K, strategy) runs in a fresh process: the shards are built with
``ShardedPool.from_store`` (each worker reads its own row range, as float32), ``--labeled``
random clips are labelled, then ``--batches`` pick batches of ``--batch`` clips follow, each
batch's picks joining the labelled set. Each shard gets ``--threads-per-shard`` BLAS threads
(default 1: a traversal is a stream of small matrix-vector products, which threading slows on a
busy machine; 0 = cores / K). Memory: the
driver's peak RSS and the largest shard process's peak RSS (VmHWM from /proc, each shard
reporting its own; locally with K = 1 the shard lives in the driver, with Ray in one actor),
and the peak of the driver's traced allocations (``tracemalloc``)
during one more, untimed batch. The picks of every K must be the same clips (checked; the run
stops otherwise), across executors too.

``findings`` (printed, and in the JSON) states, from the measured rows, where one process runs
out of memory and the sharded run does not: a process's peak is the larger of the driver's and
its largest shard's (locally for K = 1 the driver holds the shard), held against
``--worker-memory-gib`` (default 4: a node with 4 GiB per worker); the time per pick batch of
each K against one process's; and, labelled as an extrapolation, the fewest shards that fit an
archive of ``--extrapolate-n`` clips (peak per process taken as linear in the rows a process
holds, fitted to the measured rows). ``--keep`` keeps the rows of the existing ``--out`` that
this run does not measure again (another N, or another executor); ``--rows FILE`` adds the rows
of another report (same settings), so a large N measured once joins the others.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
D = 1024
C = 10  # classes of the generated labels (mfft's mismatch counts)
PAPER_N = 21414
BIG_N = 1_000_000
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_pool(path: Path, n: int, d: int = D, clusters: int = 64, seed: int = 0) -> Path:
    """A pool file whose only written dataset is the (n, d) float16 selection array."""
    from iml_tui.data.store import POOLED_KEY

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    with h5py.File(tmp, "w") as f:
        f.create_dataset("embeddings", shape=(n, 1, d), dtype=np.float32)
        f.create_dataset("labels", shape=(n, 1, C), dtype=np.uint8)
        f.create_dataset(
            "class_list",
            data=np.array([f"c{i}" for i in range(C)], dtype=object),
            dtype=h5py.string_dtype(),
        )
        f.create_dataset("ids", shape=(n,), dtype=h5py.string_dtype())
        ds = f.create_dataset(POOLED_KEY, shape=(n, d), dtype=np.float16)
        f.attrs["pooled_dtype"] = "float16"
        step = 50_000
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            rows = centres[rng.integers(0, clusters, hi - lo)]
            rows += 0.8 * rng.standard_normal((hi - lo, d), dtype=np.float32)
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            ds[lo:hi] = rows.astype(np.float16)
    tmp.replace(path)
    return path


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak RSS in MB of process ``pid`` (VmHWM; getrusage where /proc is absent)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0.0


def process_peak_mb(row: dict[str, Any]) -> float:
    """The largest peak RSS of one process of a row: the driver (which holds the shard when
    K = 1) or its largest shard process."""
    return float(max(row["driver_peak_rss_mb"], row["shard_peak_rss_mb"]))


def findings(
    rows: list[dict[str, Any]], limit_gib: float = 4.0, extrapolate_n: int = 10_000_000
) -> dict[str, Any]:
    """What the measured rows say against a per-process memory limit of ``limit_gib``: per
    (N, strategy) one line naming each K's peak per process and whether it fits, with the
    seconds per batch against K = 1; then, explicitly as an extrapolation, the fewest K that fit
    ``extrapolate_n`` rows. Returns {"limit_gib", "lines", "by_size", "extrapolated"}."""
    limit_mb = 1024 * limit_gib
    lines: list[str] = []
    by_size: list[dict[str, Any]] = []

    def where(r: dict[str, Any]) -> str:
        return str(r.get("executor", "local"))

    keys = sorted({(int(r["n"]), str(r["strategy"]), where(r)) for r in rows})
    for n, strategy, executor in keys:
        group = sorted(
            (r for r in rows if (r["n"], r["strategy"], where(r)) == (n, strategy, executor)),
            key=lambda r: int(r["shards"]),
        )
        one = next((r for r in group if r["shards"] == 1), None)
        entry: dict[str, Any] = {"n": n, "strategy": strategy, "executor": executor, "k": {}}
        parts = []
        for r in group:
            peak = process_peak_mb(r)
            fits = peak <= limit_mb
            speed = (
                one["batch_seconds_median"] / r["batch_seconds_median"]
                if one is not None and r["batch_seconds_median"] > 0
                else None
            )
            entry["k"][str(r["shards"])] = {
                "peak_per_process_gib": peak / 1024,
                "fits": fits,
                "batch_seconds": r["batch_seconds_median"],
                "speedup_vs_one_process": speed,
            }
            parts.append(
                f"K={r['shards']}: {peak / 1024:.2f} GiB per process "
                f"({'fits' if fits else 'over the limit'}), {r['batch_seconds_median']:.2f} s "
                "per batch"
                + (f" ({speed:.2f}x one process)" if speed is not None and r["shards"] > 1 else "")
            )
        fitting = [int(r["shards"]) for r in group if process_peak_mb(r) <= limit_mb]
        entry["fewest_shards_that_fit"] = min(fitting) if fitting else None
        head = f"N={n:,} {strategy} ({executor}): "
        if one is not None and process_peak_mb(one) > limit_mb and fitting:
            head += (
                f"one process runs out of a {limit_gib:g} GiB worker, {min(fitting)} shards "
                "(and more) do not; "
            )
        elif fitting and min(fitting) == 1:
            head += f"one process fits a {limit_gib:g} GiB worker; "
        elif not fitting:
            head += f"no measured K fits a {limit_gib:g} GiB worker; "
        lines.append(head + "; ".join(parts))
        by_size.append(entry)
    if by_size:
        n_top = max(e["n"] for e in by_size)
        speeds = [
            v["speedup_vs_one_process"]
            for e in by_size
            if e["n"] == n_top
            for k, v in e["k"].items()
            if k != "1" and v["speedup_vs_one_process"] is not None
        ]
        if speeds:
            lines.append(
                f"time: at N={n_top:,} the shards run a pick batch {min(speeds):.2f}x to "
                f"{max(speeds):.2f}x as fast as one process on these {os.cpu_count()} CPUs; a "
                "round's selection takes seconds either way, so memory, not time, is what one "
                "process runs out of here"
            )
    extrapolated: dict[str, Any] = {}
    if rows:
        # peak per process = a + b * rows held, least squares over every measured process
        held = np.array([r["n"] / r["shards"] for r in rows], dtype=np.float64)
        peak = np.array([process_peak_mb(r) for r in rows], dtype=np.float64)
        b, a = np.polyfit(held, peak, 1) if np.unique(held).size > 1 else (peak[0] / held[0], 0)
        need = (limit_mb - a) / b if b > 0 else float("inf")
        k_min = int(np.ceil(extrapolate_n / need)) if need > 0 else None
        one_gib = (a + b * extrapolate_n) / 1024
        extrapolated = {
            "label": "EXTRAPOLATED from the measured rows, not measured",
            "n": extrapolate_n,
            "mb_per_1k_rows": 1000 * b,
            "mb_fixed": a,
            "one_process_gib": one_gib,
            "fewest_shards_that_fit": k_min,
        }
        lines.append(
            f"EXTRAPOLATED (not measured): peak per process ~ {a:.0f} MB + {1000 * b:.2f} MB per "
            f"1,000 rows held; N={extrapolate_n:,} would need {one_gib:.1f} GiB in one process, "
            f"and at least {k_min} shards to stay under {limit_gib:g} GiB each"
        )
    return {
        "limit_gib": limit_gib,
        "lines": lines,
        "by_size": by_size,
        "extrapolated": extrapolated,
    }


def run_one(
    path: Path,
    n: int,
    k: int,
    strategy: str,
    labeled: int,
    batch: int,
    batches: int,
    seed: int,
    executor: str = "local",
) -> dict[str, Any]:
    """One configuration, in this process: build K shards (local: processes, K = 1 in this
    process; ray: K actors of a local Ray instance with every CPU), time the pick batches."""
    from iml_tui.engine.strategies.sharded import ShardedPool, sharded_select

    if executor == "ray":
        import ray

        ray.init(include_dashboard=False, log_to_driver=False)

    rng = np.random.default_rng(seed)
    lab = rng.choice(n, size=labeled, replace=False).astype(np.int64)
    targets = (rng.random((n, C)) < 0.1).astype(np.uint8)
    probs = rng.random((n, C)).astype(np.float32) if strategy == "mfft" else None
    t0 = time.perf_counter()
    pool = ShardedPool.from_store(path, n, k, executor)
    build = time.perf_counter() - t0
    seconds: list[float] = []
    start = lab.size
    try:
        for _ in range(batches):
            t1 = time.perf_counter()
            picks = sharded_select(pool, strategy, batch, rng, lab, targets[lab], probs, 0.5)
            seconds.append(time.perf_counter() - t1)
            if picks.size != batch or np.isin(picks, lab).any():
                raise RuntimeError(f"{strategy} returned {picks.size} picks, or labelled ones")
            lab = np.concatenate([lab, picks])
        picked = lab[start:].copy()
        # one more, untimed batch with allocation tracing (it slows numpy's many small arrays)
        tracemalloc.start()
        try:
            sharded_select(pool, strategy, batch, rng, lab, targets[lab], probs, 0.5)
            _, traced = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # each shard's own process (K = 1 locally: this one)
        shard_mb = [float(v) for v in pool.group.call("peak_rss_mb", [()] * len(pool.group))]
    finally:
        pool.close()
    return {
        "n": n,
        "shards": k,
        "strategy": strategy,
        "executor": executor,
        "labeled": labeled,
        "batch": batch,
        "build_seconds": build,
        "batch_seconds": seconds,
        "batch_seconds_median": statistics.median(seconds),
        "picks_sha256": hashlib.sha256(picked.tobytes()).hexdigest()[:16],
        "driver_peak_rss_mb": _hwm_mb(),
        "shard_peak_rss_mb": max(shard_mb),
        "shards_peak_rss_mb_sum": sum(shard_mb),
        "driver_traced_peak_mb": traced / 2**20,
    }


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["n"], row.get("executor", "local"), row["shards"], row["strategy"]


def strategies_order(strategy: str) -> int:
    """Sort key: ft before mfft, others after."""
    return {"ft": 0, "mfft": 1}.get(strategy, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default=f"{PAPER_N},200000")
    ap.add_argument("--big", action="store_true", help=f"also N = {BIG_N:,}")
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--strategies", default="ft,mfft")
    ap.add_argument("--labeled", type=int, default=500)
    ap.add_argument("--batch", type=int, default=50, help="picks per batch (one round)")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads-per-shard",
        type=int,
        default=1,
        help="BLAS threads of each shard process; 0 = cores / K (at least 1)",
    )
    ap.add_argument("--work", type=Path, default=HERE / "results" / "scale_work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    ap.add_argument(
        "--worker-memory-gib",
        type=float,
        default=4.0,
        help="memory of one worker process that the findings hold each peak against",
    )
    ap.add_argument("--extrapolate-n", type=int, default=10_000_000)
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the rows of the existing --out whose N this run does not measure",
    )
    ap.add_argument(
        "--rows",
        type=Path,
        action="append",
        default=[],
        help="add the rows of another report of this script (repeatable)",
    )
    ap.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: a process per shard (K = 1 in the driver); ray: a Ray actor per shard on a "
        "local Ray instance",
    )
    ap.add_argument("--one", nargs=3, metavar=("N", "K", "STRATEGY"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one is not None:
        n, k, strategy = int(args.one[0]), int(args.one[1]), args.one[2]
        row = run_one(
            args.work / f"pool_n{n}_d{D}_f16.h5",
            n,
            k,
            strategy,
            args.labeled,
            args.batch,
            args.batches,
            args.seed,
            args.executor,
        )
        print(json.dumps(row))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s] + ([BIG_N] if args.big else [])
    shards = [int(k) for k in args.shards.split(",") if k]
    strategies = [s for s in args.strategies.split(",") if s]
    rows: list[dict[str, Any]] = []
    earlier: list[dict[str, Any]] = []
    sources = [*args.rows, *([args.out] if args.keep and args.out.exists() else [])]
    for src in sources:
        for row in json.loads(src.read_text())["rows"]:
            row.setdefault("executor", "local")
            measured_now = row["n"] in sizes and row["executor"] == args.executor
            if not measured_now and _key(row) not in {_key(r) for r in earlier}:
                earlier.append(row)
    print(
        f"{'N':>9} {'K':>2} {'strategy':>8} {'build s':>8} {'s/batch':>8} {'driver MB':>10} "
        f"{'shard MB':>9} {'traced MB':>10}",
        flush=True,
    )
    for n in sizes:
        t0 = time.perf_counter()
        path = make_pool(args.work / f"pool_n{n}_d{D}_f16.h5", n)
        print(
            f"# pool N={n}: {path.stat().st_size / 2**20:.0f} MB on disk "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        for strategy in strategies:
            for k in shards:
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    str(n),
                    str(k),
                    strategy,
                    "--labeled",
                    str(args.labeled),
                    "--batch",
                    str(args.batch),
                    "--batches",
                    str(args.batches),
                    "--seed",
                    str(args.seed),
                    "--work",
                    str(args.work),
                    "--executor",
                    args.executor,
                ]
                threads = args.threads_per_shard or max(1, (os.cpu_count() or 1) // k)
                env = {**os.environ, **{v: str(threads) for v in BLAS_THREADS}}
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
                if proc.returncode != 0:
                    raise SystemExit(f"N={n} K={k} {strategy} failed:\n{proc.stderr}")
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                same = [r for r in [*earlier, *rows] if (r["n"], r["strategy"]) == (n, strategy)]
                if same and same[0]["picks_sha256"] != row["picks_sha256"]:
                    raise SystemExit(
                        f"N={n} {strategy}: K={k} picked other clips than K={same[0]['shards']}"
                    )
                row["threads_per_shard"] = threads
                rows.append(row)
                print(
                    f"{n:9d} {k:2d} {strategy:>8} {row['build_seconds']:8.2f} "
                    f"{row['batch_seconds_median']:8.2f} {row['driver_peak_rss_mb']:10.0f} "
                    f"{row['shard_peak_rss_mb']:9.0f} {row['driver_traced_peak_mb']:10.1f}",
                    flush=True,
                )
    rows = sorted(
        [*earlier, *rows],
        key=lambda r: (r["n"], strategies_order(r["strategy"]), r["executor"], r["shards"]),
    )
    found = findings(rows, args.worker_memory_gib, args.extrapolate_n)
    print("findings:")
    for line in found["lines"]:
        print(f"  {line}")
    report = {
        "what": "sharded exact selection: seconds per pick batch and peak memory",
        "d": D,
        "pooled_dtype": "float16",
        "executors": {
            "local": "one process per shard; K=1 in the driver",
            "ray": "one Ray actor per shard on a local Ray instance with every CPU",
        },
        "labeled": args.labeled,
        "batch": args.batch,
        "batches": args.batches,
        "threads_per_shard": args.threads_per_shard,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "findings": found,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
