"""A project's model over a folder of recordings -> detection tables (``iml-tui detect``).

Every audio file under the folder is cut as the project's pool was (clip and hop seconds of its
store), embedded by the same encoder (rebuilt from the store's ``encoder_spec`` attribute and
checked against its fingerprint), and scored by the project's latest model (trained first when
the project has labels but no model). Frame probabilities are placed on the recording's
timeline (:func:`~iml_tui.engine.detection.stitch_spans`: the encoder's frame windows, averaged
where clips overlap) and turned into events per class (threshold, minimum duration, merge gap).

Outputs under ``out``: ``detections.csv`` (recording, onset, offset, class, score: the mean
frame probability of the event), ``summary.csv`` (per recording and class: events, their
seconds, events per hour), ``raven/<recording>.Table.1.selections.txt`` and
``audacity/<recording>.txt`` (through crowsetta), one per recording, keeping the sub-folders of
the source. Resuming: the frame probabilities of each finished recording are kept in
``out/.frames/`` (with a ``job.json`` naming the model and encoder), and a long recording's in
parts of :data:`PART_CLIPS` clips as they finish; the same command again scores only the rest,
and a changed threshold or merge setting re-uses them all.

Parts are the unit of work: with ``jobs`` > 1 they are scored by that many local processes, with
the Ray executor by Ray tasks on any node that sees the same paths (each worker builds the
encoder and the model once). A recording that cannot be read (a bad header, no samples, NaN or
inf samples, a corrupt stretch) is skipped and reported (``DetectResult.skipped``); every other
recording is still scored and written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from iml_tui.atomic import atomic_save_npy, atomic_save_npz, atomic_write_text
from iml_tui.audio import io as audio_io
from iml_tui.data.detection_tables import write_audacity, write_raven
from iml_tui.data.recordings import audio_files, n_clips
from iml_tui.data.store import PoolStore
from iml_tui.engine.detection import Event, events_from_frames, stitch_spans
from iml_tui.engine.journal import Event as JournalEvent
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.engine.project import Project
from iml_tui.engine.trainer import predict_frames
from iml_tui.errors import UserError
from iml_tui.parallel.runner import (
    ExecutorOptions,
    Task,
    run_tasks,
    split_runs,
    task_count,
    worker_threads,
)

CSV_FILE = "detections.csv"
CSV_COLUMNS = ("recording", "onset", "offset", "class", "score")
SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = ("recording", "seconds", "class", "events", "event_seconds", "per_hour")
WORK_DIR = ".frames"
#: Clips per saved part of a recording (a resumed run restarts a recording at its first
#: missing part): 256 clips are about 21 minutes of audio at a 5 s hop.
PART_CLIPS = 256

DetectProgress = Callable[[str, float, float], None]
"""(recording, audio seconds done over all recordings, total audio seconds)."""


@dataclass(frozen=True)
class ModelRef:
    """The checkpoint a detection run uses: its file, version, threshold and labels seen."""

    path: Path
    version: int
    threshold: float
    n_labelled: int
    stale: bool  # labels changed since it was trained


@dataclass(frozen=True)
class RecordingResult:
    recording: str
    seconds: float
    events: list[Event]
    resumed: bool


@dataclass(frozen=True)
class SkippedRecording:
    """A recording left out: its path under the folder and why."""

    recording: str
    reason: str


@dataclass(frozen=True)
class DetectResult:
    """What a run wrote: per recording, the events; the files; the model and threshold used;
    the recordings that could not be read."""

    recordings: list[RecordingResult]
    csv: Path
    tables: list[Path]
    model: ModelRef
    thresholds: tuple[float, ...]  # per class
    class_list: list[str]
    trained: bool  # a model was trained first
    skipped: list[SkippedRecording] = field(default_factory=list)

    @property
    def threshold_text(self) -> str:
        """'0.412', or per class 'call 0.400, song 0.700' when they differ."""
        if len(set(self.thresholds)) <= 1:
            return f"{self.thresholds[0]:.3f}" if self.thresholds else "-"
        pairs = zip(self.class_list, self.thresholds, strict=True)
        return ", ".join(f"{c} {t:.3f}" for c, t in pairs)

    @property
    def n_events(self) -> int:
        return sum(len(r.events) for r in self.recordings)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.recordings)


def latest_model(project: Project) -> ModelRef | None:
    """The newest ``model_trained`` checkpoint of a pool project (None before the first)."""
    from iml_tui.engine.export import current_labels

    with project.open_journal() as j:
        models = j.events(0, kinds=["model_trained"])
    if not models:
        return None
    last: JournalEvent = models[-1]
    labelled = len(current_labels(project))
    payload = last.payload
    return ModelRef(
        path=project.dir / str(payload["file"]),
        version=int(last.model_version or 0),
        threshold=float(payload.get("threshold", 0.5)),
        n_labelled=int(payload.get("n_labelled", 0)),
        stale=labelled != int(payload.get("n_labelled", 0)),
    )


def ensure_model(
    project_dir: str | Path, progress: Callable[[float, str], None] | None = None
) -> tuple[ModelRef, bool]:
    """The project's latest model, training one first when there is none; (model, trained)."""
    project = Project.load(project_dir)
    if project.mode != "pool":
        raise UserError(
            f"detect runs pool (bioacoustic) projects, this one is {project.mode}",
            project.dir,
            "give a project made with --task bioacoustic",
        )
    ref = latest_model(project)
    if ref is not None:
        return ref, False
    from iml_tui.engine.session import Session

    with Session.open(project.dir, annotator="detect") as session:
        if session.progress().labelled == 0:
            raise UserError(
                "the project has no labels and no model",
                project.dir,
                "label some clips (`iml-tui label`), or prepare the recordings "
                "with --labels, then run `iml-tui train`",
            )
        if not session.retrain_now(progress):
            raise UserError(
                f"training failed: {session.model_status().error}",
                project.dir,
                "see `iml-tui doctor` and the journal's training_failed event",
            )
    ref = latest_model(project)
    if ref is None:
        raise UserError("training wrote no model", project.dir, "run `iml-tui train` and retry")
    return ref, True


