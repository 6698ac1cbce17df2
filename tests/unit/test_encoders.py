"""Encoder registry, CNN14 (PANNs and our layout), WavLM and mfcc-stats with tiny weights."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iml_tui.errors import UserError
from iml_tui.features import (
    CNN14_FORMAT,
    Cnn14,
    available_encoders,
    build_cnn14,
    checkpoint_hash,
    cnn14_frames,
    get_encoder,
    load_cnn14,
    save_checkpoint,
    save_wavlm_checkpoint,
)
from iml_tui.features.encoders import _avg_pool_time_ceil, _dct_matrix, _deltas

torch.set_num_threads(1)

TINY = (4, 4, 8, 8, 8, 16)
SR = 32000


def _noise(n: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _panns_dict(model: Cnn14) -> dict[str, Any]:
    """A PANNs Cnn14*.pth in miniature: {"model": state dict with the head and front end}."""
    sd: dict[str, Any] = dict(model.state_dict())
    d = model.dim
    sd.update(
        {
            "spectrogram_extractor.stft.conv_real.weight": torch.zeros(513, 1, 1024),
            "spectrogram_extractor.stft.conv_imag.weight": torch.zeros(513, 1, 1024),
            "logmel_extractor.melW": torch.zeros(513, 64),
            "bn0.weight": torch.full((64,), 2.0),
            "bn0.bias": torch.full((64,), 0.5),
            "bn0.running_mean": torch.linspace(-60, -20, 64),
            "bn0.running_var": torch.linspace(50, 150, 64),
            "bn0.num_batches_tracked": torch.tensor(10),
            "fc1.weight": torch.zeros(d, d),
            "fc1.bias": torch.zeros(d),
            "fc_audioset.weight": torch.zeros(527, d),
            "fc_audioset.bias": torch.zeros(527),
        }
    )
    return {"model": sd, "iteration": 1000}


@pytest.fixture(scope="module")
def tiny_cnn14(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cnn14") / "tiny.pt"
    model = build_cnn14(TINY, seed=1)
    model.frontend.set_stats(-35.0, 15.0)
    return save_checkpoint(path, model, extra={"epoch": 3})


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_encoder() -> None:
    names = [s.name for s in available_encoders()]
    assert names == ["cnn14", "ecapa", "xvector", "wavlm", "mfcc-stats", "birdnet", "resemblyzer"]
    assert [s.needs_checkpoint for s in available_encoders()] == [True] * 4 + [False] * 3


def test_registry_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown encoder 'panns'.*cnn14, ecapa"):
        get_encoder("panns")
    for name in ("cnn14", "ecapa", "xvector", "wavlm"):
        with pytest.raises(UserError, match=f"encoder {name} needs local weights"):
            get_encoder(name)
    with pytest.raises(UserError, match="takes no checkpoint"):
        get_encoder("mfcc-stats", tmp_path / "x.pt")
    with pytest.raises(UserError, match="has no option 'width'"):
        get_encoder("mfcc-stats", width=3)
    with pytest.raises(UserError, match="has no option"):
        get_encoder("wavlm", tmp_path / "w.pt", norm_mean=0.0)


def test_checkpoint_hash(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights" * 1000)
    assert checkpoint_hash(f) == hashlib.sha256(b"weights" * 1000).hexdigest()[:16]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.ckpt").write_bytes(b"1")
    (folder / "hyperparams.yaml").write_text("x: 1\n")
    h1 = checkpoint_hash(folder)
    assert len(h1) == 16 and checkpoint_hash(folder) == h1
    (folder / "a.ckpt").write_bytes(b"2")
    assert checkpoint_hash(folder) != h1


# --- CNN14 ------------------------------------------------------------------------------------


def test_cnn14_frames() -> None:
    assert cnn14_frames(10 * SR) == 32  # 1001 -> 501 -> 251 -> 126 -> 63 -> 32
    assert cnn14_frames(15 * SR) == 47
    assert cnn14_frames(1) == 1


def test_ceil_pooling_keeps_the_partial_window() -> None:
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4)
    out = _avg_pool_time_ceil(x, (2, 2))
    assert out.shape == (2, 3, 3, 2)
    torch.testing.assert_close(out, F.avg_pool2d(x, 2, ceil_mode=True))
    torch.testing.assert_close(out[:, :, -1], F.avg_pool2d(x[:, :, -1:], (1, 2))[:, :, 0])


def test_cnn14_architecture() -> None:
    model = build_cnn14()
    assert model.widths == (64, 128, 256, 512, 1024, 2048) and model.dim == 2048
    keys = set(model.state_dict())
    assert "conv_block1.conv1.weight" in keys and "conv_block6.bn2.running_var" in keys
    assert not any(k.startswith(("bn0", "fc", "frontend")) for k in keys)
    n_params = sum(p.numel() for p in model.parameters())
    # PANNs CNN14 has 80,753,615: minus fc1 (4,196,352), fc_audioset (1,079,823) and bn0 (128)
    assert n_params == 75_477_312
    assert not model.conv_block1.conv1.bias and model.conv_block6.pool == (1, 1)
    with pytest.raises(ValueError):
        Cnn14((4, 4))


def test_cnn14_encoder_shapes_and_determinism(tiny_cnn14: Path) -> None:
    enc = get_encoder("cnn14", tiny_cnn14, device="cpu")
    assert (enc.name, enc.sample_rate, enc.frames_per_clip, enc.dim) == ("cnn14", SR, 32, 16)
    assert enc.clip_seconds == 10.0
    assert enc.checkpoint_hash == checkpoint_hash(tiny_cnn14)
    assert enc.settings["normalisation"] == "checkpoint"
    clips = [_noise(10 * SR, 0), _noise(10 * SR, 1)]
    out = enc.encode(clips)
    assert out.shape == (2, 32, 16) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, enc.encode(np.stack(clips)))
    np.testing.assert_array_equal(out, get_encoder("cnn14", tiny_cnn14, "cpu").encode(clips))
    np.testing.assert_allclose(enc.encode(clips[1:])[0], out[1], atol=1e-5)
    assert not np.allclose(out[0], out[1])
    # shorter clips are zero-padded to 10 s, longer ones give more frames
    assert enc.encode([_noise(3 * SR)]).shape == (1, 32, 16)
    assert enc.encode([_noise(15 * SR)]).shape == (1, 47, 16)
    # other sample rates are resampled on the way in
    assert enc.encode([_noise(10 * 16000)], sr=16000).shape == (1, 32, 16)
    assert enc.encode([]).shape == (0, 32, 16)
    assert enc.describe()["frames_per_clip"] == 32 and len(enc.fingerprint) == 16


def test_cnn14_input_validation(tiny_cnn14: Path) -> None:
    enc = get_encoder("cnn14", tiny_cnn14, device="cpu")
    with pytest.raises(ValueError, match="batch"):
        enc.encode(_noise(SR))
    with pytest.raises(ValueError, match="NaN"):
        enc.encode([np.full(SR, np.nan, dtype=np.float32)])
    with pytest.raises(ValueError, match="non-empty"):
        enc.encode([np.zeros(0, dtype=np.float32)])


def test_our_format_roundtrip(tiny_cnn14: Path) -> None:
    obj = torch.load(tiny_cnn14, weights_only=True)
    assert obj["format"] == CNN14_FORMAT and obj["version"] == 1
    assert obj["config"]["widths"] == list(TINY) and obj["extra"] == {"epoch": 3}
    assert obj["config"]["norm_mean"] == [-35.0] * 64
    model, norm = load_cnn14(tiny_cnn14)
    assert norm == "checkpoint" and not model.training
    ref = build_cnn14(TINY, seed=1)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_panns_layout_loads_and_matches(tmp_path: Path) -> None:
    model = build_cnn14(TINY, seed=2)
    panns = tmp_path / "Cnn14_DecisionLevelMax_mAP=0.385.pth"
    torch.save(_panns_dict(model), panns)
    ours = save_checkpoint(tmp_path / "ours.pt", model)
    stats = {"norm_mean": -40.0, "norm_std": 20.0}
    a = get_encoder("cnn14", panns, "cpu", **stats)
    b = get_encoder("cnn14", ours, "cpu", **stats)
    assert a.settings["normalisation"] == "given"
    clip = [_noise(10 * SR, 5)]
    np.testing.assert_array_equal(a.encode(clip), b.encode(clip))
    assert a.checkpoint_hash != b.checkpoint_hash and a.fingerprint != b.fingerprint


def test_panns_bn0_becomes_the_normaliser(tmp_path: Path) -> None:
    """Without statistics, PANNs' input BatchNorm (eval mode) is applied as per-band mean/std."""
    model = build_cnn14(TINY, seed=3)
    panns = tmp_path / "Cnn14.pth"
    raw = _panns_dict(model)
    torch.save(raw, panns)
    loaded, norm = load_cnn14(panns)
    assert norm == "panns-bn0"
    bn0 = torch.nn.BatchNorm2d(64).eval()
    bn0.load_state_dict({k[4:]: v for k, v in raw["model"].items() if k.startswith("bn0.")})
    wave = torch.from_numpy(_noise(SR, 6))
    logmel = build_cnn14(TINY).frontend(wave)  # (1, frames, 64), not normalised
    expected = bn0(logmel.unsqueeze(1).transpose(1, 3)).transpose(1, 3).squeeze(1)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.frontend(wave), expected, atol=1e-4, rtol=1e-5)


