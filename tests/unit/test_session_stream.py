"""The labelling session in stream mode: the B.5 loop with the human as the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from iml_tui.config import StreamConfig
from iml_tui.data.stream_synth import LidSynthConfig, synth_lid
from iml_tui.engine.oracle import Question, TruthOracle
from iml_tui.engine.paradigms.stream import StreamRun, prepare_inputs
from iml_tui.engine.project import Project, ProjectConfig
from iml_tui.engine.scoring import read_scores
from iml_tui.engine.session import Session, answer_with_oracle
from iml_tui.errors import UserError

torch.set_num_threads(1)

SMALL: dict[str, Any] = {
    "comp_hidden": 16,
    "embed_dim": 8,
    "class_hidden": 16,
    "samples_per_batch": 20,
    "max_epochs": 15,
    "patience": 3,
    "batch_size": 64,
    "lr": 3e-3,
    "n_queries": 3,
    "sim_type": "fpstps",
    "max_fb_samples": 4,
    "features": ["ecapalang"],
    "split": "dev",
    "target": "ha",
}


@pytest.fixture(scope="module")
def feat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    synth_lid(root, LidSynthConfig(n_train=30, n_dev=40, n_test=10, features=(("ecapalang", 8),)))
    return root


def _project(tmp_path: Path, feat_root: Path, **kw: Any) -> Path:
    stream = {**SMALL, "feat_root": str(feat_root), **kw}
    Project.create(tmp_path / "proj", ProjectConfig(task="lid", seed=1, stream=stream))
    return tmp_path / "proj"


def test_same_scores_as_the_simulator(tmp_path: Path, feat_root: Path) -> None:
    proj = _project(tmp_path, feat_root)
    s = Session.open(proj, "ana")
    assert s.mode == "stream" and s.class_list == ["ha"] and not s.multi_label
    assert s.next_item() is None and s.retrain_due()  # the bootstrap fit comes first
    kinds: list[str] = []
    truth = TruthOracle(s.engine.inputs.y)  # type: ignore[union-attr]

    class Recording:
        """The simulator's oracle, keeping what it was asked."""

        def answer(self, q: Question) -> np.ndarray:
            kinds.append(q.why)
            assert q.pred is not None and q.confidence is not None and len(q) == 1
            return truth.answer(q)

    n = answer_with_oracle(s, Recording())
    assert s.progress().done and s.model_status().state == "done"
    assert n == len(kinds) and "cf-review" in kinds
    cfg = StreamConfig(
        feat_root=str(feat_root), seed=1, task="lid", **{k: v for k, v in SMALL.items()}
    )
    ref = StreamRun(cfg, prepare_inputs(cfg, "ha"), tmp_path / "ref").run()
    got = read_scores(proj / "stream" / "scores.csv")
    assert [r.__dict__ for r in got] == [
        r.__dict__ for r in read_scores(tmp_path / "ref" / "scores.csv")
    ]
    assert kinds.count("al-query") == 3 * len(ref) and s.progress().n_rounds == len(ref)
    curve = s.learning_curve()
    assert curve.metric == "pre-DCF" and not curve.higher_is_better
    assert len(curve.points) == len(ref)


def test_questions_undo_and_resume(tmp_path: Path, feat_root: Path) -> None:
    proj = _project(tmp_path, feat_root, sim_type="all", max_fb_samples=2)
    s = Session.open(proj, "ana")
    assert s.retrain_now()
    item = s.next_item()
    assert item is not None and item.kind == "al-query" and item.round == 0
    assert "the model asks" in item.why and item.why_fields["method"] == "smax"
    assert item.confidence is not None and item.question().why == "al-query"
    s.submit(item, [0])
    second = s.next_item()
    assert second is not None and second.index != item.index
    s.close()
    s = Session.open(proj, "ana")  # resume mid-question: the same item
    assert s.next_item().index == second.index  # type: ignore[union-attr]
    back = s.undo()
    assert back is not None and back.index == item.index and back.previous == (0,)
    answer_with_oracle(s, limit=3)  # the rest of the AL question
    assert s.next_item() is None and s.retrain_due()
    with pytest.raises(ValueError, match="not a class"):
        s.submit(item, [1])
    # an undo while the model trains makes its result stale
    job = s.start_retrain()
    assert s.undo() is not None
    assert not s.swap_model(job.run()) and s.model_status().version == 1
    answer_with_oracle(s, limit=1)
    assert s.retrain_now() and s.model_status().version == 2
    review = s.next_item()
    assert review is not None and review.kind == "cf-review" and "to review" in review.why
    s.close()
    s = Session.open(proj, "ana")  # the model and the question come back from the checkpoint
    assert s.model_status().version == 2 and s.next_item().index == review.index  # type: ignore
    s.submit(review, [])
    assert s.undo() is not None  # the open question's answers can be undone
    s.submit(review, [])
    answer_with_oracle(s, limit=1)  # ... but not answers already used for training
    while s.undo() is not None:
        pass
    assert s.next_item().kind == "cf-review"  # type: ignore[union-attr]


def test_a_project_streams_one_target(tmp_path: Path, feat_root: Path) -> None:
    with pytest.raises(UserError, match="one target language"):
        _project(tmp_path, feat_root, target="all")


def test_refused_retrain_leaves_no_training_claim(tmp_path: Path, feat_root: Path) -> None:
    s = Session.open(_project(tmp_path, feat_root), "ana")
    assert s.retrain_due() and s.retrain_now()  # the bootstrap fit
    assert not s.retrain_due()  # the first question is open
    with pytest.raises(RuntimeError):
        s.start_retrain()
    from iml_tui.engine.journal import Journal

    with Journal(tmp_path / "proj" / "journal.sqlite") as j:
        claims = j.events(kinds=["training_claimed"])
        models = j.events(kinds=["model_trained"])
    assert len(claims) == len(models)  # each claim made a model; the refused one left none
    s.close()
