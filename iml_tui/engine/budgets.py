"""Query budgets and labelled-pool memory of the streaming paradigm (SPEC B.5).

How many AL queries batch b gets:

- **fixed**: ``n_queries`` every batch.
- **planned** (``budget_plan``): one count per batch read from a plan file, made from a reference
  run by :func:`plan_budget` (same total as the reference run's AL queries).
- **drift-based** (``drift``): a detector looks at the batch before the queries are chosen:
  drift -> ``drift_mult`` n_q (5), warning -> ``warn_mult`` n_q (2.5), else ``calm_mult`` n_q
  (1/2), rounded half up and at least ``min_al_samples``. ``adwin``: river's ADWIN on the
  pre-test per-sample error stream (simulation knowledge, as in the original; the warning level is
  a second ADWIN with a looser ``adwin_warn_delta``); ``hdddm``: :class:`HDDDM` on the batch's
  features (label-free).

Memory (:func:`memory_keep`): ``forget_n_batches`` keeps only the stream items labelled in the
last n batches; ``memory_cap`` keeps only the newest ``memory_cap`` stream items (a ring buffer).
The bootstrap items are always kept, so both classes stay in the pool.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from iml_tui.engine.scoring import read_scores
from iml_tui.errors import UserError

PLAN_TYPES: tuple[str, ...] = (
    "uniform", "frontheavy", "linear", "geometric", "exponential", "skew", "sessions", "oracle")
DRIFT_METHODS: tuple[str, ...] = ("none", "adwin", "hdddm")
NO_DRIFT, WARNING, DRIFT = 0, 1, 2
GEOMETRIC_RATIO = 0.9
EXPONENTIAL_DECAY = 5.0
SESSION_RATIO = 0.5
PLAN_DIR = "budget_plans"


def round_half_up(x: float) -> int:
    """Nearest integer, halves up (2.5 -> 3), unlike Python's banker's rounding."""
    return math.floor(x + 0.5)


def allocate(weights: Sequence[float] | np.ndarray, total: int) -> np.ndarray:
    """Integers (n,) >= 0 proportional to ``weights`` that sum to exactly ``total``.

    Largest-remainder (Hamilton) rounding: floor of each share, then the leftover units go to the
    largest fractional parts, ties to the lowest index. All-zero weights count as uniform.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if total < 0 or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("total and weights must be non-negative and finite")
    if len(w) == 0:
        if total:
            raise ValueError("cannot allocate a positive total over no batches")
        return np.zeros(0, dtype=np.int64)
    if w.sum() <= 0:
        w = np.ones_like(w)
    share = total * w / w.sum()
    out = np.floor(share + 1e-9).astype(np.int64)
    left = int(total - out.sum())
    frac = share - out
    order = np.lexsort((np.arange(len(w)), -frac))
    out[order[:left]] += 1
    return out


