"""The labelling session in pool mode: queue, answers, undo, skip, resume, background retraining."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from labelling_data import CLASSES, make_audio_pool, make_project

from iml_tui.engine.journal import Journal
from iml_tui.engine.session import Session, answer_with_oracle, pool_backend
from iml_tui.errors import UserError


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_pool(tmp_path_factory.mktemp("audio_pool"))


def _open(tmp_path: Path, pool: Path, who: str = "ana", **kw: Any) -> Session:
    if not (tmp_path / "proj" / "project.yaml").exists():
        make_project(tmp_path / "proj", pool, **kw)
    return Session.open(tmp_path / "proj", who)


def test_first_round_items_resume_and_progress(tmp_path: Path, pool: Path) -> None:
    s = _open(tmp_path, pool)
    assert s.mode == "pool" and s.class_list == list(CLASSES) and s.multi_label
    item = s.next_item()
    assert item is not None and s.next_item().index == item.index  # type: ignore[union-attr]
    assert item.kind == "pool-query" and "farthest" in item.why and item.round == 0
    assert item.clip_probs is None and item.model_version == 0
    assert item.location is not None and item.location.path.name == item.id.split("@")[0]
    assert item.location.duration == 2.0 and not item.audio_error
    x, sr = s.read_audio(item)
    assert sr == 8000 and x.shape == (16000,)
    s.submit(item, [2, 0], seconds=3.0)
    nxt = s.next_item()
    assert nxt is not None and nxt.index != item.index
    p = s.progress()
    assert (p.labelled, p.budget, p.round, p.n_rounds, p.queue_left) == (1, 4, 0, 3, 3)
    assert p.per_class == {"bird": 1, "frog": 0, "insect": 1} and p.mine == 1
    assert p.seconds == 3.0 and not p.done
    with pytest.raises(ValueError, match="not a class"):
        s.submit(nxt, [3])
    s.close()
    # a restart gives the same next item back, and the label
    s2 = _open(tmp_path, pool)
    assert s2.next_item().index == nxt.index  # type: ignore[union-attr]
    assert s2.progress().labelled == 1
    with Journal(tmp_path / "proj" / "journal.sqlite") as j:
        (lab,) = j.current_labels().values()
        assert lab.labels == (0, 2) and lab.annotator == "ana" and lab.seconds == 3.0


def test_undo_and_skip_across_restarts(tmp_path: Path, pool: Path) -> None:
    s = _open(tmp_path, pool)
    a = s.next_item()
    assert a is not None
    s.submit(a, [1])
    b = s.next_item()
    assert b is not None
    s.skip(b)
    s.close()
    s = _open(tmp_path, pool)
    assert s.progress().skipped == 1
    back = s.undo()  # the skip
    assert back is not None and back.index == b.index and back.previous is None
    assert s.next_item().index == b.index  # type: ignore[union-attr]
    back = s.undo()  # then the label
    assert back is not None and back.index == a.index and back.previous == (1,)
    assert s.progress().labelled == 0
    s.close()
    s = _open(tmp_path, pool)
    shown = s.next_item()  # the undone item comes first, also after a restart
    assert shown is not None and shown.index == a.index and shown.previous == (1,)
    assert s.undo() is None
    s.submit(shown, [0])
    assert s.progress().per_class["bird"] == 1


def test_rounds_retrain_in_a_thread_and_rerank(tmp_path: Path, pool: Path) -> None:
    s = _open(tmp_path, pool)
    assert answer_with_oracle(s, limit=4) == 4
    assert s.next_item() is None and s.retrain_due()
    assert s.model_status().state == "due"
    job = s.start_retrain()
    assert s.model_status().state == "training"
    seen: list[tuple[float, str]] = []
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(job.run(lambda f, m: seen.append((f, m)))))
    t.start()
    while t.is_alive():  # the UI thread keeps working meanwhile
        st = s.model_status()
        assert st.version == 0 and 0.0 <= st.progress <= 1.0
        t.join(0.01)
    (result,) = out
    assert result.ok and result.version == 1 and seen[-1][0] == 1.0
    assert any("epoch" in m for _, m in seen)
    assert s.swap_model(result)
    st = s.model_status()
    assert (st.version, st.state, st.trained_on, st.error) == (1, "ready", 4, "")
    assert st.score is not None and 0.0 <= st.score <= 1.0
    item = s.next_item()
    assert item is not None and item.round == 1 and item.model_version == 1
    assert item.clip_probs is not None and item.clip_probs.shape == (3,)
    assert item.frame_probs is not None and item.frame_probs.shape == (4, 3)
    assert np.allclose(item.frame_probs.max(axis=0), item.clip_probs)
    assert item.confidence is not None and 0.0 <= item.confidence <= 1.0
    f = item.why_fields
    assert f["rule"] == "mfft" and "mismatch" in f and "neighbour_labels" in f
    assert "mismatch" in item.why and "nearest labelled" in item.why
    assert len(list((tmp_path / "proj" / "models").glob("pool_v0001_*.pt"))) == 1
    # a retraining mid-round re-ranks the rest of the round
    s.submit(item, s.truth(item))
    left = s.progress().queue_left
    assert not s.retrain_due() and s.retrain_now()
    assert s.model_status().version == 2 and s.progress().queue_left == left
    assert s.progress().round == 1
    # the curve has one point per model
    curve = s.learning_curve()
    assert curve.metric == "valid mAP" and [p[0] for p in curve.points] == [4, 5]


def test_the_next_round_is_bridged_while_the_model_trains(tmp_path: Path, pool: Path) -> None:
    s = _open(tmp_path, pool, strategy="mfft", budgets=[4, 8, 12])
    assert answer_with_oracle(s, limit=4) == 4 and s.retrain_now()
    assert answer_with_oracle(s, limit=4) == 4 and s.retrain_due()
    job = s.start_retrain()  # snapshot: 8 labels, round 2 (4 more) to pick
    assert s.bridge() == 4 and s.bridge() == 0
    first = s.next_item()
    assert first is not None and first.round == 2 and first.model_version == 1
    assert first.why.startswith("while the next model trains") and first.clip_probs is not None
    for _ in range(3):  # three of the four bridged items answered while it trains
        item = s.next_item()
        assert item is not None
        s.submit(item, s.truth(item))
    assert s.swap_model(job.run())
    # the new model's queue left out what was answered and fills only the round's budget
    rest = [s.next_item()]
    assert rest[0] is not None and rest[0].model_version == 2
    s.submit(rest[0], s.truth(rest[0]))
    assert s.next_item() is None and s.progress().labelled == 12
    answered = [e.item for e in s._fold.labelled()]
    assert len(answered) == len(set(answered)) == 12


def test_full_run_is_done(tmp_path: Path, pool: Path) -> None:
    s = _open(tmp_path, pool, strategy="ft")
    assert answer_with_oracle(s) == 12
    p, st = s.progress(), s.model_status()
    assert p.done and p.labelled == 12 and st.state == "done" and st.version == 3
    assert s.next_item() is None and not s.retrain_due()


def test_failed_and_cancelled_trainings_keep_the_model(
    tmp_path: Path, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _open(tmp_path, pool, strategy="rand")
    answer_with_oracle(s, limit=4)
    result = s.start_retrain().run(cancelled=lambda: True)
    assert result.cancelled and not s.swap_model(result)
    assert s.model_status().state == "due"

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pool_backend, "train_frame_classifier", boom)
    result = s.start_retrain().run()
    assert result.error == "RuntimeError: out of memory" and not result.ok
    assert "out of memory" in s.model_status().error
    assert not s.swap_model(result)
    st = s.model_status()
    assert st.version == 0 and st.state == "due" and "out of memory" in st.error
    monkeypatch.undo()
    s.close()
    s = _open(tmp_path, pool)  # the failure is in the journal
    assert "out of memory" in s.model_status().error
    assert s.retrain_now() and s.model_status().error == ""


def test_two_annotators_share_the_queue(tmp_path: Path, pool: Path) -> None:
    ana = _open(tmp_path, pool)
    bob = _open(tmp_path, pool, who="bob")
    a, b = ana.next_item(), bob.next_item()
    assert a is not None and b is not None and a.index != b.index
    ana.submit(a, [0])
    bob.submit(b, [])
    assert ana.progress().labelled == 2 and ana.progress().mine == 1
    # answering hands each their next item at once: they never get the same one
    c, d = ana.next_item(), bob.next_item()
    assert c is not None and d is not None and len({a.index, b.index, c.index, d.index}) == 4
    assert answer_with_oracle(ana, limit=1) == 1 == answer_with_oracle(bob, limit=1)
    # one trains, the other waits for that model and loads its checkpoint
    assert ana.retrain_due() and bob.retrain_due()
    job_a, job_b = ana.start_retrain(), bob.start_retrain()
    assert "trained by ana" in bob.model_status().message
    ra = job_a.run()
    assert ana.swap_model(ra)
    rb = job_b.run()
    assert rb.adopted and rb.file is None and bob.swap_model(rb)
    assert ana.model_status().version == 1 == bob.model_status().version
    assert ana.next_item().model_version == 1  # type: ignore[union-attr]


def test_a_stale_result_is_discarded(tmp_path: Path, pool: Path) -> None:
    ana = _open(tmp_path, pool)
    bob = _open(tmp_path, pool, who="bob")
    answer_with_oracle(ana, limit=4)
    job_a = ana.start_retrain()
    ana.close()  # releases its claim: bob may train now
    job_b = bob.start_retrain()
    ra, rb = job_a.run(), job_b.run()
    assert not rb.adopted and bob.swap_model(rb)
    ana = _open(tmp_path, pool)
    assert not ana.swap_model(ra)  # bob's model came first
    assert ra.file is not None and not ra.file.exists()
    assert ana.model_status().version == 1 == bob.model_status().version


def test_a_dead_trainers_claim_does_not_hold_the_round(tmp_path: Path, pool: Path) -> None:
    import subprocess
    import sys

    ana = _open(tmp_path, pool)
    answer_with_oracle(ana, limit=4)
    ana.close()
    # another process claims the round's training, then dies before installing a model
    code = (
        "import os, sys; from iml_tui.engine.session import Session; "
        "s = Session.open(sys.argv[1], 'cleo'); s.start_retrain(); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "proj")], check=False, timeout=120)
    with Journal(tmp_path / "proj" / "journal.sqlite") as j:
        (claim,) = j.events(kinds=["training_claimed"])
    assert claim.annotator == "cleo" and claim.payload["host"]
    bob = _open(tmp_path, pool, who="bob")
    job = bob.start_retrain()
    assert "trained by" not in bob.model_status().message  # bob trains himself
    result = job.run()
    assert not result.adopted and bob.swap_model(result)
    assert bob.model_status().version == 1


def test_a_failed_training_hands_the_round_to_the_waiting_session(
    tmp_path: Path, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = _open(tmp_path, pool)
    bob = _open(tmp_path, pool, who="bob")
    answer_with_oracle(ana, limit=4)
    job_a, job_b = ana.start_retrain(), bob.start_retrain()

    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("out of memory")

    with monkeypatch.context() as m:
        m.setattr(pool_backend, "train_frame_classifier", boom)
        ra = job_a.run()
    assert not ana.swap_model(ra)  # recorded as failed: the claim ends
    rb = job_b.run()
    assert rb.cancelled and not rb.adopted and not bob.swap_model(rb)
    job = bob.start_retrain()  # bob now trains the round himself
    assert "trained by" not in bob.model_status().message
    assert bob.swap_model(job.run()) and ana.model_status().version == 1


def test_one_training_per_round_with_two_annotators(
    tmp_path: Path, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two annotators label the same project at once (one thread each) to the end: every round
    is trained exactly once, and both end with the same model."""
    _open(tmp_path, pool).close()
    trained: list[int] = []
    real = pool_backend.train_frame_classifier

    def counting(*args: Any, **kw: Any) -> Any:
        trained.append(threading.get_ident())
        return real(*args, **kw)

    monkeypatch.setattr(pool_backend, "train_frame_classifier", counting)
    sessions = [_open(tmp_path, pool, who=w) for w in ("ana", "bob")]
    errors: list[BaseException] = []

    def label(s: Session) -> None:
        try:
            answer_with_oracle(s)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=label, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and not any(t.is_alive() for t in threads)
    with Journal(tmp_path / "proj" / "journal.sqlite") as j:
        models = [int(e.model_version or 0) for e in j.events(kinds=["model_trained"])]
        claims = j.events(kinds=["training_claimed"])
    assert models == [1, 2, 3]  # budgets 4, 8, 12: one model per round, none twice
    assert len(trained) == 3 == len(claims)
    assert [s.model_status().version for s in sessions] == [3, 3]
    assert all(s.progress().done for s in sessions)
    for s in sessions:
        s.close()


