"""A project's model over a folder of recordings -> detection tables (``iml-tui detect``).

Every audio file under the folder is cut as the project's pool was (clip and hop seconds of its
store), embedded by the same encoder (rebuilt from the store's ``encoder_spec`` attribute and
checked against its fingerprint), and scored by the project's latest model (trained first when
the project has labels but no model). Frame probabilities are placed on the recording's
timeline (:func:`~iml_tui.engine.detection.stitch_spans`: the encoder's frame windows, averaged
where clips overlap) and turned into events per class (threshold, minimum duration, merge gap).

Outputs under ``out``: ``detections.csv`` (recording, onset, offset, class, score: the mean
frame probability of the event), ``raven/<recording>.Table.1.selections.txt`` and
``audacity/<recording>.txt`` (through crowsetta), one per recording, keeping the sub-folders of
the source. Resuming: the frame probabilities of each finished recording are kept in
``out/.frames/`` (with a ``job.json`` naming the model and encoder), and a long recording's in
parts of :data:`PART_CLIPS` clips as they finish; the same command again scores only the rest,
and a changed threshold or merge setting re-uses them all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
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

CSV_FILE = "detections.csv"
CSV_COLUMNS = ("recording", "onset", "offset", "class", "score")
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
class DetectResult:
    """What a run wrote: per recording, the events; the files; the model and threshold used."""

    recordings: list[RecordingResult]
    csv: Path
    tables: list[Path]
    model: ModelRef
    threshold: float
    class_list: list[str]
    trained: bool  # a model was trained first

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


def _score_recording(
    path: Path,
    enc: Any,
    model: FrameMLP,
    clip: float,
    hop: float,
    mono: Literal["first", "mix"],
    batch: int,
    parts: Path,
    on_clip: Callable[[float], None],
) -> tuple[np.ndarray, list[float], float]:
    """(n_clips, T, C) frame probabilities of one recording, the clip offsets and its duration.

    Clips are scored in parts of :data:`PART_CLIPS`, each saved under ``parts`` as it finishes,
    so an interrupted hours-long recording resumes at its first missing part."""
    duration = audio_io.info(path).duration
    offsets = [k * hop for k in range(n_clips(duration, clip, hop))]
    sr = int(enc.sample_rate)
    want = round(clip * sr)
    out: list[np.ndarray] = []
    for part_lo in range(0, len(offsets), PART_CLIPS):
        part_hi = min(len(offsets), part_lo + PART_CLIPS)
        part_file = parts / f"part_{part_lo:09d}.npy"
        if part_file.is_file():
            out.append(np.load(part_file, allow_pickle=False))
            on_clip(duration * part_hi / len(offsets))
            continue
        probs = []
        for lo in range(part_lo, part_hi, batch):
            waves = []
            for off in offsets[lo : min(part_hi, lo + batch)]:
                x, _ = audio_io.read(path, sr=sr, mono=mono, start=off, duration=clip)
                if not np.all(np.isfinite(x)):
                    raise UserError(
                        f"the audio holds NaN or inf samples near {off:g} s",
                        path,
                        "re-export the file",
                    )
                waves.append(
                    np.ascontiguousarray(
                        np.pad(x[:want], (0, max(0, want - x.size))), dtype=np.float32
                    )
                )
            emb = np.asarray(enc.encode(waves), dtype=np.float32)
            probs.append(predict_frames(model, emb, "cpu"))
            on_clip(duration * min(part_hi, lo + batch) / len(offsets))
        block = np.concatenate(probs, axis=0)
        atomic_save_npy(part_file, block)
        out.append(block)
    return np.concatenate(out, axis=0), offsets, duration


def _table_name(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel


def detect_recordings(
    project_dir: str | Path,
    recordings: str | Path,
    out: str | Path,
    threshold: float | None = None,
    min_duration: float = 0.0,
    merge_gap: float = 0.0,
    batch_size: int = 16,
    device: str = "auto",
    progress: DetectProgress | None = None,
    train_progress: Callable[[float, str], None] | None = None,
) -> DetectResult:
    """Detect events in every recording under ``recordings`` (see the module doc).

    threshold: per-frame probability in [0, 1]; None = the model's own (F1-optimal on the
    validation clips, or out of fold on the labels). Seconds for min_duration and merge_gap.
    """
    if threshold is not None and not (0.0 <= threshold <= 1.0):
        raise UserError(
            f"--threshold {threshold}: must be in [0, 1] or auto",
            None,
            "give a probability such as 0.5, or auto",
        )
    if min_duration < 0 or merge_gap < 0 or not math.isfinite(min_duration + merge_gap):
        raise UserError("--min-duration and --merge-gap must be >= 0 seconds")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be >= 1")
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
    ref, trained = ensure_model(project_dir, train_progress)
    project = Project.load(project_dir)
    store = PoolStore(Path(project.config.pool_dir) / "train.h5")
    clip = float(store.attrs.get("clip_seconds") or 0.0)
    hop = float(store.attrs.get("hop_seconds") or 0.0) or clip
    if clip <= 0:
        raise UserError(
            "the pool does not state its clip length",
            store.path,
            "re-extract it from a prepared split with clip seconds",
        )
    try:
        saved = torch.load(ref.path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise UserError(
            f"cannot read the model checkpoint ({exc})",
            ref.path,
            "run `iml-tui train` to write a new one",
        ) from exc
    model = FrameMLP.from_state_dict(saved["state_dict"]).eval()
    thr = ref.threshold if threshold is None else float(threshold)
    mono: Literal["first", "mix"] = "mix" if store.attrs.get("mono") == "mix" else "first"
    out = Path(out)
    work = out / WORK_DIR
    job = _job(ref, store, clip, hop)
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
    rels = [f.relative_to(source).as_posix() for f in files]
    durations = [audio_io.info(f).duration for f in files]
    total = float(sum(durations))
    done = [0.0]
    enc: Any = None
    t = store.t
    spans = None
    results: list[RecordingResult] = []
    tables: list[Path] = []
    class_list = list(store.class_list)
    rows: list[tuple[str, float, float, str, float]] = []
    for f, rel, dur in zip(files, rels, durations, strict=True):
        cache = _work_file(work, rel)
        resumed = cache.is_file()
        if resumed:
            with np.load(cache, allow_pickle=False) as z:
                grid, step, duration = z["grid"], float(z["step"]), float(z["duration"])
        else:
            if enc is None:
                enc = pool_encoder(store, device)
            base = done[0]

            def on_clip(seconds: float, base: float = base, rel: str = rel) -> None:
                if progress is not None:
                    progress(rel, base + seconds, total)

            probs, offsets, duration = _score_recording(
                f, enc, model, clip, hop, mono, batch_size, _parts_dir(cache), on_clip
            )
            if probs.shape[1] != t:
                raise UserError(
                    f"the encoder gives T={probs.shape[1]} frames per clip, the pool has T={t}",
                    store.path,
                    "re-extract the pool",
                )
            if spans is None:
                spans = _frame_spans(store, clip, t)
            grid, step = stitch_spans(list(probs), offsets, spans, duration)
            atomic_save_npz(cache, grid=grid, step=np.float64(step), duration=np.float64(duration))
            shutil.rmtree(_parts_dir(cache), ignore_errors=True)
        done[0] += dur
        if progress is not None:
            progress(rel, done[0], total)
        events = [
            e
            for e in events_from_frames(grid, step, thr, min_duration, merge_gap)
            if e.onset < duration
        ]
        events = [Event(e.onset, min(e.offset, duration), e.class_index, e.score) for e in events]
        results.append(RecordingResult(rel, duration, events, resumed))
        named = [(e.onset, e.offset, class_list[e.class_index]) for e in events]
        stem = _table_name(rel)
        sr = audio_io.info(f).sample_rate
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
    return DetectResult(results, csv_path, tables, ref, thr, class_list, trained)


def read_detections(path: str | Path) -> list[tuple[str, float, float, str, float]]:
    """Rows of a ``detections.csv``: (recording, onset, offset, class, score)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            (r["recording"], float(r["onset"]), float(r["offset"]), r["class"], float(r["score"]))
            for r in csv.DictReader(f)
        ]
