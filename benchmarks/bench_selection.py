"""Selection at paper scale: one 50-item ft and mfft round through `iml-tui select`, against the
original's approach (a precomputed N x N distance matrix read from HDF5, then the same traversal),
measured in the same run as whole processes. Prints a table and writes JSON.

``ft_carried`` is the round after one whose picks were labelled, with `select --state` carrying
the min-distance vector between them (the state file is restored before every timed run). Each
repeat also times a process that only imports numpy and h5py: no such process can beat it, so
dense / floor bounds the whole-process speed-up. A last table times a round inside one process, as
the simulator runs it.

    python benchmarks/bench_selection.py [--n 21414 --t 32 --d 2048 --labeled 500 --repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
# The installed console script, as a user runs it (``python -m iml_tui`` when not installed).
_SCRIPT = Path(sys.executable).with_name("iml-tui")
IML = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "iml_tui"]
# The least any numpy + h5py process costs: start the interpreter and import both.
FLOOR = [sys.executable, "-c", "import numpy, h5py"]

DENSE_ROUND = r"""
import sys, h5py, numpy as np


def dense_round(matrix_path, labeled_path, strategy, n, extra=()):
    labeled = np.loadtxt(labeled_path, dtype=np.int64, ndmin=1)
    with h5py.File(matrix_path, "r") as f:    # the original re-reads the whole matrix each call
        dist = f["distance"][()]
    N = dist.shape[0]
    cand = np.setdiff1d(np.arange(N), labeled)
    picked = []
    if strategy == "mfft":
        scores = np.load(extra[0]); thr = float(extra[1])
        pool_labels = np.load(extra[2])
        nn = labeled[np.argmin(dist[np.ix_(cand, labeled)], axis=1)]
        mis = ((scores[cand] >= thr).astype(np.int8) != pool_labels[nn]).sum(axis=1)
        for level in sorted(set(mis.tolist()), reverse=True):
            group = cand[mis == level]
            if len(picked) + group.size <= n:
                picked.extend(group.tolist())
                if len(picked) == n:
                    break
                continue
            base = np.concatenate([labeled, np.asarray(picked, dtype=np.int64)])
            m = dist[np.ix_(group, base)].min(axis=1)
            while len(picked) < n:
                j = int(np.argmax(m)); s = group[j]; picked.append(int(s))
                m = np.minimum(m, dist[group, s]); m[j] = -np.inf
            break
    else:
        m = dist[np.ix_(cand, labeled)].min(axis=1)
        for _ in range(n):
            j = int(np.argmax(m)); s = cand[j]; picked.append(int(s))
            m = np.minimum(m, dist[cand, s]); m[j] = -np.inf
    return picked


if __name__ == "__main__":
    picks = dense_round(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    sys.stdout.write("".join(f"{i}\n" for i in picks))
"""


def child_peak(cmd: list[str]) -> tuple[float, float, str]:
    """Run under a fresh process so its peak RSS is its own (GNU time is not assumed)."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t0 = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t0\n"
        "sys.stderr.write(p.stderr)\n"
        "print(json.dumps({'wall': w, 'rc': p.returncode, 'out': p.stdout,"
        " 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True
    )
    res = json.loads(proc.stdout)
    if res["rc"] != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {proc.stderr[-2000:]}")
    return float(res["wall"]), res["peak_kib"] / 1024.0, str(res["out"])


