"""Key press to next item fully rendered in ``iml-tui label``, p50 / p95, with a retraining
running in the background. Prints a line per setting and writes JSON.

    python benchmarks/bench_tui.py [--n-train 21414 --presses 200 --t 8 --d 128]

The pool is synthetic (``iml_tui.data.synth``) at the paper's size (21414 clips); every clip id
maps, through a ``clips.csv`` in the audio root, to one of a few generated 10 s recordings at
32 kHz, so each item is really read from disk, turned into a log-mel picture and handed to the
file player (auto-play on), exactly as in a labelling session. The app runs headless at a fixed
terminal size through Textual's Pilot; a press of Enter is timed from the key event to the
moment the next item's screen has been composed (``ItemShown``, posted after the refresh).

"With a retraining running": a thread of the same process runs the trainer as a retraining does
— train the frame classifier on 500 labelled clips, then predict the whole pool to re-rank it —
over and over while the key presses are timed (a pool round's own retraining happens between
rounds, when the queue waits for it; this measures the worst case, a busy CPU while labelling).
It uses all cores but one, at a lowered priority, as ``iml-tui label`` does. The machine's load
average is recorded: other work on a shared machine shows in the tail.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SR = 32000
N_RECORDINGS = 8


def make_audio(audio: Path, ids: list[str]) -> None:
    """A few 10 s recordings (chirps, tones and noise) and a clip table pointing every id at one."""
    import soundfile as sf

    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(10 * SR) / SR
    for r in range(N_RECORDINGS):
        f0 = 500 + 700 * r
        x = 0.02 * rng.normal(size=t.size)
        x += 0.2 * np.sin(2 * np.pi * (f0 + 300 * np.sin(2 * np.pi * 0.5 * t)) * t)
        x[(t % 2) < 0.3] += 0.3 * np.sin(2 * np.pi * 3 * f0 * t[(t % 2) < 0.3])
        sf.write(audio / f"rec{r}.wav", x.astype(np.float32), SR)
    with open(audio / "clips.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "audio", "offset", "duration"])
        for i, clip_id in enumerate(ids):
            w.writerow([clip_id, f"rec{i % N_RECORDINGS}.wav", 0, 10])


def prepare(work: Path, n_train: int, t: int, d: int) -> tuple[Path, Path]:
    """Synthetic pools and their audio (made once, reused)."""
    from iml_tui.data.store import PoolStore
    from iml_tui.data.synth import SynthConfig, synth_pools

    pools = work / f"pools_n{n_train}_t{t}_d{d}"
    if not (pools / "test.h5").exists():
        synth_pools(pools, SynthConfig(n_train=n_train, n_valid=500, n_test=64, t=t, d=d, seed=0))
    audio = work / "audio"
    if not (audio / "clips.csv").exists():
        ids = [*PoolStore(pools / "train.h5").ids, *PoolStore(pools / "valid.h5").ids]
        make_audio(audio, ids)
    return pools, audio


class BackgroundRetraining:
    """Trains and re-ranks in a loop on a thread until stopped; counts the rounds done."""

    def __init__(
        self, pools: Path, labelled: int = 500, max_epochs: int = 30, threads: int | None = None
    ) -> None:
        self.pools = pools
        self.threads = threads
        self.labelled = labelled
        self.max_epochs = max_epochs
        self.stop = threading.Event()
        self.rounds = 0
        self.error = ""
        self.thread = threading.Thread(target=self._loop, name="bench-retraining", daemon=True)

    def _loop(self) -> None:
        from iml_tui.data.store import PoolStore
        from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier
        from iml_tui.tui.priority import lower_this_thread

        lower_this_thread()  # as the label command's retraining worker does
        train, valid = PoolStore(self.pools / "train.h5"), PoolStore(self.pools / "valid.h5")
        rng = np.random.default_rng(1)
        vx, vy = valid.embeddings(), valid.frame_labels()
        labels = train.frame_labels()
        try:
            while not self.stop.is_set():
                idx = np.sort(rng.choice(train.n, size=self.labelled, replace=False))
                cfg = replace(
                    TrainConfig(),
                    seed=self.rounds,
                    device="cpu",
                    max_epochs=self.max_epochs,
                    threads=self.threads,
                )
                result = train_frame_classifier(train.embeddings(idx), labels[idx], vx, vy, cfg)
                for lo in range(0, train.n, 4096):
                    if self.stop.is_set():
                        break
                    predict_frames(result.state_dict, train.embeddings(slice(lo, lo + 4096)))
                self.rounds += 1
        except Exception as exc:  # reported in the JSON; the timing run goes on
            self.error = f"{type(exc).__name__}: {exc}"

    def __enter__(self) -> BackgroundRetraining:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)


async def time_presses(
    project: Path,
    clips: Path,
    presses: int,
    warmup: int,
    size: tuple[int, int],
    idle_ok: bool = False,
) -> list[float]:
    """Seconds from each Enter to the next item drawn, over ``presses`` answers.

    ``idle_ok``: when the screen shows no item (the queue waits for a model), the press's time
    runs on until an item is drawn (round boundaries without bridging wait so).

    Keys go in through the driver, as a terminal's would (``Pilot.press`` is not used: it waits
    until the process looks idle, which a busy training thread never lets it be).
    """
    from textual import events
    from textual.message import Message

    from iml_tui.audio.playback import FilePlayer
    from iml_tui.engine.session import Session
    from iml_tui.tui.app import make_app
    from iml_tui.tui.messages import ItemShown

    session = Session.open(project, annotator="bench")
    shown = asyncio.Event()

    def hook(message: Message) -> None:
        if isinstance(message, ItemShown):
            shown.set()

    def key(name: str, char: str) -> None:
        event = events.Key(name, char)
        event.set_sender(app)
        assert app._driver is not None
        app._driver.send_message(event)

    player = FilePlayer(clips)
    app = make_app(session, player, cursor=True)
    times: list[float] = []
    try:
        async with app.run_test(size=size, message_hook=hook):
            await asyncio.wait_for(shown.wait(), 120)
            for i in range(warmup + presses):
                if app.main.current is None:
                    raise RuntimeError("the queue ran out: raise the first budget")
                digit = str(1 + i % 3)
                key(digit, digit)
                await asyncio.sleep(0.03)  # the annotator's thinking time
                shown.clear()
                t0 = time.perf_counter()
                key("enter", "\r")
                await asyncio.wait_for(shown.wait(), 60)
                while idle_ok and app.main.current is None:  # until an item is on screen
                    shown.clear()
                    await asyncio.wait_for(shown.wait(), 600)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
                await asyncio.sleep(0.03)
    finally:
        session.close()
        player.close()
    return times


def ui_threads() -> int:
    """Torch threads of a retraining while labelling: every core but the UI's (as the label
    command sets them)."""
    return max(1, (os.cpu_count() or 2) - 1)


def summary(times: list[float]) -> dict[str, float]:
    """p50 / p95 / max / mean in milliseconds."""
    ms = sorted(1000 * t for t in times)
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
        "max_ms": ms[-1],
        "mean_ms": statistics.fmean(ms),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both settings (idle CPU, then a retraining in the background) on fresh projects."""
    from iml_tui.engine.project import open_or_create

    pools, audio = prepare(args.work, args.n_train, args.t, args.d)
    results: dict[str, Any] = {}
    for setting in args.settings:
        if setting.startswith("boundary"):
            results[setting] = boundary(args, pools, audio, bridge=setting == "boundary")
            r = results[setting]
            print(
                f"{setting:>10}: p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  "
                f"max {r['max_ms']:6.1f} ms  (n={r['n']} round boundaries)"
            )
            continue
        project = args.work / f"project_{setting}_{os.getpid()}_{int(time.time())}"
        open_or_create(
            project,
            {
                "task": "bioacoustic",
                "pool_dir": str(pools),
                "strategy": "mfft",
                "budgets": [args.presses + args.warmup + 20, 100000],
                "audio_root": str(audio),
            },
        )
        t0 = time.perf_counter()
        if setting == "idle":
            times = asyncio.run(
                time_presses(project, args.work / "clips", args.presses, args.warmup, args.size)
            )
            extra: dict[str, Any] = {}
        else:
            with BackgroundRetraining(pools, threads=ui_threads()) as bg:
                times = asyncio.run(
                    time_presses(project, args.work / "clips", args.presses, args.warmup, args.size)
                )
            extra = {"background_rounds": bg.rounds, "background_error": bg.error}
        results[setting] = {
            **summary(times),
            **extra,
            "wall_s": time.perf_counter() - t0,
            "load_average_after": list(os.getloadavg()),
        }
        r = results[setting]
        print(
            f"{setting:>10}: p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  "
            f"max {r['max_ms']:6.1f} ms  (n={r['n']})"
            + (f"  background retrainings: {r['background_rounds']}" if extra else "")
        )
    return results


