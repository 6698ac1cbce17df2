"""Stream mode: the interactive-ML loop (SPEC B.5) over a stream of batches."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iml_tui.atomic import atomic_torch_save
from iml_tui.data.locate import Locator
from iml_tui.data.store import PoolStore
from iml_tui.engine.journal import Event, Journal, NewEvent
from iml_tui.engine.oracle import SKIPPED, Question
from iml_tui.engine.project import Project
from iml_tui.engine.session.backend import checkpoint_path, model_trained_event
from iml_tui.engine.session.fold import Fold
from iml_tui.engine.session.retrain import Cancelled
from iml_tui.engine.session.types import CancelFn, LearningCurve, ProgressCb, RetrainResult


# --- stream mode ---------------------------------------------------------------------------------
@dataclass
class StreamState:
    """Everything the stream loop carries between questions (saved with each model)."""

    model_state: dict[str, torch.Tensor]
    rng_state: Mapping[str, Any]
    budget: Any
    st: Any  # paradigms.stream._State, None before the bootstrap is answered
    phase: str  # boot-question | boot-fit | al | cf | done
    step: Any  # paradigms.stream.BatchStep of the batch in progress
    question: Question | None


class NoOracle:
    """The session drives the loop's step functions itself; nothing may ask an oracle."""

    def answer(self, question: Question) -> np.ndarray:
        raise RuntimeError("a labelling session answers through Session.submit")


def stream_store_attrs(cfg: Any) -> dict[str, Any]:
    """Attributes of the (first) feature store a stream config reads: where its audio is."""
    base = Path(cfg.feat_root) / cfg.features[0]
    name = cfg.split if cfg.task == "lid" else cfg.env
    candidates = [base / f"{name}.h5"]
    if (base / name).is_dir():
        candidates += sorted((base / name).glob("*.h5"))
    for path in candidates:
        if path.is_file():
            return PoolStore(path).attrs
    return {}


