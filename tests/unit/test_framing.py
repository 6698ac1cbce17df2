"""Framing: the strided view against a loop."""

import numpy as np
import pytest

from iml_tui.audio.framing import frame_count, frames


@pytest.mark.parametrize("n,length,hop", [(10, 4, 2), (11, 4, 3), (4, 4, 1), (3, 4, 1), (9, 1, 1)])
def test_frames_equal_a_loop(n: int, length: int, hop: int) -> None:
    x = np.arange(n, dtype=np.float32)
    want = [x[k : k + length] for k in range(0, n - length + 1, hop)]
    got = frames(x, length, hop)
    assert got.shape == (len(want), length) == (frame_count(n, length, hop), length)
    np.testing.assert_array_equal(got, np.array(want).reshape(-1, length))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        frames(np.zeros((2, 3)), 2, 1)
    with pytest.raises(ValueError):
        frame_count(10, 4, 0)
