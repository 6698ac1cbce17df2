"""Extraction throughput per encoder on this CPU, and `prepare dcase` time per hour of audio.
Prints a table and writes JSON (benchmarks/results/extract.json).

    python benchmarks/bench_extract.py [--quick] [--clips 16 --batch-size 8 --threads 2]

Throughput is the real-time factor (RTF): seconds of audio encoded per second of wall time, for
10 s clips already in memory at the encoder's rate (``Encoder.encode``: front end + network; no
audio decoding), after one untimed warm-up batch. Weights are random, written to a temporary folder
in each encoder's real layout at its original size: cnn14 full width (our format; 75.5 M conv
parameters: PANNs' 80.8 M less fc1 and the AudioSet head), ecapa (speechbrain
lang-id-voxlingua107-ecapa hyperparameters), xvector (speechbrain spkrec-xvect-voxceleb), wavlm
base (torchaudio state dict); mfcc-stats has none. Nothing is downloaded.

`prepare dcase`: a generated development set in the real folder and CSV layout (Training_Set and
Validation_Set, 16-48 kHz, some stereo) of ``--prepare-minutes`` minutes, both divisions; reported
as seconds of wall time per hour of source audio.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

HERE = Path(__file__).resolve().parent
ENCODERS = ("mfcc-stats", "cnn14", "ecapa", "xvector", "wavlm")

ECAPA_YAML = """\
pretrained_path: speechbrain/lang-id-voxlingua107-ecapa
n_mels: 60
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: 256
classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, 256]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: 512
    out_neurons: 107
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
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
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

