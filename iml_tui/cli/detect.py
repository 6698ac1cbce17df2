"""Headless model work on a project: ``train`` (as the TUI's background training) and
``detect`` (the model over a folder of recordings -> detection tables)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.bench.progress import rate_progress
from iml_tui.cli.common import (
    CpusPerTaskOption,
    Executor,
    GpusPerTaskOption,
    RayAddressOption,
    app,
    exit_skipped,
)
from iml_tui.errors import UserError


@app.command("train")
def train_cmd(
    project: Annotated[Path, typer.Argument(help="A project folder.")],
    annotator: Annotated[str, typer.Option(help="Recorded as who asked for the model.")] = "train",
) -> None:
    """Train the project's model from its journal, exactly as the labelling screen does in the
    background; the model becomes the project's current one (label, detect)."""
    from iml_tui.engine.session import Session

    with Session.open(project, annotator=annotator) as session:
        if session.progress().labelled == 0:
            raise UserError(
                "nothing is labelled yet",
                project,
                "label clips with `iml-tui label`, import a CSV with "
                "`iml-tui import-labels`, or prepare the recordings with --labels",
            )
        with rate_progress("%") as update:
            ok = session.retrain_now(
                lambda frac, msg: update(
                    msg.split(":")[0][:40] or "training", round(100 * frac), 100
                )
            )
        status = session.model_status()
        if not ok:
            raise UserError(
                f"training failed: {status.error or 'the labels changed meanwhile'}",
                project,
                "fix the cause and run `iml-tui train` again",
            )
        from iml_tui.engine.metrics import score_text

        score = (
            ""
            if status.score is None
            else f"; {status.score_name} {score_text(status.score_name, status.score)}"
        )
        sys.stdout.write(f"model {status.version} trained on {status.trained_on} labels{score}\n")


def _threshold(text: str) -> float | dict[str, float] | None:
    """``auto``, one probability, or ``CLASS=P[,CLASS=P...]`` (the other classes: auto)."""
    from iml_tui.ranges import check_range

    text = text.strip()
    if text.lower() == "auto":
        return None
    fix = "give a probability such as 0.5, per class as call=0.4,song=0.7, or auto"
    if "=" not in text:
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"--threshold {text!r}: not a number or auto", None, fix) from None
        check_range("threshold", value, "command line", "detect", "--threshold")  # or auto
        return value
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, raw = part.partition("=")
        try:
            out[name.strip()] = float(raw)
        except ValueError:
            raise UserError(f"--threshold {part.strip()!r}: not CLASS=P", None, fix) from None
        if not sep or not name.strip():
            raise UserError(f"--threshold {part.strip()!r}: not CLASS=P", None, fix)
        check_range("threshold", out[name.strip()], "command line", "detect", "--threshold")
    return out


@app.command("detect")
def detect_cmd(
    project: Annotated[Path, typer.Argument(help="A bioacoustic project folder.")],
    recordings: Annotated[
        Path,
        typer.Option(
            help="Folder of recordings to scan (wav, flac, ogg, mp3; sub-folders included)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="Folder for detections.csv, raven/ and audacity/ (re-run to resume)."),
    ],
    threshold: Annotated[
        str,
        typer.Option(
            help="Frame probability for a detection, or auto: the model's F1-optimal one; per "
            "class as call=0.4,song=0.7 (classes not named: auto)."
        ),
    ] = "auto",
    min_duration: Annotated[
        float, typer.Option(help="Drop events shorter than this many seconds.")
    ] = 0.0,
    merge_gap: Annotated[
        float,
        typer.Option(help="Merge events of a class separated by less than this many seconds."),
    ] = 0.0,
    batch_size: Annotated[int, typer.Option(help="Clips per encoder batch.")] = 16,
    device: Annotated[str, typer.Option(help="Encoder device: auto, cpu or cuda.")] = "auto",
    jobs: Annotated[
        int,
        typer.Option(help="Local processes scoring parts of the recordings at once."),
    ] = 1,
    executor: Annotated[
        Executor,
        typer.Option(
            help="local: here (or --jobs processes); ray: Ray tasks on any node that sees the "
            "same paths."
        ),
    ] = Executor.local,
    ray_address: RayAddressOption = None,
    cpus_per_run: CpusPerTaskOption = 1.0,
    gpus_per_run: GpusPerTaskOption = 0.0,
) -> None:
    """Run the project's current model over recordings (training it first when the project has
    labels but no model) and write per-recording Raven and Audacity tables plus one CSV.
    Exit status 3: some recordings could not be read (listed; the rest are written)."""
    from iml_tui.engine.detect_recordings import detect_recordings
    from iml_tui.parallel.runner import ExecutorOptions

    thr = _threshold(threshold)
    opts = ExecutorOptions(executor.value, jobs, ray_address, cpus_per_run, gpus_per_run)
    with rate_progress("audio s", "audio-h", 1 / 3600) as update:

        def on_audio(rec: str, done: float, total: float) -> None:
            update("detect", int(done), max(1, math.ceil(total)))

        def on_train(frac: float, msg: str) -> None:
            update("training first", round(100 * frac), 100)

        res = detect_recordings(
            project,
            recordings,
            out,
            thr,
            min_duration,
            merge_gap,
            batch_size,
            device,
            on_audio,
            on_train,
            opts,
        )
    resumed = sum(r.resumed for r in res.recordings)
    counts = {c: 0 for c in res.class_list}
    for r in res.recordings:
        for e in r.events:
            counts[res.class_list[e.class_index]] += 1
    per_class = ", ".join(f"{c} {n}" for c, n in counts.items())
    trained = f" (trained first on {res.model.n_labelled} labels)" if res.trained else ""
    sys.stdout.write(
        f"{res.n_events} detection(s) in {len(res.recordings)} recording(s), "
        f"{res.seconds / 3600:.2f} audio hours ({per_class}); model {res.model.version}"
        f"{trained}, threshold {res.threshold_text} -> {res.csv}, {out / 'summary.csv'}, "
        f"{out / 'raven'}, {out / 'audacity'}\n"
    )
    if resumed:
        sys.stderr.write(f"note: {resumed} recording(s) resumed from {out / '.frames'}\n")
    if res.model.stale and not res.trained:
        sys.stderr.write(
            f"note: model {res.model.version} saw {res.model.n_labelled} labels; "
            "the project has changed since: run `iml-tui train` for a newer one\n"
        )
    if res.skipped:
        exit_skipped(
            [f"{skip.recording}: {skip.reason}" for skip in res.skipped],
            "recording(s)",
            ", the others written",
        )
