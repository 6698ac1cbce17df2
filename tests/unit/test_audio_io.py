"""Audio I/O: soundfile reading (wav/flac/ogg/mp3), mono, segments, soxr resampling, streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from iml_tui.audio import io
from iml_tui.errors import UserError


def _sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return float(np.argmax(spec) * sr / x.shape[0])


@pytest.fixture
def stereo_wav(tmp_path: Path) -> Path:
    """2 s at 48 kHz: channel 0 a 1 kHz sine, channel 1 minus half of it."""
    x = _sine(1000, 48000, 2.0)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([x, -0.5 * x], axis=1), 48000, subtype="FLOAT")
    return path


def test_info(stereo_wav: Path) -> None:
    meta = io.info(stereo_wav)
    assert (meta.sample_rate, meta.frames, meta.channels) == (48000, 96000, 2)
    assert meta.duration == pytest.approx(2.0)
    assert meta.format == "WAV"


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype", "tol"),
    [
        ("wav", "WAV", "PCM_16", 0),
        ("flac", "FLAC", "PCM_16", 0),
        ("ogg", "OGG", "VORBIS", 3000),
        ("mp3", "MP3", "MPEG_LAYER_III", 3000),
    ],
)
def test_read_formats(tmp_path: Path, ext: str, fmt: str, subtype: str, tol: int) -> None:
    x = _sine(440, 16000, 1.0)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    y, sr = io.read(path)
    assert sr == 16000
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.shape[0] - x.shape[0]) <= tol
    assert _peak_hz(y, sr) == pytest.approx(440, abs=2)
    if tol == 0:
        np.testing.assert_allclose(y, x, atol=1e-4)


def test_mono_first_and_mix(stereo_wav: Path) -> None:
    first, _ = io.read(stereo_wav, mono="first")
    mix, _ = io.read(stereo_wav, mono="mix")
    x = _sine(1000, 48000, 2.0)
    np.testing.assert_allclose(first, x, atol=1e-6)
    np.testing.assert_allclose(mix, 0.25 * x, atol=1e-6)
    with pytest.raises(ValueError):
        io.read(stereo_wav, mono="left")  # type: ignore[arg-type]


def test_read_segment_and_past_end(stereo_wav: Path) -> None:
    whole, _ = io.read(stereo_wav)
    seg, _ = io.read(stereo_wav, start=0.5, duration=0.25)
    np.testing.assert_array_equal(seg, whole[24000:36000])
    tail, _ = io.read(stereo_wav, start=1.9, duration=5.0)
    np.testing.assert_array_equal(tail, whole[91200:])
    empty, _ = io.read(stereo_wav, start=3.0)
    assert empty.shape == (0,)


@pytest.mark.parametrize(("ext", "fmt"), [("mp3", "MP3"), ("ogg", "OGG"), ("flac", "FLAC")])
def test_segments_of_compressed_files_are_sample_accurate(
    tmp_path: Path, ext: str, fmt: str
) -> None:
    path = tmp_path / f"tone.{ext}"
    sf.write(path, _sine(440, 48000, 3.0), 48000, format=fmt)
    whole, _ = io.read(path)
    seg, _ = io.read(path, start=1.0, duration=0.5)
    np.testing.assert_array_equal(seg, whole[48000:72000])


def test_mp3_blocks_equal_the_whole_decode(tmp_path: Path) -> None:
    path = tmp_path / "tone.mp3"
    sf.write(path, _sine(440, 48000, 3.0), 48000, format="MP3")
    whole, _ = io.read(path)
    np.testing.assert_array_equal(np.concatenate(list(io.iter_blocks(path, 0.1))), whole)


def test_read_resampled(stereo_wav: Path) -> None:
    y, sr = io.read(stereo_wav, sr=16000)
    assert sr == 16000 and y.shape == (32000,) and y.dtype == np.float32
    assert _peak_hz(y, sr) == pytest.approx(1000, abs=1)
    core = y[1000:-1000]
    assert np.sqrt(np.mean(core**2)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_resample() -> None:
    x = _sine(300, 44100, 0.5)
    y = io.resample(x, 44100, 32000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    np.testing.assert_array_equal(io.resample(x, 44100, 44100), x)
    stereo = np.stack([x, x], axis=1)
    assert io.resample(stereo, 44100, 16000).shape == (8000, 2)
    with pytest.raises(ValueError):
        io.resample(x, 0, 16000)


def test_iter_blocks_without_resampling(stereo_wav: Path) -> None:
    blocks = list(io.iter_blocks(stereo_wav, 0.3))
    assert [b.shape[0] for b in blocks] == [14400] * 6 + [9600]
    np.testing.assert_array_equal(np.concatenate(blocks), io.read(stereo_wav)[0])
    mixed = np.concatenate(list(io.iter_blocks(stereo_wav, 0.5, mono="mix")))
    np.testing.assert_allclose(mixed, io.read(stereo_wav, mono="mix")[0], atol=1e-7)


@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 32000), (48000, 16000), (8000, 32000)])
def test_iter_blocks_streaming_equals_whole_file(tmp_path: Path, sr_in: int, sr_out: int) -> None:
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(int(sr_in * 3.37))).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, x, sr_in, subtype="FLOAT")
    blocks = list(io.iter_blocks(path, 0.25, sr=sr_out))
    size = round(0.25 * sr_out)
    assert all(b.shape[0] == size for b in blocks[:-1]) and 0 < blocks[-1].shape[0] <= size
    streamed = np.concatenate(blocks)
    whole = soxr.resample(x, sr_in, sr_out, quality="HQ")
    assert abs(streamed.shape[0] - whole.shape[0]) <= 1
    n = min(streamed.shape[0], whole.shape[0])
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=1e-4)
    np.testing.assert_allclose(io.read(path, sr=sr_out)[0][:n], whole[:n], atol=1e-6)


def test_iter_blocks_reads_in_blocks(stereo_wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long file is never read whole: each read asks for about one block."""
    asked: list[int] = []
    original = sf.SoundFile.read

    def spy(self: sf.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> np.ndarray:
        asked.append(frames)
        return original(self, frames, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    out = list(io.iter_blocks(stereo_wav, 0.1, sr=16000))
    assert sum(b.shape[0] for b in out) == 32000
    assert asked and all(0 < f <= 4800 for f in asked)


def test_write_roundtrip(tmp_path: Path) -> None:
    x = _sine(500, 32000, 0.5)
    for ext in ("wav", "flac"):
        path = io.write(tmp_path / f"out.{ext}", x, 32000)
        y, sr = io.read(path)
        assert sr == 32000
        np.testing.assert_allclose(y, x, atol=1e-4)
    y, _ = io.read(io.write(tmp_path / "out.ogg", x, 32000))
    n = min(x.shape[0], y.shape[0])
    assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.99
    loud, _ = io.read(io.write(tmp_path / "loud.wav", 3 * x, 32000))
    assert np.max(np.abs(loud)) <= 1.0
    stereo = io.write(tmp_path / "st.wav", np.stack([x, x], 1), 32000)
    assert io.info(stereo).channels == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "loud.wav",
        "out.flac",
        "out.ogg",
        "out.wav",
        "st.wav",
    ]
    with pytest.raises(UserError, match="extension"):
        io.write(tmp_path / "out.mp4", x, 32000)


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _zero_length(tmp_path: Path) -> Path:
    path = tmp_path / "zero.flac"
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC"):
        pass
    return path


def _truncated(tmp_path: Path) -> Path:
    good = tmp_path / "good.wav"
    sf.write(good, _sine(100, 8000, 0.2), 8000)
    path = tmp_path / "truncated.wav"
    path.write_bytes(good.read_bytes()[:30])
    return path


def _noise_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "random.mp3"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize("make", [_corrupt, _empty, _zero_length, _truncated, _noise_bytes])
def test_unreadable_audio_is_a_user_error(tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    for call in (
        lambda: io.read(path),
        lambda: io.read(path, sr=16000, start=0.1),
        lambda: list(io.iter_blocks(path, 1.0)),
    ):
        with pytest.raises(UserError) as err:
            call()
        text = str(err.value)
        assert str(path) in text and "cannot read audio" in text
        assert "re-export it as wav/flac" in text
        assert "\n" not in text


def test_info_of_corrupt_file(tmp_path: Path) -> None:
    path = _corrupt(tmp_path)
    with pytest.raises(UserError, match="cannot read audio"):
        io.info(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        io.info(tmp_path / "nope.wav")
    with pytest.raises(UserError, match="folder"):
        io.read(tmp_path)
