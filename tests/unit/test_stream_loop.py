"""The streaming loop (SPEC B.5) on tiny generated data: rows, oracle, CF, budgets, resume."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.dummy import DummyClassifier

from iml_tui.config import StreamConfig
from iml_tui.data.stream_synth import LidSynthConfig, VtdSynthConfig, synth_lid, synth_vtd
from iml_tui.engine.oracle import SKIPPED, Question, TruthOracle
from iml_tui.engine.paradigms.stream import (
    BatchEvent,
    StreamRun,
    prepare_inputs,
    run_stream,
)
from iml_tui.engine.scoring import SCORE_COLUMNS, read_scores, summarize_run
from iml_tui.engine.strategies.stream_queries import METHODS
from iml_tui.errors import UserError

torch.set_num_threads(1)

SMALL: dict[str, Any] = {
    "comp_hidden": 16,
    "embed_dim": 8,
    "class_hidden": 16,
    "samples_per_batch": 60,
    "max_epochs": 20,
    "patience": 3,
    "batch_size": 64,
    "lr": 3e-3,
    "seed": 1,
}


@pytest.fixture(scope="module")
def lid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    synth_lid(root, LidSynthConfig(n_train=30, n_dev=60, n_test=10, features=(("ecapalang", 8),)))
    return root


def _cfg(root: Path, **kw: Any) -> StreamConfig:
    return StreamConfig(feat_root=str(root), **{**SMALL, **kw})


class Recording:
    """Wraps the truth; keeps every question; may skip questions of one kind."""

    def __init__(self, y: np.ndarray, skip: str = "") -> None:
        self.truth = TruthOracle(y)
        self.questions: list[Question] = []
        self.skip = skip

    def answer(self, question: Question) -> np.ndarray:
        self.questions.append(question)
        lab = self.truth.answer(question)
        return np.full_like(lab, SKIPPED) if question.why == self.skip else lab


def test_the_loop_writes_one_row_per_batch(lid_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(lid_root, sim_type="fpstps", max_fb_samples=6)
    inputs = prepare_inputs(cfg, "ha")
    assert inputs.n_batches == 3 and inputs.boot is not None and inputs.boot.name == "train"
    assert inputs.boot.x.shape[1] == 8 * 7  # context 3: the sample and 3 neighbours each side
    oracle = Recording(inputs.y)
    events: list[BatchEvent] = []
    rows = StreamRun(cfg, inputs, tmp_path / "run", oracle=oracle, command="cmd").run(events.append)
    assert [r.pass_ for r in rows] == [0, 1, 2] and len(events) == 3
    pool = 8
    for r in rows:
        assert r.pre_ps + r.pre_ns == 60 and r.ps + r.ns == 60 - r.n_al
        assert r.n_al == 8 and r.cf_tp + r.cf_fp <= 6
        pool += r.n_al + r.cf_tp + r.cf_fp
        assert r.n_samples == pool
    assert summarize_run(rows).n_boot == 8
    # every label of the pool came from the oracle: AL items and reviewed CF candidates
    kinds = [q.why for q in oracle.questions]
    assert kinds == ["al-query", "cf-review"] * 3
    for q in oracle.questions:
        if q.why == "cf-review":
            assert q.pred is not None and (q.pred == 1).all()  # fpstps reviews detections
    run = tmp_path / "run"
    assert [r.as_dict() for r in read_scores(run)] == [r.as_dict() for r in rows]
    header = (run / "scores.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    labelled = (run / "labelled.csv").read_text().splitlines()
    assert labelled[0] == "id,index,source,pass,why,label" and len(labelled) == 1 + pool
    asked = {int(i) for q in oracle.questions if q.why == "al-query" for i in q.items}
    stream_items = {
        int(line.split(",")[1]) for line in labelled[1:] if line.split(",")[4] == "al-query"
    }
    assert stream_items == asked
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["finished"] and manifest["n_boot"] == 8 and manifest["input_dim"] == 56
    assert (run / "command.txt").read_text() == "cmd\n"
    assert not (run / "checkpoint.pt").exists()
    assert torch.load(run / "model.pt", weights_only=True)["head.weight"].shape == (2, 16)
    assert len((run / "timings.csv").read_text().splitlines()) == 4


def test_skipped_questions_are_not_training_data(lid_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(lid_root)
    inputs = prepare_inputs(cfg, "yo")
    rows = StreamRun(cfg, inputs, tmp_path, oracle=Recording(inputs.y, skip="al-query")).run()
    assert all(r.n_al == 0 and r.ps + r.ns == 60 and r.n_samples == 8 for r in rows)


@pytest.mark.parametrize("method", METHODS)
def test_every_al_method_runs(lid_root: Path, tmp_path: Path, method: str) -> None:
    extra: dict[str, Any] = {}
    if method == "combo-clf":  # a classifier that always picks the second method
        clf = DummyClassifier(strategy="constant", constant=1).fit([[0, 0, 0], [1, 1, 1]], [0, 1])
        (tmp_path / "clf.p").write_bytes(pickle.dumps(clf))
        extra["combo_clf"] = str(tmp_path / "clf.p")
    cfg = _cfg(lid_root, al_method=method, max_epochs=3, n_queries=5, **extra)
    rows = run_stream(cfg, "bas", tmp_path / "run")
    assert [r.n_al for r in rows] == [5, 5, 5]


def test_cf_kinds_and_options(lid_root: Path, tmp_path: Path) -> None:
    fps = run_stream(_cfg(lid_root, sim_type="fps", max_fb_samples=None), "ha", tmp_path / "a")
    assert all(r.cf_tp == 0 for r in fps) and sum(r.cf_fp for r in fps) > 0
    fps_rows = read_scores(tmp_path / "a")
    assert all(r.cf_fp == r.fps for r in fps_rows)  # no cap: every false alarm is corrected
    tns = run_stream(_cfg(lid_root, sim_type="tns", max_fb_samples=4), "ha", tmp_path / "b")
    assert all(r.cf_tp == 0 and r.cf_fp == 4 for r in tns)
    mixed = run_stream(
        _cfg(
            lid_root,
            sim_type="all",
            max_fb_samples=10,
            rank_cf=True,
            adapt_distr=0.5,
            drift="hdddm",
            forget_n_batches=1,
            memory_cap=12,
            reset_weights=True,
            boot_in=True,
            loss="focal",
            class_weights="balanced",
            initial_bn=False,
        ),
        "ha",
        tmp_path / "c",
    )
    assert all(r.cf_tp + r.cf_fp == 10 for r in mixed)
    assert all(r.n_samples <= 8 + 12 for r in mixed)  # bootstrap + ring buffer


def test_adapt_distr_balances_queries(lid_root: Path, tmp_path: Path) -> None:
    rows = run_stream(_cfg(lid_root, adapt_distr=0.5, n_queries=10), "ha", tmp_path)
    for r in rows:
        assert abs(r.p_target - 0.5) < 0.25


def test_budget_plan_sets_queries_per_batch(lid_root: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text("3\n0\n11\n")
    rows = run_stream(_cfg(lid_root, budget_plan=str(plan)), "ha", tmp_path / "run")
    assert [r.n_al for r in rows] == [3, 0, 11]
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n2\n")
    with pytest.raises(UserError, match="2 batches"):
        run_stream(_cfg(lid_root, budget_plan=str(bad)), "ha", tmp_path / "run2")


def test_drift_budget_marks_rows(lid_root: Path, tmp_path: Path) -> None:
    rows = run_stream(_cfg(lid_root, drift="adwin", n_queries=4), "ha", tmp_path)
    for r in rows:
        assert r.n_al == {0: 2, 1: 10, 2: 20}[r.drift]


def test_interrupted_run_resumes_to_the_same_scores(lid_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(lid_root, sim_type="fpstps", al_method="rand", drift="hdddm")
    whole = run_stream(cfg, "ha", tmp_path / "a")

    class Stop(Exception):
        pass

    def stop_after_first(ev: BatchEvent) -> None:
        if ev.pass_ == 0:
            raise Stop

    with pytest.raises(Stop):
        run_stream(cfg, "ha", tmp_path / "b", on_batch=stop_after_first)
    assert (tmp_path / "b" / "checkpoint.pt").exists()
    assert len(read_scores(tmp_path / "b")) == 1
    seen: list[int] = []
    resumed = run_stream(cfg, "ha", tmp_path / "b", on_batch=lambda ev: seen.append(ev.pass_))
    assert seen == [1, 2]
    assert [r.as_dict() for r in resumed] == [r.as_dict() for r in whole]
    assert (tmp_path / "a" / "labelled.csv").read_text() == (
        tmp_path / "b" / "labelled.csv"
    ).read_text()
    again: list[int] = []  # a finished run is read back, not redone
    assert [
        r.as_dict()
        for r in run_stream(cfg, "ha", tmp_path / "b", on_batch=lambda ev: again.append(1))
    ] == [r.as_dict() for r in whole]
    assert again == []
    with pytest.raises(UserError, match="different configuration"):
        run_stream(dataclasses.replace(cfg, n_queries=3), "ha", tmp_path / "b")


def test_vtd_streams_one_batch_per_session(tmp_path: Path) -> None:
    synth_vtd(
        tmp_path / "f",
        VtdSynthConfig(
            envs=("rm1_mc20", "hotel_mc19"), sessions=3, segments=50, features=(("wavlm", 6),)
        ),
    )
    cfg = StreamConfig(
        task="vtd",
        feat_root=str(tmp_path / "f"),
        features=["wavlm"],
        env="rm1_mc20",
        order="sorted",
        **{k: v for k, v in SMALL.items() if k != "samples_per_batch"},
    )
    inputs = prepare_inputs(cfg, "rm1_mc20")
    assert inputs.boot is not None and inputs.boot.name == "hotel_mc19"
    assert [len(b) for b in inputs.batches] == [50, 50, 50]
    assert inputs.batches[1].tolist() == list(range(50, 100))
    rows = StreamRun(cfg, inputs, tmp_path / "run").run()
    assert len(rows) == 3 and all(r.pre_ps + r.pre_ns == 50 for r in rows)
    with pytest.raises(UserError, match="cluster"):
        prepare_inputs(dataclasses.replace(cfg, order="cluster"), "rm1_mc20")


def test_lid_order_is_reproducible_for_a_seed(lid_root: Path) -> None:
    a = prepare_inputs(_cfg(lid_root, order="cluster", seed=7), "ha")
    b = prepare_inputs(_cfg(lid_root, order="cluster", seed=7), "yo")
    c = prepare_inputs(_cfg(lid_root, order="cluster", seed=8), "ha")
    assert all(np.array_equal(x, y) for x, y in zip(a.batches, b.batches, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches, c.batches, strict=True))
    rev = prepare_inputs(_cfg(lid_root, order="cluster", seed=7, reverse_order=True), "ha")
    assert np.array_equal(np.concatenate(rev.batches), np.concatenate(a.batches)[::-1])


def test_bad_options_are_user_errors(lid_root: Path, tmp_path: Path) -> None:
    for kw, match in [
        ({"al_method": "best"}, "al_method"),
        ({"sim_type": "fpz"}, "sim_type"),
        ({"drift": "ddm"}, "drift"),
        ({"loss": "hinge"}, "loss"),
        ({"task": "asr"}, "task"),
        ({"adapt_distr": 2.0}, "adapt_distr"),
        ({"samples_per_batch": 1000}, "fewer than one batch"),
    ]:
        with pytest.raises(UserError, match=match):
            run_stream(_cfg(lid_root, **kw), "ha", tmp_path)


def test_corrective_feedback_lowers_imlm_at_the_same_budget(tmp_path: Path) -> None:
    """fpstps vs plain AL: same AL queries, the human also corrects the model's detections."""
    synth_lid(
        tmp_path / "f",
        LidSynthConfig(
            n_train=60, n_dev=120, n_test=10, features=(("ecapalang", 8),), separation=1.5, seed=5
        ),
    )
    common: dict[str, Any] = {
        "comp_hidden": 32,
        "embed_dim": 8,
        "class_hidden": 32,
        "comp_layers": 1,
        "class_layers": 1,
        "samples_per_batch": 60,
        "max_epochs": 30,
        "patience": 4,
        "batch_size": 64,
        "lr": 3e-3,
        "n_queries": 4,
        "context": 0,
    }
    imlm: dict[str, list[float]] = {"none": [], "fpstps": []}
    for sim in imlm:
        for seed in (1, 2, 3):
            cfg = StreamConfig(feat_root=str(tmp_path / "f"), seed=seed, sim_type=sim, **common)
            rows = run_stream(cfg, "ha", tmp_path / f"{sim}{seed}")
            assert sum(r.n_al for r in rows) == 6 * 4
            imlm[sim].append(summarize_run(rows).imlm)
    assert np.mean(imlm["fpstps"]) < np.mean(imlm["none"]) - 0.05, imlm


