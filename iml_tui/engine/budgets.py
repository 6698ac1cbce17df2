"""Query budgets and labelled-pool memory of the streaming paradigm (SPEC B.5).

How many AL queries batch b gets:

- **fixed**: ``n_queries`` every batch.
- **planned** (``budget_plan``): one count per batch read from a plan file, made from a reference
  run by :func:`plan_budget` (same total as the reference run's AL queries).
- **drift-based** (``drift``): a detector looks at the batch before the queries are chosen:
  drift -> ``drift_mult`` n_q (5), warning -> ``warn_mult`` n_q (2.5), else ``calm_mult`` n_q
  (1/2), truncated with int() as the original (no floor). ``adwin``: one
  river ADWIN (delta 0.002) on the pre-test per-sample error stream (simulation knowledge, as in
  the original), warning on its clock-25 checks, drift on its clock-50 checks
  (:class:`AdwinDetector`); ``hdddm``: :class:`HDDDM` on the batch's features (label-free).
  Without a drift budget the ``drift`` column logs an ADWIN with clock 4 (:class:`DriftLog`).

Memory (:func:`memory_keep`): ``forget_n_batches`` keeps only the stream items labelled in the
last n batches; ``memory_cap`` keeps only the newest ``memory_cap`` stream items (a ring buffer).
The bootstrap items are always kept, so both classes stay in the pool.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from iml_tui.atomic import atomic_write_text
from iml_tui.engine.scoring import read_scores
from iml_tui.errors import UserError

PLAN_TYPES: tuple[str, ...] = (
    "uniform",
    "frontheavy",
    "linear",
    "geometric",
    "exponential",
    "skew",
    "sessions",
    "oracle",
)
DRIFT_METHODS: tuple[str, ...] = ("none", "adwin", "hdddm")
NO_DRIFT, WARNING, DRIFT = 0, 1, 2
EXPONENTIAL_P = 0.03
GEOMETRIC_LAM_R = 0.01
SKEW_A = 0.25
ORACLE_MIN = 4
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


@dataclass(frozen=True)
class PlanParams:
    """Parameters of the plan shapes (the original's defaults).

    ``initial_value``: the first batch's count of ``linear`` / ``exponential`` (None: the shape
    alone) and the start of the ``geometric`` fit (None: twice the mean); ``p``: the per-batch
    decay of ``exponential``; ``lam_r``: the regulariser of r in the ``geometric`` fit;
    ``a``: the width of the ``skew`` curve (a share of the stream);
    ``sessions``: the batches that get the budget in ``sessions`` (None: the first batch of each
    run of one dominant class, else every batch); ``batch_size``: the batch size ``frontheavy``
    fills; ``oracle_min``: the floor of ``oracle``.
    """

    initial_value: float | None = None
    p: float = EXPONENTIAL_P
    lam_r: float = GEOMETRIC_LAM_R
    a: float = SKEW_A
    sessions: tuple[int, ...] | None = None
    batch_size: int = 720
    oracle_min: int = ORACLE_MIN


def fit_geometric(
    total: float,
    n: int,
    lam_r: float = GEOMETRIC_LAM_R,
    initial_value: float | None = None,
    steps: int = 5000,
    lr: float = 0.02,
) -> tuple[float, float]:
    """(a, r) of the geometric plan a r^k, k = 0 .. n-1, fitted to ``total`` by gradient descent.

    In the scaled unknown u = a n / total (u = 1: the mean count), the loss is
    (u s(r) - 1)^2 + (u - u0)^2 + lam_r r^2 with s(r) = (1/n) sum_k r^k: the plan's total, its
    first count near ``initial_value`` (u0 = initial_value n / total; default 2, twice the mean)
    and ``lam_r`` pulling r down. Start u = u0, r = 1; r stays in [0.01, 1].
    """
    if n <= 0 or total <= 0:
        return 0.0, 1.0
    u0 = 2.0 if initial_value is None else initial_value * n / total
    k = np.arange(n, dtype=np.float64)
    u, r = u0, 1.0
    for _ in range(steps):
        s = np.power(r, k).sum() / n
        ds = (k[1:] * np.power(r, k[1:] - 1)).sum() / n
        err = u * s - 1.0
        gu = 2.0 * err * s + 2.0 * (u - u0)
        gr = 2.0 * err * u * ds + 2.0 * lam_r * r
        u -= lr * gu
        r = float(np.clip(r - lr * gr, 0.01, 1.0))
    return u * total / n, r


def _pinned_first(shape: np.ndarray, total: int, first: float | None) -> np.ndarray:
    """Counts: batch 0 gets ``first`` (at most ``total``), the rest of the total goes over the
    later batches by ``shape[1:]``; without ``first``, all of it by ``shape``."""
    if first is None or len(shape) < 2:
        return allocate(shape, total)
    head = min(total, max(0, int(first)))
    return np.concatenate([[head], allocate(shape[1:], total - head)]).astype(np.int64)


def _sessions_of(groups: np.ndarray | None, n: int) -> list[int]:
    if groups is None:
        return list(range(n))
    g = np.asarray(groups, dtype=np.int64)
    if len(g) != n:
        raise ValueError(f"{len(g)} groups for {n} batches")
    return [0] + [i for i in range(1, n) if g[i] != g[i - 1]]


def plan_budget(
    kind: str,
    total: int,
    n_batches: int,
    *,
    errors: Sequence[float] | np.ndarray | None = None,
    groups: Sequence[int] | np.ndarray | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    sizes: Sequence[int] | np.ndarray | None = None,
    params: PlanParams | None = None,
) -> np.ndarray:
    """Queries per batch (n_batches,) int64 of plan type ``kind``, summing to ``total``.

    b = 0 .. n-1 is the batch index; shares are rounded by :func:`allocate`.

    - ``uniform``: the same count every batch.
    - ``frontheavy``: whole batches from the front: batch b gets all its samples
      (``sizes[b]``, else ``batch_size``) until the total is spent; the last one the rest.
    - ``linear``: w_b = n - b; ``exponential``: w_b = (1 - p)^b (p = 0.03); with
      ``initial_value`` batch 0 gets that many and the rest goes by w over batches 1 ..
    - ``geometric``: a r^b with (a, r) from :func:`fit_geometric` (``lam_r``, ``initial_value``).
    - ``skew``: 1/2 a Rayleigh-like curve x / a^2 exp(-x^2 / (2 a^2)), x = (b + 1) / n, plus 1/2
      uniform (both normalised to sum 1).
    - ``sessions``: the total spread evenly over the listed batches (``sessions``; default the
      first batch of each run of one dominant class in ``groups``, else every batch), 0 elsewhere.
    - ``oracle``: every batch gets ``oracle_min`` (4; less when the total is short), the rest in
      proportion to the targets per batch (``targets``; else the pre-test errors ``errors``;
      uniform when all are 0): with the reference total of 8 per batch, a mean of 8.
    """
    if kind not in PLAN_TYPES:
        raise UserError(
            f"unknown budget plan type {kind!r}", None, f"use one of {', '.join(PLAN_TYPES)}"
        )
    if total < 0:
        raise ValueError("total must be >= 0")
    pp = params or PlanParams()
    n = n_batches
    b = np.arange(n, dtype=np.float64)
    if n == 0:
        return allocate([], total)
    if kind == "uniform":
        return allocate(np.ones(n), total)
    if kind == "frontheavy":
        cap = (
            np.full(n, pp.batch_size, np.int64)
            if sizes is None
            else np.asarray(sizes, dtype=np.int64)
        )
        if len(cap) != n:
            raise ValueError(f"{len(cap)} batch sizes for {n} batches")
        out = np.zeros(n, dtype=np.int64)
        left = total
        for i in range(n):
            out[i] = min(left, int(cap[i]))
            left -= int(out[i])
        if left:  # more than the stream holds: the rest evenly
            out += allocate(np.ones(n), left)
        return out
    if kind == "linear":
        return _pinned_first(n - b, total, pp.initial_value)
    if kind == "exponential":
        return _pinned_first(np.power(1.0 - pp.p, b), total, pp.initial_value)
    if kind == "geometric":
        a, r = fit_geometric(total, n, pp.lam_r, pp.initial_value)
        return allocate(a * np.power(r, b), total)
    if kind == "skew":
        x = (b + 1.0) / n
        ray = x / pp.a**2 * np.exp(-(x**2) / (2.0 * pp.a**2))
        return allocate(0.5 * ray / ray.sum() + 0.5 / n, total)
    if kind == "sessions":
        chosen = (
            list(pp.sessions)
            if pp.sessions is not None
            else _sessions_of(None if groups is None else np.asarray(groups), n)
        )
        bad = [s for s in chosen if not 0 <= s < n]
        if bad or not chosen:
            raise UserError(
                f"sessions {bad or chosen} are not batches 0 .. {n - 1}",
                None,
                "list batch indices of the stream, e.g. --sessions 0,12,30",
            )
        w = np.zeros(n)
        w[np.asarray(sorted(set(chosen)), dtype=np.int64)] = 1.0
        return allocate(w, total)
    weights = targets if targets is not None else errors
    w = np.zeros(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} batches")
    floor = min(pp.oracle_min, total // n)
    return np.full(n, floor, np.int64) + allocate(w, total - floor * n)


# --- plan files ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceRun:
    """What a plan needs of a finished run: its batches' AL queries, pre-test errors, groups."""

    name: str
    n_al: np.ndarray  # (n_batches,)
    errors: np.ndarray  # (n_batches,) pre_fns + pre_fps
    groups: np.ndarray | None  # (n_batches,) dominant class per batch, if recorded
    sizes: np.ndarray | None = None  # (n_batches,) samples per batch, if recorded
    targets: np.ndarray | None = None  # (n_batches,) target samples per batch, if recorded

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
        raise UserError(
            "no runs here (no scores.csv in it or its sub-folders)",
            p,
            "point at the output folder of `iml-tui simulate --task lid|vtd`",
        )
    return runs


