"""Pool-based active learning (SPEC Part A): rounds of selection, fresh training, evaluation.

One run = one (strategy, start, seed). Each finished round leaves a folder with the clips it
selected, the classifier, the random generator's state and its scores, so an interrupted run
resumes from its last finished round and a finished run is not redone.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iml_tui.atomic import atomic_save_npy, atomic_torch_save, atomic_write_text
from iml_tui.data.store import PoolStore
from iml_tui.engine import metrics
from iml_tui.engine.paradigms.run_folder import check_run_spec
from iml_tui.engine.pool_round import PROB_RULES, pick_round, round_rng, round_rule
from iml_tui.engine.strategies import STRATEGIES
from iml_tui.engine.trainer import TrainConfig, predict_frames, train_frame_classifier
from iml_tui.errors import UserError

STARTS = ("cold", "warm")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class PoolRunSpec:
    """What one simulated annotation run does."""

    strategy: str
    start: str
    seed: int
    budgets: tuple[int, ...]
    warm_k: int = 5
    train: TrainConfig = field(default_factory=TrainConfig)
    annotation: str = "frames"  # frames: event extents (the paper); clips: clip labels, MIL

    def __post_init__(self) -> None:
        if self.annotation not in ("frames", "clips"):
            raise UserError(
                f"unknown annotation '{self.annotation}'", None, "choose frames or clips"
            )
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown strategy '{self.strategy}'",
                None,
                f"choose one of {', '.join(STRATEGIES)}",
            )
        if self.start not in STARTS:
            raise UserError(f"unknown start '{self.start}'", None, "choose cold or warm")
        b = list(self.budgets)
        if not b or b != sorted(b) or len(set(b)) != len(b) or b[0] <= 0:
            raise UserError(
                f"budgets {b} must be positive and strictly increasing",
                None,
                "write them as --budgets 50,100,150",
            )

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    @property
    def name(self) -> str:
        return f"{self.strategy}_{self.start}_seed{self.seed}"

    @property
    def k_pos(self) -> int:
        return self.warm_k if self.start == "warm" else 0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["rng"] = "per-round"  # engine/pool_round.py: round r draws from default_rng([seed, r])
        d["budgets"] = list(self.budgets)
        d["train"]["betas"] = list(self.train.betas)
        d["train"].pop("device", None)
        d["train"].pop("threads", None)
        if self.annotation == "frames":  # folders written before the key existed
            d.pop("annotation", None)
        if self.train.eval_precision == "fp32":  # folders written before the key existed
            d["train"].pop("eval_precision", None)
        return d


@dataclass
class PoolSplits:
    """The three pools of one task, with what selection and evaluation read, in memory."""

    train: PoolStore
    x: np.ndarray | None  # (N, D) pooled, normalised; None when runs read it in shards
    clip_targets: np.ndarray  # (N, C) uint8
    frame_targets: np.ndarray  # (N, T, C) uint8
    valid_x: np.ndarray  # (Nv, T, D)
    valid_y: np.ndarray  # (Nv, T, C)
    test_x: np.ndarray
    test_y: np.ndarray
    class_list: list[str]
    rare: list[int]

    @property
    def n(self) -> int:
        return int(self.train.n)


def load_splits(
    pool_dir: str | Path, rare_classes: Sequence[str] = (), pooled: bool = True
) -> PoolSplits:
    """Open ``train.h5``, ``valid.h5``, ``test.h5`` in ``pool_dir`` and check they agree.
    ``pooled`` False: leave the train selection array on disk (``x`` None), for runs that hold
    it in shards."""
    pool_dir = Path(pool_dir)
    if not pool_dir.is_dir():
        raise UserError(
            "pool directory not found",
            pool_dir,
            "give --pool-dir a folder holding train.h5, valid.h5 and test.h5 "
            "(make one with `iml-tui pool synth`)",
        )
    stores = {}
    for split in SPLITS:
        path = pool_dir / f"{split}.h5"
        if not path.exists():
            raise UserError(
                f"{split}.h5 is missing",
                pool_dir,
                "a pool directory holds train.h5, valid.h5 and test.h5",
            )
        stores[split] = PoolStore(path)
    tr = stores["train"]
    for split in ("valid", "test"):
        s = stores[split]
        if (s.t, s.d) != (tr.t, tr.d) or s.class_list != tr.class_list:
            raise UserError(
                f"shape (T={s.t}, D={s.d}) or classes {s.class_list} differ from train.h5 "
                f"(T={tr.t}, D={tr.d}, classes {tr.class_list})",
                s.path,
                "all three splits must come from the same encoder and class list",
            )
    for s in stores.values():
        s.require_known(None, "the simulator (its oracle answers from the pool's labels)")
    frame_targets = tr.frame_labels()
    clip_targets = frame_targets.max(axis=1)
    if rare_classes:
        unknown = [c for c in rare_classes if c not in tr.class_list]
        if unknown:
            raise UserError(
                f"rare class(es) {unknown} not in the class list {tr.class_list}",
                tr.path,
                "fix rare_classes",
            )
        rare = [tr.class_list.index(c) for c in rare_classes]
    else:
        rare = metrics.default_rare_classes(clip_targets, tr.class_list)
    return PoolSplits(
        train=tr,
        x=tr.pooled() if pooled else None,
        clip_targets=clip_targets,
        frame_targets=frame_targets,
        valid_x=stores["valid"].embeddings(),
        valid_y=stores["valid"].frame_labels(),
        test_x=stores["test"].embeddings(),
        test_y=stores["test"].frame_labels(),
        class_list=tr.class_list,
        rare=rare,
    )


@dataclass
class RoundRecord:
    """Scores and costs of one finished round."""

    budget: int
    n_new: int
    test_map: float
    test_f1: float
    valid_map: float
    valid_f1: float
    threshold: float
    counts: list[int]  # annotated clip-level positives per class
    negatives: int  # annotated clips positive for no class
    rare_found: int
    select_seconds: float
    train_seconds: float
    epochs: int
    best_epoch: int
    test_ap: list[float]
    valid_ap: list[float]


def round_columns(class_list: Sequence[str]) -> list[str]:
    """Column order of a run's ``rounds.csv``."""
    return (
        ["budget", "n_new", "test_map", "test_f1", "valid_map", "valid_f1", "threshold"]
        + [f"count_{c}" for c in class_list]
        + [
            "count_Negative",
            "rare_found",
            "select_seconds",
            "train_seconds",
            "epochs",
            "best_epoch",
        ]
        + [f"test_ap_{c}" for c in class_list]
        + [f"valid_ap_{c}" for c in class_list]
    )