def test_batch_metric_has_the_original_sign() -> None:
    from iml_tui.engine.paradigms.stream import batch_metric

    logits = np.log(np.array([[1.0, 1.0], [3.0, 1.0]]))  # max softmax 0.5, 0.75
    assert batch_metric("smax", logits, np.array([-0.5, -0.75])) == pytest.approx(0.625)
    assert batch_metric("ent", logits, np.array([0.6, 0.2])) == pytest.approx(0.4)
    assert batch_metric("necs", logits, np.array([-1.0, -2.0])) == pytest.approx(-1.5)
    assert batch_metric("pert", logits, np.array([0.0, 0.5])) == pytest.approx(0.25)
    assert batch_metric("pert-rand", logits, np.array([0.2, 0.4])) == pytest.approx(0.3)
    assert batch_metric("egl", logits, np.array([1.0, 2.0])) == pytest.approx(1.5)
    assert batch_metric("egl-last", logits, np.array([1.0, 3.0])) == pytest.approx(2.0)
    assert batch_metric("cover", logits, np.array([3.0, 9.0])) == 1.0
    assert batch_metric("cover-kcenter", logits, np.array([3.0, 9.0])) == 1.0
    assert batch_metric("rand", logits, None) is None
    for combo in ("rank", "split"):
        assert batch_metric(combo, logits, None) is None