def pool_encoder(store: PoolStore, device: str) -> Any:
    """The encoder that made ``store``, rebuilt from its ``encoder_spec`` (UserError if absent or
    if its fingerprint differs)."""
    spec_text = store.attrs.get("encoder_spec")
    spec = json.loads(spec_text) if isinstance(spec_text, str) else None
    if not spec:
        raise UserError(
            "the pool does not record how its embeddings were made (no 'encoder_spec' attribute)",
            store.path,
            "re-extract it with `iml-tui extract` from this version",
        )
    from iml_tui.features.extract import build_encoder

    norm = spec.get("norm")
    enc = build_encoder(
        str(spec["name"]),
        spec.get("checkpoint"),
        device,
        None if norm is None else (float(norm[0]), float(norm[1])),
        dict(spec.get("options") or {}),
    )
    want = store.attrs.get("encoder_fingerprint")
    if want and str(enc.fingerprint) != str(want):
        raise UserError(
            f"the encoder rebuilt from the pool ({enc.fingerprint}) differs from the "
            f"one that made it ({want}); its checkpoint changed",
            store.path,
            "restore the checkpoint named in the pool's encoder_spec, or re-extract",
        )
    return enc


def _frame_spans(store: PoolStore, clip: float, t: int) -> np.ndarray:
    raw = store.attrs.get("frame_spans")
    spans = json.loads(raw) if isinstance(raw, str) else None
    if spans:
        return np.asarray(spans, dtype=np.float64)
    edges = np.arange(t + 1) * clip / t
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _job(model: ModelRef, store: PoolStore, clip: float, hop: float) -> dict[str, Any]:
    return {
        "model": str(model.path),
        "model_version": model.version,
        "encoder": str(store.attrs.get("encoder_fingerprint", "")),
        "clip": clip,
        "hop": hop,
    }


def _work_file(work: Path, rel: str) -> Path:
    return work / f"{hashlib.sha1(rel.encode()).hexdigest()[:16]}.npz"


def _parts_dir(cache: Path) -> Path:
    return cache.with_suffix(".parts")


@dataclass(frozen=True)
class Part:
    """Clips of one recording scored together and saved as one ``.npy`` (n, T, C) file."""

    path: str  # the audio file (absolute)
    rel: str  # its path under the recordings folder
    offsets: tuple[float, ...]  # clip starts (s)
    file: str  # where the part's frame probabilities go (absolute)
    seconds: float  # audio seconds the part stands for (progress)


def plan_parts(
    path: Path, rel: str, duration: float, clip: float, hop: float, parts: Path
) -> list[Part]:
    """The parts of one recording: :data:`PART_CLIPS` clips each, in time order."""
    offsets = [k * hop for k in range(n_clips(duration, clip, hop))]
    n = max(len(offsets), 1)
    out = []
    for lo in range(0, len(offsets), PART_CLIPS):
        hi = min(len(offsets), lo + PART_CLIPS)
        out.append(
            Part(
                str(path.resolve()),
                rel,
                tuple(offsets[lo:hi]),
                str((parts / f"part_{lo:09d}.npy").resolve()),
                duration * (hi - lo) / n,
            )
        )
    return out