def bench_in_process(
    pool: Path,
    labeled_path: Path,
    scores_path: Path,
    clip_labels_path: Path,
    matrix: Path,
    picks: int,
    repeats: int,
) -> dict[str, dict[str, object]]:
    """A round as the simulator runs it, inside one process (files in the OS cache): ours opens
    the pool and selects; the dense approach re-reads the matrix and traverses it."""
    from iml_tui.engine.one_round import select_from_files

    ns: dict[str, object] = {"__name__": "dense"}
    exec(DENSE_ROUND, ns)  # the same code the dense script runs
    dense_round = ns["dense_round"]
    assert callable(dense_round)
    out: dict[str, dict[str, object]] = {}
    for strategy in ("ft", "mfft"):
        extra = (str(scores_path), "0.5", str(clip_labels_path)) if strategy == "mfft" else ()
        scores = scores_path if strategy == "mfft" else None

        def ours(strategy: str = strategy, scores: Path | None = scores) -> list[int]:
            return select_from_files(pool, labeled_path, strategy, picks, 0, scores, 0.5).tolist()

        def dense(strategy: str = strategy, extra: tuple[str, ...] = extra) -> list[int]:
            return list(dense_round(matrix, labeled_path, strategy, picks, extra))

        same = ours() == dense()
        ours_w, dense_w = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ours()
            ours_w.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            dense()
            dense_w.append(time.perf_counter() - t0)
        med_o, med_d = statistics.median(ours_w), statistics.median(dense_w)
        out[strategy] = {
            "ours_seconds_median": med_o,
            "ours_seconds": ours_w,
            "dense_seconds_median": med_d,
            "dense_seconds": dense_w,
            "speedup": med_d / med_o,
            "same_picks": same,
        }
        print(
            f"{strategy:5s} in one process: ours {med_o:6.3f} s  dense {med_d:6.3f} s  "
            f"speedup x{med_d / med_o:5.1f}  same picks: {same}"
        )
    return out


