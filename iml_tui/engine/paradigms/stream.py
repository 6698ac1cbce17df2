"""The interactive / streaming paradigm (SPEC B.3 to B.6): IML with corrective feedback.

One run = one stream (an LID split with one target language, or one VTD environment) and one
seed. The loop, per batch b of the stream::

    PRE-test: decide every sample of b                  -> pre counts (prequential)
    n_q = n_queries | budget_plan[b] | drift-based budget
    AL: rank b by al_method (+ adapt_distr), ask the oracle about the top n_q; they join the pool
    fit on the labelled pool (warm start; reset first with reset_weights)
    POST-test on b's samples not queried                -> post counts
    CF (sim_type): the oracle reviews the model's current decisions of the kinds named; up to
        max_fb_samples of them (interleaved FP, TP, ...) join the pool; fit again
    one row of scores.csv

Every label that becomes training data comes from the :class:`~iml_tui.engine.oracle.Oracle`;
ground truth is read only to score decisions (and, as in the original, by the ADWIN budget).

Randomness: the stream order from ``default_rng(seed)`` (the same as ``iml-tui order --seed``),
the bootstrap draw from ``default_rng([seed, 2])``, everything in the loop from
``default_rng([seed, 1])``; model initialisation from ``seed``.

A run folder holds ``command.txt``, ``spec.json``, ``scores.csv``, ``batches.csv``,
``timings.csv``, ``labelled.csv`` (id, index, ...), ``model.pt`` (final weights) and
``manifest.json``. After each batch ``checkpoint.pt`` is replaced atomically, so an interrupted
run resumes at its next batch with the same result; a finished run is read back, not redone.
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
from torch import nn

from iml_tui.atomic import atomic_torch_save, atomic_write_text
from iml_tui.config import StreamConfig, config_to_dict
from iml_tui.data.orders import ORDER_KINDS, batches, make_order, read_order, with_context
from iml_tui.data.stream_data import (
    BootSource,
    FeatureTable,
    binary_labels,
    context_by_batches,
    draw_bootstrap,
    list_vtd_envs,
    load_lid_split,
    load_vtd_env,
    other_corpus_envs,
)
from iml_tui.engine.budgets import BudgetConfig, QueryBudget, memory_keep, read_budget_plan
from iml_tui.engine.feedback import (
    adapt_distr_split,
    cf_label_counts,
    parse_sim_type,
    select_feedback,
    split_queries,
)
from iml_tui.engine.losses import LOSS_KINDS, WEIGHT_SCHEMES, LossConfig
from iml_tui.engine.models.arf import ArfDetector, fit_arf
from iml_tui.engine.models.comp_class import (
    CompClassModel,
    StreamFitConfig,
    fit_stream_model,
    predict,
    reset_weights,
)
from iml_tui.engine.oracle import Oracle, Question, TruthOracle, answered
from iml_tui.engine.paradigms.run_folder import check_run_spec
from iml_tui.engine.scoring import ConfusionCounts, ScoreRow, make_score_row, write_scores
from iml_tui.engine.strategies.stream_queries import (
    BASE_METHODS,
    COMBO_METHODS,
    METHODS,
    NO_ADAPT_COMBOS,
    SWITCH_COMBOS,
    Chooser,
    cover_order,
    order_by_score,
    query_scores,
    rank_queries,
    softmax,
    switch_method,
)
from iml_tui.errors import UserError
from iml_tui.provenance import write_manifest

TASKS: tuple[str, ...] = ("lid", "vtd")
VTD_ORDERS: tuple[str, ...] = ("sorted", "random")
COMPAT_MODES: tuple[str, ...] = ("ours", "original")
UNBOUNDED_EPOCHS = -1  # max_epochs -1: the original's default, patience alone ends a fit
NO_CAP_EPOCHS = 10**9
#: config keys that do not change a run's result (left out of spec.json)
# where and how a run executes, not what it computes: a run may resume under other values
RUNTIME_KEYS = frozenset(
    {
        "jobs",
        "threads",
        "device",
        "out",
        "target",
        "executor",
        "ray_address",
        "cpus_per_run",
        "gpus_per_run",
    }
)
_SCORED_METHODS = frozenset({"smax", "ent", "necs", "egl", "egl-last", "pert", "pert-rand"})
_COVER_METHODS = frozenset({"cover", "cover-kcenter"})
_SIDES = {"fps": 1, "tps": 1, "fns": 0, "tns": 0}
#: AL methods that need the MLP's gradients or inputs (not the forest's)
_MLP_METHODS = frozenset({"egl", "egl-last", "pert", "pert-rand"})
Detector = CompClassModel | ArfDetector


# --- inputs --------------------------------------------------------------------------------------
@dataclass
class StreamInputs:
    """What one run streams: raw features x (N, D) float32 (``frames`` frames of D / frames
    values per row: sequence features for the GRU; 1 otherwise), truth y (N,) int64 (1 =
    target), ids (N,), the batches (index arrays in stream order), a group per sample (LID:
    language, VTD: session) with its names, the bootstrap (an out-of-domain source, or stream
    items)."""

    name: str
    target: str
    x: np.ndarray
    y: np.ndarray
    ids: list[str]
    batches: list[np.ndarray]
    groups: np.ndarray
    group_names: list[str]
    boot: BootSource | None
    boot_in_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frames: int = 1

    @property
    def n_batches(self) -> int:
        return len(self.batches)


def batch_metric(method: str, logits: np.ndarray, scores: np.ndarray | None) -> float | None:
    """The ``metric`` column of a batch, with the original's sign and meaning per method (SPEC
    D.6): smax -> the mean max softmax (positive: the batch's confidence), ent / necs -> the mean
    of their score (entropy, -logsumexp), pert -> the mean share of differing decisions, cover ->
    1. Ours: egl / egl-last -> the mean expected gradient length, pert-rand -> its mean share,
    cover-kcenter -> 1; rand and the combos -> none."""
    if method == "smax":
        return (
            float(softmax(np.asarray(logits, np.float64)).max(axis=1).mean())
            if len(logits)
            else None
        )
    if method in _COVER_METHODS:
        return 1.0
    if method in _SCORED_METHODS and scores is not None and len(scores):
        return float(np.mean(scores))
    return None


def validate_config(cfg: StreamConfig) -> None:
    """Check every choice-valued key before any data is read (UserError naming the key)."""

    def bad(key: str, value: Any, allowed: Sequence[str]) -> UserError:
        return UserError(
            f"{key} {value!r} is not known", None, f"set {key} to one of {', '.join(allowed)}"
        )

    if cfg.task not in TASKS:
        raise bad("task", cfg.task, TASKS)
    if cfg.al_method not in METHODS:
        raise bad("al_method", cfg.al_method, METHODS)
    if cfg.loss not in LOSS_KINDS:
        raise bad("loss", cfg.loss, LOSS_KINDS)
    if cfg.class_weights not in WEIGHT_SCHEMES:
        raise bad("class_weights", cfg.class_weights, WEIGHT_SCHEMES)
    parse_sim_type(cfg.sim_type)
    if cfg.compat not in COMPAT_MODES:
        raise bad("compat", cfg.compat, COMPAT_MODES)
    BudgetConfig(n_queries=cfg.n_queries, drift=cfg.drift)
    if cfg.al_method in ("rank", "split", *SWITCH_COMBOS):
        for m in cfg.combo:
            if m not in BASE_METHODS:
                raise bad("combo", m, BASE_METHODS)
        if len(cfg.combo) < 2 or (cfg.al_method != "rank" and len(cfg.combo) != 2):
            need = "two or more" if cfg.al_method == "rank" else "two"
            raise UserError(
                f"combo {cfg.combo} must name {need} methods for {cfg.al_method}",
                None,
                "e.g. --set combo=smax,necs",
            )
    checks = [
        ("samples_per_batch", cfg.samples_per_batch, 2),
        ("context", cfg.context, 0),
        ("bootstrap", cfg.bootstrap, 0),
        ("batch_size", cfg.batch_size, 2),
        ("patience", cfg.patience, 1),
        ("embed_dim", cfg.embed_dim, 1),
        ("comp_hidden", cfg.comp_hidden, 1),
        ("class_hidden", cfg.class_hidden, 1),
        ("comp_layers", cfg.comp_layers, 0),
        ("class_layers", cfg.class_layers, 0),
        ("forget_n_batches", cfg.forget_n_batches, 0),
        ("memory_cap", cfg.memory_cap, 0),
        ("epochs_per_pass", cfg.epochs_per_pass, 0),
        ("jobs", cfg.jobs, 1),
        ("n_pert", cfg.n_pert, 1),
    ]
    for key, value, lo in checks:
        if value < lo:
            raise UserError(f"{key} = {value} must be >= {lo}", None, f"fix {key}")
    if cfg.max_epochs != UNBOUNDED_EPOCHS and cfg.max_epochs < 1:
        raise UserError(
            f"max_epochs = {cfg.max_epochs} must be >= 1 or -1 (no cap)", None, "fix max_epochs"
        )
    if cfg.max_fb_samples is not None and cfg.max_fb_samples < 0:
        raise UserError("max_fb_samples must be >= 0 or null", None, "fix max_fb_samples")
    if cfg.adapt_distr is not None and not 0.0 <= cfg.adapt_distr <= 1.0:
        raise UserError(
            f"adapt_distr {cfg.adapt_distr} is not a share in [0, 1]",
            None,
            "e.g. --adapt-distr 0.5",
        )
    if not cfg.features:
        raise UserError("no feature set given", None, "e.g. --features ecapalang")
    if cfg.al_method == "combo-clf" and not Path(cfg.combo_clf).is_file():
        raise UserError(
            "combo-clf needs its classifier file",
            cfg.combo_clf or None,
            "set combo_clf to a pickled classifier (e.g. --set combo_clf=clf.p)",
        )
    if (cfg.learn_mult or cfg.dsmax_mult > 0) and cfg.loss not in ("dcf", "imlm"):
        raise UserError(
            f"dsmax_mult and learn_mult apply to the dcf and imlm losses, not {cfg.loss}",
            None,
            "add --loss dcf (or imlm), or drop them",
        )
    if cfg.learn_error_weight and cfg.loss != "dcf":
        raise UserError(
            f"learn_error_weight applies to the dcf loss, not {cfg.loss}",
            None,
            "add --loss dcf, or drop it",
        )
    if cfg.auto_mult != 1.0 and cfg.class_weights != "inverse":
        raise UserError(
            "auto_mult scales the inverse class weights",
            None,
            "add --set class_weights=inverse, or drop auto_mult",
        )
    if cfg.ensemble:
        methods = {cfg.al_method, *(cfg.combo if cfg.al_method in COMBO_METHODS else ())}
        needs_mlp = sorted(methods & _MLP_METHODS)
        if needs_mlp:
            raise UserError(
                f"{', '.join(needs_mlp)} need(s) the MLP's gradients, not the forest's",
                None,
                "choose smax, ent, necs, rand, cover or cover-kcenter with ensemble",
            )
        if cfg.load_best or cfg.init_weights:
            raise UserError(
                "ensemble keeps what the forest learned: load_best and init_weights do not apply",
                None,
                "drop load_best / init_weights, or ensemble",
            )
        if cfg.rnn_layers:
            raise UserError(
                "the forest reads rows, not frame sequences: rnn_layers is the MLP's GRU",
                None,
                "drop ensemble, or set rnn_layers 0 (utterance-level features)",
            )
    if cfg.separate_class_al:
        if cfg.drift != "none":
            raise UserError(
                "separate_class_al takes its budget from n_queries or a budget plan, not drift",
                None,
                "set drift none, or drop separate_class_al",
            )
        if cfg.adapt_distr is not None and not 0.0 < cfg.adapt_distr < 1.0:
            raise UserError(
                f"separate_class_al needs adapt_distr strictly between 0 and 1, got "
                f"{cfg.adapt_distr}",
                None,
                "e.g. --adapt-distr 0.5",
            )


def load_chooser(path: Path) -> Chooser:
    """The pickled classifier of ``combo-clf`` (a trusted file: unpickling runs its code)."""
    import pickle

    try:
        with path.open("rb") as fh:
            clf = pickle.load(fh)  # the user's own classifier, as the original
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise UserError(
            f"cannot read the combo-clf classifier ({exc.__class__.__name__})",
            path,
            "give a file written by pickle.dump of a fitted classifier",
        ) from exc
    if not callable(getattr(clf, "predict", None)):
        raise UserError(
            "the combo-clf file holds no classifier with predict", path, "pickle a classifier"
        )
    chooser: Chooser = clf
    return chooser


def separate_class_queries(
    ranking: np.ndarray,
    pred: np.ndarray,
    budget: int,
    p: float | None,
    n_target: int,
    n_nontarget: int,
    min_samples: int,
) -> np.ndarray:
    """The original's ``separate_class_al``: predicted targets first, then non-targets.

    ``ranking`` (n,) the AL order, ``pred`` (n,) the decisions, ``budget`` the queries available
    (this batch's plus the unspent carry). Without ``p`` (adapt_distr): the top ``budget``.
    With it, in the AL order of each side, rounding half to even as torch.round:
    L_t = round((p (N_t + N_n) - N_t) / (1 - p)) clipped to [min(min_samples, ub), ub],
    ub = min(budget, M_t) (M_t predicted targets); then, with the targets counted in N_t and
    m = max(0, min_samples - L_t): L_n = round(((1 - p) (N_t + N_n) - N_n) / p) clipped to
    [min(m, ub'), ub'], ub' = min(budget - L_t, M_n). Returns the picks, targets first; what is
    not spent carries over to the next batch.
    """
    r = np.asarray(ranking, dtype=np.int64).ravel()
    if p is None:
        return r[: max(0, budget)]
    is_t = np.asarray(pred).astype(bool).ravel()[r]
    rank_t, rank_n = r[is_t], r[~is_t]

    def clip(raw: float, lo: int, hi: int) -> int:
        return int(min(max(int(np.round(raw)), min(lo, hi)), hi))

    lt = clip(
        (p * (n_target + n_nontarget) - n_target) / (1.0 - p), min_samples, min(budget, len(rank_t))
    )
    n_t = n_target + lt  # the picks join as targets (one question per batch: their predicted class)
    ln = clip(
        ((1.0 - p) * (n_t + n_nontarget) - n_nontarget) / p,
        max(0, min_samples - lt),
        min(budget - lt, len(rank_n)),
    )
    return np.concatenate([rank_t[:lt], rank_n[:ln]]).astype(np.int64)


def _order_for(cfg: StreamConfig, classes: np.ndarray, n: int) -> np.ndarray:
    """Stream order of an LID split (n,) int64: a kind made with ``default_rng(seed)`` or a file."""
    if cfg.order in ORDER_KINDS:
        try:
            return make_order(cfg.order, classes, np.random.default_rng(cfg.seed))
        except ValueError as exc:
            raise UserError(
                f"no {cfg.order} order for this split: {exc}",
                None,
                "use --order random or fewer, larger classes",
            ) from exc
    if cfg.order == "sorted":
        return np.arange(n, dtype=np.int64)
    return read_order(cfg.order, n)


def lid_order(cfg: StreamConfig, table: FeatureTable) -> np.ndarray:
    """The order file content ``iml-tui order`` writes for this split and seed."""
    return _order_for(cfg, table.classes, table.n)


def run_names(cfg: StreamConfig) -> list[tuple[str, str]]:
    """(run name, target or environment) of every run the config asks for (``cfg`` has
    passed :func:`validate_config`)."""
    if cfg.task == "lid":
        from iml_tui.data.stream_data import lid_targets

        table = load_lid_split(cfg.feat_root, cfg.features, cfg.split, cfg.rnn_layers > 0)
        return [(f"{cfg.split}_{t}", t) for t in lid_targets(table, cfg.target)]
    if cfg.target not in ("all", ""):
        raise UserError(
            f"--target {cfg.target} is for --task lid",
            None,
            "pick VTD environments with --env (a name or all)",
        )
    envs = [cfg.env]
    if cfg.env == "all":
        envs = list_vtd_envs(cfg.feat_root, cfg.features[0])
        if not envs:
            raise UserError(
                "no environments found",
                Path(cfg.feat_root) / cfg.features[0],
                "check --feat-root and --features",
            )
    return [(e, e) for e in envs]


def _remove(batch_list: list[np.ndarray], items: np.ndarray) -> list[np.ndarray]:
    if not len(items):
        return batch_list
    return [b[~np.isin(b, items)] for b in batch_list]


def _same_frames(stream: FeatureTable, boot: FeatureTable) -> None:
    """The bootstrap source must have the stream's frames per sample and values per frame."""
    if (boot.frames, boot.x.shape[1]) != (stream.frames, stream.x.shape[1]):
        d, bd = stream.x.shape[1] // stream.frames, boot.x.shape[1] // boot.frames
        raise UserError(
            f"the bootstrap source has {boot.frames} frame(s) of {bd} values per sample, the "
            f"stream {stream.frames} of {d}",
            boot.paths[0] if boot.paths else None,
            "extract the bootstrap source like the stream, or set boot_from / --boot-in",
        )


def prepare_lid(cfg: StreamConfig, target: str) -> StreamInputs:
    """The stream of one LID split with ``target`` as the target language."""
    table = load_lid_split(cfg.feat_root, cfg.features, cfg.split, cfg.rnn_layers > 0)
    y = binary_labels(table, target) if target in table.class_list else None
    if y is None:
        raise UserError(
            f"target {target!r} is not a language of the split",
            table.paths[0],
            f"use one of {', '.join(table.class_list)}",
        )
    order = lid_order(cfg, table)
    if cfg.reverse_order:
        order = order[::-1].copy()
    boot_rng = np.random.default_rng([cfg.seed, 2])
    boot: BootSource | None = None
    boot_items = np.zeros(0, dtype=np.int64)
    if cfg.boot_in:
        boot_items = draw_bootstrap(y, cfg.bootstrap, boot_rng, candidates=order)
        order = order[~np.isin(order, boot_items)]
    else:
        source = cfg.boot_from or "train"
        if source == cfg.split:
            raise UserError(
                f"the bootstrap split {source!r} is the streamed split",
                None,
                "set boot_from to another split or use --boot-in",
            )
        src = load_lid_split(cfg.feat_root, cfg.features, source, cfg.rnn_layers > 0)
        if target not in src.class_list:
            raise UserError(
                f"target {target!r} is not a language of the {source} split",
                src.paths[0],
                "the bootstrap split needs the same languages",
            )
        _same_frames(table, src)
        ys = binary_labels(src, target)
        xs = with_context(src.x, cfg.context, batch_size=cfg.samples_per_batch)
        boot = BootSource(x=xs, y=ys, ids=src.ids, name=source)
    spb = cfg.samples_per_batch
    batch_list = list(batches(order, spb))
    if not batch_list:
        raise UserError(
            f"the split has {len(order)} samples, fewer than one batch of {spb}",
            table.paths[0],
            "lower --set samples_per_batch",
        )
    return StreamInputs(
        name=f"{cfg.split}_{target}",
        target=target,
        x=table.x,
        y=y,
        ids=table.ids,
        batches=batch_list,
        groups=table.classes,
        group_names=table.class_list,
        boot=boot,
        boot_in_items=boot_items,
        frames=table.frames,
    )


def prepare_vtd(cfg: StreamConfig, env: str) -> StreamInputs:
    """The stream of one VTD environment: one batch per session."""
    table = load_vtd_env(cfg.feat_root, cfg.features, env, cfg.rnn_layers > 0)
    sessions = table.session_batches()
    n_s = len(sessions)
    if cfg.order == "sorted":
        s_order = np.arange(n_s)
    elif cfg.order == "random":
        s_order = np.random.default_rng(cfg.seed).permutation(n_s)
    elif cfg.order == "cluster":
        raise UserError(
            "order 'cluster' is for LID",
            None,
            f"VTD orders: {', '.join(VTD_ORDERS)} or an order file of sessions",
        )
    else:
        s_order = read_order(cfg.order, n_s)
    batch_list = [sessions[int(s)] for s in s_order]
    if cfg.reverse_order:
        batch_list = [b[::-1].copy() for b in batch_list[::-1]]
    y = table.classes
    boot_rng = np.random.default_rng([cfg.seed, 2])
    boot: BootSource | None = None
    boot_items = np.zeros(0, dtype=np.int64)
    if cfg.boot_in:
        boot_items = draw_bootstrap(
            y, cfg.bootstrap, boot_rng, candidates=np.concatenate(batch_list)
        )
        batch_list = _remove(batch_list, boot_items)
    else:
        envs = (
            [e.strip() for e in cfg.boot_from.split(",") if e.strip()]
            if cfg.boot_from
            else other_corpus_envs(cfg.feat_root, cfg.features[0], env)
        )
        envs = [e for e in envs if e != env]
        if not envs:
            raise UserError(
                "no out-of-domain environment for the bootstrap",
                Path(cfg.feat_root) / cfg.features[0],
                "add another environment, set boot_from, or use --boot-in",
            )
        xs, ys, ids = [], [], []
        for e in envs:
            t = load_vtd_env(cfg.feat_root, cfg.features, e, cfg.rnn_layers > 0)
            _same_frames(table, t)
            xs.append(context_by_batches(t.x, t.session_batches(), cfg.context))
            ys.append(t.classes)
            ids.extend(t.ids)
        boot = BootSource(x=np.concatenate(xs), y=np.concatenate(ys), ids=ids, name=",".join(envs))
    return StreamInputs(
        name=env,
        target="live",
        x=table.x,
        y=y,
        ids=table.ids,
        batches=batch_list,
        groups=table.session,
        group_names=table.sessions,
        boot=boot,
        boot_in_items=boot_items,
        frames=table.frames,
    )


def prepare_inputs(cfg: StreamConfig, target: str) -> StreamInputs:
    """Inputs of the run for ``target`` (an LID language or a VTD environment); ``cfg`` has
    passed :func:`validate_config`."""
    return prepare_lid(cfg, target) if cfg.task == "lid" else prepare_vtd(cfg, target)


# --- the run -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchEvent:
    """Progress message: batch ``pass_`` (0-based) of ``n_batches`` of run ``run`` finished."""

    run: str
    pass_: int
    n_batches: int
    pre_dcf: float
    dcf: float
    n_al: int
    n_cf: int


@dataclass
class BatchTiming:
    """Seconds spent on one batch, split by phase; ``fit_*`` are the gradient-step loops,
    ``save_s`` the checkpoint and outputs written after it; ``total_s`` includes everything."""

    pass_: int
    predict_s: float = 0.0
    query_s: float = 0.0
    fit_al_s: float = 0.0
    fit_cf_s: float = 0.0
    epochs_al: int = 0
    epochs_cf: int = 0
    other_s: float = 0.0
    save_s: float = 0.0
    total_s: float = 0.0

    @property
    def fit_s(self) -> float:
        return self.fit_al_s + self.fit_cf_s


@dataclass
class LabelRecord:
    """One labelled sample: id, index in its source table, source (``stream`` or the bootstrap
    source), pass (-1: bootstrap), why (question kind), label."""

    id: str
    index: int
    source: str
    pass_: int
    why: str
    label: int


def fit_config(cfg: StreamConfig) -> StreamFitConfig:
    """The training settings of a run (``epochs_per_pass`` > 0: that many epochs, no patience;
    ``max_epochs`` -1: no cap)."""
    loss = LossConfig(
        kind=cfg.loss,  # type: ignore[arg-type]
        weights=cfg.class_weights,  # type: ignore[arg-type]
        target_weight=cfg.target_weight,
        nll_scale=cfg.xent_weight,
        margin=cfg.margin,
        gamma=cfg.gamma,
        beta=cfg.beta,
        cb_beta=cfg.cb_beta,
        dsmax_mult=cfg.dsmax_mult,
        learn_mult=cfg.learn_mult,
        learn_error_weight=cfg.learn_error_weight,
        auto_mult=cfg.auto_mult,
    )
    max_epochs = NO_CAP_EPOCHS if cfg.max_epochs == UNBOUNDED_EPOCHS else cfg.max_epochs
    patience = cfg.patience
    if cfg.epochs_per_pass > 0:
        max_epochs, patience = cfg.epochs_per_pass, cfg.epochs_per_pass + 1
    # load_best is the caller's per fit (only the fit after a batch's AL queries ends with it)
    return StreamFitConfig.from_config(
        cfg, patience=patience, max_epochs=max_epochs, loss=loss, load_best=False
    )


def build_model(cfg: StreamConfig, dim: int, device: torch.device, frames: int = 1) -> Detector:
    """The detector for inputs of ``dim`` (features x (2 context + 1)) holding ``frames``
    frames (the GRU's sequence length with ``rnn_layers``: T (2 context + 1)), seeded by
    ``seed``: the MLP (with ``rnn_layers`` its GRU front), or with ``ensemble`` the adaptive
    random forest (on the CPU)."""
    if cfg.ensemble:
        return ArfDetector(dim, seed=cfg.seed)
    model = CompClassModel(
        dim,
        comp_hidden=(cfg.comp_hidden,) * cfg.comp_layers,
        emb_dim=cfg.embed_dim,
        cls_hidden=(cfg.class_hidden,) * cfg.class_layers,
        seed=cfg.seed,
        rnn_layers=cfg.rnn_layers,
        rnn_hidden=cfg.rnn_hidden,
        frame_dim=dim // frames,
    )
    if not cfg.initial_bn:
        model.input_bn = nn.Identity()  # type: ignore[assignment]
    if cfg.init_weights:
        path = Path(cfg.init_weights)
        if not path.is_file():
            raise UserError("initial weights not found", path, "fix init_weights")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (RuntimeError, OSError, KeyError) as exc:
            raise UserError(
                f"weights do not fit this model ({str(exc).splitlines()[0]})",
                path,
                "use weights saved by a run with the same sizes and features",
            ) from exc
    model.eval()
    return model.to(device)


def spec_of(cfg: StreamConfig, name: str) -> dict[str, Any]:
    """What makes a run's result: the config without runtime keys, plus the run name."""
    spec = {k: v for k, v in config_to_dict(cfg).items() if k not in RUNTIME_KEYS}
    spec["run"] = name
    return spec


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


@dataclass
class BatchStep:
    """One batch between its phases (see :meth:`StreamRun.begin_batch`): what the later phases
    read. Positions (``chosen``, ``got``, ``rest_pos``, ``cand``) index into the batch."""

    b: int
    t0: float
    tm: BatchTiming
    idx: np.ndarray
    yb: np.ndarray
    xb: np.ndarray
    pre: ConfusionCounts
    n_q: int
    drift_state: int
    method: str
    metric: float | None
    chosen: np.ndarray
    prob: np.ndarray
    scores: np.ndarray | None = None  # AL score of each chosen item (scoring methods only)
    got: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rest_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    post: ConfusionCounts | None = None
    pred2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    conf2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    cand: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cf_tp: int = 0
    cf_fp: int = 0


@dataclass
class _State:
    """Everything that changes from batch to batch (saved in checkpoint.pt)."""

    pool_x: np.ndarray
    pool_y: np.ndarray
    pool_pass: np.ndarray
    pool_boot: np.ndarray
    records: list[LabelRecord]
    rows: list[ScoreRow]
    timings: list[BatchTiming]
    batch_info: list[list[Any]]
    n_boot: int
    setup_s: float
    pool_sticky: np.ndarray | None = None  # compat original: AL items of batches with CF
    loss_state: dict[str, float] = field(default_factory=dict)  # the loss's learned parameters
    carry: int = 0  # separate_class_al: queries of earlier batches not spent yet


class StreamRun:
    """One simulated stream run in ``run_dir`` (resumable), answered by ``oracle``.

    ``oracle`` defaults to a :class:`TruthOracle` over the stream's labels. ``cfg`` has passed
    :func:`validate_config` (where a config enters: :func:`run_stream`, ``plan_runs``, a
    project's ``validate``), so a run does not check it again.
    """

    def __init__(
        self,
        cfg: StreamConfig,
        inputs: StreamInputs,
        run_dir: str | Path,
        device: torch.device | None = None,
        oracle: Oracle | None = None,
        command: str = "",
    ) -> None:
        self.cfg = cfg
        self.inp = inputs
        self.dir = Path(run_dir)
        self.device = device or torch.device("cpu")
        self.oracle: Oracle = oracle if oracle is not None else TruthOracle(inputs.y)
        self.command = command
        self.dim = inputs.x.shape[1] * (2 * cfg.context + 1)
        self.frames = inputs.frames * (2 * cfg.context + 1)
        self.fit_cfg = fit_config(cfg)
        self.tokens = parse_sim_type(cfg.sim_type)
        plan = None
        if cfg.budget_plan:
            plan = read_budget_plan(cfg.budget_plan, inputs.name, inputs.n_batches)
        self.budget_cfg = BudgetConfig(
            n_queries=cfg.n_queries,
            drift=cfg.drift,
            drift_mult=cfg.drift_mult,
            warn_mult=cfg.warn_mult,
            calm_mult=cfg.calm_mult,
            min_al_samples=cfg.min_al_samples,
            adwin_delta=cfg.adwin_delta,
            adwin_warn_clock=cfg.adwin_warn_clock,
            adwin_drift_clock=cfg.adwin_drift_clock,
            adwin_log_clock=cfg.adwin_log_clock,
            hdddm_alpha=cfg.hdddm_alpha,
            hdddm_warn_alpha=cfg.hdddm_warn_alpha,
        )
        self.plan = plan
        self.clf: Chooser | None = None
        if cfg.al_method == "combo-clf":
            self.clf = load_chooser(Path(cfg.combo_clf))

    # -- files --
    @property
    def finished(self) -> bool:
        m = self.dir / "manifest.json"
        return m.is_file() and bool(json.loads(m.read_text()).get("finished"))

    def _check_spec(self) -> None:
        check_run_spec(self.dir, spec_of(self.cfg, self.inp.name), RUNTIME_KEYS)
        if self.command:
            atomic_write_text(self.dir / "command.txt", self.command + "\n")

    # -- the loop --
    def run(self, on_batch: Callable[[BatchEvent], None] | None = None) -> list[ScoreRow]:
        """Run (or finish, or read back) every batch; returns the score rows."""
        self._check_spec()
        if self.finished:
            from iml_tui.engine.scoring import read_scores

            return read_scores(self.dir / "scores.csv")
        t_setup = time.perf_counter()
        model = build_model(self.cfg, self.dim, self.device, self.frames)
        rng = np.random.default_rng([self.cfg.seed, 1])
        budget = QueryBudget(self.budget_cfg, self.plan)
        ckpt = self.dir / "checkpoint.pt"
        if ckpt.is_file():
            saved = torch.load(ckpt, map_location="cpu", weights_only=False)
            model.load_state_dict(saved["model"])
            rng.bit_generator.state = saved["rng"]
            budget = saved["budget"]
            st: _State = saved["state"]
            if isinstance(self.oracle, TruthOracle):
                self.oracle.asked = dict(saved["asked"])
        else:
            st = self._bootstrap(model, rng)
        st.setup_s += time.perf_counter() - t_setup
        for b in range(len(st.rows), self.inp.n_batches):
            self._batch(b, model, rng, budget, st)
            t_save = time.perf_counter()
            self._save_batch(model, rng, budget, st)
            st.timings[-1].save_s = time.perf_counter() - t_save
            st.timings[-1].total_s += st.timings[-1].save_s
            if on_batch is not None:
                r = st.rows[-1]
                on_batch(
                    BatchEvent(
                        self.inp.name,
                        b,
                        self.inp.n_batches,
                        r.pre_dcf,
                        r.dcf,
                        r.n_al,
                        r.cf_tp + r.cf_fp,
                    )
                )
        self._finish(model, st)
        return st.rows

    def _bootstrap(self, model: Detector, rng: np.random.Generator) -> _State:
        q = self.bootstrap_question()
        labels = None if q is None else self.oracle.answer(q)
        st = self.bootstrap_state(q, labels)
        self._fit(model, st, rng)
        return st

    # -- step functions: the loop one phase at a time (a face that asks a human drives these) --
    def bootstrap_question(self) -> Question | None:
        """The bootstrap question (``boot_in``: stream items to label), or None when the
        bootstrap comes labelled from an out-of-domain source."""
        if self.inp.boot is not None:
            return None
        items = self.inp.boot_in_items
        return Question(
            items=items, why="bootstrap", batch=-1, ids=tuple(self.inp.ids[i] for i in items)
        )

    def bootstrap_state(self, question: Question | None, labels: np.ndarray | None) -> _State:
        """The labelled pool before the stream: the out-of-domain draw, or the answered
        bootstrap ``question`` (``labels``: the answers, SKIPPED allowed). Not fitted yet."""
        cfg, inp = self.cfg, self.inp
        records: list[LabelRecord] = []
        if inp.boot is not None:
            idx = draw_bootstrap(inp.boot.y, cfg.bootstrap, np.random.default_rng([cfg.seed, 2]))
            x0 = inp.boot.x[idx]
            y0 = inp.boot.y[idx].astype(np.int64)
            records = [
                LabelRecord(
                    inp.boot.ids[i], int(i), inp.boot.name, -1, "bootstrap", int(inp.boot.y[i])
                )
                for i in idx
            ]
        else:
            if question is None or labels is None:
                raise ValueError("a bootstrap from the stream needs the answered question")
            items = question.items
            ctx = self._context_of_items(items)
            keep, lab = answered(question, labels)
            x0, y0 = ctx[keep], lab
            records = [
                LabelRecord(inp.ids[i], int(i), "stream", -1, "bootstrap", int(v))
                for i, v in zip(items[keep], lab, strict=True)
            ]
        return _State(
            pool_x=np.asarray(x0, np.float32).reshape(-1, self.dim),
            pool_y=np.asarray(y0, np.int64),
            pool_pass=np.full(len(y0), -1, np.int64),
            pool_boot=np.ones(len(y0), bool),
            records=records,
            rows=[],
            timings=[],
            batch_info=[],
            n_boot=len(y0),
            setup_s=0.0,
        )

    def _context_of_items(self, items: np.ndarray) -> np.ndarray:
        """Context-stacked rows (k, dim) of stream items taken for the bootstrap (``boot_in``):
        each with its neighbours in the table's stored order (zero beyond its ends)."""
        x = self.inp.x
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        c = self.cfg.context
        for k, i in enumerate(items):
            lo, hi = max(0, i - c), min(len(x), i + c + 1)
            block = with_context(x[lo:hi], c)
            out[k] = block[i - lo]
        return out

    def _fit(
        self,
        model: Detector,
        st: _State,
        rng: np.random.Generator,
        after_al: bool = False,
    ) -> tuple[float, int]:
        return self.fit(model, st, rng, after_al)

    def fit(
        self,
        model: Detector,
        st: _State,
        rng: np.random.Generator,
        after_al: bool = False,
    ) -> tuple[float, int]:
        """Fit ``model`` on the labelled pool (nothing with fewer than 2 items); (s, epochs).

        ``after_al``: the fit after a batch's AL queries, the one ``load_best`` ends with the
        best monitored epoch's weights (as the original)."""
        if len(st.pool_y) < 2:
            return 0.0, 0
        if isinstance(model, ArfDetector):
            res = fit_arf(model, st.pool_x, st.pool_y, self.fit_cfg, rng)
            return res.seconds, res.epochs
        res = fit_stream_model(
            model,
            st.pool_x,
            st.pool_y,
            self.fit_cfg,
            rng,
            loss_state=st.loss_state,
            load_best=self.cfg.load_best and after_al,
        )
        if self.fit_cfg.loss.learned:
            st.loss_state = res.loss_state
        return res.seconds, res.epochs

    @property
    def original(self) -> bool:
        """``compat original``: the original's reset_weights and forgetting (README table)."""
        return self.cfg.compat == "original"

    def _sticky(self, st: _State) -> np.ndarray:
        if st.pool_sticky is None or len(st.pool_sticky) != len(st.pool_y):
            st.pool_sticky = np.zeros(len(st.pool_y), bool)
        return st.pool_sticky

    def _apply_memory(self, st: _State, current: int) -> None:
        sticky = self._sticky(st)
        keep = memory_keep(
            st.pool_pass,
            st.pool_boot,
            current,
            self.cfg.forget_n_batches,
            self.cfg.memory_cap,
            forget_boot=self.original,
            sticky=sticky if self.original else None,
        )
        if not keep.all():
            st.pool_x, st.pool_y = st.pool_x[keep], st.pool_y[keep]
            st.pool_pass, st.pool_boot = st.pool_pass[keep], st.pool_boot[keep]
            st.pool_sticky = sticky[keep]

    def _add(
        self, st: _State, xs: np.ndarray, items: np.ndarray, labels: np.ndarray, b: int, why: str
    ) -> None:
        st.pool_sticky = np.concatenate([self._sticky(st), np.zeros(len(items), bool)])
        st.pool_x = np.concatenate([st.pool_x, xs.astype(np.float32)])
        st.pool_y = np.concatenate([st.pool_y, labels.astype(np.int64)])
        st.pool_pass = np.concatenate([st.pool_pass, np.full(len(items), b, np.int64)])
        st.pool_boot = np.concatenate([st.pool_boot, np.zeros(len(items), bool)])
        st.records.extend(
            LabelRecord(self.inp.ids[i], int(i), "stream", b, why, int(v))
            for i, v in zip(items, labels, strict=True)
        )

    def _al_method(
        self, logits: np.ndarray, n_labelled: int, n_q: int, rng: np.random.Generator
    ) -> str:
        """The method ranking this batch: plateau, combo-rand and combo-clf pick a base one."""
        cfg = self.cfg
        if cfg.al_method in SWITCH_COMBOS:
            return switch_method(cfg.al_method, cfg.combo, logits, n_labelled, n_q, rng, self.clf)
        if cfg.al_method != "plateau":
            return cfg.al_method
        mean_smax = float(softmax(logits).max(axis=1).mean()) if len(logits) else 0.0
        return "necs" if mean_smax > cfg.plateau_thresh else "smax"

    def _batch(
        self,
        b: int,
        model: Detector,
        rng: np.random.Generator,
        budget: QueryBudget,
        st: _State,
    ) -> None:
        step, q = self.begin_batch(b, model, rng, budget, st)
        self.take_al_answers(step, st, model, self.oracle.answer(q))
        step.tm.fit_al_s, step.tm.epochs_al = self._fit(model, st, rng, after_al=True)
        cq = self.cf_question(step, model)
        if cq is not None and self.take_cf_answers(step, st, cq, self.oracle.answer(cq)):
            step.tm.fit_cf_s, step.tm.epochs_cf = self._fit(model, st, rng)
        self.end_batch(step, st)

    def begin_batch(
        self,
        b: int,
        model: Detector,
        rng: np.random.Generator,
        budget: QueryBudget,
        st: _State,
    ) -> tuple[BatchStep, Question]:
        """PRE-test batch ``b``, set its query budget and rank it: the AL question."""
        cfg, inp = self.cfg, self.inp
        t0 = time.perf_counter()
        tm = BatchTiming(pass_=b)
        idx = inp.batches[b]
        yb = inp.y[idx]
        xb = with_context(inp.x[idx], cfg.context)
        t = time.perf_counter()
        pred, prob, logits = predict(model, xb)
        tm.predict_s += time.perf_counter() - t
        pre = ConfusionCounts.from_labels(yb, pred)

        # AL queries
        t = time.perf_counter()
        n_q, drift_state = budget.for_batch(b, (pred != yb).astype(np.int64), inp.x[idx])
        n_q = max(0, n_q)
        if cfg.separate_class_al:  # the budget carries what earlier batches left unspent
            n_q += st.carry
        n_q = min(n_q, len(idx))
        method = self._al_method(logits, len(st.pool_y), n_q, rng)
        mlp = model if isinstance(model, CompClassModel) else None  # the forest has no gradients
        scores = None
        if method in _SCORED_METHODS:  # one scoring pass gives the ranking and the metric
            scores = np.asarray(
                query_scores(
                    method,
                    logits,
                    xb,
                    st.pool_x,
                    mlp,
                    rng,
                    n_pert=cfg.n_pert,
                    pert_eps=cfg.pert_eps,
                )
            )
            ranking = order_by_score(scores)
        elif method == "cover":  # k-median: the order and each pick's gain in one pass
            ranking, scores = cover_order(xb, n_q)
        else:
            ranking = rank_queries(
                method,
                logits,
                xb,
                st.pool_x,
                mlp,
                rng,
                combo=cfg.combo,
                n_select=n_q,
                n_pert=cfg.n_pert,
                pert_eps=cfg.pert_eps,
            )
            if method == "cover-kcenter":
                scores = np.asarray(query_scores(method, logits, xb, st.pool_x, mlp, rng))
        metric = batch_metric(method, logits, scores)
        if cfg.separate_class_al:
            n_t = int(st.pool_y.sum())
            chosen = separate_class_queries(
                ranking, pred, n_q, cfg.adapt_distr, n_t, len(st.pool_y) - n_t, cfg.min_al_samples
            )
            st.carry = n_q - len(chosen)
        elif cfg.adapt_distr is not None and cfg.al_method not in NO_ADAPT_COMBOS:
            n_t = int(st.pool_y.sum())
            lt = adapt_distr_split(cfg.adapt_distr, n_t, len(st.pool_y) - n_t, n_q, int(pred.sum()))
            chosen = split_queries(ranking, pred, n_q, lt)
        else:
            chosen = ranking[:n_q]
        conf = np.where(pred == 1, prob, 1.0 - prob)
        tm.query_s += time.perf_counter() - t
        q = Question(
            items=idx[chosen],
            why="al-query",
            pred=pred[chosen],
            confidence=conf[chosen],
            batch=b,
            ids=tuple(inp.ids[i] for i in idx[chosen]),
        )
        step = BatchStep(
            b=b,
            t0=t0,
            tm=tm,
            idx=idx,
            yb=yb,
            xb=xb,
            pre=pre,
            n_q=n_q,
            drift_state=drift_state,
            method=method,
            metric=metric,
            chosen=chosen,
            prob=prob,
            scores=None if scores is None else scores[chosen],
        )
        return step, q

    def take_al_answers(
        self, step: BatchStep, st: _State, model: Detector, labels: np.ndarray
    ) -> None:
        """Add the answered AL queries to the pool (then: fit)."""
        q = Question(items=step.idx[step.chosen], why="al-query", batch=step.b)
        keep, lab = answered(q, labels)
        step.got = step.chosen[keep]
        self._add(st, step.xb[step.got], step.idx[step.got], lab, step.b, "al-query")
        self._apply_memory(st, step.b)
        if self.cfg.reset_weights and not self.original:  # the original's reset is a no-op
            reset_weights(model, self.cfg.seed)

    def cf_question(self, step: BatchStep, model: Detector) -> Question | None:
        """POST-test the samples not queried; the corrective-feedback question (None without
        ``sim_type``)."""
        idx = step.idx
        rest = np.ones(len(idx), dtype=bool)
        rest[step.got] = False
        step.rest_pos = np.flatnonzero(rest)
        t = time.perf_counter()
        pred2, prob2, _ = predict(model, step.xb[step.rest_pos])
        step.tm.predict_s += time.perf_counter() - t
        step.post = ConfusionCounts.from_labels(step.yb[step.rest_pos], pred2)
        if not self.tokens:
            return None
        sides = {_SIDES[tok] for tok in self.tokens if tok in _SIDES}
        show = (
            np.ones(len(step.rest_pos), bool)
            if "all" in self.tokens
            else np.isin(pred2, list(sides))
        )
        cand = np.flatnonzero(show)
        conf2 = np.where(pred2 == 1, prob2, 1.0 - prob2)
        pos = step.rest_pos[cand]
        step.pred2, step.conf2, step.cand = pred2, conf2, cand
        return Question(
            items=idx[pos],
            why="cf-review",
            pred=pred2[cand],
            confidence=conf2[cand],
            batch=step.b,
            ids=tuple(self.inp.ids[i] for i in idx[pos]),
        )

    def take_cf_answers(
        self, step: BatchStep, st: _State, question: Question, labels: np.ndarray
    ) -> bool:
        """Add the selected reviewed items to the pool; True when they need a fit (never with
        reset_weights under ``compat original``: the original skips that refit)."""
        cfg = self.cfg
        ckeep, clab = answered(question, labels)
        cand = step.cand[ckeep]
        sel = select_feedback(
            clab,
            step.pred2[cand],
            step.conf2[cand],
            cfg.sim_type,
            cfg.max_fb_samples,
            rank_cf=cfg.rank_cf,
        )
        step.cf_tp, step.cf_fp = cf_label_counts(clab, sel)
        if not len(sel):
            return False
        fpos = step.rest_pos[cand[sel]]
        if self.original:  # the batch's AL items are never forgotten after its CF
            self._sticky(st)[st.pool_pass == step.b] = True
        self._add(st, step.xb[fpos], step.idx[fpos], clab[sel], step.b, "cf-review")
        self._apply_memory(st, step.b)
        return not (self.original and cfg.reset_weights)

    def end_batch(self, step: BatchStep, st: _State) -> None:
        """Write the batch's score row, batch info and timings into ``st``."""
        inp, b, tm = self.inp, step.b, step.tm
        if step.post is None:
            raise ValueError("end_batch before cf_question: the batch was not post-tested")
        row = make_score_row(
            b,
            step.pre,
            step.post,
            previous=st.rows,
            n_target_labelled=int(st.pool_y.sum()),
            n_samples=len(st.pool_y),
            n_al=len(step.got),
            cf_tp=step.cf_tp,
            cf_fp=step.cf_fp,
            drift=step.drift_state,
            metric=step.metric,
        )
        st.rows.append(row)
        g = inp.groups[step.idx]
        dominant = int(np.bincount(g).argmax()) if len(g) else -1
        st.batch_info.append(
            [
                b,
                len(step.idx),
                int(step.yb.sum()),
                dominant,
                inp.group_names[dominant] if dominant >= 0 else "",
                step.n_q,
                step.method,
            ]
        )
        tm.total_s = time.perf_counter() - step.t0
        tm.other_s = tm.total_s - tm.fit_s - tm.predict_s - tm.query_s
        st.timings.append(tm)

    # -- outputs --
    def _save_batch(
        self, model: Detector, rng: np.random.Generator, budget: QueryBudget, st: _State
    ) -> None:
        write_scores(self.dir / "scores.csv", st.rows)
        atomic_write_text(
            self.dir / "batches.csv",
            _csv_text(
                ["pass", "n", "n_target", "group", "group_name", "n_q", "al_method"], st.batch_info
            ),
        )
        atomic_write_text(self.dir / "timings.csv", _timings_csv(st.timings))
        asked = dict(self.oracle.asked) if isinstance(self.oracle, TruthOracle) else {}
        atomic_torch_save(
            {
                "model": model.state_dict(),
                "rng": rng.bit_generator.state,
                "budget": budget,
                "state": st,
                "asked": asked,
            },
            self.dir / "checkpoint.pt",
        )

    def _finish(self, model: Detector, st: _State) -> None:
        atomic_torch_save(model.state_dict(), self.dir / "model.pt")
        atomic_write_text(self.dir / "timings.csv", _timings_csv(st.timings))
        atomic_write_text(
            self.dir / "labelled.csv",
            _csv_text(
                ["id", "index", "source", "pass", "why", "label"],
                [[r.id, r.index, r.source, r.pass_, r.why, r.label] for r in st.records],
            ),
        )
        fit_s = sum(t.fit_s for t in st.timings)
        total_s = sum(t.total_s for t in st.timings)
        body = {
            "task": self.cfg.task,
            "run": self.inp.name,
            "target": self.inp.target,
            "n_batches": self.inp.n_batches,
            "n_samples": int(sum(len(b) for b in self.inp.batches)),
            "n_boot": st.n_boot,
            "boot_source": self.inp.boot.name if self.inp.boot is not None else "stream",
            "input_dim": self.dim,
            "input_frames": self.frames,
            "asked": dict(self.oracle.asked) if isinstance(self.oracle, TruthOracle) else {},
            "timings": {
                "setup_s": st.setup_s,
                "batches_s": total_s,
                "fit_s": fit_s,
                "overhead_share": (total_s - fit_s) / total_s if total_s else 0.0,
            },
            "finished": True,
        }
        write_manifest(self.dir / "manifest.json", body, self.cfg, device=str(self.device))
        (self.dir / "checkpoint.pt").unlink(missing_ok=True)


def _timings_csv(timings: Sequence[BatchTiming]) -> str:
    names = [f.name for f in dataclasses.fields(BatchTiming)]
    rows = []
    for t in timings:
        rows.append(
            [t.pass_]
            + [
                f"{getattr(t, n):.4f}" if isinstance(getattr(t, n), float) else getattr(t, n)
                for n in names[1:]
            ]
        )
    return _csv_text(["pass", *names[1:]], rows)


def run_stream(
    cfg: StreamConfig,
    target: str,
    run_dir: str | Path,
    device: torch.device | None = None,
    oracle: Oracle | None = None,
    command: str = "",
    on_batch: Callable[[BatchEvent], None] | None = None,
) -> list[ScoreRow]:
    """Check ``cfg``, prepare and run one stream (``target``: LID language or VTD
    environment)."""
    validate_config(cfg)
    inputs = prepare_inputs(cfg, target)
    return StreamRun(cfg, inputs, run_dir, device, oracle, command).run(on_batch)