def test_bare_and_prefixed_state_dicts_load(tmp_path: Path) -> None:
    model = build_cnn14(TINY, seed=4)
    bare = tmp_path / "encoder.pth"  # the MFFT code's encoder.pth: conv blocks only
    torch.save({k: v for k, v in model.state_dict().items() if "num_batches" not in k}, bare)
    wrapped = tmp_path / "best.pth"  # a whole PANNs(encoder, classifier) module, DataParallel
    torch.save({f"module.encoder.{k}": v for k, v in model.state_dict().items()}, wrapped)
    clip = [_noise(10 * SR, 7)]
    a = get_encoder("cnn14", bare, "cpu", norm_mean=0.0, norm_std=1.0).encode(clip)
    b = get_encoder("cnn14", wrapped, "cpu", norm_mean=0.0, norm_std=1.0).encode(clip)
    np.testing.assert_array_equal(a, b)


def test_cnn14_checkpoint_errors(tmp_path: Path) -> None:
    model = build_cnn14(TINY)
    missing = tmp_path / "missing.pth"
    with pytest.raises(UserError) as err:
        get_encoder("cnn14", missing)
    assert str(missing) in str(err.value) and "Cnn14*.pth" in str(err.value)

    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot load checkpoint"):
        get_encoder("cnn14", text)

    other = tmp_path / "other.pth"
    torch.save({"model": {"layer.weight": torch.zeros(3)}}, other)
    with pytest.raises(UserError, match=r"not a CNN14 checkpoint: no conv_block1\.conv1\.weight"):
        get_encoder("cnn14", other)

    lacking = tmp_path / "lacking.pth"
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("conv_block3.bn2")}
    torch.save({"model": sd}, lacking)
    with pytest.raises(UserError, match=r"lacks conv_block3\.bn2\.weight"):
        get_encoder("cnn14", lacking)

    bad_shape = tmp_path / "bad_shape.pth"
    sd = dict(model.state_dict())
    sd["conv_block2.conv2.weight"] = torch.zeros(4, 4, 5, 5)
    torch.save({"model": sd}, bad_shape)
    with pytest.raises(UserError, match=r"conv_block2.conv2.weight of shape \(4, 4, 5, 5\)"):
        get_encoder("cnn14", bad_shape)

    sixteen_k = tmp_path / "Cnn14_16k.pth"
    sd = dict(model.state_dict())
    sd["logmel_extractor.melW"] = torch.zeros(257, 64)
    torch.save({"model": sd}, sixteen_k)
    with pytest.raises(UserError, match="another front end"):
        get_encoder("cnn14", sixteen_k)

    with pytest.raises(UserError, match="both norm_mean and norm_std"):
        get_encoder("cnn14", save_checkpoint(tmp_path / "ok.pt", model), norm_mean=1.0)
    with pytest.raises(UserError, match="bad normalisation"):
        get_encoder("cnn14", tmp_path / "ok.pt", norm_mean=1.0, norm_std=0.0)
    for e in (missing, text, other, lacking, bad_shape, sixteen_k):
        with pytest.raises(UserError) as err:
            get_encoder("cnn14", e)
        assert "\n" not in str(err.value) and str(e) in str(err.value)