@dataclass
class Scorer:
    """A worker's encoder and frame model, built once per process."""

    enc: Any
    model: FrameMLP


def load_model(path: Path) -> FrameMLP:
    """The project's frame model from its checkpoint, in eval mode."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise UserError(
            f"cannot read the model checkpoint ({exc})",
            path,
            "run `iml-tui train` to write a new one",
        ) from exc
    return FrameMLP.from_state_dict(saved["state_dict"]).eval()


def scorer_setup(store: str, device: str, model: str, threads: int) -> Scorer:
    """Build a worker's :class:`Scorer` (``threads`` torch threads; 0 leaves them as they are)."""
    if threads > 0:
        torch.set_num_threads(threads)
    return Scorer(pool_encoder(PoolStore(store), device), load_model(Path(model)))


def _score_part(
    part: Part,
    scorer: Scorer,
    clip: float,
    mono: Literal["first", "mix"],
    batch: int,
    emit: Callable[[Any], None],
) -> np.ndarray:
    sr = int(scorer.enc.sample_rate)
    want = round(clip * sr)
    per_clip = part.seconds / max(len(part.offsets), 1)
    probs = []
    for lo in range(0, len(part.offsets), batch):
        waves = []
        chunk = part.offsets[lo : lo + batch]
        for off in chunk:
            x, _ = audio_io.read(part.path, sr=sr, mono=mono, start=off, duration=clip)
            if not np.all(np.isfinite(x)):
                raise UserError(
                    f"the audio holds NaN or inf samples near {off:g} s",
                    part.path,
                    "re-export the file",
                )
            waves.append(
                np.ascontiguousarray(np.pad(x[:want], (0, max(0, want - x.size))), dtype=np.float32)
            )
        emb = np.asarray(scorer.enc.encode(waves), dtype=np.float32)
        probs.append(predict_frames(scorer.model, emb, "cpu"))
        emit((part.rel, per_clip * len(chunk)))
    return np.concatenate(probs, axis=0)


def score_parts(
    scorer: Scorer,
    emit: Callable[[Any], None],
    parts: list[Part],
    clip: float,
    mono: Literal["first", "mix"],
    batch: int,
) -> list[tuple[str, str]]:
    """Score and save every part not yet on disk; ``emit((recording, audio seconds))`` as clips
    finish. Returns (recording, reason) for recordings whose audio could not be read (their
    later parts are left alone)."""
    failed: dict[str, str] = {}
    for part in parts:
        if part.rel in failed:
            continue
        if Path(part.file).is_file():
            emit((part.rel, part.seconds))
            continue
        try:
            block = _score_part(part, scorer, clip, mono, batch, emit)
        except UserError as exc:
            failed[part.rel] = str(exc)
            continue
        atomic_save_npy(Path(part.file), block)
    return list(failed.items())