def test_metric_column_per_method(lid_root: Path, tmp_path: Path) -> None:
    smax = run_stream(_cfg(lid_root, n_queries=3), "ha", tmp_path / "s")
    assert all(r.metric is not None and 0.5 <= r.metric <= 1.0 for r in smax)
    cover = run_stream(_cfg(lid_root, al_method="cover", n_queries=3), "ha", tmp_path / "c")
    assert [r.metric for r in cover] == [1.0, 1.0, 1.0]
    kc = run_stream(_cfg(lid_root, al_method="cover-kcenter", n_queries=3), "ha", tmp_path / "k")
    assert [r.metric for r in kc] == [1.0, 1.0, 1.0]
    egl = run_stream(_cfg(lid_root, al_method="egl", n_queries=3), "ha", tmp_path / "e")
    assert all(r.metric is not None and r.metric > 0.0 for r in egl)
    # pert: the mean share of the 2D + 1 decisions (D = 8 x 7 inputs) that differ
    pert = run_stream(_cfg(lid_root, al_method="pert", n_queries=3), "ha", tmp_path / "p")
    assert all(r.metric is not None and 0.0 <= r.metric <= 1.0 for r in pert)
    for r in pert:  # each share is k / 113: the batch's sum of shares x 113 is a whole number
        assert r.metric is not None
        total = r.metric * (r.pre_ns + r.pre_ps) * 113
        assert total == pytest.approx(round(total), abs=1e-6)
    rand = run_stream(_cfg(lid_root, al_method="rand", n_queries=3), "ha", tmp_path / "r")
    assert all(r.metric is None for r in rand)


