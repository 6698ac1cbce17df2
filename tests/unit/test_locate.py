"""Locating a pool item's audio from its id and the store's attributes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from labelling_data import SR, make_audio_pool

from iml_tui.data.locate import Locator, locate_all
from iml_tui.data.store import PoolStore
from iml_tui.errors import UserError


def test_from_the_split_clip_table(tmp_path: Path) -> None:
    pool = make_audio_pool(tmp_path, n_files=2, seconds=5.5)
    store = PoolStore(pool / "train.h5")
    loc = Locator(store.attrs)
    where = loc.locate("rec1.wav@3.000")
    assert where.path == (tmp_path / "audio" / "rec1.wav").resolve()
    assert (where.start, where.duration) == (3.0, 2.0) and "rec1.wav" in where.describe()
    x, sr = loc.read("rec1.wav@3.000")
    ref, _ = sf.read(tmp_path / "audio" / "rec1.wav", dtype="float32")
    assert sr == SR and np.allclose(x, ref[3 * SR : 5 * SR], atol=1e-4)
    # the last clip runs past the end of the 5.5 s file: zero-padded to its 2 s
    x, _ = loc.read("rec1.wav@4.000")
    assert x.shape == (2 * SR,) and np.all(x[3 * SR // 2 :] == 0) and np.any(x[:SR] != 0)
    assert [w is not None for w in locate_all(loc, ["rec0.wav@0.000", "nope"])] == [True, False]


def test_from_ids_and_an_audio_root_after_a_move(tmp_path: Path) -> None:
    pool = make_audio_pool(tmp_path / "a", n_files=2, source_split=False)
    attrs = PoolStore(pool / "train.h5").attrs
    with pytest.raises(UserError, match="audio-root"):
        Locator(attrs).locate("rec0.wav@1.000")
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "a" / "audio", moved)
    where = Locator(attrs, moved).locate("rec0.wav@1.000")
    assert (where.path, where.start, where.duration) == (moved / "rec0.wav", 1.0, 2.0)
    assert Locator(attrs, moved).locate("rec1.wav").duration is None  # a whole file
    # a clip table whose absolute paths moved: found under the audio root by file name
    pool2 = make_audio_pool(tmp_path / "b", n_files=2)
    attrs2 = PoolStore(pool2 / "train.h5").attrs
    shutil.rmtree(tmp_path / "b" / "audio")
    with pytest.raises(UserError, match="not there"):
        Locator(attrs2).locate("rec1.wav@2.000")
    where = Locator(attrs2, moved).locate("rec1.wav@2.000")
    assert where.path == moved / "rec1.wav" and where.start == 2.0