XVECTOR_YAML = """\
pretrained_path: speechbrain/spkrec-xvect-voxceleb
n_mels: 24
emb_dim: 512
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.Xvector.Xvector
    in_channels: !ref <n_mels>
    activation: !name:torch.nn.LeakyReLU
    tdnn_blocks: 5
    tdnn_channels: [512, 512, 512, 512, 1500]
    tdnn_kernel_sizes: [5, 3, 3, 1, 1]
    tdnn_dilations: [1, 2, 3, 1, 1]
    lin_neurons: !ref <emb_dim>
classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, !ref <emb_dim>]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: !ref <emb_dim>
    out_neurons: 7205
mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


# --- random weights in the real layouts ----------------------------------------------------------


def _speechbrain_folder(folder: Path, yaml_text: str, labels: list[str]) -> Path:
    from iml_tui.audio.compat import import_speechbrain

    import_speechbrain()
    load_hyperpyyaml = import_module("hyperpyyaml").load_hyperpyyaml

    folder.mkdir(parents=True)
    (folder / "hyperparams.yaml").write_text(yaml_text)
    torch.manual_seed(0)
    hp = load_hyperpyyaml(yaml_text)
    torch.save(hp["embedding_model"].state_dict(), folder / "embedding_model.ckpt")
    torch.save(hp["classifier"].state_dict(), folder / "classifier.ckpt")
    if "mean_var_norm_emb" in hp:
        norm = hp["mean_var_norm_emb"]
        norm.train()
        norm(torch.randn(6, 1, hp["emb_dim"]), torch.ones(6))
        norm._save(folder / "mean_var_norm_emb.ckpt")
    enc = hp["label_encoder"]
    enc.update_from_iterable(labels)
    enc.save(folder / "label_encoder.txt")
    return folder


def make_weights(name: str, work: Path) -> Path | None:
    """Random weights of encoder ``name`` at its original size, in its real on-disk layout."""
    if name == "mfcc-stats":
        return None
    if name == "cnn14":
        from iml_tui.features import build_cnn14, save_checkpoint

        model = build_cnn14(seed=0)
        model.frontend.set_stats(-40.0, 20.0)
        return save_checkpoint(work / "cnn14_random.pt", model)
    if name == "ecapa":
        return _speechbrain_folder(
            work / "ecapa", ECAPA_YAML, [f"l{i}: lang{i}" for i in range(107)]
        )
    if name == "xvector":
        return _speechbrain_folder(work / "xvector", XVECTOR_YAML, [f"id{i}" for i in range(7205)])
    if name == "wavlm":
        from iml_tui.audio.compat import import_torchaudio

        import_torchaudio()
        wavlm_base = import_module("torchaudio.models").wavlm_base

        torch.manual_seed(0)
        path = work / "wavlm_base.pth"
        torch.save(wavlm_base().state_dict(), path)
        return path
    raise ValueError(f"unknown encoder {name}")


def _params(enc: Any) -> int:
    for attr in ("model", "clf"):
        mod = getattr(enc, attr, None)
        if mod is not None:
            mods = mod.mods if attr == "clf" else mod
            return sum(p.numel() for p in mods.parameters())
    return 0


def bench_encoder(name: str, work: Path, clips: int, batch: int, seconds: float) -> dict[str, Any]:
    """RTF of ``encode`` on ``clips`` clips of ``seconds`` s, ``batch`` per call."""
    from iml_tui.features import get_encoder

    t0 = time.perf_counter()
    ckpt = make_weights(name, work)
    t_make = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = get_encoder(name, ckpt, device="cpu")
    t_load = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    n = round(seconds * enc.sample_rate)
    t = np.arange(n) / enc.sample_rate
    x = (0.05 * rng.standard_normal((batch, n)) + 0.2 * np.sin(2 * np.pi * 800 * t)).astype(
        np.float32
    )
    enc.encode(x)  # warm-up
    timed = max(1, clips // batch)
    t0 = time.perf_counter()
    for _ in range(timed):
        out = enc.encode(x)
    wall = time.perf_counter() - t0
    audio = timed * batch * seconds
    return {
        "encoder": name,
        "rtf": audio / wall,
        "clips": timed * batch,
        "clip_seconds": seconds,
        "batch_size": batch,
        "wall_s": wall,
        "audio_s": audio,
        "ms_per_clip": 1000 * wall / (timed * batch),
        "sample_rate": enc.sample_rate,
        "output_shape": list(out.shape[1:]),
        "parameters": _params(enc),
        "make_weights_s": t_make,
        "load_s": t_load,
    }


# --- a generated DCASE development set ---------------------------------------------------------


def make_dcase(root: Path, minutes: float, seed: int = 0) -> float:
    """A development set of about ``minutes`` of audio in the real layout; returns its seconds."""
    rng = np.random.default_rng(seed)
    dev = root / "Development_Set"
    total = 0.0
    files = max(4, round(minutes / 1.5))  # ~90 s files
    train_rows, valid_rows = [], []
    al = ["Mosquito", "Red Deer", "Meerkat alarm call", "Song thrush call"]
    for k in range(files):
        secs = float(minutes * 60 / files)
        sr = (16000, 22050, 44100, 48000)[k % 4]
        ch = 2 if k % 3 == 0 else 1
        n = round(secs * sr)
        x = 0.01 * rng.standard_normal((n, ch)).astype(np.float32)
        starts = np.sort(rng.uniform(0, secs - 2, size=12))
        events = [(float(s), float(s + rng.uniform(0.2, 1.5))) for s in starts]
        for s, e in events:
            i, j = round(s * sr), round(e * sr)
            x[i:j, 0] += 0.3 * np.sin(2 * np.pi * 1000 * np.arange(j - i) / sr)
        total += secs
        if k % 2 == 0:  # Training_Set: two class columns
            ds = ("BV", "HT", "JD", "MT")[k % 4]
            folder = dev / "Training_Set" / ds
            stem = f"train_{k}"
            codes = [f"C{k}a", f"C{k}b"]
            rows = [
                [
                    f"{stem}.wav",
                    f"{s:.3f}",
                    f"{e:.3f}",
                    ("POS", "NEG", "UNK")[i % 3],
                    ("NEG", "POS")[i % 2],
                ]
                for i, (s, e) in enumerate(events)
            ]
            train_rows += [(ds, c, f"class {k} {c[-1]}") for c in codes]
            header = ["Audiofilename", "Starttime", "Endtime", *codes]
        else:
            ds = ("HB", "ME", "PB", "RD")[k % 4]
            folder = dev / "Validation_Set" / ds
            stem = f"valid_{k}"
            rows = [
                [f"{stem}.wav", f"{s:.3f}", f"{e:.3f}", "UNK" if i % 5 == 4 else "POS"]
                for i, (s, e) in enumerate(events)
            ]
            valid_rows.append((ds, stem, f"Q{k}", al[k % len(al)]))
            header = ["Audiofilename", "Starttime", "Endtime", "Q"]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{stem}.wav", x, sr, subtype="PCM_16")
        _csv(folder / f"{stem}.csv", header, rows)
    _csv(
        root / "DCASE2024_task5_training_set_classes.csv",
        ["dataset", "class_code", "class_name"],
        train_rows,
    )
    _csv(
        root / "DCASE2024_task5_validation_set_classes.csv",
        ["dataset", "recording", "class_code", "class_name"],
        valid_rows,
    )
    return total


def _csv(path: Path, header: list[str], rows: list[Any]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def bench_prepare(work: Path, minutes: float) -> dict[str, Any]:
    from iml_tui.data.dcase import prepare_dcase

    seconds = make_dcase(work / "dcase_src", minutes)
    t0 = time.perf_counter()
    res = prepare_dcase(work / "dcase_src", work / "dcase_out", "both")
    wall = time.perf_counter() - t0
    clips = {d.division: {s: c.clips for s, c in d.splits.items()} for d in res.divisions}
    return {
        "audio_s": seconds,
        "wall_s": wall,
        "s_per_audio_hour": wall / (seconds / 3600.0),
        "rtf": seconds / wall,
        "clips": clips,
    }


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="small run: 4 clips, batch 2, 4 minutes of DCASE audio"
    )
    ap.add_argument("--clips", type=int, default=16, help="timed 10 s clips per encoder")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--prepare-minutes", type=float, default=15.0)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "extract.json")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.batch_size, args.prepare_minutes = 4, 2, 4.0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_avg_at_start": list(os.getloadavg()),
        },
        "settings": {
            "quick": args.quick,
            "clips": args.clips,
            "batch_size": args.batch_size,
            "clip_seconds": args.clip_seconds,
            "device": "cpu",
        },
        "encoders": [],
        "prepare_dcase": None,
    }
    for name in (n for n in args.encoders.split(",") if n):
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            r = bench_encoder(name, Path(tmp), args.clips, args.batch_size, args.clip_seconds)
        results["encoders"].append(r)
        print(
            f"{name:11s} RTF {r['rtf']:8.1f}  ({r['ms_per_clip']:.0f} ms per "
            f"{args.clip_seconds:g} s clip, {r['parameters'] / 1e6:.1f} M params)",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        results["prepare_dcase"] = bench_prepare(Path(tmp), args.prepare_minutes)
    results["machine"]["load_avg_at_end"] = list(os.getloadavg())

    print(
        f"\nextraction on CPU, {results['machine']['torch_threads']} torch threads, batch "
        f"{args.batch_size} x {args.clip_seconds:g} s clips (audio in memory, random weights)"
    )
    print(f"{'encoder':11s} {'RTF':>9s} {'ms/clip':>9s} {'params M':>9s} {'out (T, D)':>12s}")
    for r in results["encoders"]:
        shape = "x".join(str(v) for v in r["output_shape"])
        print(
            f"{r['encoder']:11s} {r['rtf']:9.1f} {r['ms_per_clip']:9.0f} "
            f"{r['parameters'] / 1e6:9.1f} {shape:>12s}"
        )
    p = results["prepare_dcase"]
    print(
        f"\nprepare dcase (both divisions): {p['audio_s'] / 60:.1f} min of audio in "
        f"{p['wall_s']:.1f} s = {p['s_per_audio_hour']:.0f} s per hour of audio "
        f"(RTF {p['rtf']:.0f})"
    )
    print(
        f"load average {results['machine']['load_avg_at_start']} -> "
        f"{results['machine']['load_avg_at_end']} on {os.cpu_count()} cores"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
