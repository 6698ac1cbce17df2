"""Kill loop: label, kill -9, restart, count. Nothing acknowledged may be lost, and the item an
annotator was shown (and had not answered) must come back first after the restart.

Each cycle starts one worker process per annotator on the same project; every worker labels
from the stored truth (retraining on its own thread whenever the queue waits for a model), and
prints ``NEXT i`` when it is shown item i and ``ACK i`` once ``submit`` has returned. After a
random delay every worker gets SIGKILL. The journal is then read and checked:

- lost: an ACKed label that is not in the journal (must be 0);
- duplicates: an item labelled by two annotators (the lease must prevent it; must be 0);
- next-item mismatches: a worker killed after ``NEXT i`` whose label of i is not in the journal
  must be shown i first when it restarts, unless another annotator took i over meanwhile (a
  killed process's item is released at once; counted as ``next_item_taken_over``); must be 0.
- trainings: one session trains per model (a training claim in the journal; the others load its
  checkpoint), so ``training_claims`` exceeds ``models_installed`` only by the trainings a kill
  cut short (``claims_per_model`` counts the claims made on each installed model).

Run: ``python benchmarks/killloop.py [--cycles 20] [--annotators 2]``; prints a summary and
writes JSON (``--out``, default ``benchmarks/results/killloop.json``). Exit status 1 when a
check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# --- the worker ----------------------------------------------------------------------------------
def worker(project: Path, annotator: str, think: float, seed: int) -> None:
    """Label until done, printing NEXT / ACK / TRAIN lines (flushed)."""
    import torch

    from iml_tui.engine.session import Session

    torch.set_num_threads(1)
    rnd = random.Random(seed)
    s = Session.open(project, annotator)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    say("READY")
    while True:
        item = s.next_item()
        if item is None:
            if s.retrain_due():
                say("TRAIN start")
                ok = s.retrain_now()
                say(f"TRAIN done {int(ok)}")
                continue
            if s.progress().done:
                say("DONE")
                return
            time.sleep(0.02)  # another annotator holds the rest, or trains
            continue
        say(f"NEXT {item.index}")
        if think:
            time.sleep(rnd.uniform(think / 2, think))
        s.submit(item, s.truth(item), seconds=0.01)
        say(f"ACK {item.index}")


# --- the project ---------------------------------------------------------------------------------
def make_project(folder: Path, n: int, seed: int) -> Path:
    """A random pool (3 classes) and a pool-mode project with a small, fast classifier."""
    import numpy as np

    from iml_tui.data.store import write_pool
    from iml_tui.engine.project import Project, ProjectConfig

    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    for split, size in (("train", n), ("valid", max(30, n // 5))):
        lab = (rng.random((size, 1, 3)) < 0.3).astype(np.uint8).repeat(8, axis=1)
        emb = rng.normal(size=(size, 8, 32)).astype(np.float32) + lab @ rng.normal(
            size=(3, 32)
        ).astype(np.float32)
        write_pool(
            folder / "pool" / f"{split}.h5",
            emb.astype(np.float32),
            lab,
            classes,
            [f"rec{i // 10}.wav@{5 * (i % 10)}" for i in range(size)],
        )
    budgets = list(range(40, n + 1, 40))
    cfg = ProjectConfig(
        task="bioacoustic",
        pool_dir=str(folder / "pool"),
        strategy="mfft",
        budgets=budgets,
        seed=seed,
        hidden=32,
        max_epochs=10,
        min_lr=1e-4,
        lr=3e-3,
        batch_size=32,
        threads=1,
    )
    return Project.create(folder / "project", cfg).dir


# --- the loop ------------------------------------------------------------------------------------
class Proc:
    """A worker process and the lines it printed."""

    def __init__(self, project: Path, annotator: str, think: float, seed: int) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.annotator = annotator
        self.started = time.perf_counter()
        self.p = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                str(project),
                "--annotator",
                annotator,
                "--think",
                str(think),
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.ready_at: float | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line.strip())

    def drain(self) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            self.log.append(line)
            if line == "READY" and self.ready_at is None:
                self.ready_at = time.perf_counter() - self.started

    def wait_ready(self, timeout: float) -> None:
        end = time.perf_counter() + timeout
        while self.ready_at is None and time.perf_counter() < end:
            if self.p.poll() is not None:
                self.drain()
                err = self.p.stderr.read() if self.p.stderr else ""
                raise RuntimeError(f"worker {self.annotator} exited: {err[-2000:]}")
            time.sleep(0.01)
            self.drain()
        if self.ready_at is None:
            raise RuntimeError(f"worker {self.annotator} did not start in {timeout} s")

    def kill_at_next(self, timeout: float) -> None:
        """Kill as soon as the worker says it shows an item (a kill while the annotator
        looks at it), or after ``timeout`` s."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end and self.p.poll() is None:
            try:
                line = self.lines.get(timeout=0.01)
            except queue.Empty:
                continue
            self.log.append(line)
            if line.startswith("NEXT "):
                break
        self.kill()

    def kill(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait()
        time.sleep(0.05)  # let the reader thread take the last lines
        self.drain()


def journal_state(project: Path) -> tuple[dict[int, Any], dict[tuple[int, str], int]]:
    """(item -> current answer, (item, annotator) -> labelled events in force)."""
    from iml_tui.engine.journal import Journal

    with Journal(project / "journal.sqlite") as j:
        current = j.current_answers()
        undone = {e.ref for e in j.events(kinds=["undone"])}
        labelled: dict[tuple[int, str], int] = {}
        for e in j.events(kinds=["labelled"]):
            if e.id not in undone and e.item is not None:
                labelled[(e.item, e.annotator)] = labelled.get((e.item, e.annotator), 0) + 1
    return current, labelled


def taken_over(project: Path, item: int, annotator: str, after_id: int) -> bool:
    """Whether another annotator claimed ``item`` after journal event ``after_id`` (a killed
    annotator's item is released once its process is gone, so another may take it first)."""
    from iml_tui.engine.journal import Journal

    with Journal(project / "journal.sqlite") as j:
        return any(
            e.item == item and e.annotator != annotator
            for e in j.events(after_id, kinds=["queried"])
        )


def training_counts(project: Path) -> tuple[int, int, dict[int, int]]:
    """(models installed, training claims, claims made on each model version)."""
    from iml_tui.engine.journal import Journal

    with Journal(project / "journal.sqlite") as j:
        models = j.events(kinds=["model_trained"])
        claims = j.events(kinds=["training_claimed"])
    per: dict[int, int] = {}
    for c in claims:
        v = int(c.model_version or 0)
        per[v] = per.get(v, 0) + 1
    return len(models), len(claims), dict(sorted(per.items()))


def last_event_id(project: Path) -> int:
    from iml_tui.engine.journal import Journal

    with Journal(project / "journal.sqlite") as j:
        events = j.events(0)
        return events[-1].id if events else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(args.seed)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="killloop-"))
    t_start = time.perf_counter()
    project = make_project(work, args.n, args.seed)
    names = [f"annotator{k}" for k in range(args.annotators)]
    acked: set[tuple[int, str]] = set()
    expect: dict[str, int] = {}
    marks: dict[str, int] = {}
    cycles: list[dict[str, Any]] = []
    checks = mismatches = takeovers = kills_training = kills_shown = 0
    finished = False
    for c in range(args.cycles):
        procs = [
            Proc(project, who, args.think, args.seed * 1000 + c * 10 + k)
            for k, who in enumerate(names)
        ]
        for p in procs:
            p.wait_ready(args.start_timeout)
        delay = rnd.uniform(args.min_delay, args.max_delay)
        time.sleep(delay)
        at_next = args.kill_at == "next" or (args.kill_at == "mixed" and c % 2 == 1)
        for p in procs:
            if at_next:
                p.drain()
                p.kill_at_next(args.max_delay + 30.0)
            else:
                p.kill()
        current, labelled = journal_state(project)
        row: dict[str, Any] = {
            "cycle": c,
            "delay_s": round(delay, 3),
            "kill": "at next item" if at_next else "after delay",
            "workers": [],
        }
        for p in procs:
            nexts = [int(ln.split()[1]) for ln in p.log if ln.startswith("NEXT ")]
            acks = [int(ln.split()[1]) for ln in p.log if ln.startswith("ACK ")]
            acked.update((i, p.annotator) for i in acks)
            first = nexts[0] if nexts else None
            check = p.annotator in expect and first is not None
            if check:
                checks += 1
                if first != expect[p.annotator]:
                    if taken_over(project, expect[p.annotator], p.annotator, marks[p.annotator]):
                        takeovers += 1
                    else:
                        mismatches += 1
            expect.pop(p.annotator, None)
            last = p.log[-1] if p.log else ""
            if last == "TRAIN start":
                kills_training += 1
            if last.startswith("NEXT "):
                kills_shown += 1
                shown = int(last.split()[1])
                if shown not in current:
                    expect[p.annotator] = shown
                    marks[p.annotator] = last_event_id(project)
            finished = finished or "DONE" in p.log
            row["workers"].append(
                {
                    "annotator": p.annotator,
                    "startup_s": round(p.ready_at or 0.0, 3),
                    "acked": len(acks),
                    "last": last,
                    "first_next": first,
                    "checked": check,
                }
            )
        cycles.append(row)
        if finished:
            break
    current, labelled = journal_state(project)
    lost = sorted(k for k in acked if labelled.get(k, 0) == 0)
    per_item: dict[int, set[str]] = {}
    for item, who in labelled:
        per_item.setdefault(item, set()).add(who)
    duplicates = sorted(i for i, w in per_item.items() if len(w) > 1)
    startups = [w["startup_s"] for r in cycles for w in r["workers"]]
    n_models, n_claims, per_model = training_counts(project)
    result = {
        "benchmark": "killloop",
        "cycles": len(cycles),
        "annotators": args.annotators,
        "pool_size": args.n,
        "labels_acknowledged": len(acked),
        "labels_in_journal": sum(1 for e in current.values() if e.kind == "labelled"),
        "lost": len(lost),
        "lost_items": lost[:20],
        "duplicates": len(duplicates),
        "next_item_checks": checks,
        "next_item_mismatches": mismatches,
        "next_item_taken_over": takeovers,
        "kills_while_shown": kills_shown,
        "kills_while_training": kills_training,
        "models_installed": n_models,
        "training_claims": n_claims,
        "claims_per_model": per_model,
        "finished_project": finished,
        "mean_startup_s": round(sum(startups) / max(1, len(startups)), 3),
        "seconds": round(time.perf_counter() - t_start, 2),
        "project": str(project),
        "host": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "per_cycle": cycles,
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--annotators", type=int, default=2)
    ap.add_argument("--n", type=int, default=600, help="pool size")
    ap.add_argument("--min-delay", type=float, default=0.2, help="seconds before the kill")
    ap.add_argument("--max-delay", type=float, default=3.0)
    ap.add_argument(
        "--kill-at",
        choices=("time", "next", "mixed"),
        default="mixed",
        help="kill after the delay, at the first item shown after it, or alternate",
    )
    ap.add_argument(
        "--think",
        type=float,
        default=0.1,
        help="a worker waits between think/2 and think s before answering",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-timeout", type=float, default=120.0)
    ap.add_argument("--workdir", default="", help="keep the project here (default: a temp dir)")
    ap.add_argument("--out", default=str(HERE / "results" / "killloop.json"))
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    ap.add_argument("--annotator", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(Path(args.worker), args.annotator, args.think, args.seed)
        return
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"kill loop: {result['cycles']} cycles x {result['annotators']} annotators, "
        f"{result['labels_acknowledged']} labels acknowledged, "
        f"{result['labels_in_journal']} in the journal, lost {result['lost']}, "
        f"duplicates {result['duplicates']}, same next item "
        f"{result['next_item_checks'] - result['next_item_mismatches']}/"
        f"{result['next_item_checks']} (taken over by another annotator: "
        f"{result['next_item_taken_over']}), kills while training "
        f"{result['kills_while_training']}, models {result['models_installed']} from "
        f"{result['training_claims']} training claims; {result['seconds']} s -> {out}"
    )
    ok = not result["lost"] and not result["duplicates"] and not result["next_item_mismatches"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