class StreamBackend:
    """Stream mode: the B.5 loop (AL queries, then the model's decisions to review), one
    question at a time, with the human as the oracle."""

    mode = "stream"
    multi_label = False
    score_name = "pre-DCF"
    score_key = "pre_dcf"
    training_description = "fitting the stream model"

    def __init__(self, project: Project) -> None:
        from iml_tui.engine.paradigms.stream import StreamRun, build_model, prepare_inputs

        self.project = project
        scfg = project.config.stream_config()
        self.scfg = scfg
        target = scfg.target if scfg.task == "lid" else scfg.env
        self.inputs = prepare_inputs(scfg, target)
        self.run = StreamRun(
            scfg, self.inputs, project.dir / "stream", torch.device("cpu"), oracle=NoOracle()
        )
        self.class_list = [self.inputs.target]
        self.ids = self.inputs.ids
        self.n = len(self.ids)
        self.locator = Locator(stream_store_attrs(scfg), project.config.audio_root or None)
        self.version = 0
        self.n_rounds = self.inputs.n_batches
        model = build_model(scfg, self.run.dim, torch.device("cpu"), self.run.frames)
        rng = np.random.default_rng([scfg.seed, 1])
        from iml_tui.engine.budgets import QueryBudget

        budget = QueryBudget(self.run.budget_cfg, self.run.plan)
        q = self.run.bootstrap_question()
        st = self.run.bootstrap_state(None, None) if q is None else None
        self.state = StreamState(
            model_state={k: v.detach().clone() for k, v in model.state_dict().items()},
            rng_state=rng.bit_generator.state,
            budget=budget,
            st=st,
            phase="boot-fit" if q is None else "boot-question",
            step=None,
            question=q,
        )
        self._model_cache: tuple[int, Any] | None = None

    @property
    def trained_on(self) -> int:
        st = self.state.st
        return 0 if st is None else len(st.pool_y)

    @property
    def scores(self) -> dict[str, float]:
        st = self.state.st
        if st is None or not st.rows:
            return {}
        return {"pre_dcf": float(st.rows[-1].pre_dcf), "dcf": float(st.rows[-1].dcf)}

    # -- models --
    def load(self, ev: Event) -> None:
        path = self.project.dir / str(ev.payload["file"])
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.install(state, ev)

    def install(self, state: StreamState, ev: Event) -> None:
        self.state = state
        self.version = int(ev.model_version or 0)

    def install_result(self, result: RetrainResult, ev: Event) -> None:
        self.install(result.state, ev)
        st = self.state.st
        if st is not None and st.rows:
            from iml_tui.engine.scoring import write_scores

            out = self.project.dir / "stream"
            out.mkdir(parents=True, exist_ok=True)
            write_scores(out / "scores.csv", st.rows)

    def model_event(self, result: RetrainResult) -> NewEvent:
        return model_trained_event(self.project.dir, result, phase=result.info["phase"])

    # -- questions --
    def question_events(self, state: StreamState, gen: int) -> list[NewEvent]:
        q = state.question
        if q is None or not len(q):
            return []
        step = state.step
        out = []
        target = self.inputs.target
        for k, i in enumerate(q.items.tolist()):
            f: dict[str, Any] = {"rank": k, "kind": q.why}
            if q.pred is not None and q.confidence is not None:
                pred, conf = int(q.pred[k]), float(q.confidence[k])
                f.update(
                    pred=pred,
                    confidence=round(conf, 4),
                    prob=round(conf if pred == 1 else 1.0 - conf, 4),
                )
            if q.why == "al-query" and step is not None:
                f["method"] = step.method
                if step.scores is not None:
                    f["uncertainty"] = round(float(step.scores[k]), 4)
                detail = (
                    f"{step.method} score {f['uncertainty']:.3f}"
                    if "uncertainty" in f
                    else f"rank {k + 1} by {step.method}"
                )
                f["why"] = (
                    f"the model asks: {detail} (confidence {f.get('confidence', 0):.2f});"
                    f" {step.n_q} of {len(step.idx)} in batch {step.b + 1}"
                )
            elif q.why == "cf-review":
                says = target if f.get("pred") == 1 else f"not {target}"
                f["why"] = (
                    "model detection to review"
                    if f.get("pred") == 1
                    else "model decision to review"
                ) + f": it says {says} (confidence {f.get('confidence', 0):.2f})"
            else:
                f["why"] = "bootstrap: labelled before the stream starts"
            out.append(
                NewEvent(
                    "selected",
                    item=int(i),
                    item_id=self.ids[int(i)],
                    model_version=gen,
                    round=q.batch,
                    payload=f,
                )
            )
        return out

    def first_queue(self, fold: Fold) -> list[NewEvent]:
        return self.question_events(self.state, 0)

    def answers(self, fold: Fold) -> np.ndarray | None:
        """The current question's answers (1 / 0 / SKIPPED), None while one is open."""
        q = self.state.question
        if q is None:
            return np.zeros(0, np.int64)
        out = np.zeros(len(q), np.int64)
        for k, i in enumerate(q.items.tolist()):
            e = fold.current.get(int(i))
            if e is None:
                return None
            out[k] = SKIPPED if e.kind == "skipped" else int(0 in (e.labels or ()))
        return out

    def key(self, fold: Fold) -> str:
        a = self.answers(fold)
        return f"{self.version}:" + ("open" if a is None else ",".join(map(str, a.tolist())))

    def due(self, fold: Fold) -> bool:
        ph = self.state.phase
        if ph == "done":
            return False
        return ph == "boot-fit" or self.answers(fold) is not None

    def done(self, fold: Fold) -> bool:
        return self.state.phase == "done"

    def asking(self) -> bool:
        """Whether a question is open (between questions the stream model is being fitted)."""
        return self.state.question is not None

    def undo_items(self) -> list[int] | None:
        """Only answers of the open question can be withdrawn."""
        q = self.state.question
        return [] if q is None else [int(i) for i in q.items]

    def round_and_budget(self, fold: Fold, n_labelled: int, left: int) -> tuple[int, int]:
        step = self.state.step
        rnd = self.n_rounds if self.state.phase == "done" else (-1 if step is None else int(step.b))
        return rnd, n_labelled + left

    def opening_events(self, journal: Journal) -> list[NewEvent]:
        return []

    def bridge_events(self, fold: Fold) -> list[NewEvent]:
        """Nothing: the next question depends on the fit (SPEC B.5), so the stream waits."""
        return []

    def fit_queue(self, result: RetrainResult, fold: Fold) -> list[NewEvent]:
        return list(result.queue)

    def job_work(
        self, fold: Fold, status_key: str
    ) -> Callable[[ProgressCb, CancelFn], RetrainResult]:
        from iml_tui.engine.paradigms.stream import build_model

        labels = self.answers(fold)
        if labels is None:
            raise RuntimeError("nothing to train yet: answer the open question first")
        state = copy.deepcopy(self.state)
        run, scfg, base = self.run, self.scfg, self.version
        version = base + 1
        models_dir = self.project.models_dir
        n_batches = self.inputs.n_batches

        def work(progress: ProgressCb, cancelled: CancelFn) -> RetrainResult:
            model = build_model(scfg, run.dim, torch.device("cpu"), run.frames)
            model.load_state_dict(state.model_state)
            rng = np.random.default_rng()
            rng.bit_generator.state = state.rng_state
            phase, st, step, q, lab = state.phase, state.st, state.step, state.question, labels
            budget = state.budget
            while True:
                if cancelled():
                    raise Cancelled
                if phase in ("boot-question", "boot-fit"):
                    if phase == "boot-question":
                        st = run.bootstrap_state(q, lab)
                    progress(0.1, f"fitting on the bootstrap ({len(st.pool_y)} items)")
                    run.fit(model, st, rng)
                    phase = "next"
                elif phase == "al":
                    run.take_al_answers(step, st, model, lab)
                    progress(0.2, f"batch {step.b + 1}: fitting on {len(st.pool_y)} labels")
                    step.tm.fit_al_s, step.tm.epochs_al = run.fit(model, st, rng, after_al=True)
                    cq = run.cf_question(step, model)
                    if cq is not None and len(cq):
                        phase, q = "cf", cq
                        break
                    if cq is not None:
                        run.take_cf_answers(step, st, cq, np.zeros(0, np.int64))
                    run.end_batch(step, st)
                    phase = "next"
                elif phase == "cf" and q is not None:
                    if run.take_cf_answers(step, st, q, lab):
                        progress(0.5, f"batch {step.b + 1}: fitting on the reviewed decisions")
                        step.tm.fit_cf_s, step.tm.epochs_cf = run.fit(model, st, rng)
                    run.end_batch(step, st)
                    phase = "next"
                if phase == "next":
                    b = len(st.rows)
                    if b >= n_batches:
                        phase, step, q = "done", None, None
                        break
                    progress(0.8, f"batch {b + 1}: ranking its samples")
                    step, q = run.begin_batch(b, model, rng, budget, st)
                    phase = "al"
                    if len(q):
                        break
                    lab = np.zeros(0, np.int64)
            new = StreamState(
                model_state={k: v.detach().clone() for k, v in model.state_dict().items()},
                rng_state=rng.bit_generator.state,
                budget=budget,
                st=st,
                phase=phase,
                step=step,
                question=q,
            )
            path = checkpoint_path(models_dir, "stream", version)
            atomic_torch_save(new, path)
            scores = (
                {"pre_dcf": float(st.rows[-1].pre_dcf), "dcf": float(st.rows[-1].dcf)}
                if st.rows
                else {}
            )
            progress(1.0, f"model {version} ready")
            rnd = -1 if step is None else int(step.b)
            return RetrainResult(
                "stream",
                base,
                version,
                status_key,
                scores=scores,
                n_labelled=len(st.pool_y),
                file=path,
                queue=self.question_events(new, version),
                state=new,
                round=rnd,
                info={"phase": phase},
            )

        return work

    # -- what the screen shows --
    def item_view(self, sel: Event | None, item: int) -> dict[str, Any]:
        f = dict(sel.payload) if sel is not None else {}
        why = str(f.pop("why", "")) or "asked again"
        out: dict[str, Any] = {
            "kind": str(f.get("kind", "al-query")),
            "why": why,
            "why_fields": f,
            "clip_probs": None,
            "frame_probs": None,
            "threshold": 0.5,
            "predicted": (),
            "confidence": None,
        }
        if "prob" in f:
            p = np.array([f["prob"]], dtype=np.float32)
            out.update(
                clip_probs=p,
                frame_probs=p[None, :],
                predicted=(0,) if f["pred"] else (),
                confidence=float(f["confidence"]),
            )
        return out

    def truth(self, item: int) -> list[int]:
        return [0] if int(self.inputs.y[item]) == 1 else []

    def learning_curve(self, fold: Fold) -> LearningCurve:
        st = self.state.st
        rows = [] if st is None else st.rows
        return LearningCurve("pre-DCF", False, [(int(r.n_samples), float(r.pre_dcf)) for r in rows])
