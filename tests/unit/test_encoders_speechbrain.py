"""ecapa / xvector: tiny random-weight speechbrain model folders in the real on-disk format.

The hyperparams.yaml files follow speechbrain's published ones (lang-id-voxlingua107-ecapa,
spkrec-xvect-voxceleb): the pretrainer ``paths`` name the *hub* repositories, so loading them
proves nothing is fetched from the hub.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from iml_tui.errors import UserError
from iml_tui.features import checkpoint_hash, get_encoder

torch.set_num_threads(1)

ECAPA_YAML = """\
pretrained_path: speechbrain/lang-id-voxlingua107-ecapa
n_mels: 20
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [16, 16, 16, 16, 48]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 8
    se_channels: 8
    res2net_scale: 2
    lin_neurons: 12
classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, 12]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: 16
    out_neurons: 3
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
emb_dim: 10
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.Xvector.Xvector
    in_channels: !ref <n_mels>
    activation: !name:torch.nn.LeakyReLU
    tdnn_blocks: 5
    tdnn_channels: [8, 8, 8, 8, 24]
    tdnn_kernel_sizes: [5, 3, 3, 1, 1]
    tdnn_dilations: [1, 2, 3, 1, 1]
    lin_neurons: !ref <emb_dim>
classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, !ref <emb_dim>]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: !ref <emb_dim>
    out_neurons: 4
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


def _make_folder(folder: Path, yaml_text: str, labels: list[str]) -> Path:
    """Write hyperparams.yaml and random weights the way speechbrain's models are published."""
    from iml_tui.audio.compat import import_speechbrain

    import_speechbrain()
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True)
    (folder / "hyperparams.yaml").write_text(yaml_text)
    torch.manual_seed(0)
    hp = load_hyperpyyaml(yaml_text)
    torch.save(hp["embedding_model"].state_dict(), folder / "embedding_model.ckpt")
    torch.save(hp["classifier"].state_dict(), folder / "classifier.ckpt")
    if "mean_var_norm_emb" in hp:
        norm = hp["mean_var_norm_emb"]
        norm.train()
        norm(torch.randn(6, 1, hp["emb_dim"]), torch.ones(6))  # accumulate global statistics
        norm._save(folder / "mean_var_norm_emb.ckpt")
    encoder = hp["label_encoder"]
    encoder.update_from_iterable(labels)
    encoder.save(folder / "label_encoder.txt")
    return folder


@pytest.fixture(scope="module")
def ecapa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sb")
    return _make_folder(root / "ecapalang", ECAPA_YAML, ["ha: Hausa", "yo: Yoruba", "en: English"])


@pytest.fixture(scope="module")
def xvector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sb")
    return _make_folder(root / "xvectors", XVECTOR_YAML, ["id1", "id2", "id3", "id4"])


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_ecapa_encodes_a_second_of_noise(ecapa_dir: Path) -> None:
    before = sorted(p.name for p in ecapa_dir.iterdir())
    enc = get_encoder("ecapa", ecapa_dir, device="cpu")
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert (enc.name, enc.sample_rate, enc.frames_per_clip, enc.dim) == ("ecapa", 16000, 1, 12)
    assert enc.checkpoint_hash == checkpoint_hash(ecapa_dir)
    assert enc.settings == {"architecture": "ECAPA_TDNN"}
    a, b = _noise(16000, 1), _noise(11000, 2)
    out = enc.encode([a, b, a])
    assert out.shape == (3, 1, 12) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_allclose(enc.encode([b])[0], out[1], atol=1e-5)
    np.testing.assert_array_equal(out, get_encoder("ecapa", ecapa_dir, "cpu").encode([a, b, a]))
    assert enc.encode([_noise(32000, 3)], sr=32000).shape == (1, 1, 12)
    assert sorted(p.name for p in ecapa_dir.iterdir()) == before  # the folder is left untouched


def test_xvector(xvector_dir: Path) -> None:
    enc = get_encoder("xvector", xvector_dir, device="cpu")
    assert (enc.name, enc.sample_rate, enc.dim) == ("xvector", 16000, 10)
    out = enc.encode([_noise(16000, 4), _noise(16000, 5)])
    assert out.shape == (2, 1, 10) and out.dtype == np.float32
    assert not np.allclose(out[0], out[1])


def test_wrong_architecture(ecapa_dir: Path, xvector_dir: Path) -> None:
    with pytest.raises(UserError, match="holds a Xvector model, not ECAPA"):
        get_encoder("ecapa", xvector_dir)
    with pytest.raises(UserError, match="holds a ECAPA_TDNN model, not Xvector"):
        get_encoder("xvector", ecapa_dir)


def test_missing_or_broken_folders(tmp_path: Path, ecapa_dir: Path) -> None:
    absent = tmp_path / "speechbrain" / "lang-id-voxlingua107-ecapa"
    with pytest.raises(UserError) as err:
        get_encoder("ecapa", absent)
    text = str(err.value)
    assert str(absent) in text and "not found" in text and "hyperparams.yaml" in text
    assert "\n" not in text

    with pytest.raises(UserError, match="expected the model folder, got a file"):
        get_encoder("ecapa", ecapa_dir / "embedding_model.ckpt")

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "hyperparams.yaml").write_text(ECAPA_YAML)
    with pytest.raises(UserError, match=r"lacks embedding_model\.ckpt"):
        get_encoder("ecapa", partial)

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ecapa_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "embedding_model.ckpt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot load speechbrain model") as err:
        get_encoder("ecapa", broken)
    assert str(broken) in str(err.value) and "\n" not in str(err.value)

    no_classifier = tmp_path / "no_classifier"
    no_classifier.mkdir()
    for f in ecapa_dir.iterdir():
        if f.name != "classifier.ckpt":
            (no_classifier / f.name).write_bytes(f.read_bytes())
    with pytest.raises(UserError, match=r"lacks classifier\.\* \(listed under pretrainer"):
        get_encoder("ecapa", no_classifier)  # listed in the yaml, absent, and the hub is off