# --- mfcc-stats -------------------------------------------------------------------------------


def test_mfcc_stats() -> None:
    enc = get_encoder("mfcc-stats", device="cpu")
    assert (enc.sample_rate, enc.frames_per_clip, enc.dim, enc.checkpoint_hash) == (
        16000,
        1,
        120,
        "",
    )
    a, b, c = _noise(16000, 1), _noise(12000, 2), _noise(16000, 3)
    out = enc.encode([a, b, c])
    assert out.shape == (3, 1, 120) and out.dtype == np.float32
    np.testing.assert_array_equal(out, enc.encode([a, b, c]))
    for i, x in enumerate((a, b, c)):  # batch composition never changes an embedding
        np.testing.assert_allclose(enc.encode([x])[0], out[i], atol=1e-5)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    assert np.abs(enc.encode([tone]) - out[0]).max() > 1.0
    assert np.all(out[:, 0, 60:] >= 0)  # standard deviations
    small = get_encoder("mfcc-stats", n_mfcc=13, n_mels=26)
    assert small.dim == 78 and small.fingerprint != enc.fingerprint
    with pytest.raises(UserError):
        get_encoder("mfcc-stats", n_mfcc=50, n_mels=40)


def test_mfcc_stats_segments_split_the_frames_into_equal_spans() -> None:
    """segments=K: per span mean and std; their frame-weighted mixture is the whole input's."""
    whole = get_encoder("mfcc-stats")
    k = 3
    enc = get_encoder("mfcc-stats", segments=k)
    assert enc.frames_per_clip == k and enc.dim == 120
    assert enc.fingerprint != whole.fingerprint and enc.settings["segments"] == k
    a, b = _noise(16000, 1), _noise(12000, 2)  # 101 and 76 MFCC frames (10 ms hop, centred)
    out = enc.encode([a, b])
    assert out.shape == (2, k, 120)
    ref = whole.encode([a, b])[:, 0]
    for i, frames in enumerate((101, 76)):
        sizes = np.array([len(s) for s in np.array_split(np.arange(frames), k)], np.float64)
        w = sizes / sizes.sum()
        mean, std = out[i, :, :60].astype(np.float64), out[i, :, 60:].astype(np.float64)
        total_mean = (w[:, None] * mean).sum(axis=0)
        total_var = (w[:, None] * (std**2 + (mean - total_mean) ** 2)).sum(axis=0)
        np.testing.assert_allclose(total_mean, ref[i, :60], atol=1e-3)
        np.testing.assert_allclose(np.sqrt(total_var), ref[i, 60:], rtol=1e-3, atol=1e-3)
    assert np.abs(out[0, 0] - out[0, 2]).max() > 1e-3  # spans differ
    np.testing.assert_allclose(enc.encode([b])[0], out[1], atol=1e-5)
    assert get_encoder("mfcc-stats", segments=1).fingerprint == whole.fingerprint
    with pytest.raises(UserError, match="fewer than segments=200"):
        get_encoder("mfcc-stats", segments=200).encode([_noise(16000)])
    with pytest.raises(UserError, match="segments >= 1"):
        get_encoder("mfcc-stats", segments=0)


