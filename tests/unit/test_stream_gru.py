"""The stream model's GRU front for sequence features (rnn_layers), checked against a numpy GRU,
and sequence stores read as frame-major rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iml_tui.data import stream_data as sd
from iml_tui.data.orders import with_context
from iml_tui.data.store import write_pool
from iml_tui.engine.models.comp_class import CompClassModel, fit_stream_model, predict
from iml_tui.errors import UserError


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _gru_direction(gru: torch.nn.GRU, layer: int, suffix: str, seq: np.ndarray) -> np.ndarray:
    """Outputs (F, H) of one direction of one layer over seq (F, d_in), PyTorch's equations."""
    p = {n: t.detach().double().numpy() for n, t in gru.named_parameters()}
    w_ih, w_hh = p[f"weight_ih_l{layer}{suffix}"], p[f"weight_hh_l{layer}{suffix}"]
    b_ih, b_hh = p[f"bias_ih_l{layer}{suffix}"], p[f"bias_hh_l{layer}{suffix}"]
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    out = []
    for x in seq:
        gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
        r = _sigmoid(gi[:hidden] + gh[:hidden])
        z = _sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
        n = np.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
        h = (1.0 - z) * n + z * h
        out.append(h)
    return np.array(out)


def _brute_front(model: CompClassModel, row: np.ndarray) -> np.ndarray:
    """The GRU front of one row (F d,) by hand: eval BatchNorm per frame, then the layers."""
    bn = model.input_bn
    assert isinstance(bn, torch.nn.BatchNorm1d) and model.rnn is not None
    mean, var = bn.running_mean.double().numpy(), bn.running_var.double().numpy()
    w, b = bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy()
    seq = row.astype(np.float64).reshape(model.frames, model.frame_dim)
    seq = (seq - mean) / np.sqrt(var + bn.eps) * w + b
    fwd = bwd = seq
    for layer in range(model.rnn_layers):
        fwd = _gru_direction(model.rnn, layer, "", seq)
        bwd = _gru_direction(model.rnn, layer, "_reverse", seq[::-1])[::-1]
        seq = np.concatenate([fwd, bwd], axis=1)
    return np.concatenate([fwd[-1], bwd[0]])


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_front_matches_a_numpy_gru(layers: int) -> None:
    frames, d, hidden = 5, 3, 4
    model = CompClassModel(
        frames * d,
        comp_hidden=(6,),
        emb_dim=4,
        cls_hidden=(5,),
        seed=3,
        rnn_layers=layers,
        rnn_hidden=hidden,
        frame_dim=d,
    )
    assert model.frames == frames and model.compress[0].in_features == 2 * hidden
    bn = model.input_bn
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.num_features == d
    with torch.no_grad():  # statistics per frame value, not per row position
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        bn.weight.copy_(torch.tensor([1.5, 0.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
    model.eval()
    rows = np.random.default_rng(0).normal(size=(4, frames * d)).astype(np.float32)
    got = model.front(torch.from_numpy(rows)).detach().double().numpy()
    assert got.shape == (4, 2 * hidden)
    for i, row in enumerate(rows):
        np.testing.assert_allclose(got[i], _brute_front(model, row), atol=1e-5)
    # the order of the frames matters; the same frames reversed give another state
    rev = rows.reshape(4, frames, d)[:, ::-1].reshape(4, -1).copy()
    assert np.abs(model.front(torch.from_numpy(rev)).detach().numpy() - got).max() > 1e-3
    logp, emb = model(torch.from_numpy(rows))
    assert logp.shape == (4, 2) and emb.shape == (4, 4)


def test_gru_init_is_seeded_and_the_mlp_unchanged_without_it() -> None:
    a = CompClassModel(12, (8,), 4, (8,), seed=1, rnn_layers=1, rnn_hidden=3, frame_dim=4)
    b = CompClassModel(12, (8,), 4, (8,), seed=1, rnn_layers=1, rnn_hidden=3, frame_dim=4)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)
    plain = CompClassModel(12, (8,), 4, (8,), seed=1)
    same = CompClassModel(12, (8,), 4, (8,), seed=1, rnn_layers=0, rnn_hidden=99, frame_dim=4)
    assert plain.rnn is None and same.rnn is None
    for pa, pb in zip(plain.state_dict().values(), same.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="does not divide"):
        CompClassModel(10, frame_dim=4, rnn_layers=1)


def test_gru_learns_the_order_of_frames() -> None:
    """Rising vs falling ramps of the same frame values: the GRU separates them after training."""
    rng = np.random.default_rng(0)
    n, frames, d = 64, 6, 2
    levels = np.linspace(-1.0, 1.0, frames)
    y = np.arange(n) % 2
    seq = np.where(y[:, None] == 1, levels[None, :], levels[::-1][None, :])
    x = np.stack([seq, -seq], axis=2) + 0.1 * rng.normal(size=(n, frames, d))
    model = CompClassModel(
        frames * d, (16,), 8, (16,), seed=0, rnn_layers=1, rnn_hidden=8, frame_dim=d
    )
    from iml_tui.engine.models.comp_class import StreamFitConfig

    fit_stream_model(
        model,
        x.reshape(n, -1).astype(np.float32),
        y,
        StreamFitConfig(lr=0.01, max_epochs=60, patience=60, batch_size=32),
    )
    pred, _, _ = predict(model, x.reshape(n, -1).astype(np.float32))
    assert (pred == y).mean() == 1.0


# --- sequence stores --------------------------------------------------------------------------
def _lid_store(path: Path, emb: np.ndarray, langs: np.ndarray, ids: list[str]) -> None:
    lab = np.zeros((len(emb), emb.shape[1], 2), np.uint8)
    lab[np.arange(len(emb)), :, langs] = 1
    write_pool(path, emb.astype(np.float32), lab, ["ha", "yo"], ids)


def test_sequence_stores_read_as_frame_major_rows(tmp_path: Path) -> None:
    n, t = 3, 4
    a = np.arange(n * t * 2, dtype=np.float32).reshape(n, t, 2)
    b = 100 + np.arange(n * t * 3, dtype=np.float32).reshape(n, t, 3)
    ids = ["u0", "u1", "u2"]
    _lid_store(tmp_path / "fa" / "dev.h5", a, np.array([0, 1, 0]), ids)
    # the second set stores its rows in another order: aligned by id
    _lid_store(tmp_path / "fb" / "dev.h5", b[[2, 0, 1]], np.array([0, 0, 1]), ["u2", "u0", "u1"])
    table = sd.load_lid_split(tmp_path, ["fa", "fb"], "dev", sequences=True)
    assert table.frames == t and table.x.shape == (n, t * 5)
    for i in range(n):
        want = []
        for f in range(t):  # frame f: fa's 2 values, then fb's 3
            want += [*a[i, f], *b[i, f]]
        np.testing.assert_array_equal(table.x[i], want)
    assert table.classes.tolist() == [0, 1, 0]
    # context: the neighbours' frames follow each other in time order
    ctx = with_context(table.x, 1).reshape(n, 3 * t, 5)
    np.testing.assert_array_equal(
        ctx[1], np.concatenate([table.x[i].reshape(t, 5) for i in range(3)])
    )
    np.testing.assert_array_equal(ctx[0, :t], 0.0)  # before the first sample: zeros


def test_sequence_store_errors(tmp_path: Path) -> None:
    seq = np.zeros((3, 4, 2), np.float32)
    _lid_store(tmp_path / "seq" / "dev.h5", seq, np.array([0, 1, 0]), ["a", "b", "c"])
    _lid_store(tmp_path / "utt" / "dev.h5", seq[:, :1], np.array([0, 1, 0]), ["a", "b", "c"])
    _lid_store(
        tmp_path / "seq5" / "dev.h5", np.zeros((3, 5, 2)), np.array([0, 1, 0]), ["a", "b", "c"]
    )
    with pytest.raises(UserError, match="T = 4 frames per sample") as err:
        sd.load_lid_split(tmp_path, ["seq"], "dev")
    assert "--rnn-layers" in str(err.value) and "seq/dev.h5" in str(err.value)
    with pytest.raises(UserError, match="T = 1 frame per sample") as err:
        sd.load_lid_split(tmp_path, ["utt"], "dev", sequences=True)
    assert "rnn_layers 0" in str(err.value)
    with pytest.raises(UserError, match="T = 5 frames per sample, but") as err:
        sd.load_lid_split(tmp_path, ["seq", "seq5"], "dev", sequences=True)
    assert "seq5/dev.h5" in str(err.value)
