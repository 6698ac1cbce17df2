"""Utterance-encoder training (ECAPA / x-vector) on a tiny separable three-language corpus:
the output folder loads through the registry and speechbrain's EncoderClassifier, training beats
chance, resuming equals an uninterrupted run, the same seed gives the same weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lid_tones import LANGS, make_lid_tones, utterance

from iml_tui.data.commonvoice import prepare_lid
from iml_tui.errors import UserError
from iml_tui.features import get_encoder
from iml_tui.training.train_utterance import (
    LOG_FILE,
    STATE_FILE,
    UtteranceTrainConfig,
    augment_crops,
    draw_crops,
    train_utterance_encoder,
    utterance_folders,
)

torch.set_num_threads(1)


def _cfg(**kw: object) -> UtteranceTrainConfig:
    base: dict[str, object] = {
        "channels": 16,
        "embedding_dim": 8,
        "classifier_hidden": 16,
        "epochs": 3,
        "batch_size": 8,
        "steps_per_epoch": 5,
        "lr": 1e-2,
        "crop_min": 1.0,
        "crop_max": 1.5,
        "device": "cpu",
    }
    base.update(kw)
    return UtteranceTrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    make_lid_tones(root / "src")
    prepare_lid(root / "src", root / "prep")
    return root / "prep"


@pytest.fixture(scope="module")
def trained(lid: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "ecapa"
    res = train_utterance_encoder(lid, out, _cfg())
    assert (res.epochs_run, res.resumed_from, res.class_list) == (3, 0, list(LANGS))
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("embedding_model", "classifier"):
        sd = torch.load(folder / f"{name}.ckpt", weights_only=True)
        out.update({f"{name}.{k}": v for k, v in sd.items()})
    return out


def _dev_waves(lid: Path) -> tuple[list[np.ndarray], list[str]]:
    files = sorted((lid.parent / "src" / "dev").glob("*.wav"))
    return [sf.read(f, dtype="float32")[0] for f in files], [f.name.split("_")[2] for f in files]


def test_crops_and_augmentation_shapes_and_determinism() -> None:
    waves = [np.arange(100, dtype=np.float32), np.arange(30, dtype=np.float32) + 1000]
    x = draw_crops(waves, [0, 1, 1], 50, np.random.default_rng(0))
    assert x.shape == (3, 50) and x.dtype == np.float32
    assert np.all(np.diff(x[0]) == 1)  # a contiguous stretch of the longer signal
    assert set(np.unique(x[1])) <= set(waves[1].tolist())  # the shorter one is repeated
    sped = draw_crops(
        [np.sin(np.arange(16000) / 5).astype(np.float32)],
        [0],
        8000,
        np.random.default_rng(0),
        speed_p=1.0,
        speeds=(1.1,),
    )
    assert sped.shape == (1, 8000) and np.abs(sped).max() > 0.5
    a = augment_crops(x, np.random.default_rng(1), gain_db=6.0, noise_p=1.0)
    b = augment_crops(x, np.random.default_rng(1), gain_db=6.0, noise_p=1.0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and not np.array_equal(a, x)
    np.testing.assert_array_equal(augment_crops(x, np.random.default_rng(1)), x)


def test_folder_loads_through_registry_and_speechbrain(
    trained: Path, lid: Path, tmp_path: Path
) -> None:
    names = sorted(p.name for p in trained.iterdir())
    assert names == [
        "classifier.ckpt",
        "embedding_model.ckpt",
        "hyperparams.yaml",
        "label_encoder.ckpt",
        "label_encoder.txt",
        LOG_FILE,
        STATE_FILE,
    ]
    text = (trained / "hyperparams.yaml").read_text()
    assert "speechbrain.lobes.features.Fbank" in text and "n_mels: 60" in text
    assert "norm_type: sentence" in text and "ECAPA_TDNN" in text
    assert (trained / "label_encoder.txt").read_text().startswith("'aa' => 0\n'bb' => 1\n")

    enc = get_encoder("ecapa", trained, device="cpu")
    waves, langs = _dev_waves(lid)
    emb = enc.encode(waves[:3])
    assert (enc.dim, emb.shape) == (8, (3, 1, 8)) and np.isfinite(emb).all()

    from iml_tui.audio.compat import import_speechbrain

    import_speechbrain()
    from speechbrain.inference.classifiers import EncoderClassifier

    clf = EncoderClassifier.from_hparams(source=str(trained), savedir=str(tmp_path / "sb"))
    out_prob, _, index, labels = clf.classify_batch(torch.from_numpy(waves[0])[None])
    assert out_prob.shape == (1, 3) and labels[0] in LANGS
    assert int(index[0]) == LANGS.index(labels[0])
    right = sum(
        clf.classify_batch(torch.from_numpy(w)[None])[3][0] == lang
        for w, lang in zip(waves, langs, strict=True)
    )
    log = json.loads((trained / LOG_FILE).read_text())
    best = log["epochs"][log["best_epoch"] - 1]
    assert right / len(waves) == pytest.approx(best["dev_accuracy"])  # the best epoch was kept
    assert best["dev_accuracy"] > 0.5  # chance is 1/3
    assert log["class_list"] == list(LANGS) and len(log["data_fingerprint"]) == 16
    assert log["config"]["channels"] == 16 and log["train_utterances"] == {
        "aa": 8,
        "bb": 8,
        "cc": 8,
    }


def test_resume_equals_uninterrupted_and_seed_is_deterministic(
    trained: Path, lid: Path, tmp_path: Path
) -> None:
    part = tmp_path / "part"
    first = train_utterance_encoder(lid, part, _cfg(epochs=2))
    assert first.epochs_run == 2
    res = train_utterance_encoder(lid, part, _cfg(epochs=3))
    assert (res.resumed_from, res.epochs_run) == (2, 3)
    full, resumed = _weights(trained), _weights(part)
    assert full.keys() == resumed.keys()
    for k in full:
        torch.testing.assert_close(full[k], resumed[k], rtol=0, atol=0, msg=k)
    a = json.loads((trained / LOG_FILE).read_text())["epochs"]
    b = json.loads((part / LOG_FILE).read_text())["epochs"]
    for x, y in zip(a, b, strict=True):
        x.pop("seconds"), y.pop("seconds")
        assert x == y
    again = train_utterance_encoder(lid, part, _cfg(epochs=3))  # finished: nothing to do
    assert (again.resumed_from, again.epochs_run) == (3, 3)
    other = train_utterance_encoder(lid, tmp_path / "seed1", _cfg(epochs=1, seed=1))
    assert other.epochs_run == 1
    assert any(not torch.equal(v, _weights(tmp_path / "seed1")[k]) for k, v in full.items())


def test_xvector(lid: Path, tmp_path: Path) -> None:
    res = train_utterance_encoder(
        lid, tmp_path / "xv", _cfg(arch="xvector", epochs=1, steps_per_epoch=1)
    )
    assert res.arch == "xvector"
    enc = get_encoder("xvector", tmp_path / "xv", device="cpu")
    assert enc.dim == 8 and enc.settings == {"architecture": "Xvector"}
    with pytest.raises(UserError, match="holds a Xvector model, not ECAPA"):
        get_encoder("ecapa", tmp_path / "xv")


def test_user_errors(lid: Path, tmp_path: Path, trained: Path) -> None:
    with pytest.raises(UserError, match="no prepared train split"):
        utterance_folders(tmp_path)
    no_dev = tmp_path / "nodev"
    shutil.copytree(lid / "train", no_dev / "train")
    with pytest.raises(UserError, match="no prepared dev split"):
        train_utterance_encoder(no_dev, tmp_path / "o1", _cfg())

    src = tmp_path / "one"
    for split in ("train", "dev"):
        (src / split).mkdir(parents=True)
        for k in range(2):
            sf.write(
                src / split / f"common_voice_aa_{split}{k}.wav",
                utterance("aa", 1.0, np.random.default_rng(k)),
                16000,
            )
    prepare_lid(src, tmp_path / "one_prep")
    with pytest.raises(UserError, match=r"1 class\(es\) \(aa\); a classifier needs at least 2"):
        train_utterance_encoder(tmp_path / "one_prep", tmp_path / "o2", _cfg())

    empty = tmp_path / "empty"
    shutil.copytree(lid.parent / "src", empty)
    victim = sorted((empty / "train").glob("*.wav"))[0]
    sf.write(victim, np.zeros(0, dtype=np.float32), 16000)
    prepare_lid(empty, tmp_path / "empty_prep")
    with pytest.raises(UserError, match="no samples") as err:
        train_utterance_encoder(tmp_path / "empty_prep", tmp_path / "o3", _cfg())
    assert victim.name in str(err.value)

    with pytest.raises(UserError, match="batch size must be at least 2"):
        train_utterance_encoder(lid, tmp_path / "o4", _cfg(batch_size=1))
    with pytest.raises(UserError, match="multiple of 8"):
        train_utterance_encoder(lid, tmp_path / "o5", _cfg(channels=12))
    with pytest.raises(UserError, match="another architecture or seed"):
        train_utterance_encoder(lid, trained, _cfg(channels=24))
    with pytest.raises(UserError, match="holds a model but no training state"):
        copy = tmp_path / "copy"
        copy.mkdir()
        shutil.copy(trained / "hyperparams.yaml", copy)
        train_utterance_encoder(lid, copy, _cfg())
