"""The labelling TUI in stream mode (the IML loop of SPEC B.5) over the real session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from textual.pilot import Pilot
from tui_fakes import RecordingPlayer

from iml_tui.data.stream_synth import LidSynthConfig, synth_lid
from iml_tui.engine.project import Project, ProjectConfig
from iml_tui.engine.session import Session
from iml_tui.tui.app import LabelApp, make_app
from iml_tui.tui.widgets.prediction import PredictionPanel
from iml_tui.tui.widgets.status import ProgressPanel, WhyLine

STREAM: dict[str, Any] = {
    "comp_hidden": 16,
    "embed_dim": 8,
    "class_hidden": 16,
    "samples_per_batch": 20,
    "max_epochs": 10,
    "patience": 3,
    "batch_size": 64,
    "lr": 3e-3,
    "n_queries": 2,
    "sim_type": "fpstps",
    "max_fb_samples": 2,
    "features": ["ecapalang"],
    "split": "dev",
    "target": "ha",
}


@pytest.fixture(scope="module")
def feat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    synth_lid(root, LidSynthConfig(n_train=30, n_dev=40, n_test=10, features=(("ecapalang", 8),)))
    return root


async def next_question(app: LabelApp, pilot: Pilot[None], timeout: float = 60) -> None:
    """Wait while the model trains between questions (the UI stays live meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.main.current is None and loop.time() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
    assert app.main.current is not None


async def test_stream_questions_and_reviews(tmp_path: Path, feat_root: Path) -> None:
    Project.create(
        tmp_path / "proj",
        ProjectConfig(task="lid", seed=1, stream={**STREAM, "feat_root": str(feat_root)}),
    )
    with Session.open(tmp_path / "proj", "ana") as session:
        assert session.next_item() is None and session.retrain_due()  # bootstrap fit first
        app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
        async with app.run_test(size=(100, 30)) as pilot:
            kinds: set[str] = set()
            for _ in range(6):
                await next_question(app, pilot)
                shown = app.main.current
                assert shown is not None
                kinds.add(shown.view.kind)
                why = str(app.main.query_one(WhyLine).render())
                assert ("review:" if shown.view.kind == "review" else "why:") in why
                if shown.view.kind == "review":  # the model's decision comes pre-ticked
                    assert app.main.query_one(PredictionPanel).selected == frozenset(
                        shown.item.predicted
                    )  # type: ignore[attr-defined]
                assert shown.audio_error  # synthetic features have no audio: said, not fatal
                truth = session.truth(shown.item)  # type: ignore[arg-type]
                await pilot.press(*(["n", "1"] if truth else ["n"]))  # clear, then pick
                assert app.main.query_one(PredictionPanel).selected == frozenset(truth)
                await pilot.press("enter")
            assert kinds >= {"query", "review"}
            progress = str(app.main.query_one(ProgressPanel).render())
            assert "batch" in progress
            assert session.model_status().version >= 2


def _sequence_sessions(root: Path) -> None:
    """VTD stores of T = 3 frames of 4-d per segment, two environments of two sessions."""
    from iml_tui.data.store import write_pool

    rng = np.random.default_rng(3)
    for env in ("office", "kitchen"):
        for s in ("s0", "s1"):
            y = (np.arange(24) % 2).astype(np.uint8)
            x = rng.normal(size=(24, 3, 4)).astype(np.float32) + y[:, None, None]
            labels = np.repeat(y[:, None, None], 3, axis=1)
            ids = [f"{s}/{k}" for k in range(24)]
            write_pool(root / "seq" / env / f"{s}.h5", x, labels, ["live"], ids)


async def test_stream_labels_sequence_features_through_the_gru(tmp_path: Path) -> None:
    _sequence_sessions(tmp_path / "feats")
    stream = {
        **{k: v for k, v in STREAM.items() if k not in ("split", "target")},
        "features": ["seq"],
        "feat_root": str(tmp_path / "feats"),
        "env": "kitchen",
        "context": 1,
        "rnn_layers": 1,
        "rnn_hidden": 8,
        "samples_per_batch": 24,
    }
    Project.create(tmp_path / "proj", ProjectConfig(task="vtd", seed=1, stream=stream))
    with Session.open(tmp_path / "proj", "ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
        async with app.run_test(size=(100, 30)) as pilot:
            batches = set()
            for _ in range(5):  # two questions per batch, and reviews: into the second session
                await next_question(app, pilot)
                shown = app.main.current
                assert shown is not None
                batches.add(shown.view.item_id.split("/")[0])
                truth = session.truth(shown.item)  # type: ignore[arg-type]
                await pilot.press(*(["n", "1"] if truth else ["n"]), "enter")
            assert batches == {"s0", "s1"}
        models = sorted((tmp_path / "proj" / "models").glob("stream_*.pt"))
        state = torch.load(models[-1], weights_only=False).model_state
    # a GRU over 4-d frames (3 gates x 8 hidden) feeds the compression layer with 2 x 8
    assert tuple(state["rnn.weight_ih_l0"].shape) == (24, 4)
    assert "rnn.weight_ih_l0_reverse" in state and "rnn.weight_ih_l1" not in state
    assert tuple(state["compress.0.weight"].shape)[1] == 16
