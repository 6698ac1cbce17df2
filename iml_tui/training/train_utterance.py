"""Train an utterance-level encoder (ECAPA-TDNN or x-vector) on a prepared LID corpus.

``train_utterance_encoder(data, out, cfg)`` trains speechbrain's ``ECAPA_TDNN`` (or ``Xvector``)
with the classifier of speechbrain's published language-ID model
(``speechbrain.lobes.models.Xvector.Classifier``: LeakyReLU, BatchNorm, one hidden block
Linear/LeakyReLU/BatchNorm, Linear(C), log-softmax) and a plain cross-entropy (NLL) loss, as the
VoxLingua107 recipe does (no additive angular margin). Data: the ``train`` and ``dev`` (or
``valid``) split folders of ``iml-tui prepare lid`` (one-hot (N, 1, C) labels). Shapes: B crops of
n samples at 16 kHz per step; features (B, frames, n_mels) Fbank with per-utterance mean
normalisation; embeddings (B, 1, D = ``embedding_dim``); log-probabilities (B, C) over the classes
that have training utterances.

One training step:

1. **Batch**: B utterance indices from a stream of random permutations of the train split.
2. **Random crop**: one length per batch, U[``crop_min``, ``crop_max``] s; a crop starts
   uniformly inside the utterance (a shorter one is repeated from a random offset).
3. **Speed** (probability ``speed_p``): a factor from ``speeds`` applied by resampling (pitch
   changes with it, as in speechbrain's SpeedPerturb).
4. **Gain**: U[-``gain_db``, +``gain_db``] dB.
5. **Additive noise** (probability ``noise_p``): white Gaussian at an SNR U[``snr_min``,
   ``snr_max``] dB.
6. NLL of the classifier's log-probabilities; Adam.

After every epoch each ``dev`` utterance is classified whole (one at a time, so padding never
enters); the epoch with the best dev accuracy (ties: lower dev loss) is kept.

All randomness (batches, crops, augmentation: a numpy Generator; initialisation: torch's RNG,
forked so the caller's is untouched) comes from ``cfg.seed``; the state is saved with the model,
the best weights and the optimizer after every epoch in ``<out>/train_state.pt`` (temporary file +
rename): running the same command again continues after the last finished epoch, bit for bit as
if never stopped (on the CPU). ``epochs`` may grow; the architecture and the data must not change.

Outputs in ``out`` (a speechbrain inference folder, the layout of
``speechbrain/lang-id-voxlingua107-ecapa``): ``hyperparams.yaml`` (compute_features,
mean_var_norm, embedding_model, classifier, label_encoder, pretrainer), ``embedding_model.ckpt``,
``classifier.ckpt``, ``label_encoder.txt`` (speechbrain's CategoricalEncoder format) and its copy
``label_encoder.ckpt`` (the pretrainer takes every loadable from the folder given as ``source``
under ``<name>.ckpt``; no hub path is written), ``train_log.json`` (per-epoch figures, config,
data fingerprint) and ``train_state.pt`` (resume). The folder loads with
``get_encoder("ecapa" | "xvector", out)`` and with
``EncoderClassifier.from_hparams(source=out, savedir=...)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iml_tui.atomic import atomic_torch_save, atomic_write_bytes, atomic_write_text
from iml_tui.audio import io as audio_io
from iml_tui.callbacks import ProgressFn
from iml_tui.data.corpus import CLIPS_FILE, LABELS_FILE, SPLIT_FILE, Split, is_split, read_split
from iml_tui.devices import resolve_device
from iml_tui.errors import UserError

__all__ = [
    "ARCHS",
    "LOG_FILE",
    "SAMPLE_RATE",
    "STATE_FILE",
    "UtteranceEpochLog",
    "UtteranceTrainConfig",
    "UtteranceTrainResult",
    "augment_crops",
    "build_hyperparams",
    "draw_crops",
    "train_utterance_encoder",
    "utterance_folders",
]

SAMPLE_RATE = 16000
ARCHS = ("ecapa", "xvector")
STATE_FILE = "train_state.pt"
LOG_FILE = "train_log.json"
STATE_FORMAT = "iml-tui-utterance-train-state"
MODEL_FILES = (
    "hyperparams.yaml",
    "embedding_model.ckpt",
    "classifier.ckpt",
    "label_encoder.txt",
    "label_encoder.ckpt",
)


@dataclass
class UtteranceTrainConfig:
    """Hyper-parameters of utterance-encoder training. Seconds, Hz and mel bins as named."""

    arch: Literal["ecapa", "xvector"] = "ecapa"
    channels: int = 256  # C: ECAPA [C, C, C, C, 3C]; x-vector TDNN [C, C, C, C, 3C]
    embedding_dim: int = 128  # D (lin_neurons of the embedding model)
    classifier_hidden: int = 256  # hidden block of the classifier (512 in the published model)
    n_mels: int = 60  # Fbank bins, as the published lang-id ECAPA
    epochs: int = 10
    batch_size: int = 16  # crops per step (at least 2: the classifier has BatchNorm)
    steps_per_epoch: int | None = None  # None: ceil(train utterances / batch_size)
    lr: float = 1e-3  # Adam (betas 0.9/0.999)
    weight_decay: float = 2e-6
    crop_min: float = 2.0
    crop_max: float = 3.0
    speed_p: float = 0.5
    speeds: tuple[float, ...] = (0.9, 1.1)
    gain_db: float = 6.0
    noise_p: float = 0.5
    snr_min: float = 5.0
    snr_max: float = 20.0
    seed: int = 0
    device: str = "auto"


@dataclass
class UtteranceEpochLog:
    """One finished epoch: mean training loss and crop accuracy, dev loss / accuracy (and per
    class: the share of each class's dev utterances classified right), seconds."""

    epoch: int
    train_loss: float
    train_accuracy: float
    dev_loss: float
    dev_accuracy: float
    dev_class_accuracy: list[float | None]  # None: no dev utterance of the class
    seconds: float
    best: bool


@dataclass
class UtteranceTrainResult:
    """What :func:`train_utterance_encoder` left in ``out``."""

    out: Path
    arch: str
    best_epoch: int
    best_dev_accuracy: float
    epochs_run: int  # epochs finished, this run and earlier ones
    resumed_from: int  # epochs already done when this run started (0 = fresh)
    class_list: list[str]
    fingerprint: str
    dev_excluded: int  # dev utterances of classes without training data (not scored)
    history: list[UtteranceEpochLog] = field(default_factory=list)


# --- data ----------------------------------------------------------------------------------------


def utterance_folders(data: str | Path) -> tuple[Path, Path]:
    """(train, dev) split folders of a ``prepare lid`` output (``dev`` or ``valid``)."""
    root = Path(data)
    fix = (
        "run `iml-tui prepare lid --source <folder with train/ and dev/> --out <folder>` and "
        "pass that folder as --data"
    )
    if not root.is_dir():
        raise UserError("data folder not found", root, fix)
    if not is_split(root / "train"):
        raise UserError("no prepared train split (train/split.json)", root, fix)
    for name in ("dev", "valid"):
        if is_split(root / name):
            return root / "train", root / name
    raise UserError("no prepared dev split (dev/split.json or valid/split.json)", root, fix)


def _targets(split: Split) -> np.ndarray:
    """(N,) class index of each utterance of a split with one-hot (N, 1, C) labels."""
    lab = split.labels.reshape(len(split.rows), -1)
    if split.labels.shape[1] != 1:
        raise UserError(
            f"labels.npy has {split.labels.shape[1]} frames per clip; utterance "
            "training needs one label per utterance",
            split.folder,
            "prepare the corpus with `iml-tui prepare lid`",
        )
    per_row = lab.sum(axis=1)
    bad = np.flatnonzero(per_row != 1)
    if bad.size:
        i = int(bad[0])
        raise UserError(
            f"clip {split.rows[i].id!r} has {int(per_row[i])} labels; expected exactly one",
            split.folder,
            "re-create it with `iml-tui prepare lid`",
        )
    return lab.argmax(axis=1).astype(np.int64)


def _read_utterance(split: Split, i: int) -> np.ndarray:
    row = split.rows[i]
    path = split.audio_path(row)
    mono: Literal["first", "mix"] = "mix" if split.info.mono == "mix" else "first"
    x, _ = audio_io.read(path, sr=SAMPLE_RATE, mono=mono, start=row.offset, duration=row.duration)
    if x.size == 0:
        raise UserError(
            f"no samples at {row.offset:g} s (clip {row.id!r})",
            path,
            "check the file, or remove it and run `iml-tui prepare lid` again",
        )
    if not np.all(np.isfinite(x)):
        raise UserError("the audio holds NaN or inf samples", path, "re-export the file")
    return np.ascontiguousarray(x, dtype=np.float32)


@dataclass
class _Data:
    class_list: list[str]
    train_audio: list[np.ndarray]
    train_y: np.ndarray
    dev_audio: list[np.ndarray]
    dev_y: np.ndarray
    dev_excluded: int
    fingerprint: str


def _load_data(data: str | Path, progress: ProgressFn | None) -> _Data:
    train_dir, dev_dir = utterance_folders(data)
    train, dev = read_split(train_dir), read_split(dev_dir)
    ty, dy = _targets(train), _targets(dev)
    present = sorted(set(ty.tolist()))
    if len(present) < 2:
        names = ", ".join(train.info.class_list[c] for c in present) or "none"
        raise UserError(
            f"the train split has utterances of {len(present)} class(es) ({names}); "
            "a classifier needs at least 2",
            train_dir,
            "add utterances of other languages to train/ and prepare again",
        )
    classes = [train.info.class_list[c] for c in present]
    to_new = {train.info.class_list[c]: k for k, c in enumerate(present)}
    train_y = np.array([to_new[train.info.class_list[c]] for c in ty], dtype=np.int64)
    dev_names = [dev.info.class_list[c] for c in dy]
    keep = [i for i, n in enumerate(dev_names) if n in to_new]
    if not keep:
        raise UserError(
            "the dev split has no utterance of a class seen in train",
            dev_dir,
            "prepare a dev/ folder with the languages of train/",
        )
    dev_y = np.array([to_new[dev_names[i]] for i in keep], dtype=np.int64)
    digest = hashlib.sha256()
    for split in (train, dev):
        for name in (SPLIT_FILE, CLIPS_FILE, LABELS_FILE):
            digest.update(name.encode() + b"\0" + (split.folder / name).read_bytes())
    total = len(train.rows) + len(keep)
    train_audio: list[np.ndarray] = []
    dev_audio: list[np.ndarray] = []
    for split, rows, dest in ((train, range(len(train.rows)), train_audio), (dev, keep, dev_audio)):
        for i in rows:
            x = _read_utterance(split, i)
            digest.update(x.tobytes())
            dest.append(x)
            if progress is not None:
                progress("reading audio", len(train_audio) + len(dev_audio), total)
    return _Data(
        classes,
        train_audio,
        train_y,
        dev_audio,
        dev_y,
        len(dev.rows) - len(keep),
        digest.hexdigest()[:16],
    )


# --- crops and augmentation ----------------------------------------------------------------------


def draw_crops(
    waves: Sequence[np.ndarray],
    idx: Sequence[int],
    n: int,
    rng: np.random.Generator,
    speed_p: float = 0.0,
    speeds: Sequence[float] = (),
) -> np.ndarray:
    """(B, n) float32 random crops of ``waves[idx]``; with probability ``speed_p`` a crop is
    played at a speed from ``speeds`` (resampled, so n samples of sped-up/slowed audio)."""
    out = np.zeros((len(idx), n), dtype=np.float32)
    for b, i in enumerate(idx):
        w = waves[i]
        speed = 1.0
        if speeds and rng.random() < speed_p:
            speed = float(speeds[int(rng.integers(len(speeds)))])
        m = max(1, round(n * speed))
        if w.shape[0] >= m:
            s = int(rng.integers(0, w.shape[0] - m + 1))
            seg = w[s : s + m]
        else:
            off = int(rng.integers(0, w.shape[0]))
            seg = np.tile(w, math.ceil((m + off) / w.shape[0]))[off : off + m]
        if speed != 1.0:
            seg = audio_io.resample(seg, round(SAMPLE_RATE * speed), SAMPLE_RATE)
        k = min(n, seg.shape[0])
        out[b, :k] = seg[:k]
    return out


def augment_crops(
    x: np.ndarray,
    rng: np.random.Generator,
    gain_db: float = 0.0,
    noise_p: float = 0.0,
    snr_min: float = 5.0,
    snr_max: float = 20.0,
) -> np.ndarray:
    """Gain U[-gain_db, gain_db] dB on each (B, n) crop, then with probability ``noise_p`` white
    Gaussian noise at an SNR U[snr_min, snr_max] dB of the crop's power. Returns a copy."""
    out = np.array(x, dtype=np.float32, copy=True)
    for b in range(out.shape[0]):
        g = float(rng.uniform(-gain_db, gain_db)) if gain_db > 0 else 0.0
        out[b] *= np.float32(10.0 ** (g / 20.0))
        if rng.random() < noise_p:
            snr = float(rng.uniform(snr_min, snr_max))
            power = float(np.mean(out[b].astype(np.float64) ** 2))
            if power > 0:
                sd = math.sqrt(power / 10.0 ** (snr / 10.0))
                noise = rng.standard_normal(size=out.shape[1])
                out[b] += np.asarray(noise * sd, dtype=np.float32)
    return out


class _BatchStream:
    """Utterance indices for the batches: consecutive random permutations of range(n)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.queue: list[int] = []

    def take(self, k: int, rng: np.random.Generator) -> list[int]:
        while len(self.queue) < k:
            self.queue.extend(int(i) for i in rng.permutation(self.n))
        out, self.queue = self.queue[:k], self.queue[k:]
        return out


# --- the model -----------------------------------------------------------------------------------


def _attention(channels: int) -> int:
    return max(8, channels // 8)


def build_hyperparams(cfg: UtteranceTrainConfig, n_classes: int) -> str:
    """The ``hyperparams.yaml`` of the model ``cfg`` describes, for ``n_classes`` outputs."""
    c = cfg.channels
    if cfg.arch == "ecapa":
        att = _attention(c)
        embedding = f"""\
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [{c}, {c}, {c}, {c}, {3 * c}]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: {att}
    se_channels: {att}
    res2net_scale: 8
    lin_neurons: !ref <emb_dim>
"""
        model = "ECAPA-TDNN"
    else:
        embedding = f"""\
embedding_model: !new:speechbrain.lobes.models.Xvector.Xvector
    in_channels: !ref <n_mels>
    activation: !name:torch.nn.LeakyReLU
    tdnn_blocks: 5
    tdnn_channels: [{c}, {c}, {c}, {c}, {3 * c}]
    tdnn_kernel_sizes: [5, 3, 3, 1, 1]
    tdnn_dilations: [1, 2, 3, 1, 1]
    lin_neurons: !ref <emb_dim>
"""
        model = "x-vector"
    return f"""\
# ############################################################################
# Model: {model} utterance classifier trained by `iml-tui encoder train-utterance`
# (layout of speechbrain/lang-id-voxlingua107-ecapa). Input: mono 16 kHz.
# The pretrainer has no paths: every loadable is read from the folder given as
# `source` to from_hparams, as <name>.ckpt (label_encoder.ckpt = label_encoder.txt).
# ############################################################################

sample_rate: {SAMPLE_RATE}
n_mels: {cfg.n_mels}
emb_dim: {cfg.embedding_dim}
out_n_neurons: {n_classes}

compute_features: !new:speechbrain.lobes.features.Fbank
    sample_rate: !ref <sample_rate>
    n_mels: !ref <n_mels>
    left_frames: 0
    right_frames: 0
    deltas: False

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

{embedding}
classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, !ref <emb_dim>]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: {cfg.classifier_hidden}
    out_neurons: !ref <out_n_neurons>

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
"""


class _Model(nn.Module):
    """Fbank -> sentence mean normalisation -> embedding model -> classifier log-probs."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        super().__init__()
        self.compute_features = hparams["compute_features"]
        self.mean_var_norm = hparams["mean_var_norm"]
        self.embedding_model = hparams["embedding_model"]
        self.classifier = hparams["classifier"]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n) at 16 kHz -> (B, C) log-probabilities."""
        lens = torch.ones(wave.shape[0], device=wave.device)
        feats = self.mean_var_norm(self.compute_features(wave), lens)
        emb = self.embedding_model(feats, lens)
        out: torch.Tensor = self.classifier(emb).squeeze(1)
        return out


def _build_model(yaml_text: str) -> _Model:
    from iml_tui.audio.compat import import_speechbrain

    import_speechbrain()
    load_hyperpyyaml = import_module("hyperpyyaml").load_hyperpyyaml
    return _Model(load_hyperpyyaml(yaml_text))


def _check_config(cfg: UtteranceTrainConfig) -> None:
    if cfg.arch not in ARCHS:
        raise UserError(f"unknown architecture {cfg.arch!r}", fix=f"use one of {', '.join(ARCHS)}")
    if min(cfg.epochs, cfg.embedding_dim, cfg.classifier_hidden, cfg.n_mels) < 1:
        raise UserError("epochs, embedding dim, classifier width and mel bins must be at least 1")
    if cfg.steps_per_epoch is not None and cfg.steps_per_epoch < 1:
        raise UserError("steps per epoch must be at least 1")
    if cfg.batch_size < 2:
        raise UserError(
            "the batch size must be at least 2 (the classifier has BatchNorm)",
            fix="use --batch-size 2 or more",
        )
    if cfg.channels < 8 or (cfg.arch == "ecapa" and cfg.channels % 8):
        raise UserError(
            f"--channels {cfg.channels}: ECAPA needs a multiple of 8 (Res2Net scale "
            "8), x-vector at least 8",
            fix="e.g. --channels 256",
        )
    if not 0 < cfg.crop_min <= cfg.crop_max:
        raise UserError(f"crop lengths {cfg.crop_min}..{cfg.crop_max} s: need 0 < min <= max")
    if cfg.lr <= 0:
        raise UserError(f"learning rate {cfg.lr}: must be positive")
    if any(s <= 0 for s in cfg.speeds):
        raise UserError(f"speeds {list(cfg.speeds)}: must be positive")


def _model_key(cfg: UtteranceTrainConfig) -> dict[str, Any]:
    """What fixes the architecture and the run's randomness (must match to resume)."""
    return {
        k: getattr(cfg, k)
        for k in ("arch", "channels", "embedding_dim", "classifier_hidden", "n_mels", "seed")
    }


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _label_encoder_text(class_list: Sequence[str]) -> bytes:
    """speechbrain's CategoricalEncoder save format for ``class_list`` (index = position)."""
    import tempfile

    from iml_tui.audio.compat import import_speechbrain

    import_speechbrain()
    encoder = import_module("speechbrain.dataio.encoder").CategoricalEncoder()
    for name in class_list:  # index = position in the class list
        encoder.add_label(name)
    with tempfile.TemporaryDirectory(prefix="iml-tui-labels-") as tmp:
        path = Path(tmp) / "label_encoder.txt"
        encoder.save(path)
        return path.read_bytes()


