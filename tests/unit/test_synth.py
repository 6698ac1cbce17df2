"""The synthetic pool generator: format, reproducibility, label structure, learnability."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from iml_tui.data.store import POOLED_KEY, PoolStore
from iml_tui.data.synth import (
    BLOCK_ROWS,
    PAPER_CLASSES,
    PAPER_TRAIN_CLIPS,
    PAPER_TRAIN_POSITIVES,
    SynthConfig,
    class_counts,
    site_recordings,
    synth_pools,
    synth_split,
)

TINY = SynthConfig(n_train=200, n_valid=120, n_test=120, t=8, d=32, seed=3)


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return synth_pools(tmp_path_factory.mktemp("synth"), TINY)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: np.asarray(f[k][()]) for k in ("embeddings", "labels", "ids", POOLED_KEY)}


def test_files_read_back_with_pool_store(pools: dict[str, Path]) -> None:
    assert set(pools) == {"train", "valid", "test"}
    for split, path in pools.items():
        assert path.name == f"{split}.h5" and path.exists()
        s = PoolStore(path)
        assert (s.n, s.t, s.d, s.c) == (TINY.size(split), 8, 32, 7)
        assert s.class_list == list(PAPER_CLASSES)
        emb = s.embeddings()
        assert emb.dtype == np.float32 and emb.shape == (s.n, 8, 32)
        assert np.isfinite(emb).all() and emb.min() >= 0  # post-ReLU-like features
        lab = s.frame_labels()
        assert lab.dtype == np.uint8 and lab.shape == (s.n, 8, 7) and lab.max() <= 1
        assert s.pooled().shape == (s.n, 32)
        assert len(set(s.ids)) == s.n
        assert s.attrs["encoder"] == "synth"
        assert s.attrs["frame_layout"] == "T frames per 10 s clip"
        assert s.attrs["synth_split"] == split
        assert json.loads(s.attrs["synth_config"])["seed"] == 3
        assert SynthConfig.from_json(s.attrs["synth_config"]) == TINY


def test_same_seed_gives_identical_arrays(pools: dict[str, Path], tmp_path: Path) -> None:
    again = synth_pools(tmp_path / "again", TINY)
    for split in pools:
        a, b = _arrays(pools[split]), _arrays(again[split])
        for key in a:
            assert np.array_equal(a[key], b[key]), (split, key)
    other = _arrays(synth_pools(tmp_path / "other", replace(TINY, seed=4))["train"])
    assert not np.array_equal(other["embeddings"], _arrays(pools["train"])["embeddings"])


def test_splits_use_different_streams(pools: dict[str, Path]) -> None:
    valid, test = _arrays(pools["valid"]), _arrays(pools["test"])
    assert not np.array_equal(valid["embeddings"], test["embeddings"])
    assert not np.array_equal(valid["labels"], test["labels"])


def test_block_wise_generation_matches_in_memory(tmp_path: Path) -> None:
    cfg = SynthConfig(n_train=BLOCK_ROWS + 150, n_valid=5, n_test=5, t=3, d=6, seed=1)
    seen: list[tuple[str, int, int]] = []
    paths = synth_pools(tmp_path, cfg, progress=lambda s, done, n: seen.append((s, done, n)))
    emb, lab, ids = synth_split(cfg, "train")
    stored = _arrays(paths["train"])
    assert np.array_equal(stored["embeddings"], emb)
    assert np.array_equal(stored["labels"], lab)
    assert [i.decode() if isinstance(i, bytes) else i for i in stored["ids"]] == ids
    assert ("train", BLOCK_ROWS, cfg.n_train) in seen
    assert ("train", cfg.n_train, cfg.n_train) in seen and seen[-1] == ("test", 5, 5)
    assert not list(tmp_path.glob("*.partial"))


def test_class_counts_follow_the_paper() -> None:
    cfg = SynthConfig()
    assert class_counts(cfg, PAPER_TRAIN_CLIPS).tolist() == list(PAPER_TRAIN_POSITIVES)
    small = class_counts(cfg, 200)
    assert small[2] == small[3] == 1  # the rare meerkat classes exist even in tiny pools
    assert small.sum() <= 200
    assert class_counts(replace(cfg, min_positives=0), 200)[3] == 0
    assert class_counts(cfg, 3).sum() <= 3


def test_clip_priors_and_rare_classes() -> None:
    cfg = replace(TINY, n_train=2000, label_noise=0.0)
    emb, lab, _ = synth_split(cfg, "train")
    clip = lab.max(axis=1)
    assert clip.sum(axis=0).tolist() == class_counts(cfg, 2000).tolist()
    rare = clip[:, 2:4].sum(axis=0)
    assert (rare >= 1).all() and (rare <= 0.002 * 2000).all()
    # label noise moves frame labels only: same embeddings, same clip counts, a few frames differ
    emb_n, lab_n, _ = synth_split(replace(cfg, label_noise=0.2), "train")
    assert np.array_equal(emb_n, emb)
    assert np.array_equal(lab_n.max(axis=1), clip)
    changed = (lab_n != lab).sum() / lab.sum()
    assert 0.02 < changed < 0.4


def test_one_class_per_clip_and_short_event_runs(pools: dict[str, Path]) -> None:
    lab = PoolStore(pools["train"]).frame_labels()
    clip = lab.max(axis=1)
    assert clip.sum(axis=1).max() == 1  # at most one positive class per clip
    pos = clip.any(axis=1)
    assert pos.any() and (~pos).sum() > 0.7 * len(pos)
    frames_on = lab.max(axis=2)[pos].sum(axis=1)
    assert frames_on.min() >= 1 and frames_on.mean() < 0.8 * TINY.t  # events, not whole clips


def test_overlap_puts_a_second_class_from_the_same_site() -> None:
    cfg = replace(TINY, n_train=600, overlap=0.5, label_noise=0.0)
    _, lab, _ = synth_split(cfg, "train")
    clip = lab.max(axis=1)
    two = clip[clip.sum(axis=1) == 2]
    assert len(two) > 0
    # the second class shares the first one's site when the site has another class
    sites = np.asarray(cfg.sites)
    alone = {s for s in sites.tolist() if (sites == s).sum() == 1}
    for row in two:
        pair = {int(sites[c]) for c in np.flatnonzero(row)}
        assert len(pair) == 1 or pair & alone


def test_common_sites_have_more_recordings_than_rare_ones() -> None:
    cfg = SynthConfig()
    n_rec = site_recordings(cfg)
    assert set(n_rec) == set(cfg.sites)
    assert max(n_rec.values()) == cfg.clusters_per_site
    assert n_rec[cfg.sites[2]] == 2  # the meerkat site: rare classes live in few recordings
    assert n_rec[cfg.sites[0]] > n_rec[cfg.sites[4]] > n_rec[cfg.sites[2]]
    assert site_recordings(replace(cfg, clusters_per_site=1)) == dict.fromkeys(n_rec, 1)
    # positive clips come from their site's recordings only
    lab_cfg = replace(TINY, n_train=1500, label_noise=0.0)
    _, lab, ids = synth_split(lab_cfg, "train")
    clip = lab.max(axis=1)
    for c, site in enumerate(cfg.sites):
        recs = {ids[i].split("@")[0] for i in np.flatnonzero(clip[:, c])}
        assert 1 <= len(recs) <= n_rec[site], (c, recs)


def test_pools_are_learnable_but_not_trivial() -> None:
    """A linear probe on max-pooled, normalised clips beats chance by far but is not perfect."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    cfg = SynthConfig(n_train=1000, n_valid=5, n_test=600, t=8, d=32, seed=0)

    def pooled(split: str) -> tuple[np.ndarray, np.ndarray]:
        emb, lab, _ = synth_split(cfg, split)
        x = emb.max(axis=1)
        return x / np.linalg.norm(x, axis=1, keepdims=True), lab.max(axis=1)

    (xtr, ytr), (xte, yte) = pooled("train"), pooled("test")
    aps, common = [], []
    for c in range(ytr.shape[1]):
        if ytr[:, c].sum() == 0 or yte[:, c].sum() == 0:
            continue
        clf = LogisticRegression(max_iter=300, class_weight="balanced").fit(xtr, ytr[:, c])
        ap = float(average_precision_score(yte[:, c], clf.decision_function(xte)))
        aps.append(ap)
        if yte[:, c].mean() >= 0.01:  # common classes: stable enough to bound one by one
            common.append(ap)
            assert ap > 4 * yte[:, c].mean()
    assert len(common) == 3
    # a linear clip-level probe is weaker than the frame MLP: each class sounds different in each
    # of its recordings (site_var), and confusers resemble it
    assert 0.2 < np.mean(aps) < 0.9
    assert 0.3 < np.mean(common) < 0.9


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        SynthConfig(priors=(0.5,))
    with pytest.raises(ValueError):
        SynthConfig(label_noise=1.5)
    with pytest.raises(ValueError):
        SynthConfig(snr=(0.0, 1.0))
    with pytest.raises(ValueError):
        SynthConfig(n_train=0)
    with pytest.raises(ValueError):
        SynthConfig(confuser_mix=(0.8, 0.3))
    with pytest.raises(ValueError):
        SynthConfig(n_confusers=0)
