"""Metrics against sklearn, hand-computed cases and a brute-force threshold scan."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from iml_tui.engine.metrics import (
    average_precision,
    best_global_threshold,
    default_rare_classes,
    f1_per_class,
    frame_map,
    mean_f1,
    rare_found,
    threshold_grid,
)


def _random_case(rng: np.random.Generator, m: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    scores = rng.integers(0, 6, m) / 5.0 if ties else rng.random(m)
    targets = (rng.random(m) < rng.uniform(0.05, 0.6)).astype(np.int64)
    return scores, targets


# --- average precision ------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_average_precision_matches_sklearn(ties: bool) -> None:
    rng = np.random.default_rng(1 + ties)
    checked = 0
    for _ in range(150):
        scores, targets = _random_case(rng, int(rng.integers(1, 60)), ties)
        if targets.sum() == 0:
            assert math.isnan(average_precision(scores, targets))
            continue
        expected = average_precision_score(targets, scores)
        assert average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)
        checked += 1
    assert checked > 100


def test_average_precision_float32_scores_with_ties() -> None:
    rng = np.random.default_rng(5)
    scores = (rng.integers(0, 50, 3000) / 49.0).astype(np.float32)
    targets = (rng.random(3000) < 0.1).astype(np.uint8)
    expected = average_precision_score(targets, scores)
    assert average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)


def test_average_precision_by_hand() -> None:
    # Ranked 1,0,1,0: positives at ranks 1 and 3 -> (1/1 + 2/3) / 2.
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == (
        pytest.approx(0.8333333333333334)
    )
    # Tie between a positive and a negative at 0.5: points (R=.5, P=1), (R=1, P=2/3).
    assert average_precision(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])) == (
        pytest.approx(0.8333333333333334)
    )
    # Everything tied: one operating point, precision 1/4.
    assert average_precision(np.full(4, 0.5), np.array([1, 0, 0, 0])) == pytest.approx(0.25)
    # Positive ranked last: P at recall 1 is 1/3.
    assert average_precision(np.array([0.3, 0.2, 0.1]), np.array([0, 0, 1])) == (
        pytest.approx(1 / 3)
    )
    # Perfect ranking.
    assert average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0])) == 1.0
    # No positive.
    assert math.isnan(average_precision(np.array([0.9, 0.1]), np.array([0, 0])))


def test_average_precision_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        average_precision(np.zeros(3), np.zeros(4))


# --- frame mAP --------------------------------------------------------------------------------


def test_frame_map_matches_sklearn_per_column_with_nan_as_zero() -> None:
    rng = np.random.default_rng(3)
    n, t, c = 20, 4, 5
    scores = rng.random((n, t, c)).astype(np.float32)
    scores[..., 1] = np.round(scores[..., 1] * 3) / 3  # heavy ties
    targets = (rng.random((n, t, c)) < 0.2).astype(np.uint8)
    targets[..., 2] = 0  # all-zero column -> AP 0
    targets[..., 3] = (scores[..., 3] > 0.5).astype(np.uint8)  # perfect scores -> AP 1
    flat_s, flat_t = scores.reshape(-1, c), targets.reshape(-1, c)
    expected = np.array(
        [
            average_precision_score(flat_t[:, j], flat_s[:, j]) if flat_t[:, j].any() else 0.0
            for j in range(c)
        ]
    )
    mean, per_class = frame_map(scores, targets)
    np.testing.assert_allclose(per_class, expected, atol=1e-12)
    assert per_class[2] == 0.0
    assert per_class[3] == 1.0
    assert mean == pytest.approx(expected.mean(), abs=1e-12)
    # (M, C) input gives the same.
    mean2, per_class2 = frame_map(flat_s, flat_t)
    assert mean2 == mean
    np.testing.assert_array_equal(per_class2, per_class)


def test_frame_map_by_hand() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    targets = np.array([[1, 0], [0, 0], [1, 0], [0, 1]])
    mean, per_class = frame_map(scores, targets)
    # class 0: (1 + 2/3) / 2 = 0.8333...; class 1: single positive ranked first -> 1.
    np.testing.assert_allclose(per_class, [0.8333333333333334, 1.0])
    assert mean == pytest.approx(0.9166666666666667)


def test_frame_map_bad_shapes() -> None:
    with pytest.raises(ValueError):
        frame_map(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))
    with pytest.raises(ValueError):
        frame_map(np.zeros(4), np.zeros(4))


# --- F1 ---------------------------------------------------------------------------------------


def test_f1_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    scores = np.round(rng.random((300, 4)), 2)  # values land exactly on thresholds
    targets = (rng.random((300, 4)) < 0.3).astype(np.uint8)
    targets[:, 3] = 0
    for thr in (0.0, 0.3, 0.5, 0.77, 1.0):
        expected = f1_score(targets, (scores >= thr).astype(int), average=None, zero_division=0)
        got = f1_per_class(scores, targets, thr)
        np.testing.assert_allclose(got, expected, atol=1e-12)
        assert mean_f1(scores, targets, thr) == pytest.approx(float(np.mean(expected)))


def test_f1_by_hand() -> None:
    scores = np.array([[0.9, 0.2], [0.5, 0.6], [0.4, 0.1], [0.1, 0.0]])
    targets = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    # class 0 at 0.5: pred [1,1,0,0] -> TP 1, FP 1, FN 1 -> 2/4; class 1: FP 1, no positive -> 0.
    np.testing.assert_allclose(f1_per_class(scores, targets, 0.5), [0.5, 0.0])
    # At 0.95 nothing predicted: class 0 has FN 2 -> 0; class 1 has 0/0 -> 0.
    np.testing.assert_allclose(f1_per_class(scores, targets, 0.95), [0.0, 0.0])
    # score == threshold counts as positive.
    np.testing.assert_allclose(f1_per_class(scores, targets, 0.4), [0.8, 0.0])
    assert mean_f1(scores, targets, 0.5) == pytest.approx(0.25)


def test_f1_accepts_clip_frame_layout() -> None:
    scores = np.array([[[0.9, 0.2], [0.5, 0.6]], [[0.4, 0.1], [0.1, 0.0]]])
    targets = np.array([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])
    np.testing.assert_allclose(f1_per_class(scores, targets, 0.5), [0.5, 0.0])


# --- global threshold -------------------------------------------------------------------------


def _brute_force_threshold(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """The coarse-to-fine scan written out plainly, scored with sklearn."""

    def score(thr: float) -> float:
        pred = (scores.astype(np.float64) >= thr).astype(int)
        return float(np.mean(f1_score(targets, pred, average=None, zero_division=0)))

    best_t = 0.5
    best_f1 = -1.0
    for step, half, dec in ((0.1, 4, 1), (0.01, 9, 2), (0.001, 9, 3)):
        grid = [round(best_t + k * step, dec) for k in range(-half, half + 1)]
        grid = [g for g in grid if 0.0 < g < 1.0]
        values = [score(g) for g in grid]
        top = max(values)
        k = next(i for i, v in enumerate(values) if abs(v - top) < 1e-12)  # lowest on ties
        best_t, best_f1 = grid[k], values[k]
    return best_t, best_f1


def test_threshold_grid() -> None:
    np.testing.assert_allclose(threshold_grid(0.5, 0.1, 4, 1), np.arange(1, 10) / 10)
    g = threshold_grid(0.01, 0.001, 9, 3)
    assert g[0] == 0.001 and g[-1] == 0.019 and g.size == 19
    assert threshold_grid(0.1, 0.01, 9, 2)[0] == 0.01
    assert threshold_grid(0.99, 0.01, 9, 2)[-1] == 0.99  # 1.00 and above skipped


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_best_threshold_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, c = 400, 3
    targets = (rng.random((m, c)) < [0.05, 0.3, 0.1]).astype(np.uint8)
    noise = rng.random((m, c))
    scores = np.clip(0.6 * targets + 0.7 * noise - 0.1 * seed, 0, 1)
    if seed % 2:
        scores = np.round(scores, 3)  # scores exactly on fine-grid values
    scores = scores.astype(np.float32 if seed >= 2 else np.float64)
    thr, f1 = best_global_threshold(scores, targets)
    exp_thr, exp_f1 = _brute_force_threshold(scores, targets)
    assert thr == exp_thr
    assert f1 == pytest.approx(exp_f1, abs=1e-12)


def test_best_threshold_by_hand_and_ties_lowest() -> None:
    # Perfectly separable at any threshold in (0.3, 0.8]: the lowest grid value wins the tie.
    scores = np.array([[0.8], [0.9], [0.3], [0.2]])
    targets = np.array([[1], [1], [0], [0]])
    thr, f1 = best_global_threshold(scores, targets)
    # Stage 1 picks 0.4 (0.1..0.3 include a negative); stage 2 scans 0.31..0.49 -> 0.31;
    # stage 3 scans 0.301..0.319 -> 0.301.
    assert thr == 0.301
    assert f1 == 1.0


def test_best_threshold_no_positive_anywhere() -> None:
    scores = np.random.default_rng(0).random((50, 2))
    targets = np.zeros((50, 2), dtype=np.uint8)
    thr, f1 = best_global_threshold(scores, targets)
    assert f1 == 0.0
    # Every value ties at F1 0, so each stage keeps its lowest: 0.1 -> 0.01 -> 0.001.
    assert thr == 0.001


def test_best_threshold_clip_layout() -> None:
    rng = np.random.default_rng(9)
    targets = (rng.random((10, 8, 2)) < 0.2).astype(np.uint8)
    scores = np.clip(targets * 0.5 + rng.random((10, 8, 2)) * 0.6, 0, 1)
    assert best_global_threshold(scores, targets) == best_global_threshold(
        scores.reshape(-1, 2), targets.reshape(-1, 2)
    )


# --- rare classes -----------------------------------------------------------------------------


def test_rare_found() -> None:
    clips = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]])
    assert rare_found(clips, [1, 2]) == 3
    assert rare_found(clips, [0]) == 1
    assert rare_found(clips, []) == 0
    assert rare_found(np.zeros((0, 3)), [1]) == 0


def test_default_rare_classes() -> None:
    names = ["Mosquito", "Red_Deer", "Meerkat_alarm_call", "Meerkat_move_call", "Blackbird"]
    assert default_rare_classes(np.zeros((10, 5)), names) == [2, 3]
    n = 1000
    clip_targets = np.zeros((n, 4), dtype=np.uint8)
    clip_targets[:100, 0] = 1  # common
    clip_targets[:4, 1] = 1  # 0.4 % -> rare
    clip_targets[:5, 2] = 1  # exactly 0.5 % -> not rare
    # class 3 never positive -> not rare
    assert default_rare_classes(clip_targets, ["a", "b", "c", "d"]) == [1]
