"""Feature extraction: prepared split folders -> pool stores, batched and resumable.

``extract_features(input, out, encoder=...)`` encodes every clip of every split folder under
``input`` (see :mod:`iml_tui.data.corpus`) and writes one pool store per split: at ``out`` itself
when ``input`` is one split folder, else at ``<out>/<split path relative to input>.h5``.

Resuming: each batch of clips is written as soon as it is encoded to
``<store>.chunks/chunk_<k>.npz`` (:mod:`iml_tui.atomic`: temporary file, fsync, rename), next
to a ``job.json`` naming the encoder fingerprint (name, checkpoint hash, settings) and the clip
table it belongs to; with the Ray executor the chunks are encoded by Ray tasks, on any node that
sees the folder. A run stopped by Ctrl-C or a crash keeps its finished chunks; the same command
again encodes only the rest (a different encoder or input starts over). When every chunk
exists, the store is written with :class:`~iml_tui.data.store.PoolWriter` (``<store>.partial``,
renamed into place) and the chunks are removed.

Unreadable or empty audio: the clip is skipped, the file reported by name; the store lists the
files in its JSON attribute ``skipped`` (reasons in ``skipped_reasons``), and the CLI exits with
status :data:`EXIT_SKIPPED` (3).

Encoder options (``options``, the CLI's repeatable ``--option KEY=VALUE``) go to
:func:`~iml_tui.features.encoders.get_encoder` (e.g. birdnet ``hop=0.5``, ``logits=true``) and are
part of the encoder fingerprint; birdnet gets the split's clip length as ``clip_seconds`` unless
it is given. An encoder with ``extra_outputs`` (birdnet with ``logits=true``) has them saved in
each chunk and written as ``extra/<name>`` datasets of the store.

Labels: (N, T_labels, C) frame targets are matched to the encoder's T: equal -> as is; an
encoder that states where its frames lie (``frame_spans``: birdnet's overlapping 3 s windows)
-> each frame takes the max over the equal label slots of the clip that its [start, end) span
overlaps (see :func:`labels_from_spans`; the spans are stored as the JSON attribute
``frame_spans``); else T_labels a multiple of T -> max over each group of frames (T = 1: clip
labels); T_labels = 1 -> repeated.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from iml_tui.atomic import atomic_save_npz, atomic_write_bytes
from iml_tui.audio import io as audio_io
from iml_tui.callbacks import ProgressFn
from iml_tui.data.corpus import (
    CLIPS_FILE,
    KNOWN_FILE,
    LABELS_FILE,
    SPLIT_FILE,
    ClipRow,
    Split,
    find_splits,
    is_split,
    read_split,
)
from iml_tui.data.store import ExtraDataset, PoolMeta, PoolWriter
from iml_tui.errors import UserError
from iml_tui.parallel.runner import ExecutorOptions, Task, run_tasks, split_runs, task_count

EXIT_SKIPPED = 3
NORM_CHOICES = ("prepared", "checkpoint")
#: Encoders told the split's clip length (their ``clip_seconds`` option, unless given), so that a
#: 5 s clip is framed as 5 s and not zero-padded to the 10 s default.
CLIP_LENGTH_ENCODERS = ("birdnet",)


@dataclass(frozen=True)
class SkippedFile:
    """An audio file whose clips were left out: path, reason, and how many clips."""

    file: str
    reason: str
    clips: int


@dataclass
class SplitOutput:
    """One written store: the split it came from, clips in / kept, skipped files, resumed chunks."""

    split: Path
    store: Path
    clips: int
    kept: int
    skipped: list[SkippedFile] = field(default_factory=list)
    resumed_chunks: int = 0


@dataclass
class ExtractResult:
    """Every store written by one ``extract_features`` call."""

    outputs: list[SplitOutput]

    @property
    def skipped(self) -> list[SkippedFile]:
        return [s for o in self.outputs for s in o.skipped]


def output_paths(input_: str | Path, out: str | Path) -> list[tuple[Path, Path]]:
    """(split folder, store path) pairs for ``input_``: ``out`` for one split folder, else
    ``<out>/<relative split path>.h5``."""
    root, out = Path(input_), Path(out)
    if is_split(root):
        if out.is_dir():
            raise UserError(
                "--out is a folder, but the input is one split",
                out,
                "give a file name such as pool.h5",
            )
        return [(root, out)]
    splits = find_splits(root)
    if out.suffix.lower() in (".h5", ".hdf5"):
        raise UserError(
            f"the input holds {len(splits)} splits; --out must be a folder",
            out,
            "give a folder (one store per split is written into it), or point "
            "--input at one split folder",
        )
    return [(s, out / (s.relative_to(root).as_posix() + ".h5")) for s in splits]


def adapt_labels(labels: np.ndarray, t: int) -> np.ndarray:
    """(N, T_labels, C) -> (N, t, C): as is, max over groups of frames, or repeated."""
    n, t_lab, c = labels.shape
    if t_lab == t:
        return labels
    if t_lab % t == 0:
        return labels.reshape(n, t, t_lab // t, c).max(axis=2)
    if t_lab == 1:
        return np.repeat(labels, t, axis=1)
    raise UserError(
        f"the encoder gives T = {t} frames per clip but the labels have {t_lab}",
        None,
        "use an encoder whose frames divide the label frames (e.g. cnn14 for "
        "DCASE clips, or an utterance encoder)",
    )


def labels_from_spans(labels: np.ndarray, clip_seconds: float, spans: np.ndarray) -> np.ndarray:
    """(N, T_labels, C) targets in equal slots of a ``clip_seconds`` clip -> (N, T, C) for frames
    covering ``spans`` (T, 2) [start, end) seconds: the max over the slots a frame overlaps.

    Slot j covers [j, j + 1) x clip / T_labels; a frame overlaps it when the open intervals meet
    (touching ends do not count); spans are clipped to the clip. A frame past the clip's end
    (zero padding only) gets 0. Example: 32 slots of 10 s, frame [1, 4) s -> slots 3..12.
    """
    n, t_lab, c = labels.shape
    edges = np.arange(t_lab + 1) * (float(clip_seconds) / t_lab)
    out = np.zeros((n, len(spans), c), dtype=labels.dtype)
    for k, (lo, hi) in enumerate(np.asarray(spans, dtype=np.float64)):
        lo, hi = max(lo, 0.0), min(hi, float(clip_seconds))
        hit = (edges[:-1] < hi - 1e-9) & (edges[1:] > lo + 1e-9)
        if hit.any():
            out[:, k] = labels[:, hit].max(axis=1)
    return out


def extract_features(
    input_: str | Path,
    out: str | Path,
    encoder: str = "mfcc-stats",
    checkpoint: str | Path | None = None,
    batch_size: int = 16,
    device: str = "auto",
    norm: str = "prepared",
    progress: ProgressFn | None = None,
    options: dict[str, Any] | None = None,
    executor: ExecutorOptions | None = None,
) -> ExtractResult:
    """Encode every split under ``input_`` into pool stores (see the module doc).

    norm (cnn14 only): "prepared" normalises the log-mel with the statistics of the prepared
    division (``norm_mean`` / ``norm_std`` of the split: the train part's), "checkpoint" with
    those stored in the checkpoint. options: keyword options of the encoder (see ``get_encoder``).
    executor: where the chunks are encoded (default: here, one after the other); with Ray each
    task encodes a run of consecutive chunks (so the clips of one file mostly stay together)
    with its own copy of the encoder.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be >= 1")
    if norm not in NORM_CHOICES:
        raise UserError(f"unknown --norm {norm!r}", None, f"use {' or '.join(NORM_CHOICES)}")
    pairs = output_paths(input_, out)
    splits = [read_split(folder) for folder, _ in pairs]
    encoders: dict[Any, Any] = {}
    root = Path(input_)
    outputs = []
    for split, (_, store) in zip(splits, pairs, strict=True):
        stats = _split_norm(split) if encoder == "cnn14" and norm == "prepared" else None
        opts = dict(options or {})
        clip = split.info.clip_seconds
        if encoder in CLIP_LENGTH_ENCODERS and clip and "clip_seconds" not in opts:
            opts["clip_seconds"] = float(clip)
        key = (stats, json.dumps(opts, sort_keys=True, default=str))
        if key not in encoders:
            encoders[key] = build_encoder(encoder, checkpoint, device, stats, opts)
        label = (
            split.folder.name if split.folder == root else split.folder.relative_to(root).as_posix()
        )
        spec = (
            encoder,
            None if checkpoint is None else str(Path(checkpoint).resolve()),
            device,
            stats,
            opts,
        )
        outputs.append(
            extract_split(split, store, encoders[key], batch_size, label, progress, executor, spec)
        )
    return ExtractResult(outputs)


def _split_norm(split: Split) -> tuple[float, float] | None:
    mean, std = split.info.extra.get("norm_mean"), split.info.extra.get("norm_std")
    if mean is None or std is None or float(std) <= 0:
        return None
    return float(mean), float(std)


def build_encoder(
    name: str,
    checkpoint: str | Path | None,
    device: str,
    stats: tuple[float, float] | None,
    options: dict[str, Any],
) -> Any:
    """The encoder ``name`` with its norm statistics (cnn14) and options (see get_encoder)."""
    from iml_tui.features.encoders import get_encoder

    if stats is None:
        return get_encoder(name, checkpoint, device, **options)
    return get_encoder(
        name, checkpoint, device, **{"norm_mean": stats[0], "norm_std": stats[1], **options}
    )


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["hop=0.5", "logits=true"]`` -> ``{"hop": 0.5, "logits": True}``.

    Values: true/false -> bool, none -> None, int, float, else the string. A missing ``=`` or an
    empty key is a UserError.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(
                f"--option {item!r}: expected KEY=VALUE",
                None,
                "e.g. --option hop=0.5 --option logits=true",
            )
        value: Any = raw.strip()
        low = value.lower()
        if low in ("true", "yes", "on"):
            value = True
        elif low in ("false", "no", "off"):
            value = False
        elif low in ("none", "null"):
            value = None
        else:
            for cast in (int, float):
                try:
                    value = cast(value)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def _fingerprint(split: Split) -> str:
    """16 hex digits of the split's clip table, description and labels."""
    h = hashlib.sha256()
    for name in (CLIPS_FILE, SPLIT_FILE, LABELS_FILE, KNOWN_FILE):
        if name == KNOWN_FILE and not (split.folder / name).exists():
            continue
        h.update((split.folder / name).read_bytes())
    return h.hexdigest()[:16]


def extract_split(
    split: Split,
    store: Path,
    enc: Any,
    batch_size: int = 16,
    label: str = "",
    progress: ProgressFn | None = None,
    executor: ExecutorOptions | None = None,
    encoder_spec: tuple[str, str | None, str, tuple[float, float] | None, dict[str, Any]]
    | None = None,
) -> SplitOutput:
    """Encode one split into ``store`` (resuming from ``<store>.chunks/``); see the module doc.

    enc: an encoder of :mod:`iml_tui.features.encoders` (``encode(list of (n,) float32) ->
    (B, T, D)`` at ``enc.sample_rate``). executor: where the missing chunks are encoded;
    encoder_spec (name, checkpoint, device, norm statistics, options): how a Ray task builds its
    encoder.
    """
    n = len(split.rows)
    label = label or split.folder.name
    work = store.with_name(store.name + ".chunks")
    job = {
        "encoder": enc.name,
        "fingerprint": enc.fingerprint,
        "input": _fingerprint(split),
        "n": n,
    }
    old = _read_job(work)
    if old is not None and all(old.get(k) == v for k, v in job.items()):
        chunk = int(old["chunk"])
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        chunk = batch_size
        atomic_write_bytes(work / "job.json", (json.dumps({**job, "chunk": chunk}) + "\n").encode())
    starts = list(range(0, n, chunk))
    done = sum(min(chunk, n - s) for s in starts if _chunk_path(work, s).is_file())
    resumed = sum(1 for s in starts if _chunk_path(work, s).is_file())
    if progress is not None:
        progress(label, done, n)
    todo = [s for s in starts if not _chunk_path(work, s).is_file()]
    opts = (executor or ExecutorOptions()).resolved()
    count = [done]

    def on_event(clips: int) -> None:
        count[0] += clips
        if progress is not None:
            progress(label, count[0], n)

    if opts.executor == "ray" and todo:
        if encoder_spec is None:
            raise ValueError(
                "the Ray executor needs the encoder's (name, checkpoint, device, "
                "norm statistics, options) to build it in every task"
            )
        folder, work_abs = str(split.folder.resolve()), str(work.resolve())
        tasks = [
            Task(i, _task_chunks, (folder, part, chunk, work_abs))
            for i, part in enumerate(split_runs(todo, task_count(len(todo), opts)))
        ]
        run_tasks(tasks, opts, _task_setup, (*encoder_spec, opts.threads), on_event)
    else:
        run_tasks(
            [Task(0, _task_chunks, (split, todo, chunk, work))],
            ExecutorOptions(),
            _task_setup,
            (),
            on_event,
            state=enc,
        )
    return _publish(split, store, enc, work, starts, resumed, encoder_spec)


def _task_setup(
    name: str,
    checkpoint: str | None,
    device: str,
    stats: tuple[float, float] | None,
    options: dict[str, Any],
    threads: int,
) -> Any:
    """A worker's encoder, built once per process."""
    import torch

    torch.set_num_threads(max(1, threads))
    return build_encoder(name, checkpoint, device, stats, options)


def _task_chunks(
    enc: Any,
    emit: Callable[[int], None],
    split: Split | str,
    starts: Sequence[int],
    chunk: int,
    work: str | Path,
) -> int:
    """Encode the chunks beginning at ``starts`` (skipping any another worker finished);
    ``emit(clips)`` after each. Returns the clips encoded."""
    sp = split if isinstance(split, Split) else read_split(Path(split))
    work = Path(work)
    total = 0
    for s in starts:
        path = _chunk_path(work, s)
        rows = sp.rows[s : s + chunk]
        if not path.is_file():
            _encode_chunk(sp, rows, s, enc, path)
        total += len(rows)
        emit(len(rows))
    return total


def _chunk_path(work: Path, start: int) -> Path:
    return work / f"chunk_{start:09d}.npz"


def _read_job(work: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((work / "job.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "chunk" in data else None


def _load_clip(split: Split, row: ClipRow, sr: int) -> np.ndarray:
    """(n,) float32 at ``sr``: the clip, zero-padded to the split's clip length when it has one;
    UserError when unreadable or without samples."""
    path = split.audio_path(row)
    mono: Literal["first", "mix"] = "mix" if split.info.mono == "mix" else "first"
    x, _ = audio_io.read(path, sr=sr, mono=mono, start=row.offset, duration=row.duration)
    if x.size == 0:
        raise UserError(f"no samples at {row.offset:g} s", path, "check the file and clips.csv")
    if not np.all(np.isfinite(x)):
        raise UserError("the audio holds NaN or inf samples", path, "re-export the file")
    if split.info.clip_seconds:
        want = round(float(split.info.clip_seconds) * sr)
        x = np.pad(x[:want], (0, max(0, want - x.size)))
    return np.ascontiguousarray(x, dtype=np.float32)


def _encode_chunk(split: Split, rows: Sequence[ClipRow], start: int, enc: Any, path: Path) -> None:
    waves, kept = [], []
    bad_rows, bad_files, bad_reasons = [], [], []
    for i, row in enumerate(rows):
        try:
            waves.append(_load_clip(split, row, int(enc.sample_rate)))
            kept.append(start + i)
        except UserError as exc:
            bad_rows.append(start + i)
            bad_files.append(str(split.audio_path(row)))
            bad_reasons.append(str(exc).split(": ", 1)[-1].split(" — ")[0])
    specs = tuple(getattr(enc, "extra_outputs", ()) or ())
    extras: dict[str, np.ndarray] = {}
    if waves and specs:
        emb, extras = enc.encode_all(waves)
        emb = np.asarray(emb, dtype=np.float32)
    elif waves:
        emb = np.asarray(enc.encode(waves), dtype=np.float32)
    else:
        emb = np.zeros((0, int(enc.frames_per_clip), int(enc.dim)), dtype=np.float32)
    saved = {
        f"{_EXTRA_PREFIX}{e.name}": np.asarray(
            extras[e.name] if e.name in extras else np.zeros((0, *e.shape)), dtype=e.dtype
        )
        for e in specs
    }
    saved.update(
        emb=emb,
        rows=np.asarray(kept, dtype=np.int64),
        skipped_rows=np.asarray(bad_rows, dtype=np.int64),
        skipped_files=np.asarray(bad_files, dtype=str),
        skipped_reasons=np.asarray(bad_reasons, dtype=str),
    )
    atomic_save_npz(path, **saved)


_EXTRA_PREFIX = "extra__"


def _publish(
    split: Split,
    store: Path,
    enc: Any,
    work: Path,
    starts: Sequence[int],
    resumed: int,
    encoder_spec: tuple[str, str | None, str, tuple[float, float] | None, dict[str, Any]]
    | None = None,
) -> SplitOutput:
    kept_rows: list[np.ndarray] = []
    skipped: dict[str, list[Any]] = {}
    shapes: set[tuple[int, int]] = set()
    extra_shapes: dict[str, tuple[int, ...]] = {}
    for s in starts:
        with np.load(_chunk_path(work, s), allow_pickle=False) as z:
            kept_rows.append(z["rows"])
            if z["emb"].shape[0]:
                shapes.add((int(z["emb"].shape[1]), int(z["emb"].shape[2])))
                for key in z.files:
                    if key.startswith(_EXTRA_PREFIX):
                        extra_shapes[key[len(_EXTRA_PREFIX) :]] = tuple(z[key].shape[1:])
            for f, r in zip(
                z["skipped_files"].tolist(), z["skipped_reasons"].tolist(), strict=True
            ):
                skipped.setdefault(str(f), [str(r), 0])[1] += 1
    rows = np.concatenate(kept_rows) if kept_rows else np.zeros(0, np.int64)
    skipped_list = [SkippedFile(f, r, int(k)) for f, (r, k) in skipped.items()]
    if rows.size == 0:
        raise UserError(
            f"every clip was skipped ({len(skipped_list)} unreadable file(s), e.g. "
            f"{skipped_list[0].file if skipped_list else '?'})",
            split.folder,
            "check the audio files named in clips.csv",
        )
    if len(shapes) != 1:
        raise UserError(
            f"the encoder gave different (T, D) per batch: {sorted(shapes)}",
            split.folder,
            "use an utterance-level encoder (T = 1) for clips of different lengths",
        )
    ((t, d),) = shapes
    clip = float(split.info.clip_seconds or 0.0)
    spans = enc.frame_spans(clip) if clip > 0 and hasattr(enc, "frame_spans") else None
    if spans is not None and len(spans) == t and split.labels.shape[1] != t:
        labels = labels_from_spans(split.labels, clip, spans)
        layout = (
            f"{t} windows per clip at [start, end) s {np.round(spans, 4).tolist()}; a "
            f"window's label is the max over the label slots it overlaps; slots: "
            f"{split.info.frame_layout}"
        )
    else:
        spans = None
        labels = adapt_labels(split.labels, t)
        layout = (
            split.info.frame_layout
            if t == split.info.frames
            else f"{t} frame(s) per clip; labels max-pooled from: {split.info.frame_layout}"
        )
    meta = PoolMeta(
        encoder=str(enc.name),
        checkpoint_hash=str(enc.checkpoint_hash),
        sample_rate=int(enc.sample_rate),
        clip_seconds=float(split.info.clip_seconds or 0.0),
        hop_seconds=float(split.info.hop_seconds or 0.0),
        frame_layout=layout,
        extra={
            "frame_spans": json.dumps(None if spans is None else np.asarray(spans).tolist()),
            "skipped": json.dumps([s.file for s in skipped_list]),
            "skipped_reasons": json.dumps({s.file: s.reason for s in skipped_list}),
            "skipped_clips": int(sum(s.clips for s in skipped_list)),
            "encoder_fingerprint": str(enc.fingerprint),
            "encoder_description": json.dumps(enc.describe(), default=str),
            "source_split": str(split.folder.resolve()),
            "corpus_kind": split.info.kind,
            "mono": split.info.mono,
            "split_extra": json.dumps(split.info.extra, default=str),
            "encoder_spec": json.dumps(
                None
                if encoder_spec is None
                else {
                    "name": encoder_spec[0],
                    "checkpoint": encoder_spec[1],
                    "norm": None if encoder_spec[3] is None else list(encoder_spec[3]),
                    "options": encoder_spec[4],
                },
                default=str,
            ),
        },
    )
    specs = [
        ExtraDataset(e.name, extra_shapes.get(e.name, e.shape), e.dtype, e.axis_names, e.doc)
        for e in getattr(enc, "extra_outputs", ()) or ()
    ]
    writer = PoolWriter(
        store,
        int(rows.size),
        t,
        d,
        split.info.class_list,
        meta,
        specs,
        known_mask=split.known is not None,
    )
    try:
        at = 0
        for s in starts:
            with np.load(_chunk_path(work, s), allow_pickle=False) as z:
                emb, idx = z["emb"], z["rows"]
                extras = {e.name: z[_EXTRA_PREFIX + e.name] for e in specs}
            if idx.size:
                writer.write_block(
                    at,
                    emb,
                    labels[idx],
                    [split.rows[i].id for i in idx],
                    extras,
                    known=None if split.known is None else split.known[idx],
                )
                at += int(idx.size)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    shutil.rmtree(work, ignore_errors=True)
    return SplitOutput(split.folder, store, len(split.rows), int(rows.size), skipped_list, resumed)
