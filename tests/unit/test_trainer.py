"""Classifier training, prediction and evaluation on tiny generated data (CPU, one thread)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import pytest
import torch

from iml_tui.engine.metrics import frame_map
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.engine.trainer import (
    TrainConfig,
    TrainResult,
    batch_pos_weight,
    evaluate,
    predict_frames,
    train_frame_classifier,
)

D, T, C = 16, 4, 3


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _data(n: int, seed: int, signal: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, T, D) float32 embeddings and (n, T, C) uint8 frame targets; each clip carries at most
    one class, active on a run of frames, with that class's prototype added to those frames."""
    rng = np.random.default_rng(seed)
    proto = np.random.default_rng(123).standard_normal((C, D)).astype(np.float32)
    y = np.zeros((n, T, C), dtype=np.uint8)
    for i in range(n):
        c = rng.integers(-1, C)
        if c >= 0:
            a = rng.integers(0, T)
            y[i, a : a + rng.integers(1, T + 1), c] = 1
    x = rng.standard_normal((n, T, D)).astype(np.float32)
    x += signal * (y.astype(np.float32) @ proto)
    return x, y


def _cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "hidden": 32,
        "batch_size": 16,
        "lr": 1e-2,
        "device": "cpu",
        "max_epochs": 40,
        "threads": 1,
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


Trained = tuple[TrainResult, np.ndarray, np.ndarray, list[tuple[int, float]]]


@pytest.fixture(scope="module")
def trained() -> Trained:
    tx, ty = _data(60, 0)
    vx, vy = _data(30, 1)
    calls: list[tuple[int, float]] = []
    result = train_frame_classifier(tx, ty, vx, vy, _cfg(), lambda e, m: calls.append((e, m)))
    return result, vx, vy, calls


def test_training_beats_chance(trained: Trained) -> None:
    result, _vx, vy, _ = trained
    chance = float(vy.reshape(-1, C).mean(axis=0).mean())  # AP of a random ranking ~ prevalence
    assert chance < 0.25
    assert result.best_valid_map > 0.8
    assert result.best_valid_map > chance + 0.5


def test_best_weights_are_restored(trained: Trained) -> None:
    result, vx, vy, calls = trained
    maps = [h["valid_map"] for h in result.history]
    assert result.best_valid_map == max(maps)
    assert result.history[result.best_epoch - 1]["valid_map"] == result.best_valid_map
    assert maps.index(max(maps)) == result.best_epoch - 1  # first epoch reaching the best
    assert all(v.device.type == "cpu" for v in result.state_dict.values())
    probs = predict_frames(result.state_dict, vx, device="cpu")
    assert probs.dtype == np.float32 and probs.shape == (30, T, C)
    # Same chunking as validation during training: the same number, bit for bit.
    assert evaluate(probs, vy, 0.5)["map"] == result.best_valid_map
    # The progress callback saw every epoch in order with the recorded valid mAP.
    assert [e for e, _ in calls] == list(range(1, result.epochs_run + 1))
    assert [m for _, m in calls] == maps
    assert len(result.history) == result.epochs_run
    assert set(result.history[0]) == {"epoch", "train_loss", "valid_map", "lr"}
    assert result.seconds > 0


def test_lr_schedule_stops_on_plateau() -> None:
    tx, ty = _data(24, 2, signal=0.0)  # no signal: valid mAP plateaus at once
    vx, vy = _data(12, 3, signal=0.0)
    cfg = _cfg(lr_patience=1, max_epochs=500)
    result = train_frame_classifier(tx, ty, vx, vy, cfg)
    assert result.stop_reason == "min_lr"
    assert result.epochs_run < 100
    assert result.history[-1]["lr"] < cfg.lr
    lrs = [h["lr"] for h in result.history]
    assert all(b <= a for a, b in pairwise(lrs))  # lr only ever drops
    # 1e-2 * 0.5**k < 5e-6 first for k = 11: the epochs ran at the 11 rates 1e-2 .. 1e-2 / 2**10.
    assert sorted(set(lrs), reverse=True) == [1e-2 * 0.5**k for k in range(11)]