def plan_weights(kind: str, n_batches: int, *,
                 errors: Sequence[float] | np.ndarray | None = None,
                 groups: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Relative budget weights (n_batches,) of a plan type; b = 0 .. n-1 is the batch index.

    - ``uniform``: w_b = 1.
    - ``frontheavy``: half the total over the first ceil(n/4) batches, half over the rest
      (uniform inside each part; all of it in the first part when n < 2).
    - ``linear``: w_b = n - b (linearly decreasing to 1 at the last batch).
    - ``geometric``: w_b = 0.9^b (a fixed ratio per batch).
    - ``exponential``: w_b = exp(-5 b / n) (decays by e^-5 over the whole stream).
    - ``skew``: w_b = 1 / (b + 1) (power law: a heavy head, a long tail).
    - ``sessions``: a session is a maximal run of consecutive batches with the same dominant
      class (``groups``: the reference run's ``batches.csv``; VTD: each batch its own session);
      every session gets the same share, spent 1/2, 1/4, ... over its batches
      (w = 0.5^(position in session), normalised per session).
    - ``oracle``: w_b = the reference run's pre-test errors of batch b (pre_fns + pre_fps):
      queries go where the model was wrong (uniform when it never was).
    """
    if kind not in PLAN_TYPES:
        raise UserError(f"unknown budget plan type {kind!r}", None,
                        f"use one of {', '.join(PLAN_TYPES)}")
    n = n_batches
    b = np.arange(n, dtype=np.float64)
    if kind == "uniform":
        return np.ones(n)
    if kind == "frontheavy":
        head = max(1, math.ceil(n / 4)) if n else 0
        w = np.zeros(n)
        if head >= n:
            w[:] = 1.0
        else:
            w[:head] = 0.5 / head
            w[head:] = 0.5 / (n - head)
        return w
    if kind == "linear":
        return n - b
    if kind == "geometric":
        return np.power(GEOMETRIC_RATIO, b)
    if kind == "exponential":
        return np.exp(-EXPONENTIAL_DECAY * b / max(1, n))
    if kind == "skew":
        return 1.0 / (b + 1.0)
    if kind == "sessions":
        g = np.arange(n) if groups is None else np.asarray(groups, dtype=np.int64)
        if len(g) != n:
            raise ValueError(f"{len(g)} groups for {n} batches")
        starts = [0] + [i for i in range(1, n) if g[i] != g[i - 1]]
        bounds = [*starts, n]
        w = np.zeros(n)
        for s, e in itertools.pairwise(bounds):
            part = np.power(SESSION_RATIO, np.arange(e - s, dtype=np.float64))
            w[s:e] = part / part.sum()
        return w
    err = np.zeros(n) if errors is None else np.asarray(errors, dtype=np.float64)
    if len(err) != n:
        raise ValueError(f"{len(err)} error counts for {n} batches")
    return err


def plan_budget(kind: str, total: int, n_batches: int, *,
                errors: Sequence[float] | np.ndarray | None = None,
                groups: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Queries per batch (n_batches,) int64 of plan type ``kind``, summing to ``total``."""
    return allocate(plan_weights(kind, n_batches, errors=errors, groups=groups), total)


# --- plan files ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceRun:
    """What a plan needs of a finished run: its batches' AL queries, pre-test errors, groups."""

    name: str
    n_al: np.ndarray  # (n_batches,)
    errors: np.ndarray  # (n_batches,) pre_fns + pre_fps
    groups: np.ndarray | None  # (n_batches,) dominant class per batch, if recorded

    @property
    def total(self) -> int:
        return int(self.n_al.sum())


def find_runs(folder: str | Path) -> list[Path]:
    """Run folders under ``folder``: itself when it holds scores.csv, else its sub-folders
    (sorted) that do."""
    p = Path(folder)
    if not p.is_dir():
        raise UserError("run folder not found", p, "give a run folder or a folder of runs")
    if (p / "scores.csv").is_file():
        return [p]
    runs = sorted(q for q in p.iterdir() if (q / "scores.csv").is_file())
    if not runs:
        raise UserError("no runs here (no scores.csv in it or its sub-folders)", p,
                        "point at the output folder of `iml-tui simulate --task lid|vtd`")
    return runs


def read_reference(run_dir: str | Path) -> ReferenceRun:
    """A reference run from its ``scores.csv`` (and ``batches.csv`` when present)."""
    d = Path(run_dir)
    rows = read_scores(d / "scores.csv")
    groups = None
    bpath = d / "batches.csv"
    if bpath.is_file():
        with bpath.open(newline="") as fh:
            groups = np.array([int(r["group"]) for r in csv.DictReader(fh)], dtype=np.int64)
        if len(groups) != len(rows):
            raise UserError(f"{len(groups)} batches listed, {len(rows)} scored", bpath,
                            "re-run the reference run")
    return ReferenceRun(name=d.name, n_al=np.array([r.n_al for r in rows], dtype=np.int64),
                        errors=np.array([r.pre_fns + r.pre_fps for r in rows], dtype=np.int64),
                        groups=groups)


def write_budget_plans(kind: str, runs_dir: str | Path, name: str) -> list[Path]:
    """One plan per reference run in ``runs_dir``: ``<runs_dir>/budget_plans/<name>/<run>.txt``
    (one count per line) with the run's total, plus ``plan.json`` describing them."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"bad plan name {name!r}", None, "use a plain folder name")
    plan_weights(kind, 0)  # validates the type before any file is touched
    out = Path(runs_dir) / PLAN_DIR / name
    written: list[Path] = []
    summary: dict[str, dict[str, int]] = {}
    for run in find_runs(runs_dir):
        ref = read_reference(run)
        plan = plan_budget(kind, ref.total, len(ref.n_al), errors=ref.errors, groups=ref.groups)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{ref.name}.txt"
        path.write_text("".join(f"{int(v)}\n" for v in plan))
        written.append(path)
        summary[ref.name] = {"batches": len(plan), "total": int(plan.sum())}
    (out / "plan.json").write_text(json.dumps({"type": kind, "runs": summary}, indent=2))
    return written


def read_budget_plan(path: str | Path, run_name: str, n_batches: int) -> np.ndarray:
    """The plan (n_batches,) of a run: ``path`` is a plan file or a folder of ``<run>.txt``."""
    p = Path(path)
    f = p / f"{run_name}.txt" if p.is_dir() else p
    if not f.is_file():
        raise UserError(f"no budget plan for run {run_name!r}", f,
                        "make one with `iml-tui budget plan TYPE RUNS_DIR NAME`")
    try:
        plan = np.array([int(v) for v in f.read_text().split()], dtype=np.int64)
    except ValueError as exc:
        raise UserError(f"not a budget plan ({exc})", f, "one integer per line") from exc
    if len(plan) != n_batches:
        raise UserError(f"the plan has {len(plan)} batches, the stream {n_batches}", f,
                        "make the plan from a reference run on the same stream")
    if len(plan) and plan.min() < 0:
        raise UserError("negative query count in the plan", f, "counts are >= 0")
    return plan


# --- drift detection ---------------------------------------------------------------------------
class DriftDetector(Protocol):
    """Sees each batch once, in stream order; returns NO_DRIFT, WARNING or DRIFT."""

    def update(self, errors: np.ndarray, x: np.ndarray) -> int: ...


class AdwinDetector:
    """river's ADWIN on the per-sample 0/1 error stream; a looser second ADWIN gives warnings.

    A batch is DRIFT when the strict detector (``delta``) fires on any of its samples, WARNING
    when only the loose one (``warn_delta`` > delta) does.
    """

    def __init__(self, delta: float = 0.002, warn_delta: float = 0.01) -> None:
        from river.drift import ADWIN

        if not 0.0 < delta <= warn_delta < 1.0:
            raise UserError(f"ADWIN deltas {delta}, {warn_delta} must be 0 < delta <= warn < 1",
                            None, "fix adwin_delta / adwin_warn_delta")
        self.strict = ADWIN(delta=delta)
        self.loose = ADWIN(delta=warn_delta)

    def update(self, errors: np.ndarray, x: np.ndarray) -> int:
        drift = warn = False
        for e in np.asarray(errors, dtype=np.float64).ravel():
            self.strict.update(float(e))
            self.loose.update(float(e))
            drift |= bool(self.strict.drift_detected)
            warn |= bool(self.loose.drift_detected)
        return DRIFT if drift else WARNING if warn else NO_DRIFT


def hellinger(p_data: np.ndarray, q_data: np.ndarray, bins: int) -> float:
    """Mean over features of the Hellinger distance between the histograms of two samples.

    p_data (m, D), q_data (n, D); per feature both histograms share ``bins`` equal-width bins
    over the two samples' joint range; delta = (1/D) sum_k sqrt(sum_i (sqrt(P_ik) - sqrt(Q_ik))^2)
    with P, Q normalised to sum 1 (range [0, sqrt 2], as in Ditzler & Polikar 2011).
    """
    p = np.asarray(p_data, dtype=np.float64)
    q = np.asarray(q_data, dtype=np.float64)
    d = p.shape[1]
    lo = np.minimum(p.min(axis=0), q.min(axis=0))
    span = np.maximum(np.maximum(p.max(axis=0), q.max(axis=0)) - lo, 1e-12)

    def hist(a: np.ndarray) -> np.ndarray:
        idx = np.clip(((a - lo) / span * bins).astype(np.int64), 0, bins - 1)
        flat = (idx + np.arange(d) * bins).ravel()
        h = np.bincount(flat, minlength=d * bins).reshape(d, bins).astype(np.float64)
        return np.asarray(h / len(a))

    diff = np.sqrt(hist(p)) - np.sqrt(hist(q))
    return float(np.sqrt((diff**2).sum(axis=1)).mean())


class HDDDM:
    """Hellinger Distance Drift Detection Method (Ditzler & Polikar 2011) on batch features.

    The reference is every batch since the last change. For batch t: delta_t = Hellinger
    distance between the reference's and the batch's feature histograms (floor(sqrt(n)) bins,
    n = batch size); eps_t = |delta_t - delta_{t-1}|. With k >= 2 earlier eps since the change
    (mean m, sample std s), the threshold is beta = m + t_{1-alpha/2, k-1} s / sqrt(k): DRIFT when
    eps_t > beta(alpha) (the reference restarts from this batch), WARNING when
    eps_t > beta(warn_alpha) (warn_alpha > alpha gives a lower threshold). Otherwise the batch
    joins the reference.
    """

    def __init__(self, alpha: float = 0.05, warn_alpha: float = 0.1) -> None:
        if not 0.0 < alpha <= warn_alpha < 1.0:
            raise UserError(f"HDDDM alphas {alpha}, {warn_alpha} must be 0 < alpha <= warn < 1",
                            None, "fix hdddm_alpha / hdddm_warn_alpha")
        self.alpha = alpha
        self.warn_alpha = warn_alpha
        self.reference: np.ndarray | None = None
        self.prev: float | None = None
        self.eps: list[float] = []

    def _threshold(self, alpha: float) -> float:
        from scipy.stats import t as student_t  # type: ignore[import-untyped]

        k = len(self.eps)
        e = np.asarray(self.eps)
        return float(e.mean() + student_t.ppf(1.0 - alpha / 2.0, k - 1) * e.std(ddof=1)
                     / math.sqrt(k))

    def update(self, errors: np.ndarray, x: np.ndarray) -> int:
        xa = np.asarray(x, dtype=np.float64)
        if self.reference is None:
            self.reference = xa.copy()
            return NO_DRIFT
        bins = max(1, math.isqrt(len(xa)))
        dist = hellinger(self.reference, xa, bins)
        state = NO_DRIFT
        if self.prev is not None:
            eps = abs(dist - self.prev)
            if len(self.eps) >= 2:
                if eps > self._threshold(self.alpha):
                    state = DRIFT
                elif eps > self._threshold(self.warn_alpha):
                    state = WARNING
            if state == DRIFT:
                self.reference, self.prev, self.eps = xa.copy(), None, []
                return DRIFT
            self.eps.append(eps)
        self.prev = dist
        self.reference = np.concatenate([self.reference, xa])
        return state


@dataclass(frozen=True)
class BudgetConfig:
    """How many queries each batch gets (see the module docstring)."""

    n_queries: int = 8
    drift: str = "none"
    drift_mult: float = 5.0
    warn_mult: float = 2.5
    calm_mult: float = 0.5
    min_al_samples: int = 2
    adwin_delta: float = 0.002
    adwin_warn_delta: float = 0.01
    hdddm_alpha: float = 0.05
    hdddm_warn_alpha: float = 0.1

    def __post_init__(self) -> None:
        if self.n_queries < 0 or self.min_al_samples < 0:
            raise UserError("n_queries and min_al_samples must be >= 0", None, "fix them")
        if self.drift not in DRIFT_METHODS:
            raise UserError(f"unknown drift method {self.drift!r}", None,
                            f"use one of {', '.join(DRIFT_METHODS)}")


class QueryBudget:
    """Queries per batch: ``plan`` (n_batches,) when given, else drift-based or fixed.

    Holds the drift detector's state, so one object serves one run from its first batch on.
    """

    def __init__(self, cfg: BudgetConfig, plan: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.plan = None if plan is None else np.asarray(plan, dtype=np.int64)
        self.detector: DriftDetector | None = None
        if self.plan is None and cfg.drift == "adwin":
            self.detector = AdwinDetector(cfg.adwin_delta, cfg.adwin_warn_delta)
        elif self.plan is None and cfg.drift == "hdddm":
            self.detector = HDDDM(cfg.hdddm_alpha, cfg.hdddm_warn_alpha)

    def for_batch(self, b: int, errors: np.ndarray, x: np.ndarray) -> tuple[int, int]:
        """(n_q, drift state) of batch b; errors (n,) 0/1 pre-test mistakes, x (n, D) features."""
        if self.plan is not None:
            return int(self.plan[b]), NO_DRIFT
        if self.detector is None:
            return self.cfg.n_queries, NO_DRIFT
        state = self.detector.update(errors, x)
        mult = {DRIFT: self.cfg.drift_mult, WARNING: self.cfg.warn_mult}.get(
            state, self.cfg.calm_mult)
        return max(self.cfg.min_al_samples, round_half_up(mult * self.cfg.n_queries)), state


def memory_keep(passes: np.ndarray, is_boot: np.ndarray, current: int,
                forget_n_batches: int = 0, memory_cap: int = 0) -> np.ndarray:
    """Bool mask (m,) of the labelled items to keep, items in order of labelling.

    passes (m,): the batch each item was labelled in; is_boot (m,): bootstrap items (always
    kept). ``forget_n_batches`` > 0 keeps stream items with pass > current - n;
    ``memory_cap`` > 0 then keeps only the newest ``memory_cap`` stream items.
    """
    p = np.asarray(passes, dtype=np.int64)
    boot = np.asarray(is_boot, dtype=bool)
    keep = np.ones(len(p), dtype=bool)
    if forget_n_batches > 0:
        keep &= boot | (p > current - forget_n_batches)
    if memory_cap > 0:
        stream = np.flatnonzero(keep & ~boot)
        if len(stream) > memory_cap:
            keep[stream[: len(stream) - memory_cap]] = False
    return keep
