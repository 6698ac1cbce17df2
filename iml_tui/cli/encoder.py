"""``iml-tui encoder``: train and evaluate encoders (SPEC A.5) and utterance encoders."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from iml_tui.bench.progress import rate_progress
from iml_tui.cli.common import app, err_console, parse_option, print_tables

encoder_app = typer.Typer(
    help="Train encoders: CNN14 on the SL division (SPEC A.5) and evaluate "
    "it; utterance encoders (ECAPA, x-vector) on labelled utterances.",
    no_args_is_help=True,
)
app.add_typer(encoder_app, name="encoder")


@encoder_app.command("train")
def encoder_train_cmd(
    data: Annotated[Path, typer.Option(help="`prepare dcase` output (with sl/) or its sl folder.")],
    out: Annotated[Path, typer.Option(help="Run folder: encoder_best.pt, resume state, history.")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Start from this CNN14 (PANNs Cnn14*.pth or an iml-tui file)."),
    ] = None,
    from_scratch: Annotated[bool, typer.Option(help="Start from random weights.")] = False,
    widths: Annotated[
        str, typer.Option(help="6 CNN14 widths (--from-scratch only).")
    ] = "64,128,256,512,1024,2048",
    epochs: Annotated[int, typer.Option(help="Epochs in all (a resumed run continues).")] = 30,
    batch_size: Annotated[int, typer.Option(help="10 s cuts per step.")] = 32,
    steps_per_epoch: Annotated[int, typer.Option(help="Steps per epoch.")] = 200,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    hidden: Annotated[int, typer.Option(help="Hidden width of the frame head.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of cuts, augmentation, init.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train CNN14 + a frame head on SL cuts; keep the best-valid-mAP encoder. Resumable."""

    from iml_tui.engine.metrics import map_text
    from iml_tui.training.finetune import FinetuneConfig, finetune_encoder

    cfg = FinetuneConfig(
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        hidden=hidden,
        seed=seed,
        device=device,
        widths=tuple(parse_option(lambda t: [int(v) for v in t.split(",")], widths, "--widths")),
    )
    console = err_console()
    with rate_progress("") as progress:
        res = finetune_encoder(
            data,
            out,
            cfg,
            checkpoint,
            from_scratch,
            progress,
            lambda e: console.print(
                f"epoch {e.epoch}: loss {e.train_loss:.4f}, valid "
                f"mAP {map_text(e.valid_map)}" + (" (best)" if e.best else ""),
                highlight=False,
            ),
        )
    console.print(
        f"best valid mAP {map_text(res.best_valid_map)} (epoch {res.best_epoch}) -> "
        f"{res.best_path}",
        highlight=False,
        soft_wrap=True,
    )


@encoder_app.command("eval")
def encoder_eval_cmd(
    checkpoint: Annotated[Path, typer.Option(help="encoder_best.pt of `encoder train`.")],
    data: Annotated[Path, typer.Option(help="`prepare dcase` output, its sl folder or a split.")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Clips per forward pass.")] = 16,
) -> None:
    """Frame AP per class on the SL valid split of a saved encoder + head."""
    from iml_tui.data.corpus import SummaryTable
    from iml_tui.training.finetune import evaluate_encoder

    with rate_progress("") as progress:
        ev = evaluate_encoder(checkpoint, data, "valid", device, batch_size, progress)
    rows: list[list[str | int | float]] = [
        [c, p, f"{100 * a:.2f}"] for c, p, a in zip(ev.class_list, ev.positives, ev.ap, strict=True)
    ]
    rows.append(["mAP (macro)", sum(ev.positives), f"{100 * ev.map:.2f}"])
    print_tables(
        [SummaryTable(f"{ev.split}: {ev.clips} clips", ["class", "positive frames", "AP %"], rows)],
        [],
    )


class UtteranceArch(StrEnum):
    ecapa = "ecapa"
    xvector = "xvector"


@encoder_app.command("train-utterance")
def encoder_train_utterance_cmd(
    data: Annotated[Path, typer.Option(help="`prepare lid` output (with train/ and dev/).")],
    out: Annotated[
        Path,
        typer.Option(
            help="Model folder: speechbrain hyperparams.yaml + "
            "checkpoints, train_log.json, resume state."
        ),
    ],
    arch: Annotated[
        UtteranceArch, typer.Option(help="ECAPA-TDNN or x-vector.")
    ] = UtteranceArch.ecapa,
    epochs: Annotated[int, typer.Option(help="Epochs in all (a resumed run continues).")] = 10,
    batch_size: Annotated[int, typer.Option(help="Random 2-3 s crops per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    channels: Annotated[
        int, typer.Option(help="Channels C of the TDNN layers ([C]*4 + [3C]).")
    ] = 256,
    embedding_dim: Annotated[int, typer.Option(help="Embedding size D.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of crops, augmentation, init.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train an utterance encoder + classifier (e.g. language ID) at 16 kHz; keep the best dev
    accuracy. The folder loads as `--encoder ecapa|xvector --checkpoint <out>`. Resumable."""

    from iml_tui.training.train_utterance import UtteranceTrainConfig, train_utterance_encoder

    cfg = UtteranceTrainConfig(
        arch=arch.value,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        channels=channels,
        embedding_dim=embedding_dim,
        seed=seed,
        device=device,
    )
    console = err_console()
    with rate_progress("") as progress:
        res = train_utterance_encoder(
            data,
            out,
            cfg,
            progress,
            lambda e: console.print(
                f"epoch {e.epoch}: loss {e.train_loss:.4f}, train acc "
                f"{100 * e.train_accuracy:.1f}%, "
                f"dev accuracy {100 * e.dev_accuracy:.2f}% ({e.seconds:.1f} s)"
                + (" (best)" if e.best else ""),
                highlight=False,
            ),
        )
    console.print(
        f"best dev accuracy {100 * res.best_dev_accuracy:.2f}% (epoch "
        f"{res.best_epoch}, {len(res.class_list)} classes) -> {res.out}; use it with "
        f"--encoder {res.arch} --checkpoint {res.out}",
        highlight=False,
        soft_wrap=True,
    )
    if res.dev_excluded:
        console.print(
            f"note: {res.dev_excluded} dev utterance(s) of classes without training "
            "utterances were not scored",
            highlight=False,
            soft_wrap=True,
        )
