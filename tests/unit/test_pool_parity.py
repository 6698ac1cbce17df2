"""A pool labelling session answered by the oracle picks and scores what the simulator does.

The session records clip labels, which train by multiple-instance learning; the simulator's
annotator is set to give clip labels too (``annotation="clips"``). Both then share the selection
round (engine/pool_round.py), the training and the validation scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iml_tui.data.store import write_pool
from iml_tui.engine.journal import Journal
from iml_tui.engine.paradigms.pool import PoolRun, PoolRunSpec, load_splits
from iml_tui.engine.project import Project, ProjectConfig
from iml_tui.engine.session import Session, answer_with_oracle
from iml_tui.engine.trainer import TrainConfig

CLASSES = ["a", "b"]
TRAIN = {
    "hidden": 16,
    "max_epochs": 15,
    "batch_size": 8,
    "lr": 3e-3,
    "min_lr": 1e-4,
    "lr_patience": 2,
}
BUDGETS = (6, 10, 14)


def _split(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    clip = (rng.random((n, 2)) < 0.35).astype(np.uint8)
    lab = np.repeat(clip[:, None, :], 3, axis=1)
    pattern = np.random.default_rng(7).normal(size=(2, 6)).astype(np.float32) * 1.5
    emb = rng.normal(size=(n, 3, 6)).astype(np.float32) + lab.astype(np.float32) @ pattern
    write_pool(path, emb, lab, CLASSES, [f"{path.stem}{i}.wav@0" for i in range(n)])


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("parity")
    for name, n, seed in (("train", 40, 0), ("valid", 16, 1), ("test", 16, 2)):
        _split(d / f"{name}.h5", n, seed)
    return d


@pytest.mark.parametrize("strategy", ["rand", "ft", "mp", "mfft"])
def test_session_answered_by_oracle_matches_the_simulator(
    pool: Path, tmp_path: Path, strategy: str
) -> None:
    torch.set_num_threads(1)
    spec = PoolRunSpec(
        annotation="clips",  # a session's clip labels train by MIL, as this simulated annotator
        strategy=strategy,
        start="cold",
        seed=3,
        budgets=BUDGETS,
        train=TrainConfig(seed=3, device="cpu", threads=1, **TRAIN),
    )  # type: ignore[arg-type]
    records = PoolRun(spec, load_splits(pool), tmp_path / "sim", torch.device("cpu")).run()
    sim_picks = [
        [int(v) for v in (tmp_path / "sim" / f"round_{b:05d}" / "selected.txt").read_text().split()]
        for b in BUDGETS
    ]

    cfg = ProjectConfig(
        task="bioacoustic",
        pool_dir=str(pool),
        strategy=strategy,
        budgets=list(BUDGETS),
        seed=3,
        threads=1,
        **TRAIN,
    )  # type: ignore[arg-type]
    Project.create(tmp_path / "proj", cfg)
    with Session.open(tmp_path / "proj", "oracle") as s:
        answer_with_oracle(s)
        assert s.progress().done
        curve = s.learning_curve().points
    with Journal(tmp_path / "proj" / "journal.sqlite") as j:
        selected = j.events(0, kinds=["selected"])
    by_round: dict[int, list[int]] = {}
    for e in selected:
        by_round.setdefault(int(e.round or 0), []).append(int(e.item or 0))
    session_picks = [by_round[r] for r in range(len(BUDGETS))]
    assert session_picks == sim_picks
    assert [n for n, _ in curve] == list(BUDGETS)
    assert [v for _, v in curve] == pytest.approx([r.valid_map for r in records], abs=1e-6)
