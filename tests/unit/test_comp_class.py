"""The stream detector: shapes, fitting, patience stop, determinism, predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iml_tui.engine.losses import LossConfig
from iml_tui.engine.models.comp_class import (
    CompClassModel,
    StreamFitConfig,
    fit_stream_model,
    predict,
    reset_weights,
)

torch.set_num_threads(1)

SMALL = {"comp_hidden": (16, 16), "emb_dim": 8, "cls_hidden": (16, 16, 16)}


def _blobs(n: int = 60, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, d)).astype(np.float32) + 3.0 * y[:, None]
    return x, y


def _small(d: int = 4, seed: int = 0) -> CompClassModel:
    return CompClassModel(d, seed=seed, **SMALL)  # type: ignore[arg-type]


def test_architecture_and_shapes() -> None:
    m = _small()
    x = torch.randn(5, 4)
    logp, e = m(x)
    assert logp.shape == (5, 2) and e.shape == (5, 8)
    assert torch.allclose(logp.exp().sum(1), torch.ones(5))
    assert torch.allclose(torch.log_softmax(m.logits(x), 1), logp)
    kinds = [type(mod).__name__ for mod in m.compress]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU"] * 2 + ["Linear"]
    assert [type(mod).__name__ for mod in m.classify] == ["Linear", "BatchNorm1d", "LeakyReLU"] * 3
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm1d)]
    assert len(bns) == 1 + 2 + 3 and all(bn.momentum == 0.05 for bn in bns)
    assert m.head.out_features == 2 and m.head_input(x).shape == (5, 16)
    full = CompClassModel(7 * 256)
    assert full.embed_out.out_features == 256 and full.head.in_features == 1024
    sizes = [
        (mod.in_features, mod.out_features)
        for mod in full.compress
        if isinstance(mod, torch.nn.Linear)
    ]
    assert sizes == [(1792, 1024), (1024, 1024), (1024, 1024)]
    assert [
        (mod.in_features, mod.out_features)
        for mod in full.classify
        if isinstance(mod, torch.nn.Linear)
    ] == [(256, 1024), (1024, 1024), (1024, 1024)]


def test_same_seed_same_init_and_reset() -> None:
    a, b = _small(seed=3), _small(seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    x, y = _blobs()
    fit_stream_model(a, x, y, StreamFitConfig(max_epochs=2), np.random.default_rng(0))
    assert not torch.equal(a.head.weight, b.head.weight)
    reset_weights(a, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("kind", ["default", "nll", "dcf", "imlm", "focal", "adcf", "cb"])
def test_tiny_fit_separates_two_blobs(kind: str) -> None:
    x, y = _blobs()
    m = _small()
    cfg = StreamFitConfig(lr=1e-2, batch_size=16, max_epochs=40, loss=LossConfig(kind=kind))  # type: ignore[arg-type]
    res = fit_stream_model(m, x, y, cfg, np.random.default_rng(0))
    assert res.epochs >= 1 and res.losses[-1] < res.losses[0]
    xt, yt = _blobs(seed=1)
    pred, prob, logits = predict(m, xt)
    assert pred.shape == (60,) and prob.shape == (60,) and logits.shape == (60, 2)
    assert (pred == yt).mean() >= 0.9
    assert np.array_equal(pred, (prob > 0.5).astype(np.int64))


def test_patience_stop() -> None:
    x, y = _blobs(n=20)
    m = _small()
    # lr 0: the loss never improves after epoch 1 (only float summation order changes)
    cfg = StreamFitConfig(
        lr=0.0, patience=3, max_epochs=50, min_delta=1e-6, loss=LossConfig(kind="nll")
    )
    res = fit_stream_model(m, x, y, cfg, np.random.default_rng(0))
    assert res.stop_reason == "patience" and res.epochs == 4 and res.best_epoch == 1
    capped = fit_stream_model(
        _small(), x, y, StreamFitConfig(lr=1e-3, max_epochs=3), np.random.default_rng(0)
    )
    assert capped.stop_reason == "max_epochs" and capped.epochs == 3


def test_fit_is_deterministic_for_a_seed() -> None:
    x, y = _blobs()
    cfg = StreamFitConfig(lr=1e-3, batch_size=16, max_epochs=5)
    runs = []
    for seed in (7, 7, 8):
        m = _small()
        res = fit_stream_model(m, x, y, cfg, np.random.default_rng(seed))
        runs.append((res.losses, predict(m, x)[2]))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_warm_start_and_bad_inputs() -> None:
    x, y = _blobs()
    m = _small()
    cfg = StreamFitConfig(lr=1e-2, batch_size=16, max_epochs=20)
    first = fit_stream_model(m, x, y, cfg, np.random.default_rng(0))
    second = fit_stream_model(m, x, y, cfg, np.random.default_rng(1))
    assert second.losses[0] < first.losses[0]
    # a trailing single item joins the previous minibatch (BatchNorm needs 2)
    fit_stream_model(m, x[:17], y[:17], cfg, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 2"):
        fit_stream_model(m, x[:1], y[:1], cfg)
    with pytest.raises(ValueError, match="0 or 1"):
        fit_stream_model(m, x, y + 1, cfg)
    with pytest.raises(ValueError):
        predict(m, x[0])
    m.train()
    predict(m, x)
    assert m.training


def test_forward_is_the_d2_chain_by_hand() -> None:
    """Input BN, two Linear-BN-LeakyReLU blocks, a plain Linear, the embedding Linear, three
    blocks, the 2-way Linear and LogSoftmax, composed by hand from the model's own layers."""
    m = _small(d=3, seed=5)
    x = torch.randn(6, 3)
    m.train()
    comp = list(m.compress)
    h = m.input_bn(x)
    for i in range(0, 6, 3):
        lin, bn = comp[i], comp[i + 1]
        assert isinstance(bn, torch.nn.BatchNorm1d)
        z = lin(h)
        # BatchNorm in train mode: batch mean and biased variance, eps 1e-5, affine
        zn = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5) * bn.weight + bn.bias
        h = torch.where(zn > 0, zn, 0.01 * zn)
    h = comp[6](h)  # the plain Linear (no BN, no activation)
    e = m.embed_out(h)
    c = m.classify(e)
    want = torch.log_softmax(m.head(c), dim=1)
    logp, emb = m(x)
    assert torch.allclose(emb, e, atol=1e-5) and torch.allclose(logp, want, atol=1e-5)
    # the embedding feeds the classifier directly: 16 -> 16 (plain) -> 8 -> classifier in 8
    assert comp[6].in_features == comp[6].out_features == 16
    assert m.embed_out.in_features == 16 and m.classify[0].in_features == 8


def test_each_item_and_its_partner_get_their_own_train_mode_pass() -> None:
    x, y = _blobs(n=32)
    m = _small()
    calls: list[tuple[int, bool]] = []
    bn_means: list[torch.Tensor] = []

    def spy(mod: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        calls.append((len(args[0]), mod.training))

    def bn_spy(mod: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        bn_means.append(args[0].mean(0).detach().clone())

    m.register_forward_pre_hook(spy)
    m.input_bn.register_forward_pre_hook(bn_spy)
    cfg = StreamFitConfig(lr=1e-3, batch_size=16, max_epochs=1)
    fit_stream_model(m, x, y, cfg, np.random.default_rng(0))
    # 2 minibatches of 16, each: one pass for the items, one for their partners (never 32 rows)
    assert calls == [(16, True)] * 4
    # each pass normalises by its own batch statistics: the input BN sees different means
    assert not torch.allclose(bn_means[0], bn_means[1])
    calls.clear()
    fit_stream_model(
        m, x, y, StreamFitConfig(max_epochs=1, batch_size=16, loss=LossConfig(kind="nll"))
    )
    assert calls == [(16, True)] * 2  # the plain NLL has no partners
