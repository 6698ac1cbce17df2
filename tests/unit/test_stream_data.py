"""Stream data: LID splits and VTD sessions from pool stores, synthetic stores, the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iml_tui.data import stream_data as sd
from iml_tui.data.store import write_pool
from iml_tui.data.stream_synth import LidSynthConfig, VtdSynthConfig, synth_lid, synth_vtd
from iml_tui.engine.oracle import SKIPPED, Question, TruthOracle, answered
from iml_tui.errors import UserError

LID = LidSynthConfig(n_train=20, n_dev=30, n_test=10, features=(("ecapalang", 6), ("wavlm", 4)))


@pytest.fixture(scope="module")
def lid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    synth_lid(root, LID)
    return root


def test_lid_layout_and_concatenation(lid_root: Path) -> None:
    one = sd.load_lid_split(lid_root, ["ecapalang"], "dev")
    both = sd.load_lid_split(lid_root, ["ecapalang", "wavlm"], "dev")
    assert one.x.shape == (90, 6) and both.x.shape == (90, 10)
    assert both.class_list == ["ha", "yo", "bas"]
    assert np.bincount(both.classes).tolist() == [30, 30, 30]
    assert np.array_equal(both.x[:, :6], one.x)
    for i, sample_id in enumerate(both.ids):  # the id names the language
        assert sample_id.split("_")[2] == both.class_list[both.classes[i]]
    y = sd.binary_labels(both, "yo")
    assert y.sum() == 30 and set(np.unique(y)) == {0, 1}
    assert sd.lid_targets(both, "all") == ["ha", "yo", "bas"]
    assert sd.lid_targets(both, "bas") == ["bas"]
    with pytest.raises(UserError, match="not in the corpus"):
        sd.lid_targets(both, "fr")


def test_lid_synth_is_reproducible(tmp_path: Path, lid_root: Path) -> None:
    synth_lid(tmp_path, LID)
    a = sd.load_lid_split(tmp_path, ["wavlm"], "train")
    b = sd.load_lid_split(lid_root, ["wavlm"], "train")
    assert np.array_equal(a.x, b.x) and a.ids == b.ids


def _copy_split(
    src: Path, dst: Path, perm: np.ndarray | None = None, drop_last: bool = False
) -> None:
    t = sd.load_lid_split(src.parent.parent, [src.parent.name], src.stem)
    n = t.n - int(drop_last)
    idx = np.arange(n) if perm is None else perm[:n]
    lab = np.zeros((n, 1, len(t.class_list)), np.uint8)
    lab[np.arange(n), 0, t.classes[idx]] = 1
    write_pool(dst, t.x[idx][:, None, :], lab, t.class_list, [t.ids[i] for i in idx])


def test_feature_sets_are_aligned_by_id(lid_root: Path, tmp_path: Path) -> None:
    perm = np.random.default_rng(0).permutation(90)
    _copy_split(lid_root / "wavlm" / "dev.h5", tmp_path / "shuffled" / "dev.h5", perm)
    (tmp_path / "ecapalang").symlink_to(lid_root / "ecapalang")
    aligned = sd.load_lid_split(tmp_path, ["ecapalang", "shuffled"], "dev")
    ref = sd.load_lid_split(lid_root, ["ecapalang", "wavlm"], "dev")
    assert np.array_equal(aligned.x, ref.x)
    _copy_split(lid_root / "wavlm" / "dev.h5", tmp_path / "short" / "dev.h5", drop_last=True)
    with pytest.raises(UserError, match="different samples") as err:
        sd.load_lid_split(tmp_path, ["ecapalang", "short"], "dev")
    assert str(tmp_path / "short" / "dev.h5") in str(err.value)


def test_bad_lid_inputs_name_the_file(lid_root: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="feature root not found"):
        sd.load_lid_split(tmp_path / "nope", ["ecapalang"], "dev")
    with pytest.raises(UserError, match="feature file not found") as err:
        sd.load_lid_split(lid_root, ["xvectors"], "dev")
    assert "xvectors/dev.h5" in str(err.value)
    with pytest.raises(UserError, match="unknown LID split"):
        sd.load_lid_split(lid_root, ["ecapalang"], "valid")
    two_hot = np.ones((3, 1, 2), np.uint8)
    write_pool(
        tmp_path / "multi" / "dev.h5",
        np.zeros((3, 1, 2), np.float32),
        two_hot,
        ["a", "b"],
        ["x", "y", "z"],
    )
    with pytest.raises(UserError, match="exactly one") as err:
        sd.load_lid_split(tmp_path, ["multi"], "dev")
    assert "multi/dev.h5" in str(err.value)
    write_pool(
        tmp_path / "frames" / "dev.h5",
        np.zeros((3, 2, 2), np.float32),
        np.zeros((3, 2, 2), np.uint8),
        ["a", "b"],
        ["x", "y", "z"],
    )
    with pytest.raises(UserError, match="T = 2"):
        sd.load_lid_split(tmp_path, ["frames"], "dev")


def test_vtd_folder_and_single_file_layouts_agree(tmp_path: Path) -> None:
    cfg = VtdSynthConfig(envs=("rm1_mc20", "rm2_mc16", "hotel_mc19"), sessions=3, segments=40)
    synth_vtd(tmp_path / "a", cfg)
    synth_vtd(tmp_path / "b", VtdSynthConfig(**{**cfg.__dict__, "single_file": True}))
    a = sd.load_vtd_env(tmp_path / "a", ["wavlm"], "rm1_mc20")
    b = sd.load_vtd_env(tmp_path / "b", ["wavlm"], "rm1_mc20")
    assert a.sessions == b.sessions == ["rm1_mc20_s000", "rm1_mc20_s001", "rm1_mc20_s002"]
    assert np.array_equal(a.x, b.x) and np.array_equal(a.classes, b.classes) and a.ids == b.ids
    assert [len(s) for s in a.session_batches()] == [40, 40, 40]
    assert set(np.unique(a.classes)) == {0, 1}
    assert sd.list_vtd_envs(tmp_path / "a", "wavlm") == ["hotel_mc19", "rm1_mc20", "rm2_mc16"]
    assert sd.other_corpus_envs(tmp_path / "a", "wavlm", "rm1_mc20") == ["hotel_mc19"]
    assert sd.other_corpus_envs(tmp_path / "a", "wavlm", "hotel_mc19") == ["rm1_mc20", "rm2_mc16"]
    with pytest.raises(UserError, match="not found"):
        sd.load_vtd_env(tmp_path / "a", ["wavlm"], "rm9_mc1")


def test_draw_bootstrap_is_balanced_and_seeded() -> None:
    y = np.array([0] * 20 + [1] * 3)
    a = sd.draw_bootstrap(y, 8, np.random.default_rng(4))
    b = sd.draw_bootstrap(y, 8, np.random.default_rng(4))
    assert np.array_equal(a, b) and len(a) == 8
    assert y[a].sum() == 3  # only 3 targets exist: non-targets fill up
    y2 = np.arange(40) % 2
    assert y2[sd.draw_bootstrap(y2, 8, np.random.default_rng(0))].sum() == 4


def test_context_by_batches_pads_at_batch_edges() -> None:
    x = np.arange(6, dtype=np.float32)[:, None] + 1
    out = sd.context_by_batches(x, [np.array([0, 1, 2]), np.array([5, 4, 3])], 1)
    assert out[0].tolist() == [0, 1, 2] and out[2].tolist() == [2, 3, 0]
    assert out[4].tolist() == [6, 5, 4]  # neighbours in batch order (5, 4, 3)


def test_question_and_truth_oracle() -> None:
    truth = TruthOracle(np.array([0, 1, 1, 0, 1]))
    q = Question(
        items=np.array([4, 0]),
        why="al-query",
        pred=np.array([1, 1]),
        confidence=np.array([0.9, 0.6]),
        batch=2,
    )
    assert truth.answer(q).tolist() == [1, 0]
    assert truth.asked["al-query"] == 2
    with pytest.raises(ValueError, match="pred"):
        Question(items=np.array([1, 2]), why="cf-review", pred=np.array([1]))
    with pytest.raises(ValueError, match="kind"):
        Question(items=np.array([1]), why="guess")  # type: ignore[arg-type]
    keep, lab = answered(q, np.array([SKIPPED, 1]))
    assert keep.tolist() == [False, True] and lab.tolist() == [1]
    with pytest.raises(ValueError, match="labels"):
        answered(q, np.array([1]))
    with pytest.raises(ValueError, match="0, 1 or -1"):
        answered(q, np.array([2, 1]))
