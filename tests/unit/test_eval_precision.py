"""bf16 validation and scoring passes: close to fp32, chosen by config, refused when unknown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iml_tui.config import BioacousticConfig, load_config
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.engine.project import ProjectConfig
from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier
from iml_tui.errors import UserError

D, T, C = 24, 5, 3


def _model() -> FrameMLP:
    torch.manual_seed(0)
    return FrameMLP(D, C, 64, seed=0).eval()


def _x(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, T, D)).astype(np.float32)


def test_bf16_predictions_close_to_fp32_and_not_identical() -> None:
    model, x = _model(), _x(40, 1)
    fp32 = predict_frames(model, x, "cpu")
    bf16 = predict_frames(model, x, "cpu", precision="bf16")
    assert bf16.dtype == np.float32 and bf16.shape == (40, T, C)
    np.testing.assert_allclose(bf16, fp32, atol=2e-2)
    assert not np.array_equal(bf16, fp32)  # the pass really ran in bfloat16


def test_fp32_matches_a_hand_written_forward() -> None:
    model, x = _model(), _x(7, 2)
    with torch.no_grad():
        want = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(predict_frames(model, x, "cpu", batch_size=3), want, atol=1e-6)


def test_bf16_blocks_and_arrays_agree() -> None:
    model, x = _model(), _x(12, 3)
    whole = predict_frames(model, x, "cpu", precision="bf16")
    blocks = predict_frames(model, [(0, x[:5]), (5, x[5:])], "cpu", precision="bf16")
    np.testing.assert_array_equal(whole, blocks)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        predict_frames(_model(), _x(2, 0), "cpu", precision="fp16")
    x, y = _x(8, 0), np.zeros((8, T, C), np.uint8)
    with pytest.raises(ValueError, match="eval_precision"):
        train_frame_classifier(x, y, x, y, TrainConfig(device="cpu", eval_precision="int8"))


def test_training_validates_in_bf16() -> None:
    rng = np.random.default_rng(0)
    x = _x(48, 4)
    y = (rng.random((48, T, C)) < 0.3).astype(np.uint8)
    x[..., :C] += 3.0 * y
    runs = {
        p: train_frame_classifier(
            x[:32],
            y[:32],
            x[32:],
            y[32:],
            TrainConfig(
                hidden=32,
                batch_size=8,
                lr=1e-2,
                device="cpu",
                max_epochs=6,
                threads=1,
                eval_precision=p,
            ),
        )
        for p in ("fp32", "bf16")
    }
    # same seed and batches: only the validation arithmetic differs
    maps = {p: [h["valid_map"] for h in r.history] for p, r in runs.items()}
    assert len(maps["bf16"]) == 6
    np.testing.assert_allclose(maps["bf16"], maps["fp32"], atol=2e-2)


def test_config_key_takes_fp32_or_bf16_only(tmp_path: Path) -> None:
    assert BioacousticConfig().eval_precision == "fp32"
    cfg = load_config(BioacousticConfig, None, None, ["eval_precision=bf16"])
    assert cfg.eval_precision == "bf16"
    preset = tmp_path / "p.yaml"
    preset.write_text("eval_precision: fp16\n")
    with pytest.raises(UserError, match="eval_precision='fp16' is not one of fp32, bf16"):
        load_config(BioacousticConfig, preset)
    with pytest.raises(UserError, match="eval_precision"):
        load_config(ProjectConfig, None, {"eval_precision": "half"})
