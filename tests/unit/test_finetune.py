"""SL fine-tuning of CNN14 (SPEC A.5): augmentations, balanced cuts, loss, training and resume,
on the tiny generated SL division of tests/audio_corpora.py with a tiny-width CNN14."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from audio_corpora import SL_CLASSES, make_dcase_dev

from iml_tui.data.dcase import Event, prepare_dcase
from iml_tui.errors import UserError
from iml_tui.features import build_cnn14, get_encoder, save_checkpoint
from iml_tui.training.finetune import (
    BEST_FILE,
    NEGATIVE,
    STATE_FILE,
    BalancedCuts,
    FinetuneConfig,
    add_noise,
    apply_freq_stripes,
    cut_targets,
    draw_freq_stripes,
    evaluate_encoder,
    finetune_encoder,
    masked_weighted_bce,
    read_events,
    sl_folders,
)

torch.set_num_threads(1)

TINY = (4, 4, 8, 8, 8, 16)


def _cfg(**kw: object) -> FinetuneConfig:
    base: dict[str, object] = {
        "epochs": 2,
        "batch_size": 2,
        "steps_per_epoch": 2,
        "hidden": 16,
        "widths": TINY,
        "lr": 1e-2,
        "device": "cpu",
    }
    base.update(kw)
    return FinetuneConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sl_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sl")
    make_dcase_dev(root / "src")
    prepare_dcase(root / "src", root / "prep", "sl")
    return root / "prep"


# --- augmentation ------------------------------------------------------------------------------


def test_freq_stripes_count_width_and_rate() -> None:
    rng = np.random.default_rng(0)
    rows = draw_freq_stripes(2000, 64, rng, p=0.5, width=8, stripes=2)
    items: dict[int, int] = {}
    for i, s, w in rows:
        items[i] = items.get(i, 0) + 1
        assert 1 <= w <= 8 and s >= 0 and s + w <= 64
    assert set(items.values()) == {2}  # exactly 2 stripes per masked item
    assert 0.45 < len(items) / 2000 < 0.55  # p = 0.5
    widths = np.array([w for _, _, w in rows])
    assert set(widths.tolist()) == set(range(1, 9))  # every width 1..8 occurs
    assert abs(widths.mean() - 4.5) < 0.2  # uniform on 1..8
    x = torch.randn(3, 5, 64) + 10.0
    out = apply_freq_stripes(x, [(1, 3, 4), (1, 60, 4), (2, 0, 1)])
    zero = out == 0
    assert not zero[0].any()
    assert zero[1][:, 3:7].all() and zero[1][:, 60:].all() and int(zero[1].sum()) == 5 * 8
    assert zero[2][:, 0].all() and int(zero[2].sum()) == 5
    assert torch.equal(apply_freq_stripes(x, []), x)


def test_noise_level_range() -> None:
    rng = np.random.default_rng(1)
    x = (0.2 * np.random.default_rng(2).standard_normal((400, 16000))).astype(np.float32)
    y, level = add_noise(x, rng, p=0.5, lo=0.1, hi=0.3)
    hit = level > 0
    assert 0.4 < hit.mean() < 0.6
    assert np.array_equal(y[~hit], x[~hit])
    assert level[hit].min() >= 0.1 and level[hit].max() <= 0.3
    assert level[hit].min() < 0.12 and level[hit].max() > 0.28  # the whole range is used
    ratio = (y[hit] - x[hit]).std(axis=1) / x[hit].std(axis=1)
    np.testing.assert_allclose(ratio, level[hit], rtol=0.03)
    y2, level2 = add_noise(x, np.random.default_rng(1))  # seeded: reproducible
    assert np.array_equal(y, y2) and np.array_equal(level, level2)


# --- balanced cuts -----------------------------------------------------------------------------


def test_balanced_cut_probabilities_hand_computed() -> None:
    # piece 0: 30 s, class 0 events (1,3) (2,5) -> union (1,5): 4 s; UNK of class 1 (20,21).
    # piece 1: 12 s, class 1 event (6,6.5): 0.5 s; class 0 event (10,11): 1 s.
    # piece 2: 8 s, no events.
    events = [
        [Event(1, 3, 0, True), Event(2, 5, 0, True), Event(20, 21, 1, False)],
        [Event(6, 6.5, 1, True), Event(10, 11, 0, True)],
        [],
    ]
    cuts = BalancedCuts([30.0, 12.0, 8.0], events, 3, ["a", "b", "c"])
    # D_a = 4 + 1 = 5, D_b = 0.5, class c has no event: no category.
    # negative: piece 0: 30 - 4 - 1 (UNK) = 25; piece 1: 12 - 1.5 = 10.5; piece 2: 8 -> 43.5
    assert cuts.categories == ["a", "b", NEGATIVE]
    np.testing.assert_allclose(cuts.totals, [5.0, 0.5, 43.5])
    inv = np.array([1 / 5, 1 / 0.5, 1 / 43.5])
    np.testing.assert_allclose(cuts.probabilities, inv / inv.sum())
    rng = np.random.default_rng(0)
    draws = cuts.draw_many(rng, 6000)
    freq = np.array([sum(d.category == k for d in draws) for k in cuts.categories]) / 6000
    np.testing.assert_allclose(freq, cuts.probabilities, atol=0.015)
    durations = [30.0, 12.0, 8.0]
    for d in draws:
        dur = durations[d.piece]
        assert d.start >= 0.0 and (d.start + 10 <= dur + 1e-9 or d.start == 0.0)
        if d.category == "b":  # the cut holds the 0.5 s event of class b
            assert d.piece == 1 and d.start <= 6.5 and d.start + 10 >= 6.0
        if d.category == "a" and d.piece == 0:
            assert d.start <= 5.0
        if d.category == NEGATIVE and d.piece == 2:
            assert d.start == 0.0  # shorter than a cut: from its start, zero-padded


def test_balanced_cuts_on_the_prepared_sl_split(sl_data: Path) -> None:
    train_dir, _ = sl_folders(sl_data)
    by_piece = read_events(train_dir, SL_CLASSES)
    assert sorted(by_piece) == ["BV/bv_file_1", "HT/h1", "WMW/w_1"]
    pieces = ["BV/bv_file_1", "HT/h1", "WMW/w_1"]
    cuts = BalancedCuts([13.5, 1.8, 1.75], [by_piece[p] for p in pieces], 3, SL_CLASSES)
    # POS: Bird_one (1,3) (8,10) = 4 s; Hyena (1,1.8) = 0.8 s; Tachybaptus (.5,1.5) = 1 s.
    # negative: 13.5 - 4 - 1 (UNK 5-6) + 1.8 - 0.8 + 1.75 - 1 = 8.5 + 1 + 0.75 = 10.25 s.
    np.testing.assert_allclose(cuts.totals, [4.0, 0.8, 1.0, 10.25])
    inv = 1 / np.array([4.0, 0.8, 1.0, 10.25])
    np.testing.assert_allclose(cuts.probabilities, inv / inv.sum())


def test_cut_targets_pos_unk_and_slots() -> None:
    events = [
        Event(11.0, 12.0, 0, True),
        Event(14.0, 15.0, 1, False),
        Event(14.5, 14.6, 0, True),
        Event(25.0, 26.0, 1, True),
    ]
    y = cut_targets(events, 10.0, 2)
    assert y.shape == (32, 2) and y.dtype == np.int8
    # 1..2 s into the cut: slots k with [(k*10240-160)/32000, ((k+1)*10240-160)/32000] overlapping
    assert set(np.flatnonzero(y[:, 0] == 1)) == {3, 4, 5, 6, 14}
    assert set(np.flatnonzero(y[:, 1] == -1)) == {12, 13, 14, 15}
    assert not (y[:, 1] == 1).any()  # (25, 26) lies outside the cut


def test_masked_weighted_bce() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 32, 3, generator=g)
    y = (torch.rand(2, 32, 3, generator=g) < 0.2).to(torch.int8)
    flat = y.reshape(-1, 3).float()
    pw = (flat.shape[0] - flat.sum(0)) / (flat.sum(0) + 1e-5)
    want = F.binary_cross_entropy_with_logits(logits.reshape(-1, 3), flat, pos_weight=pw)
    torch.testing.assert_close(masked_weighted_bce(logits, y), want)
    y2 = y.clone()
    y2[0, :5, 1] = -1
    other = logits.clone()
    other[0, :5, 1] += 100.0  # masked entries do not count
    torch.testing.assert_close(masked_weighted_bce(logits, y2), masked_weighted_bce(other, y2))


# --- training ----------------------------------------------------------------------------------


def test_train_improves_and_writes_a_loadable_best_encoder(sl_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = finetune_encoder(
        sl_data, out, _cfg(epochs=4, batch_size=4, steps_per_epoch=3), from_scratch=True
    )
    losses = [h.train_loss for h in res.history]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert all(0.0 <= h.valid_map <= 1.0 and len(h.valid_ap) == 3 for h in res.history)
    best = max(res.history, key=lambda h: h.valid_map)
    assert res.best_epoch == min(h.epoch for h in res.history if h.valid_map == best.valid_map)
    assert res.best_path == out / BEST_FILE and res.best_path.is_file()
    enc = get_encoder("cnn14", checkpoint=res.best_path, device="cpu")
    assert enc.settings["widths"] == list(TINY) and enc.settings["normalisation"] == "checkpoint"
    emb = enc.encode([np.zeros(32000 * 10, np.float32)])
    assert emb.shape == (1, 32, 16)
    obj = torch.load(res.best_path, weights_only=True)
    assert obj["extra"]["class_list"] == SL_CLASSES and obj["extra"]["epoch"] == res.best_epoch
    ev = evaluate_encoder(res.best_path, sl_data, device="cpu")
    # valid pieces 6.5 / 9.2 / 10.25 s -> 1 + 1 + 2 clips; positive slots: Bird_one (3.5,4) -> 3,
    # Hyena (0,0.2) -> 1, Tachybaptus (0.25,1.25) (7.25,8.25) in clip 3 and (2.25,3.25) -> 12
    assert ev.class_list == SL_CLASSES and ev.clips == 4 and ev.positives == [3, 1, 12]
    assert ev.map == pytest.approx(res.best_valid_map, abs=1e-6)
    hist = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2, 3, 4]


def test_resume_continues_from_the_saved_epoch(sl_data: Path, tmp_path: Path) -> None:
    cfg = _cfg(epochs=3)
    full = finetune_encoder(sl_data, tmp_path / "full", cfg, from_scratch=True)

    class Stop(Exception):
        pass

    def stop_in_epoch_2(label: str, done: int, total: int) -> None:
        if label == "train steps" and done == cfg.steps_per_epoch + 1:
            raise Stop

    out = tmp_path / "cut"
    with pytest.raises(Stop):
        finetune_encoder(sl_data, out, cfg, from_scratch=True, progress=stop_in_epoch_2)
    assert torch.load(out / STATE_FILE, weights_only=True)["epoch"] == 1
    again = finetune_encoder(sl_data, out, cfg, from_scratch=True)
    assert again.resumed_from == 1 and again.epochs_run == 3
    for a, b in zip(full.history, again.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, abs=1e-6)
        assert a.valid_map == pytest.approx(b.valid_map, abs=1e-6)
    done = finetune_encoder(sl_data, out, cfg)  # nothing left: a no-op
    assert done.resumed_from == 3 and done.epochs_run == 3
    more = finetune_encoder(sl_data, out, _cfg(epochs=4))
    assert more.resumed_from == 3 and [h.epoch for h in more.history] == [1, 2, 3, 4]


def test_start_from_a_checkpoint_and_errors(sl_data: Path, tmp_path: Path) -> None:
    start = save_checkpoint(tmp_path / "start.pt", build_cnn14(TINY, seed=3))
    out = tmp_path / "run"
    res = finetune_encoder(sl_data, out, _cfg(epochs=1, steps_per_epoch=1), checkpoint=start)
    assert res.best_path.is_file()
    with pytest.raises(UserError, match=r"started from start\.pt"):
        finetune_encoder(sl_data, out, _cfg(epochs=2), from_scratch=True)
    with pytest.raises(UserError, match="--from-scratch"):
        finetune_encoder(sl_data, tmp_path / "x", _cfg())
    with pytest.raises(UserError, match="not both"):
        finetune_encoder(sl_data, tmp_path / "x", _cfg(), checkpoint=start, from_scratch=True)
    with pytest.raises(UserError, match="6 positive widths"):
        finetune_encoder(sl_data, tmp_path / "x", _cfg(widths=(4, 4)), from_scratch=True)
    with pytest.raises(UserError, match="no SL division"):
        finetune_encoder(tmp_path, tmp_path / "x", _cfg(), from_scratch=True)
    with pytest.raises(UserError, match="no classifier head"):
        evaluate_encoder(start, sl_data, device="cpu")
