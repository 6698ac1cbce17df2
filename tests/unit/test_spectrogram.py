"""The SPEC A.1 log-mel front end against hand computation, numpy and torchaudio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iml_tui.audio.spectrogram import (
    PANNS_32K,
    LogMel,
    MelConfig,
    RunningStats,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    n_frames,
    normalise,
)

torch.set_num_threads(1)


def test_slaney_mel_scale_known_points() -> None:
    assert float(hz_to_mel(0.0)) == 0.0
    assert float(hz_to_mel(1000.0)) == pytest.approx(15.0)
    assert float(hz_to_mel(6400.0)) == pytest.approx(42.0)  # 27 mel per factor 6.4
    assert float(hz_to_mel(500.0)) == pytest.approx(7.5)
    f = np.array([50.0, 700.0, 1000.0, 3333.0, 14000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12)
    assert float(hz_to_mel(700.0, htk=True)) == pytest.approx(2595 * math.log10(2))
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk=True), htk=True), f, rtol=1e-12)


def test_filterbank_triangles() -> None:
    fb = mel_filterbank(32000, 1024, 64, 50.0, 14000.0)
    assert fb.shape == (64, 513) and fb.dtype == np.float32
    edges = mel_to_hz(np.linspace(hz_to_mel(50.0), hz_to_mel(14000.0), 66))
    df = 32000 / 1024
    for m in range(64):
        width = edges[m + 2] - edges[m]
        assert np.all(fb[m, : int(edges[m] / df)] == 0)
        assert np.all(fb[m, math.ceil(edges[m + 2] / df) + 1 :] == 0)
        if width > 8 * df:  # Slaney norm: unit area in Hz, peak at the centre frequency
            assert fb[m].sum() * df == pytest.approx(1.0, rel=0.02)
            assert abs(np.argmax(fb[m]) * df - edges[m + 1]) <= df
    plain = mel_filterbank(32000, 1024, 64, 50.0, 14000.0, norm=None)
    assert plain.max() <= 1.0 and plain.max() > 0.99


def test_frame_count() -> None:
    assert n_frames(320000) == 1001
    assert n_frames(320000, 320, center=False, n_fft=1024) == 997
    out = LogMel()(torch.zeros(320000))
    assert out.shape == (1, 1001, 64)
    short = LogMel()(torch.zeros(2, 100))
    assert short.shape == (2, n_frames(100), 64)
    assert log_mel(np.zeros(100, dtype=np.float32), 32000).shape == (n_frames(100), 64)


def test_sine_matches_hand_computed_power() -> None:
    """A 1 kHz sine on FFT bin 32: Hann puts (A N/4)^2 on bin 32 and (A N/8)^2 on bins 31, 33."""
    amp, sr = 0.5, 32000
    x = amp * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    power = np.zeros(513)
    power[32] = (amp * 1024 / 4) ** 2
    power[[31, 33]] = (amp * 1024 / 8) ** 2
    energy = mel_filterbank(sr, 1024, 64, 50, 14000).astype(np.float64) @ power
    expected = 10 * np.log10(np.maximum(energy, 1e-10))
    lit = energy > 0
    for out in (
        LogMel()(torch.from_numpy(x).float())[0].numpy(),
        log_mel(x.astype(np.float32), sr),
    ):
        interior = out[5:-5]
        np.testing.assert_allclose(
            interior[:, lit], np.broadcast_to(expected[lit], (91, lit.sum())), atol=0.01
        )
        assert np.all(interior[:, ~lit] < expected[lit].max() - 80)
        assert np.all(np.argmax(interior, axis=1) == np.argmax(expected))
    centre_band = np.argmax(expected)
    edges = mel_to_hz(np.linspace(hz_to_mel(50.0), hz_to_mel(14000.0), 66))
    assert edges[centre_band] < 1000 < edges[centre_band + 2]


def test_silence_is_amin_floor() -> None:
    out = LogMel()(torch.zeros(1, 16000))
    np.testing.assert_allclose(out.numpy(), -100.0)
    db = LogMel(MelConfig(ref=10.0))(torch.zeros(1, 16000))
    np.testing.assert_allclose(db.numpy(), -110.0, atol=1e-4)


def test_numpy_equals_torch_and_batching() -> None:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((3, 20000))).astype(np.float32)
    module = LogMel()
    batched = module(torch.from_numpy(x)).numpy()
    for i in range(3):
        single = module(torch.from_numpy(x[i])).numpy()[0]
        np.testing.assert_allclose(batched[i], single, atol=1e-4)
        np.testing.assert_allclose(log_mel(x[i], 32000), single, atol=2e-3)
    assert batched.dtype == np.float32


def test_matches_torchaudio_melspectrogram() -> None:
    """torchaudio (pure Python, via the compat import) with slaney scale and norm is the same."""
    from iml_tui.audio.compat import import_torchaudio

    ta = import_torchaudio()
    x = 0.1 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(1))
    ref = ta.transforms.MelSpectrogram(
        sample_rate=32000,
        n_fft=1024,
        win_length=1024,
        hop_length=320,
        f_min=50.0,
        f_max=14000.0,
        n_mels=64,
        window_fn=torch.hann_window,
        power=2.0,
        center=True,
        pad_mode="reflect",
        norm="slaney",
        mel_scale="slaney",
    )(x)
    ref_db = ta.transforms.AmplitudeToDB(stype="power", top_db=None)(ref).transpose(1, 2)
    ours = LogMel(PANNS_32K)(x)
    torch.testing.assert_close(ours, ref_db, atol=1e-3, rtol=0)


def test_other_parameters_and_top_db() -> None:
    x = np.random.default_rng(2).standard_normal(8000).astype(np.float32)
    out = log_mel(x, 8000, n_fft=256, hop_length=80, n_mels=20, fmin=0, fmax=None)
    assert out.shape == (101, 20)
    clipped = log_mel(x, 16000, fmax=14000.0)  # fmax above Nyquist is lowered to 8 kHz
    assert np.all(clipped > -100)
    floored = log_mel(np.r_[x, np.zeros(8000, np.float32)], 16000, top_db=40.0)
    assert floored.min() == pytest.approx(floored.max() - 40.0)
    cfg = MelConfig(
        sample_rate=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        n_mels=40,
        fmin=20,
        fmax=7600,
        top_db=80.0,
    )
    t = LogMel(cfg)(torch.from_numpy(np.r_[x, np.zeros(8000, np.float32)]))
    assert float(t.min()) == pytest.approx(float(t.max()) - 80.0, abs=1e-4)
    assert t.shape == (1, 101, 40)


def test_normalisation() -> None:
    x = torch.from_numpy(np.random.default_rng(3).standard_normal(16000).astype(np.float32))
    raw = LogMel()(x)
    scalar = LogMel(mean=-30.0, std=12.0)(x)
    torch.testing.assert_close(scalar, (raw + 30.0) / 12.0)
    band_mean = np.linspace(-40, -20, 64).astype(np.float32)
    band_std = np.linspace(5, 15, 64).astype(np.float32)
    module = LogMel()
    module.set_stats(band_mean, band_std)
    per_band = module(x)
    torch.testing.assert_close(
        per_band, (raw - torch.from_numpy(band_mean)) / torch.from_numpy(band_std)
    )
    np.testing.assert_allclose(
        normalise(raw.numpy(), band_mean, band_std), per_band.numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        log_mel(x.numpy(), 32000, mean=-30.0, std=12.0), scalar[0].numpy(), atol=2e-3
    )
    with pytest.raises(ValueError):
        module.set_stats(0.0, 0.0)


def test_running_stats_equal_numpy() -> None:
    rng = np.random.default_rng(4)
    parts = [rng.normal(-30, 10, size=(n, 64)) + np.arange(64) for n in (5, 1001, 17, 300)]
    stats = RunningStats(64)
    for p in parts:
        stats.update(p)
    stats.update(np.zeros((0, 64)))
    allx = np.concatenate(parts)
    assert stats.count == allx.shape[0]
    assert stats.mean == pytest.approx(allx.mean())
    assert stats.std == pytest.approx(allx.std())
    np.testing.assert_allclose(stats.band_mean, allx.mean(axis=0))
    np.testing.assert_allclose(stats.band_std, allx.std(axis=0))
    with pytest.raises(ValueError):
        _ = RunningStats(64).mean


def test_device_move() -> None:
    module = LogMel().to(torch.device("cpu"))
    assert module.window.device.type == "cpu"
    assert set(module.state_dict()) == set()
