"""Out-of-fold predictions: each item scored by a model that did not see it."""

import numpy as np
import pytest

from iml_tui.engine.out_of_fold import fold_ids, out_of_fold
from iml_tui.errors import UserError


def test_fold_ids_balanced_and_seeded() -> None:
    f = fold_ids(11, 3, seed=4)
    assert sorted(np.bincount(f).tolist()) == [3, 4, 4]
    np.testing.assert_array_equal(f, fold_ids(11, 3, seed=4))
    with pytest.raises(UserError):
        fold_ids(1, 3, seed=0)


def test_held_out_never_in_train_and_threshold_from_scores() -> None:
    targets = np.zeros((10, 2, 1), dtype=np.float32)
    targets[:5] = 1.0
    seen: list[int] = []

    def fit_predict(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        assert not set(train) & set(held)
        seen.extend(held.tolist())
        return np.where(targets[held] > 0, 0.8, 0.3).astype(np.float32)

    oof = out_of_fold(targets, fit_predict, k=4, seed=0)
    assert sorted(seen) == list(range(10))
    assert oof.f1 == pytest.approx(1.0)
    assert 0.3 < oof.threshold <= 0.8
    assert oof.n_labels == 10