def test_drift_column_without_a_drift_budget(lid_root: Path, tmp_path: Path) -> None:
    rows = run_stream(_cfg(lid_root, n_queries=3), "ha", tmp_path)
    assert all(r.drift in (0, 1) and r.n_al == 3 for r in rows)


def _epochs(run_dir: Path, col: str) -> list[int]:
    import csv

    with (run_dir / "timings.csv").open(newline="") as fh:
        return [int(r[col]) for r in csv.DictReader(fh)]


def test_compat_original_reset_weights(
    lid_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iml_tui.engine.paradigms import stream

    calls: list[int] = []
    real = stream.reset_weights
    monkeypatch.setattr(stream, "reset_weights", lambda m, s: calls.append(1) or real(m, s))
    kw = {"sim_type": "all", "max_fb_samples": 3, "reset_weights": True, "n_queries": 3}
    run_stream(_cfg(lid_root, **kw), "ha", tmp_path / "ours")
    assert len(calls) == 3 and all(e > 0 for e in _epochs(tmp_path / "ours", "epochs_cf"))
    calls.clear()
    rows = run_stream(_cfg(lid_root, compat="original", **kw), "ha", tmp_path / "orig")
    # the original: no reset, and no refit after the corrective feedback
    assert calls == [] and _epochs(tmp_path / "orig", "epochs_cf") == [0, 0, 0]
    assert all(r.cf_tp + r.cf_fp == 3 for r in rows)
    # without reset_weights the two modes agree
    a = run_stream(_cfg(lid_root, sim_type="all", max_fb_samples=3), "ha", tmp_path / "a")
    b = run_stream(
        _cfg(lid_root, sim_type="all", max_fb_samples=3, compat="original"), "ha", tmp_path / "b"
    )
    assert [r.as_dict() for r in a] == [r.as_dict() for r in b]


def test_compat_original_forgetting(lid_root: Path, tmp_path: Path) -> None:
    kw = {"sim_type": "all", "max_fb_samples": 2, "forget_n_batches": 1, "n_queries": 4}
    ours = run_stream(_cfg(lid_root, **kw), "ha", tmp_path / "ours")
    # ours: the bootstrap (8) stays, only the current batch's AL and CF items
    assert [r.n_samples for r in ours] == [8 + 4 + 2] * 3
    orig = run_stream(_cfg(lid_root, compat="original", **kw), "ha", tmp_path / "orig")
    # the original: the bootstrap goes with the first batch; AL items of batches with CF stay
    assert [r.n_samples for r in orig] == [4 + 2, 8 + 2, 12 + 2]
    with pytest.raises(UserError, match="compat"):
        run_stream(_cfg(lid_root, compat="paper"), "ha", tmp_path / "bad")


def test_unbounded_epochs(lid_root: Path, tmp_path: Path) -> None:
    from iml_tui.engine.paradigms.stream import NO_CAP_EPOCHS, fit_config

    assert fit_config(_cfg(lid_root, max_epochs=-1)).max_epochs == NO_CAP_EPOCHS
    assert fit_config(_cfg(lid_root, max_epochs=7)).max_epochs == 7
    rows = run_stream(_cfg(lid_root, max_epochs=-1, patience=2, n_queries=2), "ha", tmp_path)
    assert len(rows) == 3
    capped = run_stream(
        _cfg(lid_root, max_epochs=1, patience=2, n_queries=2), "ha", tmp_path / "capped"
    )
    assert _epochs(tmp_path / "capped", "epochs_al") == [1, 1, 1]
    assert len(capped) == 3 and max(_epochs(tmp_path, "epochs_al")) > 1
    for bad in (0, -2):
        with pytest.raises(UserError, match="max_epochs"):
            run_stream(_cfg(lid_root, max_epochs=bad), "ha", tmp_path / f"bad{bad}")