def test_max_epochs_cap() -> None:
    tx, ty = _data(20, 4)
    vx, vy = _data(10, 5)
    result = train_frame_classifier(tx, ty, vx, vy, _cfg(max_epochs=3))
    assert result.epochs_run == 3
    assert len(result.history) == 3
    assert result.stop_reason == "max_epochs"


def test_same_seed_same_weights_and_threads_restored() -> None:
    tx, ty = _data(20, 6)
    vx, vy = _data(10, 7)
    torch.set_num_threads(1)
    a = train_frame_classifier(tx, ty, vx, vy, _cfg(max_epochs=4, threads=1))
    torch.manual_seed(999)  # the global RNG must not matter
    b = train_frame_classifier(tx, ty, vx, vy, _cfg(max_epochs=4, threads=1))
    c = train_frame_classifier(tx, ty, vx, vy, _cfg(max_epochs=4, threads=1, seed=1))
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.history == [{**h} for h in b.history]
    assert not torch.equal(a.state_dict["fc1.weight"], c.state_dict["fc1.weight"])
    assert torch.get_num_threads() == 1


def test_frame_mlp_seeded_init_and_shapes() -> None:
    state = torch.random.get_rng_state()
    m1, m2, m3 = FrameMLP(D, C, 8, seed=3), FrameMLP(D, C, 8, seed=3), FrameMLP(D, C, 8, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert torch.equal(m1.fc1.weight, m2.fc1.weight) and torch.equal(m1.fc2.bias, m2.fc2.bias)
    assert not torch.equal(m1.fc1.weight, m3.fc1.weight)
    assert m1(torch.zeros(5, T, D)).shape == (5, T, C)
    m4 = FrameMLP.from_state_dict(m1.state_dict())
    assert (m4.d_in, m4.hidden, m4.n_classes) == (D, 8, C)
    with pytest.raises(ValueError):
        FrameMLP.from_state_dict({"x": torch.zeros(1)})
    with pytest.raises(ValueError):
        FrameMLP(0, C)


def test_batch_pos_weight_by_hand() -> None:
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    # pos = [2, 1, 0], neg = [2, 3, 4]
    expected = torch.tensor([2 / (2 + 1e-5), 3 / (1 + 1e-5), 4 / 1e-5])
    torch.testing.assert_close(batch_pos_weight(y), expected)


def test_predict_frames_blocks_and_model() -> None:
    x, _ = _data(13, 8)
    model = FrameMLP(D, C, 8, seed=0)
    whole = predict_frames(model, x, device="cpu", batch_size=4)
    with torch.no_grad():
        direct = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(whole, direct, rtol=1e-6, atol=1e-7)
    blocks = ((s, x[s : s + 5]) for s in range(0, 13, 5))
    # Different chunking may change float32 GEMM results in the last bit only.
    by_blocks = predict_frames(model.state_dict(), blocks, "cpu", 4)
    np.testing.assert_allclose(by_blocks, whole, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(predict_frames(model, x, "cpu", 4), whole)  # deterministic
    assert predict_frames(model, iter([]), "cpu").shape == (0, 0, C)
    with pytest.raises(ValueError):
        predict_frames(model, np.zeros((2, T, D + 1), dtype=np.float32), "cpu")


def test_evaluate_keys_and_values() -> None:
    probs = np.array([[[0.9, 0.1], [0.8, 0.2]], [[0.7, 0.3], [0.6, 0.4]]], dtype=np.float32)
    targets = np.array([[[1, 0], [0, 0]], [[1, 0], [0, 1]]])
    res = evaluate(probs, targets, 0.5)
    assert res["map"] == pytest.approx(frame_map(probs, targets)[0])
    np.testing.assert_allclose(res["ap_per_class"], [0.8333333333333334, 1.0])
    # class 0 at 0.5: all four predicted, TP 2 -> 4/6; class 1: none predicted, FN 1 -> 0.
    np.testing.assert_allclose(res["f1_per_class"], [2 / 3, 0.0])
    assert res["f1"] == pytest.approx(1 / 3)
    assert res["threshold"] == 0.5


def test_bad_inputs() -> None:
    x, y = _data(4, 9)
    with pytest.raises(ValueError):
        train_frame_classifier(x, y[:, :, :2], x, y, _cfg())
    with pytest.raises(ValueError):
        train_frame_classifier(x, y, x[:0], y[:0], _cfg())
