"""Losses of the stream detector, by hand on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iml_tui.engine import losses as L

torch.set_num_threads(1)


def _logp(p_target: list[float]) -> torch.Tensor:
    p = torch.tensor(p_target, dtype=torch.float64)
    return torch.stack([1 - p, p], dim=1).log()


def test_class_weights() -> None:
    y = np.array([0] * 6 + [1] * 2)
    assert L.class_weights(y, "fixed").tolist() == [1.0, 4.0]
    inv = L.class_weights(y, "inverse")
    # 1/6, 1/2 scaled to sum 2 -> 0.5, 1.5
    assert inv == pytest.approx([0.5, 1.5])
    b = 0.999
    raw = np.array([(1 - b) / (1 - b**6), (1 - b) / (1 - b**2)])
    assert L.class_weights(y, "balanced") == pytest.approx(raw * 2 / raw.sum(), rel=1e-5)
    # an absent class counts as one item
    assert L.class_weights(np.zeros(3), "inverse") == pytest.approx([0.5, 1.5])
    with pytest.raises(ValueError):
        L.class_weights(y, "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        L.LossConfig(kind="mse")  # type: ignore[arg-type]


def test_weighted_nll_by_hand() -> None:
    logp = _logp([0.8, 0.25])
    y = torch.tensor([1, 0])
    w = torch.tensor([1.0, 4.0], dtype=torch.float64)
    want = (4 * -math.log(0.8) + 1 * -math.log(0.75)) / 5
    assert float(L.weighted_nll(logp, y, w)) == pytest.approx(want)


def test_contrastive_by_hand() -> None:
    e1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    e2 = torch.tensor([[0.3, 0.4], [0.3, 0.4], [3.0, 4.0]])  # d = 0.5, 0.5, 5
    same = torch.tensor([True, False, False])
    # (0.25 + (1 - 0.5)^2 + 0) / 2 / 3: the sum over pairs halved, over the batch size
    assert float(L.contrastive(e1, e2, same)) == pytest.approx((0.25 + 0.25 + 0.0) / 2 / 3)
    # finite gradient at d = 0
    a = torch.zeros(1, 2, requires_grad=True)
    L.contrastive(a, torch.zeros(1, 2), torch.tensor([False])).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_default_loss_by_hand() -> None:
    cfg = L.LossConfig()
    logp1, y1 = _logp([0.8, 0.25]), torch.tensor([1, 0])
    logp2, y2 = _logp([0.5, 0.5]), torch.tensor([1, 1])
    w = torch.tensor([1.0, 4.0], dtype=torch.float64)
    e1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    e2 = torch.tensor([[0.3, 0.4], [0.3, 0.4]], dtype=torch.float64)
    nll1 = (4 * -math.log(0.8) + -math.log(0.75)) / 5
    nll2 = -math.log(0.5)
    con = (0.25 + 0.25) / 2 / 2  # pair 0 same (d^2), pair 1 different ((1 - d)^2); / 2 / N
    got = L.stream_loss(cfg, logp1, y1, w, e1=e1, logp2=logp2, y2=y2, e2=e2)
    assert float(got) == pytest.approx(0.09 * (nll1 + nll2) + con)
    with pytest.raises(ValueError, match="partner"):
        L.stream_loss(cfg, logp1, y1, w)


def test_dcf_and_imlm_losses_by_hand() -> None:
    # targets: p = 0.8, 0.6 -> E[FN] = 0.2 + 0.4 = 0.6, P = 2; non-targets p = 0.1, 0.3, 0.2
    logp = _logp([0.8, 0.6, 0.1, 0.3, 0.2])
    y = torch.tensor([1, 1, 0, 0, 0])
    efnr, efp = 0.6 / 2, 0.6
    assert float(L.dcf_loss(logp, y)) == pytest.approx(0.75 * efnr + 0.25 * efp / 3)
    assert float(L.imlm_loss(logp, y)) == pytest.approx(efp / 5 + efnr)
    # no positives: the FNR term is 0
    neg_only = torch.tensor([0, 0])
    assert float(L.dcf_loss(_logp([0.2, 0.4]), neg_only)) == pytest.approx(0.25 * 0.3)
    # paired like the default: 0.09 (L(x1) + L(x2)) + contrastive; partner batch = x1 reversed
    e1 = torch.zeros(5, 2, dtype=torch.float64)
    e2 = torch.tensor([[0.3, 0.4]] * 5, dtype=torch.float64)  # d = 0.5 for every pair
    y2 = y.flip(0)  # [0, 0, 0, 1, 1]: pairs 2 same, 0, 1, 3, 4 different -> each term 0.25
    con = 5 * 0.25 / 2 / 5
    # x2: p = .2,.3,.1 (non-targets, E[FP] = 0.6), .6,.8 (targets, E[FN] = 0.4 + 0.2)
    dcf2 = 0.75 * (0.4 + 0.2) / 2 + 0.25 * (0.2 + 0.3 + 0.1) / 3
    imlm2 = (0.2 + 0.3 + 0.1) / 5 + (0.4 + 0.2) / 2
    for kind, one, two in (
        ("dcf", 0.75 * efnr + 0.25 * efp / 3, dcf2),
        ("imlm", efp / 5 + efnr, imlm2),
    ):
        got = L.stream_loss(
            L.LossConfig(kind=kind),
            logp,
            y,
            None,
            e1=e1,  # type: ignore[arg-type]
            logp2=logp.flip(0),
            y2=y2,
            e2=e2,
        )
        assert float(got) == pytest.approx(0.09 * (one + two) + con)


def test_dcf_loss_is_differentiable() -> None:
    z = torch.zeros(4, 2, requires_grad=True)
    loss = L.dcf_loss(torch.log_softmax(z, dim=1), torch.tensor([1, 0, 1, 0]))
    loss.backward()
    assert z.grad is not None
    # raising the target score of a positive lowers the loss
    assert float(z.grad[0, 1]) < 0 and float(z.grad[1, 1]) > 0


def test_focal_loss_by_hand() -> None:
    logp = _logp([0.8, 0.25])
    y = torch.tensor([1, 0])
    t0 = -((1 - 0.8) ** 2) * math.log(0.8)
    t1 = -((1 - 0.75) ** 2) * math.log(0.75)
    assert float(L.focal_loss(logp, y)) == pytest.approx((t0 + t1) / 2)
    w = torch.tensor([1.0, 4.0], dtype=torch.float64)
    assert float(L.focal_loss(logp, y, w)) == pytest.approx((4 * t0 + t1) / 5)
    # gamma 0 is the weighted NLL
    assert float(L.focal_loss(logp, y, w, gamma=0.0)) == pytest.approx(
        float(L.weighted_nll(logp, y, w))
    )


def test_focal_factor_is_detached_and_paired_unweighted() -> None:
    z = torch.log(torch.tensor([[0.2, 0.8]], dtype=torch.float64)).requires_grad_(True)
    L.focal_loss(torch.log_softmax(z, 1), torch.tensor([1])).backward()
    # d/dz1 of -(0.2^2) log p1 with the factor constant: -(0.04) (1 - 0.8)
    assert z.grad is not None and float(z.grad[0, 1]) == pytest.approx(-0.04 * 0.2)
    logp, y = _logp([0.8, 0.25]), torch.tensor([1, 0])
    t0 = -((1 - 0.8) ** 2) * math.log(0.8)
    t1 = -((1 - 0.75) ** 2) * math.log(0.75)
    e = torch.zeros(2, 2, dtype=torch.float64)
    w = torch.tensor([1.0, 4.0], dtype=torch.float64)  # ignored by the paired focal
    got = L.stream_loss(L.LossConfig(kind="focal"), logp, y, w, e1=e, logp2=logp, y2=y, e2=e)
    assert float(got) == pytest.approx(0.09 * 2 * (t0 + t1) / 2)


def test_adcf_by_hand_and_its_temperature_limits() -> None:
    # logit differences z1 - z0 = log(p / (1 - p)): +-ln 4 for p = .8/.2, 0 for p = .5
    logp = _logp([0.8, 0.5, 0.2, 0.5])
    y = torch.tensor([1, 1, 0, 0])
    t = 0.5
    d = [1 / (1 + math.exp(-math.log(4) / t)), 0.5, 1 / (1 + math.exp(math.log(4) / t)), 0.5]
    want = 0.75 * ((1 - d[0]) + (1 - d[1])) / 2 + 0.25 * (d[2] + d[3]) / 2
    assert float(L.adcf_loss(logp, y, t)) == pytest.approx(want)
    # T = 1: the decision is p itself, the plain dcf; T -> 0: the hard DCF (ties at 0.5)
    assert float(L.adcf_loss(logp, y, 1.0)) == pytest.approx(float(L.dcf_loss(logp, y)))
    hard = 0.75 * (0 + 0.5) / 2 + 0.25 * (0 + 0.5) / 2
    assert float(L.adcf_loss(logp, y, 1e-4)) == pytest.approx(hard)
    assert L.ADCF_TEMPERATURE == 0.1 and L.LossConfig(kind="adcf").adcf_temperature == 0.1
    e = torch.zeros(4, 2, dtype=torch.float64)
    got = L.stream_loss(L.LossConfig(kind="adcf"), logp, y, None, e1=e, logp2=logp, y2=y, e2=e)
    assert float(got) == pytest.approx(0.09 * 2 * float(L.adcf_loss(logp, y, 0.1)))
    with pytest.raises(ValueError, match="adcf_temperature"):
        L.LossConfig(adcf_temperature=0.0)


def test_cb_weights_and_loss_by_hand() -> None:
    y_pool = np.array([0] * 6 + [1] * 2)
    b = 0.999
    f0, f1 = (1 - b) / (1 - b**6), 4 * (1 - b) / (1 - b**2)
    assert L.cb_weights(y_pool) == pytest.approx([f0, f1], rel=1e-6)
    assert L.loss_weights(y_pool, L.LossConfig(kind="cb")) == pytest.approx([f0, f1], rel=1e-6)
    assert L.loss_weights(y_pool, L.LossConfig()).tolist() == [1.0, 4.0]
    # beta 0: every factor is [1, 4]; an absent class counts as one item
    assert L.cb_weights(y_pool, beta=0.0).tolist() == [1.0, 4.0]
    assert L.cb_weights(np.zeros(3), beta=0.5) == pytest.approx([(0.5) / (1 - 0.125), 4.0])
    logp = _logp([0.8, 0.25, 0.5])
    y = torch.tensor([1, 0, 0])
    w = torch.tensor([f0, f1], dtype=torch.float64)
    # a plain mean over the 3 items, not the weight-normalised mean of weighted_nll
    want = (f1 * -math.log(0.8) + f0 * -math.log(0.75) + f0 * -math.log(0.5)) / 3
    assert float(L.cb_nll(logp, y, w)) == pytest.approx(want)
    e1 = torch.zeros(3, 2, dtype=torch.float64)
    e2 = torch.tensor([[0.3, 0.4]] * 3, dtype=torch.float64)  # d = 0.5: each pair adds 0.25
    y2 = torch.tensor([1, 1, 0])  # pairs 0, 2 same (d^2), 1 different ((1 - d)^2)
    logp2 = _logp([0.5, 0.5, 0.5])
    want2 = (f1 * math.log(2) * 2 + f0 * math.log(2)) / 3
    got = L.stream_loss(L.LossConfig(kind="cb"), logp, y, w, e1=e1, logp2=logp2, y2=y2, e2=e2)
    assert float(got) == pytest.approx(0.09 * (want + want2) + 3 * 0.25 / 2 / 3)
    with pytest.raises(ValueError, match="cb_beta"):
        L.LossConfig(kind="cb", cb_beta=1.0)
