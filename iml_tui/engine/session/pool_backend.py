"""Pool mode: rounds of the project's strategy over ``<pool_dir>/train.h5``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iml_tui.atomic import atomic_torch_save
from iml_tui.data.locate import Locator
from iml_tui.data.store import PoolStore
from iml_tui.engine import metrics
from iml_tui.engine.extents import Extent, extent_frames, frame_spans_of
from iml_tui.engine.journal import Event, Journal, NewEvent
from iml_tui.engine.metrics import map_text
from iml_tui.engine.models.frame_mlp import FrameMLP
from iml_tui.engine.pool_round import pick_round, round_rng
from iml_tui.engine.project import Project
from iml_tui.engine.self_validated import train_self_validated
from iml_tui.engine.session.backend import (
    checkpoint_path,
    class_names,
    model_trained_event,
    next_round,
)
from iml_tui.engine.session.fold import Fold
from iml_tui.engine.session.retrain import Cancelled
from iml_tui.engine.session.types import CancelFn, LearningCurve, ProgressCb, RetrainResult
from iml_tui.engine.strategies.farthest import max_similarity
from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier
from iml_tui.errors import UserError


class PoolBackend:
    """Pool mode: rounds of the project's strategy over ``<pool_dir>/train.h5``."""

    mode = "pool"
    multi_label = True
    score_key = "valid_map"
    training_description = "retraining on the labels"

    def __init__(self, project: Project) -> None:
        cfg = project.config
        self.project = project
        self.cfg = cfg
        pool_dir = Path(cfg.pool_dir)
        self.store = PoolStore(pool_dir / "train.h5")
        valid = pool_dir / "valid.h5"
        # without a labelled valid.h5 the annotator's own labels validate (self_validated.py)
        self.valid_path: Path | None = valid if valid.is_file() else None
        self.class_list = list(self.store.class_list)
        if self.valid_path is not None:
            _check_valid_header(PoolStore(self.valid_path), self.store)
        self.ids = self.store.ids
        self.n = self.store.n
        self.x = np.asarray(self.store.pooled())
        self.locator = Locator(self.store.attrs, cfg.audio_root or None)
        self.train_cfg = TrainConfig.from_config(cfg)
        self.model: FrameMLP | None = None
        self.threshold = 0.5
        self.version = 0
        self.scores: dict[str, float] = {}
        self.trained_on = 0
        self._valid: tuple[np.ndarray, np.ndarray] | None = None
        self._valid_lock = threading.Lock()
        self._item_cache: dict[int, tuple[int, np.ndarray]] = {}
        self._pool_probs: tuple[int, np.ndarray] | None = None
        self._truth: np.ndarray | None = None

    @property
    def n_rounds(self) -> int:
        return len(self.cfg.budgets)

    @property
    def score_name(self) -> str:
        if self.valid_path is not None:
            return "valid mAP"
        n = int(self.scores.get("n_oof", self.trained_on))
        std = self.scores.get("valid_map_std")
        spread = f", ±{map_text(std)}" if std is not None else ""
        return f"mAP estimated from {n} labels{spread}"

    # -- the session's questions --
    def done(self, fold: Fold) -> bool:
        """Every budget reached (or the pool exhausted) by a model trained on the current labels."""
        if fold.unanswered() or not fold.models or self.version == 0:
            return False
        last = fold.models[-1].payload
        if last.get("labels_key") != fold.labels_key():
            return False
        return next_round(self.cfg.budgets, len(fold.labelled())) is None or bool(
            last.get("no_more")
        )

    def due(self, fold: Fold) -> bool:
        return not fold.unanswered() and not self.done(fold)

    def key(self, fold: Fold) -> str:
        return str(self.version)

    def asking(self) -> bool:
        return True

    def undo_items(self) -> list[int] | None:
        return None

    def round_and_budget(self, fold: Fold, n_labelled: int, left: int) -> tuple[int, int]:
        rnd = int(fold.queue[0].round or 0) if fold.queue else 0
        return rnd, self.cfg.budgets[min(rnd, len(self.cfg.budgets) - 1)]

    def opening_events(self, journal: Journal) -> list[NewEvent]:
        return self.pool_label_events(journal)

    def pool_label_events(self, journal: Journal) -> list[NewEvent]:
        """``labelled`` events for the clips whose labels the pool knows (recordings prepared
        with annotations), once per project; [] for pools without a known-label mask."""
        if not self.store.has_known_mask:
            return []
        if any(e.payload.get("source") == "pool" for e in journal.events(0, kinds=["imported"])):
            return []
        rows = np.flatnonzero(self.store.known())
        clip = self.store.clip_labels(rows)
        who = "import:train.h5"
        return [
            NewEvent(
                "imported",
                annotator=who,
                payload={"source": "pool", "file": str(self.store.path), "rows": int(rows.size)},
            ),
            *(
                NewEvent(
                    "labelled",
                    item=int(i),
                    item_id=self.ids[int(i)],
                    labels=[int(c) for c in np.flatnonzero(clip[k])],
                    annotator=who,
                    payload={"kind": "import"},
                )
                for k, i in enumerate(rows)
            ),
        ]

    # -- models --
    def load(self, ev: Event) -> None:
        """Install the model of a ``model_trained`` event (written by any process)."""
        path = self.project.dir / str(ev.payload["file"])
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.install(FrameMLP.from_state_dict(saved["state_dict"]).eval(), ev)

    def install(self, model: FrameMLP, ev: Event) -> None:
        self.model = model
        self.version = int(ev.model_version or 0)
        self.threshold = float(ev.payload.get("threshold", 0.5))
        self.scores = {k: float(v) for k, v in ev.payload.get("scores", {}).items()}
        self.trained_on = int(ev.payload.get("n_labelled", 0))
        self._item_cache.clear()

    def _valid_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.valid_path is None:
            raise ValueError("this pool has no valid.h5")
        with self._valid_lock:
            if self._valid is None:
                v = PoolStore(self.valid_path)
                _check_valid_header(v, self.store)
                self._valid = (v.embeddings(), v.frame_labels())
            return self._valid

    # -- selection --
    def targets(self, labelled: Sequence[Event]) -> tuple[np.ndarray, np.ndarray]:
        """(L,) pool indices in labelling order and their (L, C) clip-level 0/1 targets."""
        idx = np.array([int(e.item or 0) for e in labelled], dtype=np.int64)
        y = np.zeros((len(idx), len(self.class_list)), dtype=np.uint8)
        for k, e in enumerate(labelled):
            y[k, list(e.labels or ())] = 1
        return idx, y

    def choose(
        self,
        n: int,
        lab: np.ndarray,
        y: np.ndarray,
        skipped: set[int],
        probs: np.ndarray | None,
        threshold: float,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, str]:
        """Up to ``n`` new pool indices by the project's strategy (skipped items left out) and
        the rule used ("mfft", or the first-round rule when there is no model yet)."""
        strategy = self.cfg.strategy
        extra = len(skipped - set(lab.tolist()))
        want = min(n + extra, self.n - len(lab))
        if want <= 0:
            return np.zeros(0, np.int64), strategy
        picks, rule = pick_round(
            strategy, self.x, lab, y if lab.size else None, probs, threshold, want, rng
        )
        keep = np.array([int(p) not in skipped for p in picks], dtype=bool)
        return np.asarray(picks[keep][:n], dtype=np.int64), rule

    def queue_events(
        self,
        picks: np.ndarray,
        rule: str,
        lab: np.ndarray,
        y: np.ndarray,
        probs: np.ndarray | None,
        threshold: float,
        gen: int,
        round_: int,
    ) -> list[NewEvent]:
        """``selected`` events for the picks, each with why it was chosen."""
        if picks.size == 0:
            return []
        sim = nn = None
        if lab.size:
            sim, nn = max_similarity(self.x, picks, lab)
        out: list[NewEvent] = []
        names = self.class_list
        for k, i in enumerate(picks.tolist()):
            f: dict[str, Any] = {"strategy": self.cfg.strategy, "rule": rule, "rank": k}
            nbr_txt = ""
            if sim is not None and nn is not None and nn[k] >= 0:
                j = int(nn[k])
                nbr = [int(c) for c in np.flatnonzero(y[j])]
                f.update(
                    neighbour=int(lab[j]),
                    neighbour_id=self.ids[int(lab[j])],
                    neighbour_labels=[names[c] for c in nbr],
                    distance=round(float(1.0 - sim[k]), 4),
                )
                nbr_txt = (
                    f"nearest labelled clip ({class_names(names, nbr)}) at distance "
                    f"{f['distance']:.2f}"
                )
            pred: list[int] = []
            if probs is not None:
                pred = [int(c) for c in np.flatnonzero(probs[i] >= threshold)]
                f["predicted"] = [names[c] for c in pred]
                if sim is not None and nn is not None and nn[k] >= 0:
                    f["mismatch"] = int(
                        np.count_nonzero((probs[i] >= threshold) != y[int(nn[k])].astype(bool))
                    )
            if rule in ("mp", "mfft") and "mismatch" in f:
                why = (
                    f"mismatch {f['mismatch']}: the model says {class_names(names, pred)}; its "
                    f"{nbr_txt}"
                )
            elif rule == "ft":
                why = (
                    f"farthest from what is labelled: {nbr_txt}"
                    if nbr_txt
                    else "first pick: spread over the pool (farthest-first)"
                )
                if rule != self.cfg.strategy:
                    why = f"no model yet, {self.cfg.strategy} starts farthest-first: " + why
            else:
                why = "random pick" + (f"; {nbr_txt}" if nbr_txt else "")
            f["why"] = why
            out.append(
                NewEvent(
                    "selected",
                    item=int(i),
                    item_id=self.ids[int(i)],
                    model_version=gen,
                    round=round_,
                    payload=f,
                )
            )
        return out

    def first_queue(self, fold: Fold) -> list[NewEvent]:
        """The queue before any model: the first round (after imported labels, if any)."""
        labelled = fold.labelled()
        r = next_round(self.cfg.budgets, len(labelled))
        if r is None:
            return []
        lab, y = self.targets(labelled)
        n = self.cfg.budgets[r] - len(labelled)
        rng = round_rng(self.cfg.seed, r)
        picks, rule = self.choose(n, lab, y, fold.skipped(), None, 0.5, rng)
        return self.queue_events(picks, rule, lab, y, None, 0.5, 0, r)

    # -- the retraining --
    def job_work(
        self, fold: Fold, status_key: str
    ) -> Callable[[ProgressCb, CancelFn], RetrainResult]:
        labelled = fold.labelled()
        lab, y = self.targets(labelled)
        now, lease = time.time(), self.cfg.lease_seconds
        # items on someone's screen stay theirs: not re-picked, and they count as picked
        held = {int(c.item or 0) for c in fold.claims.values() if fold.claim_held(c, now, lease)}
        skipped = fold.skipped() | held
        unanswered = fold.unanswered()
        exhausted = not unanswered
        cur_round = int(fold.queue[0].round or 0) if fold.queue else 0
        if exhausted:
            r = next_round(self.cfg.budgets, len(lab))
            n = 0 if r is None else max(0, self.cfg.budgets[r] - len(lab) - len(held))
            round_ = cur_round if r is None else r
        else:
            round_ = cur_round
            # clips queued by a search stay queued (fit_queue); the strategy re-ranks the rest
            n = sum(
                1
                for e in unanswered
                if int(e.item or 0) not in held and e.payload.get("rule") != "search"
            )
        base = self.version
        version = base + 1
        models_dir = self.project.models_dir
        strategy = self.cfg.strategy
        train_cfg = self.train_cfg
        labels_key = fold.labels_key()
        marks = {int(i): fold.extents(int(i)) for i in lab}

        def work(progress: ProgressCb, cancelled: CancelFn) -> RetrainResult:
            if lab.size == 0:
                raise ValueError("nothing is labelled yet: label some items first")
            progress(0.0, "reading the labelled clips")
            tx = self.store.embeddings(lab)
            ty, weak = self.frame_targets(lab, y, tx.shape[1], marks)
            span = np.log(train_cfg.lr / train_cfg.min_lr)

            def share(epoch: int) -> float:
                # lr halves on plateaus until below min_lr: a rough share of the way
                return min(0.95, epoch / train_cfg.max_epochs + 0.02 * epoch / (1 + span))

            extra: dict[str, float] = {}
            if self.valid_path is not None:
                vx, vy = self._valid_arrays()

                def on_epoch(epoch: int, valid_map: float) -> None:
                    if cancelled():
                        raise Cancelled
                    progress(0.8 * share(epoch), f"epoch {epoch}: valid mAP {map_text(valid_map)}")

                res = train_frame_classifier(
                    tx, ty, vx, vy, train_cfg, progress=on_epoch, weak=weak
                )
                state_dict, epochs, best = res.state_dict, res.epochs_run, res.best_epoch
                model = FrameMLP.from_state_dict(state_dict).eval()
                progress(0.8, "scoring the validation clips")
                vp = predict_frames(model, vx, "cpu", precision=train_cfg.eval_precision)
                thr, vf1 = metrics.best_global_threshold(vp, vy)
                vmap, _ = metrics.frame_map(vp, vy)
            else:

                def on_fold(fold: int, k: int, epoch: int, held_map: float) -> None:
                    if cancelled():
                        raise Cancelled
                    what = f"fold {fold + 1}/{k}" if fold < k else "final model on all labels"
                    progress(
                        0.8 * (fold + share(epoch)) / (k + 1),
                        f"{what}, epoch {epoch}: held-out mAP {map_text(held_map)}",
                    )

                sv = train_self_validated(
                    tx, ty, train_cfg, seed=self.cfg.seed, progress=on_fold, weak=weak
                )
                state_dict, epochs, best = sv.state_dict, sv.epochs, sv.epochs
                model = FrameMLP.from_state_dict(state_dict).eval()
                thr, vf1, vmap = sv.oof.threshold, sv.oof.f1, sv.est_map
                extra = {
                    "valid_map_std": sv.est_map_std,
                    "n_oof": float(sv.oof.n_labels),
                    "folds": float(sv.k),
                }
            probs = None
            if n > 0 and strategy in ("mp", "mfft"):
                progress(0.85, "predicting the pool")
                blocks = []
                for start, block in self.store.iter_blocks():
                    if cancelled():
                        raise Cancelled
                    blocks.append(
                        (
                            start,
                            predict_frames(
                                model, block, "cpu", precision=train_cfg.eval_precision
                            ).max(axis=1),
                        )
                    )
                probs = np.zeros((self.n, len(self.class_list)), np.float32)
                for start, p in blocks:
                    probs[start : start + p.shape[0]] = p
            queue: list[NewEvent] = []
            if n > 0:
                progress(0.95, f"selecting {n} clips ({strategy})")
                # a new round draws as the simulator's; a mid-round re-rank by model version
                rng = (
                    round_rng(self.cfg.seed, round_)
                    if exhausted
                    else np.random.default_rng([self.cfg.seed, round_, version])
                )
                picks, rule = self.choose(n, lab, y, skipped, probs, thr, rng)
                queue = self.queue_events(picks, rule, lab, y, probs, thr, version, round_)
            path = checkpoint_path(models_dir, "pool", version)
            atomic_torch_save(
                {
                    "state_dict": state_dict,
                    "threshold": thr,
                    "labelled": lab.tolist(),
                    "class_list": self.class_list,
                },
                path,
            )
            name = "valid mAP" if self.valid_path is not None else "estimated mAP"
            progress(1.0, f"model {version}: {name} {map_text(vmap)}")
            scores = {
                "valid_map": float(vmap),
                "valid_f1": float(vf1),
                "threshold": float(thr),
                "epochs": float(epochs),
                "best_epoch": float(best),
                **extra,
            }
            return RetrainResult(
                "pool",
                base,
                version,
                status_key,
                scores=scores,
                n_labelled=int(lab.size),
                file=path,
                queue=queue,
                state=model,
                round=round_,
                info={
                    "threshold": float(thr),
                    "pool_probs": probs,
                    "labels_key": labels_key,
                    "no_more": n > 0 and not queue,
                },
            )

        return work

    def model_event(self, result: RetrainResult) -> NewEvent:
        return model_trained_event(
            self.project.dir,
            result,
            threshold=result.info["threshold"],
            labels_key=result.info["labels_key"],
            no_more=result.info["no_more"],
        )

    def install_result(self, result: RetrainResult, ev: Event) -> None:
        self.install(result.state, ev)
        probs = result.info.get("pool_probs")
        if probs is not None:
            self._pool_probs = (self.version, probs)

    def pool_probs(self) -> np.ndarray | None:
        """(N, C) clip probabilities of the installed model over the pool (None: no model)."""
        if self.model is None:
            return None
        if self._pool_probs is None or self._pool_probs[0] != self.version:
            probs = np.zeros((self.n, len(self.class_list)), np.float32)
            for start, block in self.store.iter_blocks():
                probs[start : start + block.shape[0]] = predict_frames(
                    self.model, block, "cpu"
                ).max(axis=1)
            self._pool_probs = (self.version, probs)
        return self._pool_probs[1]

    def bridge_events(self, fold: Fold) -> list[NewEvent]:
        """While a model trains at a round boundary: the next round picked by the installed model
        (or the strategy's first-round rule before any), so the annotator never waits. The new
        model re-ranks what is still unanswered when it arrives (:meth:`fit_queue`)."""
        if fold.unanswered() or self.done(fold):
            return []
        labelled = fold.labelled()
        r = next_round(self.cfg.budgets, len(labelled))
        if r is None:
            return []
        lab, y = self.targets(labelled)
        now, lease = time.time(), self.cfg.lease_seconds
        held = {int(c.item or 0) for c in fold.claims.values() if fold.claim_held(c, now, lease)}
        n = self.cfg.budgets[r] - len(labelled) - len(held)
        if n <= 0:
            return []
        probs = self.pool_probs() if self.cfg.strategy in ("mp", "mfft") else None
        rng = np.random.default_rng([self.cfg.seed, r, self.version, 1])
        picks, rule = self.choose(n, lab, y, fold.skipped() | held, probs, self.threshold, rng)
        events = self.queue_events(picks, rule, lab, y, probs, self.threshold, max(fold.gen, 0), r)
        for e in events:
            e.payload["bridge"] = True
            e.payload["why"] = "while the next model trains: " + str(e.payload["why"])
        return events

    def search_events(self, fold: Fold, query: np.ndarray, k: int, example: str) -> list[NewEvent]:
        """``selected`` events for the ``k`` unlabelled clips nearest to ``query`` (D,), asked
        before the rest of the queue (search by example: the first positives of a rare class)."""
        from iml_tui.engine.search import nearest

        taken = set(fold.current) | {int(e.item or 0) for e in fold.unanswered()}
        picks, sims = nearest(self.x, query, k, exclude=taken)
        round_ = int(fold.queue[0].round or 0) if fold.queue else 0
        first = min((int(e.payload.get("rank", 0)) for e in fold.unanswered()), default=0)
        return [
            NewEvent(
                "selected",
                item=int(i),
                item_id=self.ids[int(i)],
                model_version=max(fold.gen, 0),
                round=round_,
                payload={
                    "strategy": self.cfg.strategy,
                    "rule": "search",
                    "rank": first - len(picks) + j,
                    "example": example,
                    "cosine": round(float(c), 4),
                    "why": f"similar to {example} (cosine {float(c):.2f})",
                },
            )
            for j, (i, c) in enumerate(zip(picks, sims, strict=True))
        ]

    def fit_queue(self, result: RetrainResult, fold: Fold) -> list[NewEvent]:
        """A finished model's queue as it stands now: clips queued by a search first, items
        answered while it trained left out, and no more than the round's budget allows."""
        searched = [
            NewEvent(
                "selected",
                item=e.item,
                item_id=e.item_id,
                model_version=result.version,
                round=e.round,
                payload=dict(e.payload),
            )
            for e in fold.unanswered()
            if e.payload.get("rule") == "search"
        ]
        answered = set(fold.current) | {int(e.item or 0) for e in searched}
        queue = [e for e in result.queue if int(e.item or 0) not in answered]
        left = (
            self.cfg.budgets[min(result.round, len(self.cfg.budgets) - 1)]
            - len(fold.labelled())
            - len(searched)
        )
        return searched + queue[: max(0, left)]

    # -- what the screen shows --
    def probs_of(self, item: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.model is None:
            return None, None
        cached = self._item_cache.get(item)
        if cached is None or cached[0] != self.version:
            emb = self.store.embeddings(np.array([item], dtype=np.int64))
            frames = predict_frames(self.model, emb, "cpu")[0]
            if len(self._item_cache) > 256:
                self._item_cache.clear()
            self._item_cache[item] = (self.version, frames)
            cached = self._item_cache[item]
        frames = cached[1]
        return frames.max(axis=0), frames

    def item_view(self, sel: Event | None, item: int) -> dict[str, Any]:
        clip, frames = self.probs_of(item)
        f = dict(sel.payload) if sel is not None else {}
        why = str(f.pop("why", "")) or "asked again"
        out: dict[str, Any] = {
            "kind": "pool-query",
            "why": why,
            "why_fields": f,
            "clip_probs": clip,
            "frame_probs": frames,
            "threshold": self.threshold,
            "predicted": (),
            "confidence": None,
        }
        if clip is not None:
            pred = clip >= self.threshold
            out["predicted"] = tuple(int(c) for c in np.flatnonzero(pred))
            out["confidence"] = float(np.min(np.where(pred, clip, 1.0 - clip)))
        return out

    def truth(self, item: int) -> list[int]:
        """The store's own clip labels of ``item`` (for simulated annotators)."""
        if self._truth is None:
            self.store.require_known(np.array([item]), "a simulated annotator")
            self._truth = self.store.clip_labels(np.flatnonzero(self.store.known()))
            if not self.store.all_known:
                full = np.zeros((self.n, len(self.class_list)), np.uint8)
                full[self.store.known()] = self._truth
                self._truth = full
        else:
            self.store.require_known(np.array([item]), "a simulated annotator")
        return [int(c) for c in np.flatnonzero(self._truth[item])]

    def frame_targets(
        self,
        lab: np.ndarray,
        y: np.ndarray,
        t: int,
        marks: Mapping[int, Sequence[Extent]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Training targets of the labelled pool rows ``lab`` with clip labels y (L, C): (L, T, C)
        frame targets and (L,) bool, True where they are only clip labels (weak: the trainer's
        multiple-instance loss, max over frames).

        A clip the annotator marked extents in (``marks``: pool row -> its extents) is strong
        when every class of its label has an extent: its frames are 1 where an extent of the
        class overlaps them (extents of classes not in the label are ignored; a clip with some
        labelled classes unmarked stays weak). Otherwise a clip whose labels came with the
        recordings (the pool's known-label mask) and still agree with the journal keeps its
        annotated frame extents (strong); every other clip is labelled for the clip as a whole."""
        ty = np.repeat(y[:, None, :], t, axis=1)
        weak = np.ones(lab.size, dtype=bool)
        if self.store.has_known_mask and lab.size:
            known = np.flatnonzero(self.store.known()[lab])
            if known.size:
                frames = self.store.frame_labels(allow_unknown=True)[lab[known]]
                agree = (frames.max(axis=1) == y[known]).all(axis=1)
                ty[known[agree]] = frames[agree]
                weak[known[agree]] = False
        if marks:
            clip = float(self.store.attrs.get("clip_seconds") or 0.0)
            spans = frame_spans_of(self.store.attrs)
            for k, row in enumerate(lab.tolist()):
                present = set(np.flatnonzero(y[k]).tolist())
                kept = [x for x in marks.get(int(row), ()) if x.cls in present]
                # without the clip length seconds cannot become frames: the clip stays weak
                if clip <= 0 or not kept or {x.cls for x in kept} != present:
                    continue
                ty[k] = extent_frames(kept, clip, t, y.shape[1], spans)
                weak[k] = False
        return ty, weak

    def learning_curve(self, fold: Fold) -> LearningCurve:
        pts = [
            (
                int(e.payload.get("n_labelled", 0)),
                float(e.payload.get("scores", {}).get("valid_map", float("nan"))),
            )
            for e in fold.models
        ]
        name = "valid mAP" if self.valid_path is not None else "estimated mAP (out-of-fold)"
        return LearningCurve(name, True, pts)


def _check_valid_header(v: PoolStore, train: PoolStore) -> None:
    """valid.h5 must have train.h5's classes and embedding size (UserError naming valid.h5)."""
    if v.class_list != train.class_list or v.d != train.d:
        raise UserError(
            f"valid.h5 has classes {v.class_list} and D={v.d}; train.h5 "
            f"{train.class_list}, D={train.d}",
            v.path,
            "both must come from the same encoder and class list",
        )
