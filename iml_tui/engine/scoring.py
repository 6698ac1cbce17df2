"""Scores of the streaming paradigm (SPEC B.6): the ``scores.csv`` rows, run and pooled summaries.

Definitions used everywhere in this project:

- FNR = FN / P (miss rate), FPR = FP / N (false-alarm rate), DCF = 0.75 FNR + 0.25 FPR.
  A rate whose denominator is 0 is 0 (no positives: nothing can be missed).
- IMLM = (N_FP + N_labelled) / N_total + N_FN / N_pos, lower is better. N_labelled counts the
  items the human was asked to label (bootstrap + AL queries); corrective-feedback items are
  reviewed model decisions, and their false alarms are already in N_FP. N_total and N_pos come
  from the pre-test counts (the whole stream), N_FP and N_FN from the post-test counts (what the
  model decided alone). Both trivial extremes score 1.0. Each term is 0 when its denominator is 0.
  There is one IMLM formula (:func:`imlm`); the run summary and the pooled summary both use it.
- Unlike the original scripts: the cost term is divided by N_total (not by negatives only), the
  bootstrap size excludes the first batch's CF items, and ``cum_pre_dcf`` uses the pre counts.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iml_tui.atomic import atomic_write_text
from iml_tui.errors import UserError

SCORE_COLUMNS: tuple[str, ...] = (
    "pass",
    "pre_dcf",
    "pre_fnr",
    "pre_fpr",
    "dcf",
    "fnr",
    "fpr",
    "pre_ns",
    "pre_ps",
    "ns",
    "ps",
    "pre_fns",
    "pre_fps",
    "fns",
    "fps",
    "p_target",
    "p_nontarget",
    "n_samples",
    "cum_pre_dcf",
    "cum_dcf",
    "n_al",
    "cf_tp",
    "cf_fp",
    "drift",
)
"""The columns of one ``scores.csv`` row, in the order of the spec. ``metric`` (the mean AL score)
follows when present; columns of ours follow after it."""

OPTIONAL_COLUMN = "metric"
RATE_DECIMALS = 4

_INT_COLUMNS = frozenset(
    {
        "pass",
        "pre_ns",
        "pre_ps",
        "ns",
        "ps",
        "pre_fns",
        "pre_fps",
        "fns",
        "fps",
        "n_samples",
        "n_al",
        "cf_tp",
        "cf_fp",
        "drift",
    }
)
#: Per-batch values :func:`compare_runs` accepts besides the numeric columns.
DERIVED_METRICS = ("imlm",)


def _ratio(num: float, den: float) -> float:
    """num / den, and 0.0 when den is 0."""
    return float(num) / float(den) if den else 0.0


def fnr(n_fn: float, n_pos: float) -> float:
    """Miss rate FN / P; 0 when there are no positives."""
    return _ratio(n_fn, n_pos)


def fpr(n_fp: float, n_neg: float) -> float:
    """False-alarm rate FP / N; 0 when there are no negatives."""
    return _ratio(n_fp, n_neg)


def dcf(fnr_value: float, fpr_value: float) -> float:
    """Detection cost 0.75 FNR + 0.25 FPR."""
    return 0.75 * fnr_value + 0.25 * fpr_value


def dcf_from_counts(n_fn: float, n_pos: float, n_fp: float, n_neg: float) -> float:
    """DCF from confusion counts (zero-denominator rates are 0)."""
    return dcf(fnr(n_fn, n_pos), fpr(n_fp, n_neg))


def imlm(n_fp: float, n_labelled: float, n_fn: float, n_total: float, n_pos: float) -> float:
    """IMLM = (N_FP + N_labelled) / N_total + N_FN / N_pos (each term 0 if its denominator is 0)."""
    return _ratio(n_fp + n_labelled, n_total) + _ratio(n_fn, n_pos)


@dataclass(frozen=True)
class ConfusionCounts:
    """Binary detection counts: positives, negatives, false negatives, false positives."""

    ps: int = 0
    ns: int = 0
    fns: int = 0
    fps: int = 0

    @classmethod
    def from_labels(cls, y: np.ndarray, pred: np.ndarray) -> ConfusionCounts:
        """Counts from labels y (n,) and decisions pred (n,), both 0/1."""
        yb = np.asarray(y).astype(bool).ravel()
        pb = np.asarray(pred).astype(bool).ravel()
        if yb.shape != pb.shape:
            raise ValueError(f"y {yb.shape} and pred {pb.shape} differ in shape")
        return cls(
            ps=int(yb.sum()),
            ns=int((~yb).sum()),
            fns=int((yb & ~pb).sum()),
            fps=int((~yb & pb).sum()),
        )

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        return ConfusionCounts(
            self.ps + other.ps, self.ns + other.ns, self.fns + other.fns, self.fps + other.fps
        )

    @property
    def fnr(self) -> float:
        return fnr(self.fns, self.ps)

    @property
    def fpr(self) -> float:
        return fpr(self.fps, self.ns)

    @property
    def dcf(self) -> float:
        return dcf(self.fnr, self.fpr)


@dataclass(frozen=True)
class ScoreRow:
    """One row of ``scores.csv`` (one batch of the stream)."""

    pass_: int
    pre_dcf: float
    pre_fnr: float
    pre_fpr: float
    dcf: float
    fnr: float
    fpr: float
    pre_ns: int
    pre_ps: int
    ns: int
    ps: int
    pre_fns: int
    pre_fps: int
    fns: int
    fps: int
    p_target: float
    p_nontarget: float
    n_samples: int
    cum_pre_dcf: float
    cum_dcf: float
    n_al: int
    cf_tp: int
    cf_fp: int
    drift: int = 0
    metric: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def pre(self) -> ConfusionCounts:
        return ConfusionCounts(self.pre_ps, self.pre_ns, self.pre_fns, self.pre_fps)

    @property
    def post(self) -> ConfusionCounts:
        return ConfusionCounts(self.ps, self.ns, self.fns, self.fps)

    def value(self, name: str) -> float:
        """A column's value by its csv name (``pass``, ``metric``, extra columns) or ``imlm``.

        The per-batch ``imlm`` is (fps + n_al) / (pre_ps + pre_ns) + fns / pre_ps (no bootstrap).
        """
        if name == "pass":
            return float(self.pass_)
        if name == "imlm":
            return imlm(self.fps, self.n_al, self.fns, self.pre_ps + self.pre_ns, self.pre_ps)
        if name == OPTIONAL_COLUMN:
            return math.nan if self.metric is None else float(self.metric)
        if name in SCORE_COLUMNS:
            return float(getattr(self, name))
        if name in self.extra:
            return float(self.extra[name])
        raise KeyError(f"unknown score column {name!r}")

    def as_dict(self) -> dict[str, str]:
        """Formatted csv cells: counts as integers, rates with 4 decimals."""
        out: dict[str, str] = {}
        for name in SCORE_COLUMNS:
            v = self.value(name)
            out[name] = str(int(v)) if name in _INT_COLUMNS else f"{v:.{RATE_DECIMALS}f}"
        if self.metric is not None:
            out[OPTIONAL_COLUMN] = f"{self.metric:.{RATE_DECIMALS}f}"
        for k, v in self.extra.items():
            out[k] = f"{v:.{RATE_DECIMALS}f}"
        return out

    @classmethod
    def from_mapping(cls, cells: Mapping[str, str | float | int]) -> ScoreRow:
        """Parse one csv row (strings or numbers); missing spec columns raise KeyError."""
        kwargs: dict[str, float | int] = {}
        for name in SCORE_COLUMNS:
            raw = cells[name]
            key = "pass_" if name == "pass" else name
            kwargs[key] = int(float(raw)) if name in _INT_COLUMNS else float(raw)
        raw_metric = cells.get(OPTIONAL_COLUMN)
        metric = None if raw_metric in (None, "") else float(raw_metric)
        extra = {
            k: float(v)
            for k, v in cells.items()
            if k not in SCORE_COLUMNS and k != OPTIONAL_COLUMN and v not in (None, "")
        }
        return cls(**kwargs, metric=metric, extra=extra)  # type: ignore[arg-type]


def _r(x: float) -> float:
    return round(float(x), RATE_DECIMALS)


def make_score_row(
    pass_: int,
    pre: ConfusionCounts,
    post: ConfusionCounts,
    *,
    previous: Sequence[ScoreRow] = (),
    n_target_labelled: int,
    n_samples: int,
    n_al: int,
    cf_tp: int = 0,
    cf_fp: int = 0,
    drift: int = 0,
    metric: float | None = None,
    extra: Mapping[str, float] | None = None,
) -> ScoreRow:
    """Build a batch's row from its pre / post counts; cumulative DCFs include ``previous`` rows.

    ``n_samples`` is the labelled pool size after AL and CF, ``n_target_labelled`` its targets.
    ``cum_pre_dcf`` pools the pre counts, ``cum_dcf`` the post counts. Rates are rounded to 4 dp.
    """
    cum_pre = sum((r.pre for r in previous), ConfusionCounts()) + pre
    cum_post = sum((r.post for r in previous), ConfusionCounts()) + post
    p_t = _ratio(n_target_labelled, n_samples)
    return ScoreRow(
        pass_=pass_,
        pre_dcf=_r(pre.dcf),
        pre_fnr=_r(pre.fnr),
        pre_fpr=_r(pre.fpr),
        dcf=_r(post.dcf),
        fnr=_r(post.fnr),
        fpr=_r(post.fpr),
        pre_ns=pre.ns,
        pre_ps=pre.ps,
        ns=post.ns,
        ps=post.ps,
        pre_fns=pre.fns,
        pre_fps=pre.fps,
        fns=post.fns,
        fps=post.fps,
        p_target=_r(p_t),
        p_nontarget=_r(1.0 - p_t) if n_samples else 0.0,
        n_samples=n_samples,
        cum_pre_dcf=_r(cum_pre.dcf),
        cum_dcf=_r(cum_post.dcf),
        n_al=n_al,
        cf_tp=cf_tp,
        cf_fp=cf_fp,
        drift=drift,
        metric=None if metric is None else _r(metric),
        extra={k: _r(v) for k, v in (extra or {}).items()},
    )


def write_scores(path: str | Path, rows: Sequence[ScoreRow]) -> Path:
    """Write rows to ``scores.csv`` (spec columns, then ``metric``, then extra columns)."""
    p = Path(path)
    header = list(SCORE_COLUMNS)
    if any(r.metric is not None for r in rows):
        header.append(OPTIONAL_COLUMN)
    for r in rows:
        header.extend(k for k in r.extra if k not in header)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\r\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r.as_dict())
    return atomic_write_text(p, buf.getvalue())


def read_scores(path: str | Path) -> list[ScoreRow]:
    """Read a ``scores.csv``; a missing file or column is a UserError."""
    p = Path(path)
    if p.is_dir():
        p = p / "scores.csv"
    if not p.is_file():
        raise UserError("no scores file", path=p, fix="point at a run folder or its scores.csv")
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in SCORE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"missing columns {', '.join(missing)}", path=p)
        try:
            return [ScoreRow.from_mapping(cells) for cells in reader]
        except ValueError as exc:
            raise UserError(f"bad number in scores: {exc}", path=p) from exc


def _rows(rows_or_path: Sequence[ScoreRow] | str | Path) -> list[ScoreRow]:
    if isinstance(rows_or_path, str | Path):
        return read_scores(rows_or_path)
    return list(rows_or_path)


def infer_bootstrap_size(rows: Sequence[ScoreRow]) -> int:
    """Bootstrap size from the first row: pool size minus its AL and CF items (never negative)."""
    if not rows:
        return 0
    r = rows[0]
    return max(0, r.n_samples - r.n_al - r.cf_tp - r.cf_fp)


@dataclass(frozen=True)
class RunSummary:
    """Summary of one run (``print_basic_results``).

    ``dcf``/``fnr``/``fpr`` pool the post counts of all batches (errors on what the model decided
    alone). ``imlm`` uses P and N_total from the pre counts. ``pct_adapt`` = 100 labelled / total
    with labelled = bootstrap + AL queries; ``pct_target`` = 100 x target share of the final pool.
    The original's ``print_basic_results``, side by side: ``pct_adapt_orig`` = 100 n_samples /
    (ns + ps + n_samples) with the last row's counts (CF items included, the denominator the last
    batch only), ``pct_target_orig`` = 100 x the last row's p_target; ``n_target_al_orig`` =
    int(p_target_last x n_al), what ``combo_scores`` sums.
    """

    n_batches: int
    n_total: int
    n_pos: int
    n_neg: int
    n_fn: int
    n_fp: int
    n_pos_post: int
    n_neg_post: int
    n_al: int
    n_boot: int
    n_cf: int
    n_pool: int
    n_pool_target: float
    dcf: float
    fnr: float
    fpr: float
    pct_adapt: float
    pct_target: float
    imlm: float
    pct_adapt_orig: float = 0.0
    pct_target_orig: float = 0.0
    n_target_al_orig: int = 0

    @property
    def n_labelled(self) -> int:
        return self.n_al + self.n_boot


def summarize_run(
    rows_or_path: Sequence[ScoreRow] | str | Path, n_boot: int | None = None
) -> RunSummary:
    """Summarise one run from its rows or its ``scores.csv`` (``n_boot`` inferred when None)."""
    rows = _rows(rows_or_path)
    pre = sum((r.pre for r in rows), ConfusionCounts())
    post = sum((r.post for r in rows), ConfusionCounts())
    boot = infer_bootstrap_size(rows) if n_boot is None else int(n_boot)
    n_al = sum(r.n_al for r in rows)
    n_total = pre.ps + pre.ns
    last = rows[-1] if rows else None
    n_pool = last.n_samples if last else boot
    pool_target = last.p_target * last.n_samples if last else 0.0
    return RunSummary(
        n_batches=len(rows),
        n_total=n_total,
        n_pos=pre.ps,
        n_neg=pre.ns,
        n_fn=post.fns,
        n_fp=post.fps,
        n_pos_post=post.ps,
        n_neg_post=post.ns,
        n_al=n_al,
        n_boot=boot,
        n_cf=sum(r.cf_tp + r.cf_fp for r in rows),
        n_pool=n_pool,
        n_pool_target=pool_target,
        dcf=post.dcf,
        fnr=post.fnr,
        fpr=post.fpr,
        pct_adapt=100.0 * _ratio(n_al + boot, n_total),
        pct_target=100.0 * _ratio(pool_target, n_pool),
        imlm=imlm(post.fps, n_al + boot, post.fns, n_total, pre.ps),
        pct_adapt_orig=100.0 * _ratio(n_pool, last.ns + last.ps + n_pool) if last else 0.0,
        pct_target_orig=100.0 * last.p_target if last else 0.0,
        n_target_al_orig=int(last.p_target * n_al) if last else 0,
    )


@dataclass(frozen=True)
class PooledSummary:
    """Scores pooled over runs (``combo_scores``).

    P, N from the pre counts; FP, FN from the post counts; ``n_adapt`` = sum of ``n_al``;
    ``n_boot`` = summed bootstrap sizes. FNR = FN / P, FPR = FP / N (whole-stream rates: queried
    items count as decided correctly), IMLM = (FP + n_adapt + n_boot) / N_total + FN / P.
    The original's ``combo_scores``, side by side: ``pct_adapt_orig`` = 100 sum n_al / N_total
    (no bootstrap), ``pct_target_orig`` = 100 sum_runs int(p_target_last x n_al) / sum n_al.
    """

    n_runs: int
    n_total: int
    n_pos: int
    n_neg: int
    n_fn: int
    n_fp: int
    n_adapt: int
    n_boot: int
    dcf: float
    fnr: float
    fpr: float
    pct_adapt: float
    pct_target: float
    imlm: float
    pct_adapt_orig: float = 0.0
    pct_target_orig: float = 0.0


def pooled_summary(runs: Iterable[RunSummary]) -> PooledSummary:
    """Pool run summaries: sum the counts, then apply the one IMLM formula."""
    rs = list(runs)
    n_pos = sum(r.n_pos for r in rs)
    n_neg = sum(r.n_neg for r in rs)
    n_fn = sum(r.n_fn for r in rs)
    n_fp = sum(r.n_fp for r in rs)
    n_adapt = sum(r.n_al for r in rs)
    n_boot = sum(r.n_boot for r in rs)
    n_total = n_pos + n_neg
    f_n, f_p = fnr(n_fn, n_pos), fpr(n_fp, n_neg)
    return PooledSummary(
        n_runs=len(rs),
        n_total=n_total,
        n_pos=n_pos,
        n_neg=n_neg,
        n_fn=n_fn,
        n_fp=n_fp,
        n_adapt=n_adapt,
        n_boot=n_boot,
        dcf=dcf(f_n, f_p),
        fnr=f_n,
        fpr=f_p,
        pct_adapt=100.0 * _ratio(n_adapt + n_boot, n_total),
        pct_target=100.0 * _ratio(sum(r.n_pool_target for r in rs), sum(r.n_pool for r in rs)),
        imlm=imlm(n_fp, n_adapt + n_boot, n_fn, n_total, n_pos),
        pct_adapt_orig=100.0 * _ratio(n_adapt, n_total),
        pct_target_orig=100.0 * _ratio(sum(r.n_target_al_orig for r in rs), n_adapt),
    )


@dataclass(frozen=True)
class Comparison:
    """Paired Wilcoxon signed-rank test of one per-batch metric between two runs."""

    metric: str
    n_pairs: int
    mean_a: float
    mean_b: float
    median_diff: float
    statistic: float
    p_value: float


def compare_runs(
    a_rows: Sequence[ScoreRow] | str | Path,
    b_rows: Sequence[ScoreRow] | str | Path,
    metric: str = "dcf",
) -> Comparison:
    """Wilcoxon signed-rank test over per-batch values of ``metric`` (a column or ``imlm``).

    Batches are paired by position; both runs need the same number of batches. When every
    difference is 0 the test is undefined: statistic 0, p-value 1.
    """
    a = _rows(a_rows)
    b = _rows(b_rows)
    if len(a) != len(b):
        raise ValueError(f"runs differ in batch count: {len(a)} vs {len(b)}")
    va = np.array([r.value(metric) for r in a], dtype=np.float64)
    vb = np.array([r.value(metric) for r in b], dtype=np.float64)
    d = va - vb
    if len(d) == 0 or np.allclose(d, 0.0):
        stat, p = 0.0, 1.0
    else:
        from scipy.stats import wilcoxon  # type: ignore[import-untyped]

        res = wilcoxon(va, vb, zero_method="wilcox")
        stat, p = float(res.statistic), float(res.pvalue)
    return Comparison(
        metric=metric,
        n_pairs=len(d),
        mean_a=float(va.mean()) if len(va) else math.nan,
        mean_b=float(vb.mean()) if len(vb) else math.nan,
        median_diff=float(np.median(d)) if len(d) else math.nan,
        statistic=stat,
        p_value=p,
    )