def _table_name(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel


def _readable(
    files: list[Path], source: Path
) -> tuple[list[tuple[Path, str, float, int]], list[SkippedRecording]]:
    """(file, relative path, duration s, sample rate) of each file whose header reads and that
    holds samples; the others as skipped."""
    ok: list[tuple[Path, str, float, int]] = []
    skipped: list[SkippedRecording] = []
    for f in files:
        rel = f.relative_to(source).as_posix()
        try:
            head = audio_io.info(f)
        except UserError as exc:
            skipped.append(SkippedRecording(rel, str(exc)))
            continue
        if head.frames == 0 or head.duration <= 0:
            skipped.append(SkippedRecording(rel, f"{f}: the file holds no samples"))
            continue
        ok.append((f, rel, float(head.duration), int(head.sample_rate)))
    return ok, skipped


Threshold = float | Mapping[str, float] | None
"""A frame probability for every class, one per named class (the others: the model's), or
None: the model's own."""


def class_thresholds(
    threshold: Threshold, model: float, class_list: Sequence[str]
) -> tuple[float, ...]:
    """Per-class thresholds (C,) from ``threshold`` over the model's ``model``; UserError on a
    value outside [0, 1] or a class the pool lacks."""
    if threshold is None:
        return tuple(float(model) for _ in class_list)
    if isinstance(threshold, Mapping):
        given = {str(c): float(v) for c, v in threshold.items()}
    else:
        given = {c: float(threshold) for c in class_list}
    unknown = [c for c in given if c not in class_list]
    if unknown:
        raise UserError(
            f"--threshold names {unknown[0]!r}, not a class of the pool",
            None,
            f"use the classes {', '.join(class_list)}",
        )
    for c, v in given.items():
        if not (0.0 <= v <= 1.0):
            raise UserError(
                f"--threshold {c}={v}: must be in [0, 1]",
                None,
                "give a probability such as 0.5, or auto",
            )
    return tuple(float(given.get(c, model)) for c in class_list)


def _check_args(min_duration: float, merge_gap: float, batch: int) -> None:
    if min_duration < 0 or merge_gap < 0 or not math.isfinite(min_duration + merge_gap):
        raise UserError("--min-duration and --merge-gap must be >= 0 seconds")
    if batch < 1:
        raise UserError(f"--batch-size {batch}: must be >= 1")


def _open_work(work: Path, job: dict[str, Any]) -> None:
    """``work`` ready for ``job``: kept when it holds the same job, else emptied."""
    job_path = work / "job.json"
    if job_path.is_file():
        try:
            same = json.loads(job_path.read_text()) == job
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(job_path, json.dumps(job, sort_keys=True) + "\n")


def detect_recordings(
    project_dir: str | Path,
    recordings: str | Path,
    out: str | Path,
    threshold: Threshold = None,
    min_duration: float = 0.0,
    merge_gap: float = 0.0,
    batch_size: int = 16,
    device: str = "auto",
    progress: DetectProgress | None = None,
    train_progress: Callable[[float, str], None] | None = None,
    executor: ExecutorOptions | None = None,
) -> DetectResult:
    """Detect events in every recording under ``recordings`` (see the module doc).

    threshold: per-frame probability in [0, 1], for every class or as {class: p} (the others
    the model's); None = the model's own (F1-optimal on the validation clips, or out of fold on
    the labels). Seconds for min_duration and merge_gap.
    executor: where the parts are scored (default: here, one after the other).
    """
    _check_args(min_duration, merge_gap, batch_size)
    source = Path(recordings)
    if not source.is_dir():
        raise UserError(
            "recordings folder not found",
            source,
            "point --recordings at the folder holding the audio",
        )
    files = audio_files(source)
    if not files:
        raise UserError(
            "no audio files (wav, flac, ogg, mp3) under this folder",
            source,
            "point --recordings at the folder holding your recordings",
        )
    readable, skipped = _readable(files, source)
    if not readable:
        raise UserError(
            f"none of the {len(files)} audio file(s) can be read (first: {skipped[0].reason})",
            source,
            "check the files, or point --recordings at another folder",
        )
    project = Project.load(project_dir)
    if project.mode == "pool":  # a bad --threshold is said before any training
        classes = list(PoolStore(Path(project.config.pool_dir) / "train.h5").class_list)
        class_thresholds(threshold, 0.5, classes)
    ref, trained = ensure_model(project_dir, train_progress)
    store = PoolStore(Path(project.config.pool_dir) / "train.h5")
    clip = store.clip_seconds()
    hop = float(store.attrs.get("hop_seconds") or 0.0) or clip
    model = load_model(ref.path)
    thr = class_thresholds(threshold, ref.threshold, list(store.class_list))
    mono: Literal["first", "mix"] = "mix" if store.attrs.get("mono") == "mix" else "first"
    out = Path(out)
    work = out / WORK_DIR
    _open_work(work, _job(ref, store, clip, hop))
    total = float(sum(dur for _, _, dur, _ in readable))
    done = [0.0]
    plans: dict[str, list[Part]] = {}
    todo: list[Part] = []
    for f, rel, dur, _ in readable:
        if _work_file(work, rel).is_file():
            done[0] += dur
            continue
        plans[rel] = plan_parts(f, rel, dur, clip, hop, _parts_dir(_work_file(work, rel)))
        for part in plans[rel]:
            if Path(part.file).is_file():
                done[0] += part.seconds
            else:
                todo.append(part)
    if progress is not None:
        progress(readable[0][1], done[0], total)

    def on_event(event: tuple[str, float]) -> None:
        done[0] += event[1]
        if progress is not None:
            progress(event[0], min(done[0], total), total)

    failed = _score_todo(
        todo, store, model, ref, device, clip, mono, batch_size, executor, on_event
    )
    for rel, reason in failed:
        skipped.append(SkippedRecording(rel, reason))
        shutil.rmtree(_parts_dir(_work_file(work, rel)), ignore_errors=True)
    bad = {rel for rel, _ in failed}
    t = store.t
    spans = _frame_spans(store, clip, t)
    results: list[RecordingResult] = []
    tables: list[Path] = []
    class_list = list(store.class_list)
    rows: list[tuple[str, float, float, str, float]] = []
    for _f, rel, dur, sr in readable:
        if rel in bad:
            continue
        cache = _work_file(work, rel)
        resumed = rel not in plans
        if resumed:
            with np.load(cache, allow_pickle=False) as z:
                grid, step, duration = z["grid"], float(z["step"]), float(z["duration"])
        else:
            parts = plans[rel]
            probs = np.concatenate([np.load(p.file, allow_pickle=False) for p in parts], axis=0)
            if probs.shape[1] != t:
                raise UserError(
                    f"the encoder gives T={probs.shape[1]} frames per clip, the pool has T={t}",
                    store.path,
                    "re-extract the pool",
                )
            duration = dur
            offsets = [o for p in parts for o in p.offsets]
            grid, step = stitch_spans(list(probs), offsets, spans, duration)
            atomic_save_npz(cache, grid=grid, step=np.float64(step), duration=np.float64(duration))
            shutil.rmtree(_parts_dir(cache), ignore_errors=True)
        events = [
            Event(e.onset, min(e.offset, duration), e.class_index, e.score)
            for e in events_from_frames(grid, step, thr, min_duration, merge_gap)
            if e.onset < duration
        ]
        results.append(RecordingResult(rel, duration, events, resumed))
        named = [(e.onset, e.offset, class_list[e.class_index]) for e in events]
        stem = _table_name(rel)
        tables.append(
            write_raven(out / "raven" / f"{stem}.Table.1.selections.txt", named, sr / 2.0)
        )
        tables.append(write_audacity(out / "audacity" / f"{stem}.txt", named))
        rows += [(rel, e.onset, e.offset, class_list[e.class_index], e.score) for e in events]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for rel, a, b, name, score in rows:
        w.writerow([rel, f"{a:.3f}", f"{b:.3f}", name, f"{score:.4f}"])
    csv_path = atomic_write_text(out / CSV_FILE, text.getvalue())
    atomic_write_text(out / SUMMARY_FILE, summary_text(results, class_list))
    return DetectResult(results, csv_path, tables, ref, thr, class_list, trained, skipped)


def summary_text(results: Sequence[RecordingResult], class_list: Sequence[str]) -> str:
    """``summary.csv``: per recording and class, its events, their total seconds and events per
    hour of that recording (a row for every class, zeros included, so sites compare)."""
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in results:
        for c, name in enumerate(class_list):
            mine = [e for e in r.events if e.class_index == c]
            total = sum(e.offset - e.onset for e in mine)
            rate = len(mine) / (r.seconds / 3600.0) if r.seconds > 0 else 0.0
            w.writerow(
                [r.recording, f"{r.seconds:.3f}", name, len(mine), f"{total:.3f}", f"{rate:.2f}"]
            )
    return text.getvalue()


def _score_todo(
    todo: list[Part],
    store: PoolStore,
    model: FrameMLP,
    ref: ModelRef,
    device: str,
    clip: float,
    mono: Literal["first", "mix"],
    batch: int,
    executor: ExecutorOptions | None,
    on_event: Callable[[Any], None],
) -> list[tuple[str, str]]:
    """Score the parts in ``todo`` here or on the executor's workers; (recording, reason) of
    those that could not be read."""
    if not todo:
        return []
    opts = (executor or ExecutorOptions()).resolved()
    if opts.executor == "local" and opts.jobs <= 1:
        scorer = Scorer(pool_encoder(store, device), model)
        task = Task(0, score_parts, (todo, clip, mono, batch))
        got = run_tasks([task], ExecutorOptions(), scorer_setup, (), on_event, state=scorer)
    else:
        pool_encoder(store, "cpu")  # a changed checkpoint is one line here, before any worker
        runs = split_runs(todo, task_count(len(todo), opts))
        tasks = [Task(i, score_parts, (run, clip, mono, batch)) for i, run in enumerate(runs)]
        setup = (str(store.path.resolve()), device, str(ref.path.resolve()), worker_threads(opts))
        got = run_tasks(tasks, opts, scorer_setup, setup, on_event)
    return [f for failed in got.values() for f in failed]


def read_detections(path: str | Path) -> list[tuple[str, float, float, str, float]]:
    """Rows of a ``detections.csv``: (recording, onset, offset, class, score)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            (r["recording"], float(r["onset"]), float(r["offset"]), r["class"], float(r["score"]))
            for r in csv.DictReader(f)
        ]