def drop_page_cache() -> bool:
    """Empty the OS file cache (root only) so the next read comes from disk; False if refused."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=21414)
    ap.add_argument("--t", type=int, default=32)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--labeled", type=int, default=500)
    ap.add_argument("--picks", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--cache",
        choices=("hot", "cold", "both"),
        default="both",
        help="hot: files already in the OS cache (warm-up run first); cold: the OS "
        "cache is emptied before every run (needs root)",
    )
    ap.add_argument("--work", type=Path, default=HERE / "results" / "selection_work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "selection.json")
    args = ap.parse_args()

    from iml_tui.data.store import PoolStore
    from iml_tui.data.synth import SynthConfig, synth_pools

    work = args.work / f"n{args.n}_t{args.t}_d{args.d}"
    work.mkdir(parents=True, exist_ok=True)
    pool = work / "train.h5"
    if not pool.exists():
        t0 = time.perf_counter()
        synth_pools(
            work, SynthConfig(n_train=args.n, n_valid=64, n_test=64, t=args.t, d=args.d, seed=0)
        )
        print(f"synthesised the pool in {time.perf_counter() - t0:.1f} s")
    store = PoolStore(pool)
    x = store.pooled()
    pooled_mib = x.nbytes / 2**20
    rng = np.random.default_rng(0)
    labeled = np.sort(rng.choice(store.n, size=args.labeled, replace=False))
    labeled_path = work / "labeled.txt"
    labeled_path.write_text("".join(f"{i}\n" for i in labeled))
    scores = rng.random((store.n, store.c)).astype(np.float32) ** 4
    scores_path = work / "scores.npy"
    np.save(scores_path, scores)
    clip_labels_path = work / "clip_labels.npy"
    np.save(clip_labels_path, store.clip_labels().astype(np.int8))
    matrix = work / "distance.h5"
    if not matrix.exists():
        t0 = time.perf_counter()
        with h5py.File(matrix, "w") as f:
            ds = f.create_dataset("distance", shape=(store.n, store.n), dtype=np.float32)
            for s in range(0, store.n, 2048):
                ds[s : s + 2048] = 1.0 - x[s : s + 2048] @ x.T
        print(
            f"precomputed the dense matrix in {time.perf_counter() - t0:.1f} s "
            f"({matrix.stat().st_size / 2**30:.2f} GiB)"
        )
    dense_script = work / "dense_round.py"
    dense_script.write_text(DENSE_ROUND)

    modes = ["hot", "cold"] if args.cache == "both" else [args.cache]
    if "cold" in modes and not drop_page_cache():
        print("cannot empty the OS cache here (not root): cold runs skipped")
        modes.remove("cold")
    # The next round with carried state: a round on |L| - picks labels wrote its state, its picks
    # were labelled (|L| labels again), and the round after starts from that state.
    prev_path, next_path = work / "labeled_prev.txt", work / "labeled_next.txt"
    prev_path.write_text("".join(f"{i}\n" for i in labeled[: -args.picks]))
    pristine, state_path = work / "ft_state_pristine.npz", work / "ft_state.npz"
    pristine.unlink(missing_ok=True)
    first = subprocess.run(
        [
            *IML,
            "select",
            "--pool",
            str(pool),
            "--labeled",
            str(prev_path),
            "--strategy",
            "ft",
            "-n",
            str(args.picks),
            "--state",
            str(pristine),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    next_path.write_text(prev_path.read_text() + first)

    results: dict[str, dict[str, object]] = {}
    for mode in modes:
        for strategy in ("ft", "mfft", "ft_carried"):
            carried = strategy == "ft_carried"
            lab_path = next_path if carried else labeled_path
            ours_cmd = [
                *IML,
                "select",
                "--pool",
                str(pool),
                "--labeled",
                str(lab_path),
                "--strategy",
                "ft" if carried else strategy,
                "-n",
                str(args.picks),
                "--seed",
                "0",
            ]
            dense_cmd = [
                sys.executable,
                str(dense_script),
                str(matrix),
                str(lab_path),
                "ft" if carried else strategy,
                str(args.picks),
            ]
            if carried:
                ours_cmd += ["--state", str(state_path)]
            if strategy == "mfft":
                ours_cmd += ["--scores", str(scores_path), "--threshold", "0.5"]
                dense_cmd += [str(scores_path), "0.5", str(clip_labels_path)]
            if mode == "hot":
                if carried:
                    shutil.copyfile(pristine, state_path)
                child_peak(ours_cmd)
                child_peak(dense_cmd)
            ours_w, ours_m, dense_w, dense_m, floor_w = [], [], [], [], []
            picks_ours = picks_dense = ""
            for _ in range(args.repeats):  # interleaved so both see the same machine state
                if carried:
                    shutil.copyfile(pristine, state_path)
                if mode == "cold":
                    drop_page_cache()
                w, m, picks_ours = child_peak(ours_cmd)
                ours_w.append(w)
                ours_m.append(m)
                if mode == "cold":
                    drop_page_cache()
                w, m, picks_dense = child_peak(dense_cmd)
                dense_w.append(w)
                dense_m.append(m)
                if mode == "cold":
                    drop_page_cache()
                floor_w.append(child_peak(FLOOR)[0])
            same = picks_ours.split() == picks_dense.split()
            med_o, med_d = statistics.median(ours_w), statistics.median(dense_w)
            med_f = statistics.median(floor_w)
            results[f"{strategy}_{mode}"] = {
                "strategy": strategy,
                "cache": mode,
                "ours_seconds_median": med_o,
                "ours_seconds": ours_w,
                "dense_seconds_median": med_d,
                "dense_seconds": dense_w,
                "speedup": med_d / med_o,
                "floor_seconds_median": med_f,
                "floor_seconds": floor_w,
                "speedup_ceiling": med_d / med_f,
                "speedup_beyond_floor": (med_d - med_f) / max(med_o - med_f, 1e-9),
                "ours_peak_rss_mib": max(ours_m),
                "dense_peak_rss_mib": max(dense_m),
                "ours_peak_beyond_pooled_mib": max(ours_m) - pooled_mib,
                "same_picks": same,
            }
            print(
                f"{strategy:5s} {mode:4s} ours {med_o:6.2f} s (peak {max(ours_m):6.0f} MiB)  "
                f"dense {med_d:6.2f} s (peak {max(dense_m):6.0f} MiB)  "
                f"speedup x{med_d / med_o:5.1f} (start-up floor {med_f:4.2f} s: at most "
                f"x{med_d / med_f:4.1f})  same picks: {same}"
            )
    in_process = bench_in_process(
        pool, labeled_path, scores_path, clip_labels_path, matrix, args.picks, args.repeats
    )
    report = {
        "what": "one selection round through `iml-tui select` vs the dense N x N matrix approach",
        "n": store.n,
        "t": store.t,
        "d": store.d,
        "labeled": args.labeled,
        "picks": args.picks,
        "repeats": args.repeats,
        "pooled_array_mib": pooled_mib,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "floor": "a process that only starts Python and imports numpy and h5py; speedup_ceiling "
        "= dense / floor is the most any such process could reach",
        "results": results,
        "in_process": in_process,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