def read_reference(run_dir: str | Path) -> ReferenceRun:
    """A reference run from its ``scores.csv`` (and ``batches.csv`` when present)."""
    d = Path(run_dir)
    rows = read_scores(d / "scores.csv")
    groups = sizes = targets = None
    bpath = d / "batches.csv"
    if bpath.is_file():
        with bpath.open(newline="") as fh:
            table = list(csv.DictReader(fh))
        try:
            groups = np.array([int(r["group"]) for r in table], dtype=np.int64)
            sizes = np.array([int(r["n"]) for r in table], dtype=np.int64)
            targets = np.array([int(r["n_target"]) for r in table], dtype=np.int64)
        except (KeyError, ValueError) as exc:
            raise UserError(
                f"not a batches table ({exc})", bpath, "re-run the reference run"
            ) from exc
        if len(groups) != len(rows):
            raise UserError(
                f"{len(groups)} batches listed, {len(rows)} scored",
                bpath,
                "re-run the reference run",
            )
    return ReferenceRun(
        name=d.name,
        n_al=np.array([r.n_al for r in rows], dtype=np.int64),
        errors=np.array([r.pre_fns + r.pre_fps for r in rows], dtype=np.int64),
        groups=groups,
        sizes=sizes,
        targets=targets,
    )


def write_budget_plans(
    kind: str, runs_dir: str | Path, name: str, params: PlanParams | None = None
) -> list[Path]:
    """One plan per reference run in ``runs_dir``: ``<runs_dir>/budget_plans/<name>/<run>.txt``
    (one count per line) with the run's total, plus ``plan.json`` describing them."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"bad plan name {name!r}", None, "use a plain folder name")
    plan_budget(kind, 0, 0)  # validates the type before any file is touched
    out = Path(runs_dir) / PLAN_DIR / name
    written: list[Path] = []
    summary: dict[str, dict[str, int]] = {}
    for run in find_runs(runs_dir):
        ref = read_reference(run)
        plan = plan_budget(
            kind,
            ref.total,
            len(ref.n_al),
            errors=ref.errors,
            groups=ref.groups,
            targets=ref.targets,
            sizes=ref.sizes,
            params=params,
        )
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{ref.name}.txt"
        atomic_write_text(path, "".join(f"{int(v)}\n" for v in plan))
        written.append(path)
        summary[ref.name] = {"batches": len(plan), "total": int(plan.sum())}
    atomic_write_text(
        out / "plan.json",
        json.dumps(
            {"type": kind, "params": dataclasses.asdict(params or PlanParams()), "runs": summary},
            indent=2,
        ),
    )
    return written


def read_budget_plan(path: str | Path, run_name: str, n_batches: int) -> np.ndarray:
    """The plan (n_batches,) of a run: ``path`` is a plan file or a folder of ``<run>.txt``."""
    p = Path(path)
    f = p / f"{run_name}.txt" if p.is_dir() else p
    if not f.is_file():
        raise UserError(
            f"no budget plan for run {run_name!r}",
            f,
            "make one with `iml-tui budget plan TYPE RUNS_DIR NAME`",
        )
    try:
        plan = np.array([int(v) for v in f.read_text().split()], dtype=np.int64)
    except ValueError as exc:
        raise UserError(f"not a budget plan ({exc})", f, "one integer per line") from exc
    if len(plan) != n_batches:
        raise UserError(
            f"the plan has {len(plan)} batches, the stream {n_batches}",
            f,
            "make the plan from a reference run on the same stream",
        )
    if len(plan) and plan.min() < 0:
        raise UserError("negative query count in the plan", f, "counts are >= 0")
    return plan


# --- drift detection ---------------------------------------------------------------------------
class DriftDetector(Protocol):
    """Sees each batch once, in stream order; returns NO_DRIFT, WARNING or DRIFT."""

    def update(self, errors: np.ndarray, x: np.ndarray) -> int: ...


class AdwinDetector:
    """One river ADWIN (``delta``) on the per-sample 0/1 error stream, as the original.

    It checks for a change every ``warn_clock`` samples (river's ``clock``). A detection on a
    check that falls on a multiple of ``drift_clock`` samples (the checks a clock-50 ADWIN would
    make) is DRIFT, one on the checks in between (those only a clock-25 ADWIN makes) is WARNING;
    a batch takes the strongest state of its samples. ``detections`` counts every detection.
    """

    def __init__(self, delta: float = 0.002, warn_clock: int = 25, drift_clock: int = 50) -> None:
        from river.drift import ADWIN

        if not 0.0 < delta < 1.0:
            raise UserError(f"ADWIN delta {delta} must be in (0, 1)", None, "fix adwin_delta")
        if warn_clock < 1 or drift_clock < warn_clock or drift_clock % warn_clock:
            raise UserError(
                f"ADWIN clocks {warn_clock}, {drift_clock}: the drift clock must be a "
                "multiple of the warning clock",
                None,
                "fix adwin_warn_clock / adwin_drift_clock (the original: 25, 50)",
            )
        self.adwin = ADWIN(delta=delta, clock=warn_clock)
        self.drift_clock = drift_clock
        self.seen = 0
        self.detections = 0

    def update(self, errors: np.ndarray, x: np.ndarray) -> int:
        state = NO_DRIFT
        for e in np.asarray(errors, dtype=np.float64).ravel():
            self.adwin.update(float(e))
            self.seen += 1
            if self.adwin.drift_detected:
                self.detections += 1
                state = max(state, DRIFT if self.seen % self.drift_clock == 0 else WARNING)
        return state


class DriftLog:
    """The ``drift`` column without a drift budget: 1 when an ADWIN (``delta``, clock 4) on the
    per-sample errors detects a change inside the batch, else 0 (the original logs it always)."""

    def __init__(self, delta: float = 0.002, clock: int = 4) -> None:
        from river.drift import ADWIN

        self.adwin = ADWIN(delta=delta, clock=clock)

    def update(self, errors: np.ndarray) -> int:
        hit = 0
        for e in np.asarray(errors, dtype=np.float64).ravel():
            self.adwin.update(float(e))
            hit |= int(self.adwin.drift_detected)
        return hit


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
            raise UserError(
                f"HDDDM alphas {alpha}, {warn_alpha} must be 0 < alpha <= warn < 1",
                None,
                "fix hdddm_alpha / hdddm_warn_alpha",
            )
        self.alpha = alpha
        self.warn_alpha = warn_alpha
        self.reference: np.ndarray | None = None
        self.prev: float | None = None
        self.eps: list[float] = []

    def _threshold(self, alpha: float) -> float:
        from scipy.stats import t as student_t  # type: ignore[import-untyped]

        k = len(self.eps)
        e = np.asarray(self.eps)
        return float(
            e.mean() + student_t.ppf(1.0 - alpha / 2.0, k - 1) * e.std(ddof=1) / math.sqrt(k)
        )

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
    adwin_warn_clock: int = 25
    adwin_drift_clock: int = 50
    adwin_log_clock: int = 4
    hdddm_alpha: float = 0.05
    hdddm_warn_alpha: float = 0.1

    def __post_init__(self) -> None:
        if self.n_queries < 0 or self.min_al_samples < 0:
            raise UserError("n_queries and min_al_samples must be >= 0", None, "fix them")
        if self.drift not in DRIFT_METHODS:
            raise UserError(
                f"unknown drift method {self.drift!r}",
                None,
                f"use one of {', '.join(DRIFT_METHODS)}",
            )


class QueryBudget:
    """Queries per batch: ``plan`` (n_batches,) when given, else drift-based or fixed.

    Holds the drift detector's state, so one object serves one run from its first batch on.
    """

    def __init__(self, cfg: BudgetConfig, plan: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.plan = None if plan is None else np.asarray(plan, dtype=np.int64)
        self.detector: DriftDetector | None = None
        self.log = DriftLog(cfg.adwin_delta, cfg.adwin_log_clock)
        if self.plan is None and cfg.drift == "adwin":
            self.detector = AdwinDetector(
                cfg.adwin_delta, cfg.adwin_warn_clock, cfg.adwin_drift_clock
            )
        elif self.plan is None and cfg.drift == "hdddm":
            self.detector = HDDDM(cfg.hdddm_alpha, cfg.hdddm_warn_alpha)

    def for_batch(self, b: int, errors: np.ndarray, x: np.ndarray) -> tuple[int, int]:
        """(n_q, drift column) of batch b; errors (n,) 0/1 pre-test mistakes, x (n, D) features.

        With a drift budget the column is its state (0 calm, 1 warning, 2 drift) and n_q =
        int(mult x n_queries) (no floor: the original's min_al_samples bounds only
        separate_class_al); otherwise it is :class:`DriftLog`'s
        0/1 and n_q the plan's or ``n_queries``.
        """
        if self.detector is None:
            logged = self.log.update(errors)
            return (int(self.plan[b]) if self.plan is not None else self.cfg.n_queries), logged
        state = self.detector.update(errors, x)
        mult = {DRIFT: self.cfg.drift_mult, WARNING: self.cfg.warn_mult}.get(
            state, self.cfg.calm_mult
        )
        return int(mult * self.cfg.n_queries), state


def memory_keep(
    passes: np.ndarray,
    is_boot: np.ndarray,
    current: int,
    forget_n_batches: int = 0,
    memory_cap: int = 0,
    *,
    forget_boot: bool = False,
    sticky: np.ndarray | None = None,
) -> np.ndarray:
    """Bool mask (m,) of the labelled items to keep, items in order of labelling.

    passes (m,): the batch each item was labelled in; is_boot (m,): bootstrap items (kept).
    ``forget_n_batches`` > 0 keeps stream items with pass > current - n; ``memory_cap`` > 0 then
    keeps only the newest ``memory_cap`` stream items. The original's forgetting
    (``compat original``): ``forget_boot`` forgets the bootstrap items too (as pass -1), and
    ``sticky`` (m,) items (its AL items of batches that had CF) are never forgotten.
    """
    p = np.asarray(passes, dtype=np.int64)
    boot = np.asarray(is_boot, dtype=bool)
    stay = np.zeros(len(p), dtype=bool) if sticky is None else np.asarray(sticky, dtype=bool)
    protected = stay if forget_boot else boot | stay
    keep = np.ones(len(p), dtype=bool)
    if forget_n_batches > 0:
        keep &= protected | (p > current - forget_n_batches)
    if memory_cap > 0:
        stream = np.flatnonzero(keep & ~boot)
        if len(stream) > memory_cap:
            keep[stream[: len(stream) - memory_cap]] = False
    return keep