def test_dct_and_deltas() -> None:
    from scipy.fft import dct

    x = np.random.default_rng(0).standard_normal((5, 40))
    np.testing.assert_allclose(
        x @ _dct_matrix(40, 20), dct(x, norm="ortho", axis=1)[:, :20], atol=1e-10
    )
    ramp = torch.arange(10, dtype=torch.float32).reshape(1, 10, 1).repeat(1, 1, 2)
    d = _deltas(ramp)
    torch.testing.assert_close(d[0, 2:-2], torch.ones(6, 2))  # slope 1 away from the edges


# --- WavLM ------------------------------------------------------------------------------------


def _tiny_wavlm_config(mode: str = "group_norm") -> dict[str, Any]:
    return {
        "extractor_mode": mode,
        "extractor_conv_layer_config": [
            (8, 10, 5),
            (8, 3, 2),
            (8, 3, 2),
            (8, 3, 2),
            (8, 3, 2),
            (8, 2, 2),
            (8, 2, 2),
        ],
        "extractor_conv_bias": False,
        "encoder_embed_dim": 24,
        "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": 8,
        "encoder_pos_conv_groups": 4,
        "encoder_num_layers": 3,
        "encoder_num_heads": 2,
        "encoder_num_buckets": 16,
        "encoder_max_distance": 64,
        "encoder_attention_dropout": 0.0,
        "encoder_ff_interm_features": 32,
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.0,
        "encoder_layer_norm_first": mode == "layer_norm",
        "encoder_layer_drop": 0.0,
    }


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    from iml_tui.audio.compat import import_torchaudio

    import_torchaudio()
    from torchaudio.models import wavlm_model

    torch.manual_seed(0)
    cfg = _tiny_wavlm_config("layer_norm")
    model = wavlm_model(**cfg, aux_num_out=None).eval()
    path = tmp_path_factory.mktemp("wavlm") / "wavlm_tiny.pt"
    return save_wavlm_checkpoint(path, model, cfg), model