def _record_row(r: RoundRecord) -> list[Any]:
    return (
        [
            r.budget,
            r.n_new,
            f"{r.test_map:.6f}",
            f"{r.test_f1:.6f}",
            f"{r.valid_map:.6f}",
            f"{r.valid_f1:.6f}",
            f"{r.threshold:.4f}",
            *r.counts,
            r.negatives,
            r.rare_found,
            f"{r.select_seconds:.4f}",
            f"{r.train_seconds:.3f}",
            r.epochs,
            r.best_epoch,
        ]
        + [f"{v:.6f}" for v in r.test_ap]
        + [f"{v:.6f}" for v in r.valid_ap]
    )


def evaluate_classifier(
    state_dict: dict[str, torch.Tensor],
    splits: PoolSplits,
    device: torch.device,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Valid/test frame mAP, the F1-optimal global threshold on valid, and F1 at it; the
    forward passes in ``precision`` (fp32 or bf16)."""
    vp = predict_frames(state_dict, splits.valid_x, device, precision=precision)
    tp = predict_frames(state_dict, splits.test_x, device, precision=precision)
    thr, vf1 = metrics.best_global_threshold(vp, splits.valid_y)
    vmap, vap = metrics.frame_map(vp, splits.valid_y)
    tmap, tap = metrics.frame_map(tp, splits.test_y)
    tf1 = metrics.mean_f1(tp, splits.test_y, thr)
    return {
        "valid_map": vmap,
        "valid_ap": vap.tolist(),
        "valid_f1": vf1,
        "threshold": thr,
        "test_map": tmap,
        "test_ap": tap.tolist(),
        "test_f1": tf1,
    }


def clip_probabilities(
    state_dict: dict[str, torch.Tensor],
    store: PoolStore,
    device: torch.device,
    precision: str = "fp32",
) -> np.ndarray:
    """(N, C) clip-level probabilities (max over frames) of every clip in ``store``."""
    frames = predict_frames(state_dict, store.iter_blocks(), device, precision=precision)
    return np.asarray(frames.max(axis=1), dtype=np.float32)


class PoolRun:
    """One simulated run, resumable from its folder.

    shards > 1: the selection array is held in that many row shards, each read from the train
    file by its own worker (a process each; with ``executor`` "ray" a Ray actor each, asking
    for ``shard_cpus`` CPUs), built at the run's first selection and kept for its rounds; the
    picks are those of one process."""

    def __init__(
        self,
        spec: PoolRunSpec,
        splits: PoolSplits,
        run_dir: str | Path,
        device: torch.device,
        shards: int = 1,
        executor: str = "local",
        ray_address: str | None = None,
        shard_cpus: float | None = None,
    ) -> None:
        self.spec = spec
        self.splits = splits
        self.dir = Path(run_dir)
        self.device = device
        if shards < 1:
            raise UserError(f"shards must be >= 1, got {shards}", None, "give a positive count")
        if shards == 1 and splits.x is None:
            raise ValueError("one shard needs the splits' selection array (load_splits pooled)")
        self.shards = shards
        self.executor = executor
        self.ray_address = ray_address
        self.shard_cpus = shard_cpus
        self._sharded: Any = None
        if spec.budgets[-1] > splits.n:
            raise UserError(
                f"the last budget {spec.budgets[-1]} exceeds the pool size {splits.n}",
                splits.train.path,
                "lower --budgets",
            )

    def _round_dir(self, budget: int) -> Path:
        return self.dir / f"round_{budget:05d}"

    @property
    def done(self) -> bool:
        return (self.dir / "DONE").exists()

    @property
    def finished(self) -> bool:
        """Every round of this run is on disk: ``run`` only reads them back."""
        return self.done and all(
            (self._round_dir(b) / "state.json").is_file() for b in self.spec.budgets
        )

    def _check_spec(self) -> None:
        check_run_spec(self.dir, self.spec.to_json())

    def _load_records(self) -> tuple[list[RoundRecord], dict[str, Any] | None]:
        records: list[RoundRecord] = []
        last_state: dict[str, Any] | None = None
        for b in self.spec.budgets:
            state_path = self._round_dir(b) / "state.json"
            if not state_path.exists():
                break
            last_state = json.loads(state_path.read_text())
            records.append(RoundRecord(**last_state["record"]))
        return records, last_state

    def run(self, on_round: Callable[[RoundRecord], None] | None = None) -> list[RoundRecord]:
        """Run (or finish) every round; returns all round records. ``on_round(record)``: each
        round's record as it finishes, those of rounds read back from the folder first."""
        self._check_spec()
        records, last = self._load_records()
        if on_round is not None:
            for rec in records:
                on_round(rec)
        if self.done and len(records) == len(self.spec.budgets):
            return records
        try:
            return self._run_rounds(records, last, on_round)
        finally:
            if self._sharded is not None:
                self._sharded.close()
                self._sharded = None

    def _pick(
        self,
        lab: np.ndarray,
        probs: np.ndarray | None,
        threshold: float,
        n_new: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The round's ``n_new`` picks, in one process or on the run's shards."""
        sp = self.splits
        targets = sp.clip_targets[lab] if lab.size else None
        if self.shards == 1:
            assert sp.x is not None
            new, _ = pick_round(
                self.spec.strategy,
                sp.x,
                lab,
                targets,
                probs,
                threshold,
                n_new,
                rng,
                k_pos=self.spec.k_pos,
                clip_targets=sp.clip_targets,
            )
            return new
        from iml_tui.engine.strategies.sharded import ShardedPool, sharded_select

        if self._sharded is None:
            self._sharded = ShardedPool.from_store(
                sp.train.path, sp.n, self.shards, self.executor, self.ray_address, self.shard_cpus
            )
        rule = round_rule(self.spec.strategy, lab.size > 0, probs is not None)
        return sharded_select(
            self._sharded,
            self.spec.strategy if lab.size == 0 else rule,
            n_new,
            rng,
            lab,
            targets,
            probs if rule in PROB_RULES else None,
            threshold,
            k_pos=self.spec.k_pos,
            clip_targets=sp.clip_targets,
        )

    def _run_rounds(
        self,
        records: list[RoundRecord],
        last: dict[str, Any] | None,
        on_round: Callable[[RoundRecord], None] | None,
    ) -> list[RoundRecord]:
        sp = self.splits
        labeled: list[int] = []
        probs: np.ndarray | None = None
        threshold = 0.5
        if last is not None:
            labeled = [int(i) for i in last["labeled"]]
            threshold = float(last["record"]["threshold"])
            probs_path = self._round_dir(records[-1].budget) / "train_probs.npy"
            if probs_path.exists():
                probs = np.load(probs_path)
        needs_probs = self.spec.strategy in PROB_RULES
        for r in range(len(records), len(self.spec.budgets)):
            budget = self.spec.budgets[r]
            t0 = time.perf_counter()
            n_new = budget - len(labeled)
            lab = np.asarray(labeled, dtype=np.int64)
            new = self._pick(lab, probs, threshold, n_new, round_rng(self.spec.seed, r))
            select_seconds = time.perf_counter() - t0
            labeled.extend(int(i) for i in new)
            lab = np.asarray(labeled, dtype=np.int64)

            t1 = time.perf_counter()
            result = train_frame_classifier(
                sp.train.embeddings(lab),
                sp.frame_targets[lab],
                sp.valid_x,
                sp.valid_y,
                self.spec.train,
                weak=np.ones(lab.size, bool) if self.spec.annotation == "clips" else None,
            )
            train_seconds = time.perf_counter() - t1
            precision = self.spec.train.eval_precision
            scores = evaluate_classifier(result.state_dict, sp, self.device, precision)
            threshold = float(scores["threshold"])
            annotated = sp.clip_targets[lab]
            record = RoundRecord(
                budget=budget,
                n_new=len(new),
                test_map=float(scores["test_map"]),
                test_f1=float(scores["test_f1"]),
                valid_map=float(scores["valid_map"]),
                valid_f1=float(scores["valid_f1"]),
                threshold=threshold,
                counts=[int(v) for v in annotated.sum(axis=0)],
                negatives=int((annotated.max(axis=1) == 0).sum()),
                rare_found=metrics.rare_found(annotated, sp.rare),
                select_seconds=select_seconds,
                train_seconds=train_seconds,
                epochs=int(result.epochs_run),
                best_epoch=int(result.best_epoch),
                test_ap=[float(v) for v in scores["test_ap"]],
                valid_ap=[float(v) for v in scores["valid_ap"]],
            )
            is_last = budget == self.spec.budgets[-1]
            probs = (
                clip_probabilities(result.state_dict, sp.train, self.device, precision)
                if needs_probs and not is_last
                else None
            )
            self._commit_round(record, new, labeled, result.state_dict, probs)
            records.append(record)
            self._write_rounds_csv(records)
            if on_round is not None:
                on_round(record)
        atomic_write_text(self.dir / "DONE", "")
        return records

    def _commit_round(
        self,
        record: RoundRecord,
        new: np.ndarray,
        labeled: list[int],
        state_dict: dict[str, torch.Tensor],
        probs: np.ndarray | None,
    ) -> None:
        rdir = self._round_dir(record.budget)
        rdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(rdir / "selected.txt", "".join(f"{int(i)}\n" for i in new))
        atomic_torch_save(state_dict, rdir / "classifier.pt")
        if probs is not None:
            atomic_save_npy(rdir / "train_probs.npy", probs)
        state = {"record": dataclasses.asdict(record), "labeled": [int(i) for i in labeled]}
        # state.json last: its presence marks the round as finished
        atomic_write_text(rdir / "state.json", json.dumps(state))

    def _write_rounds_csv(self, records: list[RoundRecord]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(round_columns(self.splits.class_list))
        for r in records:
            w.writerow(_record_row(r))
        atomic_write_text(self.dir / "rounds.csv", buf.getvalue())


@dataclass
class FullRecord:
    """The fully supervised reference: the classifier trained on every train clip."""

    seed: int
    test_map: float
    test_f1: float
    valid_map: float
    valid_f1: float
    threshold: float
    train_seconds: float


def run_full(
    splits: PoolSplits, seed: int, train: TrainConfig, run_dir: str | Path, device: torch.device
) -> FullRecord:
    """Train on all train clips (resumable: a finished seed is read back)."""
    out = Path(run_dir)
    path = out / "full.json"
    if path.exists():
        return FullRecord(**json.loads(path.read_text()))
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(train, seed=seed)
    t0 = time.perf_counter()
    result = train_frame_classifier(
        splits.train.embeddings(), splits.frame_targets, splits.valid_x, splits.valid_y, cfg
    )
    seconds = time.perf_counter() - t0
    s = evaluate_classifier(result.state_dict, splits, device, cfg.eval_precision)
    rec = FullRecord(
        seed=seed,
        test_map=float(s["test_map"]),
        test_f1=float(s["test_f1"]),
        valid_map=float(s["valid_map"]),
        valid_f1=float(s["valid_f1"]),
        threshold=float(s["threshold"]),
        train_seconds=seconds,
    )
    atomic_torch_save(result.state_dict, out / "classifier.pt")
    atomic_write_text(path, json.dumps(dataclasses.asdict(rec)))
    return rec
