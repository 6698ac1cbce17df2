"""Frame -> event logic of detection against hand-computed cases."""

import numpy as np
import pytest

from iml_tui.engine.detection import Event, events_from_frames, stitch
from iml_tui.errors import UserError


def test_stitch_averages_where_clips_overlap() -> None:
    a = np.array([[1.0], [1.0], [0.0], [0.0]])
    b = np.array([[0.0], [0.0], [1.0], [1.0]])
    grid, step = stitch([a, b], [0.0, 2.0], clip_s=4.0)
    assert step == 1.0
    np.testing.assert_allclose(grid[:, 0], [1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    c = np.array([[0.0], [0.0], [1.0], [1.0]])
    grid, _ = stitch([c, c], [0.0, 2.0], clip_s=4.0)
    np.testing.assert_allclose(grid[:, 0], [0.0, 0.0, 0.5, 0.5, 1.0, 1.0])


def test_stitch_rejects_mismatched_shapes() -> None:
    with pytest.raises(UserError):
        stitch([np.zeros((4, 2)), np.zeros((3, 2))], [0.0, 1.0], clip_s=4.0)


def test_events_threshold_merge_and_min_duration() -> None:
    p = np.array([0.9, 0.8, 0.1, 0.7, 0.0, 0.0, 0.0, 0.6, 0.2, 0.95])[:, None]
    # runs at [0,2), [3,4), [7,8), [9,10) with step 0.5 s
    ev = events_from_frames(p, 0.5, 0.5)
    assert [(e.onset, e.offset) for e in ev] == [(0.0, 1.0), (1.5, 2.0), (3.5, 4.0), (4.5, 5.0)]
    ev = events_from_frames(p, 0.5, 0.5, merge_gap_s=0.6)
    assert [(e.onset, e.offset) for e in ev] == [(0.0, 2.0), (3.5, 5.0)]
    assert ev[0].score == pytest.approx((0.9 + 0.8 + 0.1 + 0.7) / 4)
    ev = events_from_frames(p, 0.5, 0.5, min_duration_s=1.0)
    assert [(e.onset, e.offset) for e in ev] == [(0.0, 1.0)]


def test_events_per_class_thresholds_sorted() -> None:
    p = np.array([[0.0, 0.4], [0.6, 0.4], [0.0, 0.0]])
    ev = events_from_frames(p, 1.0, [0.5, 0.3])
    assert ev == [
        Event(0.0, 2.0, 1, pytest.approx(0.4)),
        Event(1.0, 2.0, 0, pytest.approx(0.6)),
    ]