def test_wavlm_encoder(tiny_wavlm: tuple[Path, torch.nn.Module]) -> None:
    path, model = tiny_wavlm
    enc = get_encoder("wavlm", path, device="cpu")
    assert (enc.sample_rate, enc.frames_per_clip, enc.dim) == (16000, 1, 24)
    assert enc.checkpoint_hash == checkpoint_hash(path)
    assert enc.settings == {"layer": None, "n_layers": 3, "normalise_waveform": True}
    a, b = _noise(16000, 1), _noise(9600, 2)
    out = enc.encode([a, b])
    assert out.shape == (2, 1, 24) and out.dtype == np.float32
    np.testing.assert_array_equal(out, enc.encode([a, b]))
    np.testing.assert_allclose(enc.encode([b])[0], out[1], atol=1e-5)
    # the last hidden state of the model itself, mean over time, on the normalised waveform
    x = torch.from_numpy(a)[None]
    with torch.inference_mode():
        hidden, _ = model(F.layer_norm(x, x.shape[-1:]))
    np.testing.assert_allclose(out[0, 0], hidden.mean(dim=1)[0].numpy(), atol=1e-5)
    first = get_encoder("wavlm", path, "cpu", layer=1)
    with torch.inference_mode():
        feats, _ = model.extract_features(F.layer_norm(x, x.shape[-1:]), num_layers=1)
    np.testing.assert_allclose(first.encode([a])[0, 0], feats[0].mean(dim=1)[0].numpy(), atol=1e-5)
    assert first.fingerprint != enc.fingerprint


def test_wavlm_errors(tmp_path: Path, tiny_wavlm: tuple[Path, torch.nn.Module]) -> None:
    path, model = tiny_wavlm
    with pytest.raises(UserError, match="layer 4 out of range"):
        get_encoder("wavlm", path, layer=4)
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    with pytest.raises(UserError, match="not a WavLM base/large state dict"):
        get_encoder("wavlm", bare)
    cnn = save_checkpoint(tmp_path / "cnn.pt", build_cnn14(TINY))
    with pytest.raises(UserError, match=r"wavlm_large\.pth"):
        get_encoder("wavlm", cnn)
    wrong = tmp_path / "wrong.pt"
    save_wavlm_checkpoint(wrong, model, _tiny_wavlm_config("group_norm"))
    with pytest.raises(UserError, match="do not fit") as err:
        get_encoder("wavlm", wrong)
    assert "\n" not in str(err.value) and str(wrong) in str(err.value)
    with pytest.raises(UserError, match="checkpoint not found"):
        get_encoder("wavlm", tmp_path / "absent.pth")
