"""Labelling: ``label`` (the TUI), ``project new``, ``export``, ``import-labels``, ``doctor``."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from iml_tui.bench.progress import rate_progress
from iml_tui.cli.common import Strategy, Task, app, opt_str, parse_option
from iml_tui.errors import UserError


@app.command("label")
def label_cmd(
    project: Annotated[
        Path | None,
        typer.Argument(
            help="Project folder (from `iml-tui project new`): opened, or resumed where it "
            "stopped. "
            "Without it, --task / --pool-dir make one in ./label-<task>-<strategy>."
        ),
    ] = None,
    task: Annotated[Task | None, typer.Option(help="What to label (new project).")] = None,
    pool_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with train.h5 (and optionally a labelled valid.h5), or demo: the demo "
            "birds (new project)."
        ),
    ] = None,
    strategy: Annotated[Strategy | None, typer.Option(help="Query strategy (new project).")] = None,
    budgets: Annotated[
        str | None,
        typer.Option(help="Cumulative label budgets per round, e.g. 50,100,150 (new project)."),
    ] = None,
    audio_root: Annotated[
        Path | None,
        typer.Option(
            help="Where the audio is, when it moved since the pool was made (new project)."
        ),
    ] = None,
    annotator: Annotated[
        str | None, typer.Option(help="Name recorded with every label (default: the login name).")
    ] = None,
    player: Annotated[
        str, typer.Option(help="Audio backend: auto, local (sound card), browser (ssh -L) or file.")
    ] = "auto",
    port: Annotated[
        int, typer.Option(help="Port of the browser player on 127.0.0.1 (0: any free one).")
    ] = 0,
    keys: Annotated[
        Path | None,
        typer.Option(
            help="YAML keymap remapping keys by binding id, e.g. keys: {label.submit: enter}."
        ),
    ] = None,
    autoplay: Annotated[
        bool, typer.Option("--autoplay/--no-autoplay", help="Play each new item as it shows.")
    ] = True,
    graphics: Annotated[
        str,
        typer.Option(
            help="Spectrogram drawing: auto, halfblock (truecolor), halfblock256 (256 colours, "
            "dithered), kitty or sixel (images; auto asks the terminal)."
        ),
    ] = "auto",
    feat_root: Annotated[
        str | None,
        typer.Option(
            help="lid / vtd: feature root, or the bundled demo: demo:caucasus, demo:africa (lid), "
            "demo (vtd; the default)."
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="lid: the target language streamed, e.g. hy (the error lists the split's)."
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(help="vtd: the environment streamed (default: the demo's first room)."),
    ] = None,
    sim_type: Annotated[
        str | None,
        typer.Option(
            help="lid / vtd: the model's decisions you review after the queries, e.g. fpstps "
            "(none: queries only)."
        ),
    ] = None,
    samples_per_batch: Annotated[
        int | None,
        typer.Option(help="lid: samples per batch (at most the split's size; demo: 96)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Project setting key=value (new project), e.g. --set seed=3."),
    ] = None,
) -> None:
    """Label in the terminal: spectrogram, prediction, one key per class; retrains meanwhile."""
    from iml_tui.config import parse_int_list
    from iml_tui.demo.assets import is_demo, resolve_pool_dir
    from iml_tui.tui.run import run_label

    if pool_dir is not None and is_demo(str(pool_dir)):
        with rate_progress("items") as progress:
            pool_dir = Path(resolve_pool_dir(str(pool_dir), progress))
    options = {
        "task": task.value if task else None,
        "pool_dir": str(pool_dir) if pool_dir else None,
        "strategy": strategy.value if strategy else None,
        "budgets": parse_option(parse_int_list, budgets, "--budgets"),
        "audio_root": str(audio_root) if audio_root else None,
    }
    stream = {
        "feat_root": feat_root,
        "target": target,
        "env": env,
        "sim_type": sim_type,
        "samples_per_batch": samples_per_batch,
    }
    options["stream"] = {k: v for k, v in stream.items() if v is not None} or None
    run_label(project, options, set_, annotator, player, port, keys, autoplay, graphics)


project_app = typer.Typer(
    help="Labelling projects: a folder with project.yaml, the journal of "
    "every label and the model checkpoints.",
    no_args_is_help=True,
)
app.add_typer(project_app, name="project")


class ExportFormat(StrEnum):
    csv = "csv"
    raven = "raven"
    audacity = "audacity"
    events = "events"


@project_app.command("new")
def project_new(
    folder: Annotated[Path, typer.Argument(help="The project folder to create.")],
    task: Annotated[
        Task, typer.Option(help="bioacoustic (pool rounds) or lid / vtd (the stream loop).")
    ] = Task.bioacoustic,
    pool_dir: Annotated[
        Path | None,
        typer.Option(
            help="bioacoustic: folder with train.h5 (the pool) and optionally a labelled valid.h5."
        ),
    ] = None,
    strategy: Annotated[Strategy | None, typer.Option(help="Pool selection strategy.")] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Cumulative label budgets per round, e.g. 50,100,150.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice.")] = None,
    audio_root: Annotated[
        Path | None, typer.Option(help="Where the audio is, when it moved since the pool was made.")
    ] = None,
    feat_root: Annotated[
        str | None,
        typer.Option(help="lid / vtd: feature root, or the bundled demo (as `label`)."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="lid: the target language streamed.")] = None,
    env: Annotated[str | None, typer.Option(help="vtd: the environment streamed.")] = None,
    sim_type: Annotated[
        str | None,
        typer.Option(help="lid / vtd: the model's decisions reviewed after the queries."),
    ] = None,
    samples_per_batch: Annotated[
        int | None, typer.Option(help="lid: samples per batch (at most the split's size).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value of project.yaml (stream keys: stream.KEY=value)."),
    ] = None,
) -> None:
    """Create a labelling project (open it with `iml-tui label FOLDER`); the pool or stream
    features are read and checked as `label` does."""
    from iml_tui.config import parse_int_list
    from iml_tui.demo.assets import is_demo, resolve_pool_dir
    from iml_tui.tui.run import create_project

    if pool_dir is not None and is_demo(str(pool_dir)):
        with rate_progress("items") as progress:
            pool_dir = Path(resolve_pool_dir(str(pool_dir), progress))
    options: dict[str, Any] = {
        "task": task.value,
        "pool_dir": opt_str(pool_dir),
        "strategy": strategy.value if strategy else None,
        "budgets": parse_option(parse_int_list, budgets, "--budgets"),
        "seed": seed,
        "audio_root": opt_str(audio_root),
    }
    stream = {
        "feat_root": feat_root,
        "target": target,
        "env": env,
        "sim_type": sim_type,
        "samples_per_batch": samples_per_batch,
    }
    options["stream"] = {k: v for k, v in stream.items() if v is not None} or None
    options = {k: v for k, v in options.items() if v is not None}
    project, notes = create_project(folder, options, set_)
    for note in notes:
        sys.stderr.write(f"iml-tui: note: {note}\n")
    sys.stdout.write(
        f"project {project.dir} ({project.config.task}, {project.mode} mode); "
        f"label with: iml-tui label {project.dir}\n"
    )


@project_app.command("repool")
def project_repool_cmd(
    folder: Annotated[Path, typer.Argument(help="The project whose labels move.")],
    pool_dir: Annotated[
        Path,
        typer.Option(
            help="The new pool folder (train.h5 with the same classes; e.g. more "
            "recordings prepared and extracted)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the new project (new or empty).")],
) -> None:
    """A new project on another pool with this one's settings, labels and marked events,
    matched by clip id (the old project is only read; train the new one afresh)."""
    from iml_tui.engine.pool_identity import repool

    res = repool(folder, pool_dir, out)
    sys.stdout.write(
        f"new project {res.project}: {res.labels} label(s) and {res.extents} extent(s) carried "
        "over by id; train it with `iml-tui train` or label on with `iml-tui label`\n"
    )
    if res.missing:
        sys.stderr.write(
            f"note: {len(res.missing)} labelled clip(s) are not in the new pool, e.g. "
            f"{res.missing[0]}; they stay in the old project only\n"
        )


@project_app.command("status")
def project_status_cmd(
    folder: Annotated[Path, typer.Argument(help="A project folder.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object instead.")] = False,
) -> None:
    """Where a project stands: labels per class, extents, annotators, budgets, the model."""
    from iml_tui.engine.project_status import project_status

    st = project_status(folder)
    if json_out:
        import json

        sys.stdout.write(json.dumps(st.as_dict(), indent=2) + "\n")
        return
    sys.stdout.write(_status_text(st))


def _status_text(st: Any) -> str:
    import time

    from iml_tui.engine.metrics import score_text

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))

    share = f" ({100 * st.labelled / st.items:.1f} %)" if st.items else ""
    head = f"{st.project}: {st.task} ({st.mode}), {st.items} items"
    lines = [f"{head}, {st.labelled} labelled{share}"]
    classes = ", ".join(f"{c} {n}" for c, n in st.per_class.items())
    lines.append(f"  labels: {classes}, none {st.negatives}")
    if st.mode == "pool":
        lines.append(f"  extents: {st.extents} on {st.clips_with_extents} clip(s)")
        if st.budgets:
            budgets = ", ".join(str(b) for b in st.budgets)
            nxt = (
                f"next round ends at {st.next_budget} ({st.next_budget - st.labelled} to go)"
                if st.next_budget is not None
                else "every budget reached"
            )
            lines.append(f"  budgets {budgets}: {nxt}")
    m = st.model
    if m is None:
        lines.append("  model: none yet (`iml-tui train`)")
    else:
        names = {"valid_map": "mAP", "pre_dcf": "pre-DCF", "dcf": "DCF"}
        shown = [(names[k], v) for k, v in m.scores.items() if k in names]
        score = ", ".join(f"{k} {score_text(k, v)}" for k, v in shown)
        fresh = (
            f"{st.labelled - m.trained_on:+d} label(s) since: `iml-tui train` for a newer one"
            if m.stale
            else "up to date"
        )
        lines.append(
            f"  model {m.version} trained on {m.trained_on} labels"
            f"{' (' + score + ')' if score else ''}, {when(m.ts)}; {fresh}"
        )
    for a in st.annotators:
        pace = f", median {a.median_seconds:.1f} s a label" if a.median_seconds else ""
        lines.append(f"  {a.name}: {a.labels} label(s){pace}, last {when(a.last_ts)}")
    return "\n".join(lines) + "\n"


@app.command("export")
def export_cmd(
    folder: Annotated[Path, typer.Argument(help="A project folder.")],
    out: Annotated[
        Path,
        typer.Option(
            help="csv, events: the file; raven, audacity: a folder (one file per audio file)."
        ),
    ],
    format_: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="csv: one row per labelled clip; raven, audacity, events: the marked event "
            "extents, clip-only labels as whole clips (raven and events flag them: Extent = "
            "marked | clip).",
        ),
    ] = ExportFormat.csv,
    include_none: Annotated[
        bool,
        typer.Option(
            help="raven, audacity, events: also mark clips labelled 'none' (label 'none')."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(help="Replace existing regular files (never symlinks, devices or folders)."),
    ] = False,
) -> None:
    """Export the project's current labels and marked event extents (CSV, Raven selection
    tables, Audacity labels, an event CSV)."""
    from iml_tui.engine.export import export_labels

    res = export_labels(folder, format_.value, out, include_none, force)
    one_file = format_ in (ExportFormat.csv, ExportFormat.events)
    where = res.paths[0] if one_file else f"{len(res.paths)} file(s) in {out}"
    what = {ExportFormat.csv: "row", ExportFormat.events: "event"}.get(format_, "selection")
    sys.stdout.write(f"{res.written} {what}(s) -> {where}\n")
    if res.unlocated:
        sys.stderr.write(
            f"note: the audio of {len(res.unlocated)} item(s) was not found (e.g. "
            f"{res.unlocated[0]}); give the project an audio root\n"
        )


@app.command("import-labels")
def import_labels_cmd(
    folder: Annotated[Path, typer.Argument(help="A project folder.")],
    labels: Annotated[
        Path,
        typer.Argument(
            help="Label CSV: 'id' plus a 0/1 column per class or 'labels' (names separated by "
            "';'). Or event tables, a file or a folder: Raven selection tables, Audacity label "
            "files, a CSV file,onset,offset,label (e.g. detect's tables after a review); each "
            "is the whole truth for its recording's clips."
        ),
    ],
    annotator: Annotated[
        str | None, typer.Option(help="Recorded as the annotator (default: import:<file name>).")
    ] = None,
    skip_unknown: Annotated[
        bool,
        typer.Option(
            help="Import the known ids (recordings) and report the others instead of stopping."
        ),
    ] = False,
    labels_format: Annotated[
        str | None,
        typer.Option(help="Event tables: raven, audacity or csv (default: from each file)."),
    ] = None,
) -> None:
    """Import existing labels into a project (a warm start: selection starts from them)."""
    from iml_tui.engine.export import import_labels
    from iml_tui.engine.import_events import import_event_tables, is_clip_csv

    if is_clip_csv(labels):
        if labels_format is not None:
            raise UserError(
                "--labels-format is for event tables; this is a label CSV of clip ids",
                labels,
                "drop --labels-format",
            )
        res = import_labels(folder, labels, annotator, skip_unknown)
        sys.stdout.write(f"imported {res.imported} label(s) as {res.annotator}\n")
        if res.unknown:
            sys.stderr.write(f"skipped {len(res.unknown)} unknown id(s), e.g. {res.unknown[0]}\n")
        return
    ev = import_event_tables(folder, labels, annotator, skip_unknown, labels_format)
    replaced = f"; {ev.replaced_extents} earlier extent(s) replaced" if ev.replaced_extents else ""
    sys.stdout.write(
        f"imported {ev.clips} clip label(s) of {ev.recordings} recording(s) "
        f"({ev.negatives} without events, {ev.extents} extent(s){replaced}) as {ev.annotator}\n"
    )
    if ev.unknown:
        sys.stderr.write(
            f"skipped {len(ev.unknown)} recording(s) not in the pool, e.g. {ev.unknown[0]}\n"
        )


@app.command("doctor")
def doctor_cmd(
    port: Annotated[int, typer.Option(help="Port the browser player would use (0: any).")] = 0,
    clip_dir: Annotated[
        Path | None, typer.Option(help="Folder the file player would write to.")
    ] = None,
) -> None:
    """Which audio players work on this machine, and why (or why not)."""
    from iml_tui.audio.playback import check_backends

    checks = check_backends(port, clip_dir)
    for c in checks:
        sys.stdout.write(f"{c.name:8s} {'ok' if c.ok else 'no':3s} {c.detail}\n")
    best = next((c.name for c in checks if c.ok), "none")
    sys.stdout.write(f"iml-tui label will use: {best}\n")