def boundary(
    args: argparse.Namespace, pools: Path, audio: Path, bridge: bool = True
) -> dict[str, Any]:
    """Key press to next item at the end of each round (rounds of ``--round-size``): the press
    that answers a round's last item starts its model's training, and the next round's first
    item is picked by the current model meanwhile. ``bridge=False`` (setting
    ``boundary-wait``): the screen waits for the new model instead, for comparison."""
    from iml_tui.engine.project import open_or_create
    from iml_tui.engine.session import Session

    real_bridge = Session.bridge
    if not bridge:
        Session.bridge = lambda self: 0  # type: ignore[method-assign]

    size, rounds = args.round_size, args.rounds
    project = args.work / f"project_boundary_{os.getpid()}_{int(time.time())}"
    open_or_create(
        project,
        {
            "task": "bioacoustic",
            "pool_dir": str(pools),
            "strategy": "mfft",
            "budgets": [size * (k + 1) for k in range(rounds + 1)],
            "audio_root": str(audio),
            "max_epochs": args.max_epochs,
        },
    )
    t0 = time.perf_counter()
    times = asyncio.run(
        time_presses(project, args.work / "clips", size * rounds, 0, args.size, idle_ok=True)
    )
    at_boundary = [t for i, t in enumerate(times) if (i + 1) % size == 0]
    Session.bridge = real_bridge  # type: ignore[method-assign]
    return {
        **summary(at_boundary),
        "all_presses": summary(times),
        "round_size": size,
        "max_epochs": args.max_epochs,
        "wall_s": time.perf_counter() - t0,
        "load_average_after": list(os.getloadavg()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n-train", type=int, default=21414)
    ap.add_argument("--t", type=int, default=8, help="frames per clip of the synthetic pool")
    ap.add_argument("--d", type=int, default=128, help="embedding size of the synthetic pool")
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument(
        "--size",
        type=lambda s: tuple(int(v) for v in s.split("x")),
        default=(120, 36),
        help="terminal WxH",
    )
    ap.add_argument(
        "--settings",
        nargs="+",
        default=["idle", "retraining", "boundary"],
        choices=["idle", "retraining", "boundary", "boundary-wait"],
    )
    ap.add_argument("--round-size", type=int, default=10, help="boundary: clips per round")
    ap.add_argument("--rounds", type=int, default=6, help="boundary: rounds timed")
    ap.add_argument("--max-epochs", type=int, default=200, help="boundary: per training")
    ap.add_argument("--work", type=Path, default=HERE / "results" / "tui_work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "tui.json")
    args = ap.parse_args()
    load_before = list(os.getloadavg())
    results = run(args)
    report = {
        "benchmark": "tui key press -> next item rendered",
        "target": "p95 < 100 ms with a retraining running",
        "pool_size": args.n_train,
        "t": args.t,
        "d": args.d,
        "terminal": list(args.size),
        "presses": args.presses,
        "cpu_count": os.cpu_count(),
        "retraining_torch_threads": ui_threads(),
        "load_average_before": load_before,
        "python": platform.python_version(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