def _export(
    out: Path,
    yaml_text: str,
    labels: bytes,
    embedding: dict[str, torch.Tensor],
    classifier: dict[str, torch.Tensor],
) -> None:
    """Write the speechbrain inference folder (each file atomically)."""
    atomic_write_text(out / "hyperparams.yaml", yaml_text)
    atomic_write_bytes(out / "label_encoder.txt", labels)
    atomic_write_bytes(out / "label_encoder.ckpt", labels)
    atomic_torch_save(embedding, out / "embedding_model.ckpt")
    atomic_torch_save(classifier, out / "classifier.ckpt")


# --- training ------------------------------------------------------------------------------------


def train_utterance_encoder(
    data: str | Path,
    out: str | Path,
    cfg: UtteranceTrainConfig | None = None,
    progress: ProgressFn | None = None,
    on_epoch: Callable[[UtteranceEpochLog], None] | None = None,
) -> UtteranceTrainResult:
    """Train an utterance encoder + classifier on ``<data>/train``, keep the best on
    ``<data>/dev``; write a speechbrain model folder into ``out`` (see the module docstring).

    Resumes from ``<out>/train_state.pt`` when present (same data, architecture and seed;
    ``epochs`` may grow). An exception raised by ``progress`` or ``on_epoch`` stops the run; the
    epochs finished before it are kept. ``progress`` labels: "reading audio", "train steps" (of
    the whole run), "dev utterances".
    """
    cfg = cfg or UtteranceTrainConfig()
    _check_config(cfg)
    device = resolve_device(cfg.device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("--out is a file, expected a folder", out, "choose a folder path")
    state_path = out / STATE_FILE
    saved: dict[str, Any] | None = None
    if state_path.is_file():
        try:
            saved = torch.load(str(state_path), map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or foreign file
            raise UserError(
                "cannot read the training state",
                state_path,
                "remove it (training starts over) or choose another --out",
            ) from err
        if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
            raise UserError(
                "not an utterance training state file",
                state_path,
                "remove it or choose another --out",
            )
        if json.loads(saved["model_key"]) != _model_key(cfg):
            raise UserError(
                f"the run in this folder has another architecture or seed ({saved['model_key']})",
                out,
                "choose another --out, or repeat the first command's options",
            )
    elif out.is_dir() and any((out / f).exists() for f in MODEL_FILES):
        raise UserError(
            "the folder holds a model but no training state to resume",
            out,
            "choose another --out (an empty or new folder)",
        )
    td = _load_data(data, progress)
    if saved is not None and (
        saved["fingerprint"] != td.fingerprint or saved["class_list"] != td.class_list
    ):
        raise UserError(
            "the run in this folder trained on other data",
            out,
            "choose another --out for this data",
        )
    out.mkdir(parents=True, exist_ok=True)
    yaml_text = build_hyperparams(cfg, len(td.class_list))
    labels = _label_encoder_text(td.class_list)
    steps = cfg.steps_per_epoch or max(1, math.ceil(len(td.train_audio) / cfg.batch_size))
    rng = np.random.default_rng(cfg.seed)
    stream = _BatchStream(len(td.train_audio))
    history: list[UtteranceEpochLog] = []
    best_acc, best_loss, best_epoch, done = -math.inf, math.inf, 0, 0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed)
        model = _build_model(yaml_text).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best_emb = _cpu_state(model.embedding_model)
        best_clf = _cpu_state(model.classifier)
        if saved is not None:
            model.embedding_model.load_state_dict(saved["embedding_model"])
            model.classifier.load_state_dict(saved["classifier"])
            opt.load_state_dict(saved["optimizer"])
            rng.bit_generator.state = json.loads(saved["numpy_rng"])
            stream.queue = [int(i) for i in json.loads(saved["queue"])]
            torch.set_rng_state(saved["torch_rng"])
            if device.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"], device)
            history = [UtteranceEpochLog(**h) for h in json.loads(saved["history"])]
            best_acc, best_loss = float(saved["best_accuracy"]), float(saved["best_loss"])
            best_epoch, done = int(saved["best_epoch"]), int(saved["epoch"])
            best_emb, best_clf = saved["best_embedding_model"], saved["best_classifier"]
            if best_epoch:
                _export(out, yaml_text, labels, best_emb, best_clf)
        resumed = done
        for epoch in range(done + 1, cfg.epochs + 1):
            log = _run_epoch(model, opt, td, cfg, rng, stream, device, epoch, steps, progress)
            log.best = log.dev_accuracy > best_acc or (
                log.dev_accuracy == best_acc and log.dev_loss < best_loss
            )
            history.append(log)
            if log.best:
                best_acc, best_loss, best_epoch = log.dev_accuracy, log.dev_loss, epoch
                best_emb = _cpu_state(model.embedding_model)
                best_clf = _cpu_state(model.classifier)
            atomic_torch_save(
                {
                    "format": STATE_FORMAT,
                    "epoch": epoch,
                    "model_key": json.dumps(_model_key(cfg)),
                    "fingerprint": td.fingerprint,
                    "class_list": list(td.class_list),
                    "embedding_model": _cpu_state(model.embedding_model),
                    "classifier": _cpu_state(model.classifier),
                    "best_embedding_model": best_emb,
                    "best_classifier": best_clf,
                    "optimizer": opt.state_dict(),
                    "numpy_rng": json.dumps(rng.bit_generator.state),
                    "queue": json.dumps(stream.queue),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "history": json.dumps([asdict(h) for h in history]),
                    "best_accuracy": best_acc,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                },
                state_path,
            )
            if log.best:
                _export(out, yaml_text, labels, best_emb, best_clf)
            _write_log(out, cfg, td, history, best_epoch)
            if on_epoch is not None:
                on_epoch(log)
    return UtteranceTrainResult(
        out,
        cfg.arch,
        best_epoch,
        float(best_acc),
        len(history),
        resumed,
        list(td.class_list),
        td.fingerprint,
        td.dev_excluded,
        history,
    )


def _write_log(
    out: Path,
    cfg: UtteranceTrainConfig,
    td: _Data,
    history: Sequence[UtteranceEpochLog],
    best_epoch: int,
) -> None:
    counts = np.bincount(td.train_y, minlength=len(td.class_list))
    dev_counts = np.bincount(td.dev_y, minlength=len(td.class_list))
    atomic_write_text(
        out / LOG_FILE,
        json.dumps(
            {
                "trained_by": "iml-tui encoder train-utterance",
                "arch": cfg.arch,
                "sample_rate": SAMPLE_RATE,
                "config": asdict(cfg),
                "class_list": td.class_list,
                "data_fingerprint": td.fingerprint,
                "train_utterances": {c: int(n) for c, n in zip(td.class_list, counts, strict=True)},
                "dev_utterances": {
                    c: int(n) for c, n in zip(td.class_list, dev_counts, strict=True)
                },
                "dev_excluded": td.dev_excluded,
                "best_epoch": best_epoch,
                "epochs": [asdict(h) for h in history],
            },
            indent=1,
        )
        + "\n",
    )


def _run_epoch(
    model: _Model,
    opt: torch.optim.Optimizer,
    td: _Data,
    cfg: UtteranceTrainConfig,
    rng: np.random.Generator,
    stream: _BatchStream,
    device: torch.device,
    epoch: int,
    steps: int,
    progress: ProgressFn | None,
) -> UtteranceEpochLog:
    """One epoch of ``steps`` steps, then the dev evaluation; -> its log (best unset)."""
    t0 = time.perf_counter()
    model.train()
    loss_sum, right, seen = 0.0, 0, 0
    for step in range(steps):
        idx = stream.take(cfg.batch_size, rng)
        n = round(float(rng.uniform(cfg.crop_min, cfg.crop_max)) * SAMPLE_RATE)
        x = draw_crops(td.train_audio, idx, n, rng, cfg.speed_p, cfg.speeds)
        x = augment_crops(x, rng, cfg.gain_db, cfg.noise_p, cfg.snr_min, cfg.snr_max)
        y = torch.from_numpy(td.train_y[idx]).to(device)
        logp = model(torch.from_numpy(x).to(device))
        loss = F.nll_loss(logp, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach())
        right += int((logp.detach().argmax(dim=1) == y).sum())
        seen += len(idx)
        if progress is not None:
            progress("train steps", (epoch - 1) * steps + step + 1, cfg.epochs * steps)
    dev_loss, dev_acc, per_class = _evaluate(model, td, device, progress)
    return UtteranceEpochLog(
        epoch,
        loss_sum / steps,
        right / seen,
        dev_loss,
        dev_acc,
        per_class,
        time.perf_counter() - t0,
        False,
    )


@torch.inference_mode()
def _evaluate(
    model: _Model, td: _Data, device: torch.device, progress: ProgressFn | None
) -> tuple[float, float, list[float | None]]:
    """(mean NLL, accuracy, accuracy per class) of whole dev utterances, one at a time."""
    model.eval()
    c = len(td.class_list)
    loss_sum, right = 0.0, np.zeros(c)
    total = np.bincount(td.dev_y, minlength=c)
    for i, (w, y) in enumerate(zip(td.dev_audio, td.dev_y, strict=True)):
        logp = model(torch.from_numpy(w)[None].to(device))[0]
        loss_sum += float(-logp[int(y)])
        if int(logp.argmax()) == int(y):
            right[int(y)] += 1
        if progress is not None:
            progress("dev utterances", i + 1, len(td.dev_audio))
    per_class = [float(r / t) if t else None for r, t in zip(right, total, strict=True)]
    return loss_sum / len(td.dev_y), float(right.sum() / len(td.dev_y)), per_class
