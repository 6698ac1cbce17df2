"""Shared fixtures: tiny pools written with the real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pool_data import make_pool

torch.set_num_threads(1)


@pytest.fixture
def tiny_pool(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    path = tmp_path / "train.h5"
    emb, lab = make_pool(path)
    return path, emb, lab
