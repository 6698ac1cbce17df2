"""The original's options that the stream paradigm also has (SPEC D.7), each against a value
worked out by hand: dsmax_mult / learn_mult / learn_error_weight, auto_mult, monitor / mode,
schedule_lr / lrs_patience, load_best, combo-rand / combo-clf, separate_class_al, and the combos
that bypass adapt_distr (SPEC D.4)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.dummy import DummyClassifier

from iml_tui.config import StreamConfig, config_from_mapping
from iml_tui.data.stream_synth import LidSynthConfig, synth_lid
from iml_tui.engine.losses import (
    LossConfig,
    LossParams,
    class_weights,
    dcf_loss,
    imlm_loss,
    stream_loss,
)
from iml_tui.engine.models.comp_class import CompClassModel, StreamFitConfig, fit_stream_model
from iml_tui.engine.paradigms.stream import (
    run_stream,
    separate_class_queries,
    validate_config,
)
from iml_tui.engine.strategies.stream_queries import switch_method
from iml_tui.errors import UserError

torch.set_num_threads(1)

# two items: target probabilities 0.2 (a target) and 0.7 (a non-target)
LOGP = torch.log(torch.tensor([[0.8, 0.2], [0.3, 0.7]]))
Y = torch.tensor([1, 0])


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_dsmax_mult_sharpens_the_dcf_and_imlm_probabilities() -> None:
    # softmax(2 p) over the two classes: q1 = sigmoid(2 (p1 - p0))
    q_a, q_b = _sig(2 * (0.2 - 0.8)), _sig(2 * (0.7 - 0.3))
    assert q_a == pytest.approx(0.231475, abs=1e-6) and q_b == pytest.approx(0.689974, abs=1e-6)
    k = torch.tensor(2.0)
    want_dcf = 0.75 * (1 - q_a) + 0.25 * q_b
    assert float(dcf_loss(LOGP, Y, 0.75, k)) == pytest.approx(want_dcf, abs=1e-6)
    # imlm: E[FP] / B + E[FN] / P
    assert float(imlm_loss(LOGP, Y, k)) == pytest.approx(q_b / 2 + (1 - q_a), abs=1e-6)
    # no sharpening: the plain probabilities
    assert float(dcf_loss(LOGP, Y)) == pytest.approx(0.75 * 0.8 + 0.25 * 0.7, abs=1e-6)
    assert float(dcf_loss(LOGP, Y, 0.5)) == pytest.approx(0.5 * 0.8 + 0.5 * 0.7, abs=1e-6)


def test_loss_params_learn_only_when_asked_and_clamp_the_fnr_weight() -> None:
    plain = LossParams(LossConfig(kind="dcf", dsmax_mult=2.0))
    assert not plain.mult.requires_grad and not plain.fnr_weight.requires_grad
    cfg = LossConfig(kind="dcf", dsmax_mult=2.0, learn_mult=True, learn_error_weight=True)
    assert cfg.learned and not LossConfig(kind="imlm", learn_error_weight=True).learned
    lp = LossParams(cfg, {"mult": 1.5, "fnr_weight": 2.0})
    e = torch.zeros(2, 3)
    loss = stream_loss(cfg, LOGP, Y, None, e1=e, logp2=LOGP, y2=Y, e2=e, params=lp)
    assert float(lp.fnr_weight.detach()) == pytest.approx(0.95)  # clamped before the forward
    q_a, q_b = _sig(3 * (0.2 - 0.8)), _sig(3 * (0.7 - 0.3))  # k = 2 x 1.5
    one = 0.95 * (1 - q_a) + 0.05 * q_b
    # 0.09 (L(x1) + L(x2)) + contrastive; each item paired with itself: distance 0, same class
    assert float(loss.detach()) == pytest.approx(0.09 * 2 * one, abs=1e-6)
    loss.backward()
    assert lp.mult.grad is not None and float(lp.mult.grad) != 0.0
    # d loss / d a = 0.18 (E[FNR] - E[FPR])
    assert float(lp.fnr_weight.grad) == pytest.approx(0.18 * ((1 - q_a) - q_b), abs=1e-6)
    assert lp.state() == {"mult": 1.5, "fnr_weight": pytest.approx(0.95)}


def test_auto_mult_scales_the_inverse_target_weight() -> None:
    y = np.array([0, 0, 0, 1])
    # 1 / n_c = [1/3, 1], target x 2 -> [1/3, 2], scaled to sum 2: [2/7, 12/7]
    w = class_weights(y, "inverse", auto_mult=2.0)
    assert w == pytest.approx([2 / 7, 12 / 7], abs=1e-6)
    assert class_weights(y, "inverse") == pytest.approx([0.5, 1.5], abs=1e-6)


def _pool(n: int = 40, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    x = (r.normal(size=(n, d)) + 1.5 * y[:, None]).astype(np.float32)
    return x, y


def _model() -> CompClassModel:
    return CompClassModel(5, comp_hidden=(8,), emb_dim=4, cls_hidden=(8,), seed=3)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_schedule_lr_drops_as_reduce_on_plateau_would(mode: str) -> None:
    x, y = _pool()
    cfg = StreamFitConfig(
        lr=1e-2,
        batch_size=16,
        patience=100,
        max_epochs=8,
        mode=mode,
        schedule_lr=True,
        lrs_patience=1,
    )
    res = fit_stream_model(_model(), x, y, cfg, np.random.default_rng(0))
    # ReduceLROnPlateau(mode, patience 1, threshold 0, factor 0.1) replayed on the epoch losses
    sign = 1.0 if mode == "min" else -1.0
    lr, best, bad = 1e-2, math.inf, 0
    for v in res.monitored:
        if sign * v < best:
            best, bad = sign * v, 0
        else:
            bad += 1
        if bad > 1:
            lr, bad = lr * 0.1, 0
    assert res.lr == pytest.approx(lr)
    if mode == "max":  # the loss falls, so in max mode it never improves after epoch 1
        assert res.lr < 1e-2


def test_monitor_accuracy_in_max_mode_is_the_item_share_decided_right() -> None:
    x, y = _pool()
    cfg = StreamFitConfig(
        lr=1e-2, batch_size=16, patience=2, max_epochs=30, monitor="train/acc", mode="max"
    )
    res = fit_stream_model(_model(), x, y, cfg, np.random.default_rng(0))
    assert all(0.0 <= v <= 1.0 and v * 40 == pytest.approx(round(v * 40)) for v in res.monitored)
    if res.stop_reason == "patience":  # the last 2 epochs did not beat the best before them
        best_before = max(res.monitored[:-2])
        assert all(v <= best_before for v in res.monitored[-2:])
    with pytest.raises(ValueError, match="monitor"):
        StreamFitConfig(monitor="val/loss")


def test_load_best_ends_with_the_weights_of_the_best_epoch() -> None:
    x, y = _pool()
    base: dict[str, Any] = {"lr": 3e-2, "batch_size": 16, "patience": 4}
    a = _model()
    res = fit_stream_model(
        a, x, y, StreamFitConfig(max_epochs=25, load_best=True, **base), np.random.default_rng(5)
    )
    best = int(np.argmin(res.monitored)) + 1
    assert best < res.epochs or res.stop_reason == "max_epochs"
    # the same fit stopped at the best epoch: the same randomness up to there, the same weights
    b = _model()
    fit_stream_model(b, x, y, StreamFitConfig(max_epochs=best, **base), np.random.default_rng(5))
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka


def test_combo_rand_flips_a_coin_and_combo_clf_asks_the_classifier() -> None:
    logits = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    flips = np.random.default_rng(7).integers(2, size=5)
    rng = np.random.default_rng(7)
    got = [switch_method("combo-rand", ("smax", "necs"), logits, 0, 0, rng) for _ in range(5)]
    assert got == [("smax", "necs")[int(f)] for f in flips]

    class Seen:
        def __init__(self, answer: int) -> None:
            self.answer, self.x = answer, np.zeros(0)

        def predict(self, x: np.ndarray) -> np.ndarray:
            self.x = x
            return np.array([self.answer])

    clf = Seen(1)
    assert switch_method("combo-clf", ("smax", "necs"), logits, 12, 8, None, clf) == "necs"
    # mean max softmax (0.5 + 0.75) / 2; mean -logsumexp -(ln 2 + ln 4) / 2; labelled + n_q
    assert clf.x == pytest.approx(np.array([[0.625, -math.log(8.0) / 2, 20.0]]))
    assert switch_method("combo-clf", ("ent", "rand"), logits, 0, 0, None, Seen(0)) == "ent"
    with pytest.raises(UserError, match="exactly two"):
        switch_method("combo-rand", ("smax",), logits, 0, 0, rng)


def test_separate_class_queries_by_hand() -> None:
    ranking = np.arange(10)
    pred = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    # p 0.5, N_t 2, N_n 6: L_t = (4 - 2) / 0.5 = 4 -> at most the 3 predicted targets;
    # then N_t 5: L_n = (5.5 - 6) / 0.5 = -1 -> 0 (min_samples 2 already met); 2 carry over
    got = separate_class_queries(ranking, pred, 5, 0.5, 2, 6, 2)
    assert got.tolist() == [0, 2, 5]
    # p 0.25, N_t 1, N_n 3: L_t = 0 -> min_samples 2; N_t 3: L_n = (4.5 - 3) / 0.25 = 6 -> 2 left
    assert separate_class_queries(ranking, pred, 4, 0.25, 1, 3, 2).tolist() == [0, 2, 1, 3]
    # p 0.2, N_t 0, N_n 10: L_t = 2 / 0.8 = 2.5 -> 2 (half to even); N_t 2:
    # L_n = (0.8 x 12 - 10) / 0.2 = -2 -> 0
    assert separate_class_queries(ranking, pred, 8, 0.2, 0, 10, 0).tolist() == [0, 2]
    # without adapt_distr: the top of the budget
    assert separate_class_queries(ranking, pred, 3, None, 0, 0, 2).tolist() == [0, 1, 2]


SMALL: dict[str, Any] = {
    "comp_hidden": 16,
    "embed_dim": 8,
    "class_hidden": 16,
    "samples_per_batch": 60,
    "max_epochs": 6,
    "patience": 3,
    "batch_size": 64,
    "lr": 3e-3,
    "seed": 1,
}


@pytest.fixture(scope="module")
def lid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    synth_lid(root, LidSynthConfig(n_train=30, n_dev=60, n_test=10, features=(("ecapalang", 8),)))
    return root


def _cfg(root: Path, **kw: Any) -> StreamConfig:
    return StreamConfig(feat_root=str(root), **{**SMALL, **kw})


def test_separate_class_al_carries_the_unspent_budget(lid_root: Path, tmp_path: Path) -> None:
    rows = run_stream(
        _cfg(lid_root, separate_class_al=True, adapt_distr=0.5, n_queries=4), "ha", tmp_path
    )
    spent = 0
    for b, r in enumerate(rows):
        assert r.n_al <= 4 * (b + 1) - spent  # never more than the budget so far
        spent += r.n_al
    plain = run_stream(_cfg(lid_root, separate_class_al=True, n_queries=4), "ha", tmp_path / "p")
    assert [r.n_al for r in plain] == [4, 4, 4]  # no adapt_distr: the whole budget each batch


def test_split_bypasses_adapt_distr(lid_root: Path, tmp_path: Path) -> None:
    a = run_stream(_cfg(lid_root, al_method="split", adapt_distr=0.9), "ha", tmp_path / "a")
    b = run_stream(_cfg(lid_root, al_method="split"), "ha", tmp_path / "b")
    assert [r.as_dict() for r in a] == [r.as_dict() for r in b]


def test_the_new_options_run_in_the_loop(lid_root: Path, tmp_path: Path) -> None:
    clf = tmp_path / "clf.p"
    dummy = DummyClassifier(strategy="constant", constant=1).fit([[0, 0, 0], [1, 1, 1]], [0, 1])
    clf.write_bytes(pickle.dumps(dummy))
    rows = run_stream(
        _cfg(
            lid_root,
            al_method="combo-clf",
            combo_clf=str(clf),
            loss="dcf",
            dsmax_mult=2.0,
            learn_mult=True,
            learn_error_weight=True,
            monitor="train/acc",
            mode="max",
            schedule_lr=True,
            lrs_patience=1,
            load_best=True,
        ),
        "ha",
        tmp_path / "run",
    )
    assert [r.n_al for r in rows] == [8, 8, 8]
    rows2 = run_stream(
        _cfg(lid_root, al_method="combo-rand", class_weights="inverse", auto_mult=3.0),
        "ha",
        tmp_path / "run2",
    )
    assert len(rows2) == 3


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({"learn_mult": True}, "dcf and imlm"),
        ({"dsmax_mult": 1.0, "loss": "cb"}, "dcf and imlm"),
        ({"learn_error_weight": True, "loss": "imlm"}, "the dcf loss"),
        ({"auto_mult": 2.0}, "inverse"),
        ({"separate_class_al": True, "drift": "adwin"}, "not drift"),
        ({"separate_class_al": True, "adapt_distr": 1.0}, "strictly between"),
        ({"al_method": "combo-clf"}, "classifier file"),
        ({"al_method": "combo-rand", "combo": ["smax", "ent", "necs"]}, "two methods"),
    ],
)
def test_bad_combinations_are_user_errors(keys: dict[str, Any], match: str) -> None:
    with pytest.raises(UserError, match=match):
        validate_config(StreamConfig(**keys))


def test_config_tables_check_the_new_keys() -> None:
    for key, value in [
        ("dsmax_mult", -1),
        ("auto_mult", 0),
        ("lrs_patience", -1),
        ("monitor", "val/loss"),
        ("mode", "up"),
    ]:
        with pytest.raises(UserError, match=key):
            config_from_mapping(StreamConfig, {key: value}, "test")
    cfg = config_from_mapping(StreamConfig, {"monitor": "train/acc", "mode": "max"}, "test")
    assert (cfg.monitor, cfg.mode) == ("train/acc", "max")


def test_the_forest_before_and_after_learning() -> None:
    from iml_tui.engine.models.arf import ArfDetector

    m = ArfDetector(3, seed=1)
    x = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    assert m.logits(torch.from_numpy(x)).numpy() == pytest.approx(np.log(0.5))
    m.learn(x[:1], np.array([0]))  # one class seen: the other at probability 0 (floor 1e-7)
    assert m.logits(torch.from_numpy(x)).numpy()[:, 1] == pytest.approx(np.log(1e-7))
    copy = ArfDetector(3, seed=9)
    copy.load_state_dict(m.state_dict())
    r = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert np.array_equal(copy.proba(r), m.proba(r))
    m.reset_parameters()
    assert m.proba(x) == pytest.approx(0.5)


def test_fit_arf_learns_every_item_and_stops_on_stalled_accuracy() -> None:
    from iml_tui.engine.models.arf import ArfDetector, fit_arf

    x, y = _pool(40, 5)
    m = ArfDetector(5, seed=2)
    res = fit_arf(
        m, x, y, StreamFitConfig(batch_size=16, patience=2, max_epochs=50), np.random.default_rng(0)
    )
    assert m.forest.n_models == 10 and res.epochs == len(res.monitored)
    # patience 2: stops after two epochs that do not beat the best accuracy before them
    assert res.stop_reason == "patience"
    assert max(res.monitored[-2:]) <= max(res.monitored[:-2])
    assert all(v * 40 == pytest.approx(round(v * 40)) for v in res.monitored)
    assert (m.proba(x).argmax(axis=1) == y).mean() >= 0.9  # the clusters are 3 sd apart


def test_ensemble_runs_the_stream_and_refuses_gradient_methods(
    lid_root: Path, tmp_path: Path
) -> None:
    rows = run_stream(_cfg(lid_root, ensemble=True, n_queries=4, patience=2), "ha", tmp_path)
    assert [r.n_al for r in rows] == [4, 4, 4]
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["_extra_state"].dtype == torch.uint8
    for keys in ({"al_method": "egl"}, {"al_method": "rank", "combo": ["smax", "pert"]}):
        with pytest.raises(UserError, match="gradients"):
            validate_config(StreamConfig(ensemble=True, **keys))
    with pytest.raises(UserError, match="load_best"):
        validate_config(StreamConfig(ensemble=True, load_best=True))