def test_a_crashed_annotators_item_is_released_at_once(tmp_path: Path, pool: Path) -> None:
    import subprocess
    import sys

    _open(tmp_path, pool).close()
    # another annotator's process claims the first item, then dies (kill -9 or a crash)
    code = (
        "import sys; from iml_tui.engine.session import Session; "
        "s = Session.open(sys.argv[1], 'cleo'); print(s.next_item().index)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "proj")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    held = int(proc.stdout.split()[-1])
    bob = _open(tmp_path, pool, who="bob")
    # its process is gone: the item is not kept for the 900 s lease
    item = bob.next_item()
    assert item is not None and item.index == held
    # a live holder (this process under another name) keeps its item
    dora = _open(tmp_path, pool, who="dora")
    d = dora.next_item()
    assert d is not None and d.index != held


def test_imported_labels_warm_start(tmp_path: Path, pool: Path) -> None:
    make_project(tmp_path / "proj", pool)
    with Journal(tmp_path / "proj" / "journal.sqlite") as j:
        from iml_tui.engine.journal import NewEvent

        j.append(*(NewEvent("labelled", item=i, labels=[0], annotator="import") for i in (0, 1)))
    s = Session.open(tmp_path / "proj", "ana")
    item = s.next_item()
    assert item is not None and "nearest labelled clip (bird)" in item.why
    assert s.progress().labelled == 2 and s.progress().queue_left == 2


def test_bad_project_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"project\.yaml"):
        Session.open(tmp_path)
