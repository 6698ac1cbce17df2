"""Training without a labelled validation set, and pools whose labels are partly unknown."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from labelling_data import make_audio_pool, make_project

from iml_tui.data.store import PoolStore, write_pool
from iml_tui.engine.metrics import frame_map
from iml_tui.engine.self_validated import bootstrap_map_std, train_self_validated
from iml_tui.engine.session import Session
from iml_tui.engine.trainer import TrainConfig, predict_frames
from iml_tui.errors import UserError

CFG = TrainConfig(
    hidden=16,
    max_epochs=40,
    batch_size=16,
    lr=3e-3,
    min_lr=1e-4,
    lr_patience=2,
    threads=1,
    device="cpu",
)


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 4, 2), np.float32)
    y[:, 1:3, 0] = (rng.random(n) < 0.5)[:, None]
    y[:, 2:, 1] = (rng.random(n) < 0.4)[:, None]
    pattern = np.random.default_rng(99).normal(size=(2, 8)).astype(np.float32) * 2
    x = rng.normal(size=(n, 4, 8)).astype(np.float32) + y @ pattern
    return x, y


def test_out_of_fold_estimate_tracks_held_out_truth() -> None:
    x, y = _separable(60, 0)
    sv = train_self_validated(x, y, CFG, seed=0)
    assert sv.k == 5 and sv.oof.n_labels == 60 and 1 <= sv.epochs <= CFG.max_epochs
    assert sv.oof.scores.shape == y.shape
    tx, ty = _separable(200, 1)
    true_map, _ = frame_map(predict_frames(sv.state_dict, tx, "cpu"), ty)
    assert abs(sv.est_map - true_map) < 0.1
    assert 0.0 < sv.oof.threshold < 1.0 and 0.0 <= sv.est_map_std < 0.1


def test_bootstrap_std_is_zero_for_perfect_scores_and_needs_two_labels() -> None:
    y = np.zeros((40, 2, 1), np.float32)
    y[:20] = 1
    assert bootstrap_map_std(y.copy(), y) == 0.0
    noisy = np.random.default_rng(0).random(y.shape).astype(np.float32)
    assert bootstrap_map_std(noisy, y) > 0.01
    with pytest.raises(UserError, match="at least 2"):
        train_self_validated(np.zeros((1, 2, 3), np.float32), np.zeros((1, 2, 1)), CFG)


@pytest.fixture
def recordings_pool(tmp_path: Path) -> Path:
    """The audio pool without valid.h5, its labels known for the first file's clips only."""
    pool = make_audio_pool(tmp_path / "src")
    store = PoolStore(pool / "train.h5")
    known = np.array([i.startswith("rec0.wav@") for i in store.ids])
    out = tmp_path / "pool"
    out.mkdir()
    write_pool(
        out / "train.h5",
        store.embeddings(),
        store.frame_labels(),
        store.class_list,
        store.ids,
        _meta(store),
        known=known,
    )
    shutil.rmtree(pool)
    return out


def _meta(store: PoolStore):  # type: ignore[no-untyped-def]
    from iml_tui.data.store import PoolMeta

    a = store.attrs
    return PoolMeta(
        encoder=str(a["encoder"]),
        sample_rate=int(a["sample_rate"]),
        clip_seconds=float(a["clip_seconds"]),
        hop_seconds=float(a["hop_seconds"]),
        extra={"source_split": a.get("source_split", "")},
    )


def test_store_refuses_unknown_labels(recordings_pool: Path) -> None:
    store = PoolStore(recordings_pool / "train.h5")
    assert store.has_known_mask and not store.all_known and store.n_known == 5
    with pytest.raises(UserError, match="unknown is not negative"):
        store.frame_labels()
    with pytest.raises(UserError, match=r"first: 'rec1.wav@0.000'"):
        store.clip_labels(np.array([0, 5, 6]))
    assert store.clip_labels(np.arange(5)).shape == (5, 3)


def test_session_imports_known_labels_once_and_trains_out_of_fold(
    tmp_path: Path, recordings_pool: Path
) -> None:
    make_project(tmp_path / "proj", recordings_pool, budgets=[8, 12])
    store = PoolStore(recordings_pool / "train.h5")
    with Session.open(tmp_path / "proj", "ana") as s:
        p = s.progress()
        assert p.labelled == 5
        with pytest.raises(UserError, match="unknown is not negative"):
            s.engine.truth(7)
        lab, y = s.engine.targets(s._fold.labelled())
        assert sorted(lab.tolist()) == [0, 1, 2, 3, 4]
        # imported clips keep their frame extents; the first frame of every clip is background
        ty, weak = s.engine.frame_targets(lab, y, store.t)
        np.testing.assert_array_equal(ty, store.frame_labels(allow_unknown=True)[lab])
        assert not weak.any()  # annotated extents train strongly
        y2 = y.copy()
        y2[0] = 1 - y2[0]  # the annotator changed clip 0: its clip labels on every frame
        ty2, weak2 = s.engine.frame_targets(lab, y2, store.t)
        np.testing.assert_array_equal(ty2[0], np.repeat(y2[0][None], store.t, axis=0))
        assert weak2.tolist() == [True, False, False, False, False]
        assert s.retrain_now()
        status = s.model_status()
        assert "estimated from 5 labels" in status.score_name
        assert status.score is not None and 0.0 <= status.score <= 1.0
        assert s.learning_curve().metric.startswith("estimated mAP")
    with Session.open(tmp_path / "proj", "bo") as s:
        assert s.progress().labelled == 5  # not imported twice
