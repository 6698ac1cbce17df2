"""Scores of stream runs for people and papers: a rich table per run and pooled, CSV, LaTeX, and
paired comparisons (``iml-tui score``). Every number comes from :mod:`iml_tui.engine.scoring`
(one IMLM formula everywhere)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from iml_tui.engine.budgets import find_runs
from iml_tui.engine.scoring import (
    Comparison,
    PooledSummary,
    RunSummary,
    ScoreRow,
    compare_runs,
    pooled_summary,
    read_scores,
    summarize_run,
)
from iml_tui.errors import UserError

#: "% adapt" / "% target" are ours (labelled incl. bootstrap over the stream; the final pool's
#: target share); the "(orig)" columns the original's print_basic_results (runs) and combo_scores
#: (the pooled row), see :class:`~iml_tui.engine.scoring.RunSummary`.
HEADER: tuple[str, ...] = (
    "run",
    "batches",
    "DCF",
    "FNR",
    "FPR",
    "IMLM",
    "% adapt",
    "% target",
    "% adapt (orig)",
    "% target (orig)",
)
CSV_HEADER: tuple[str, ...] = (
    "run",
    "batches",
    "dcf",
    "fnr",
    "fpr",
    "imlm",
    "pct_adapt",
    "pct_target",
    "n_total",
    "n_pos",
    "n_fn",
    "n_fp",
    "n_al",
    "n_boot",
    "pct_adapt_orig",
    "pct_target_orig",
)
COMPARE_METRICS: tuple[str, ...] = ("dcf", "fnr", "fpr", "imlm", "pre_dcf")


@dataclass(frozen=True)
class ScoredRun:
    """A run folder's rows and summary (bootstrap size from its manifest when recorded)."""

    name: str
    path: Path
    rows: list[ScoreRow]
    summary: RunSummary


def load_run(path: Path) -> ScoredRun:
    rows = read_scores(path / "scores.csv")
    n_boot = None
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            n_boot = json.loads(manifest.read_text()).get("n_boot")
        except json.JSONDecodeError as exc:
            raise UserError(f"manifest is not JSON ({exc})", manifest, "delete it") from exc
    return ScoredRun(path.name, path, rows, summarize_run(rows, n_boot))


def collect_runs(paths: Sequence[str | Path]) -> list[ScoredRun]:
    """Runs named by ``paths``: run folders, or folders of runs (expanded)."""
    if not paths:
        raise UserError("no run folder given", None, "e.g. iml-tui score runs/lid/dev_ha")
    return [load_run(p) for path in paths for p in find_runs(path)]


def _cells(s: RunSummary | PooledSummary) -> list[str]:
    return [
        f"{s.dcf:.4f}",
        f"{s.fnr:.4f}",
        f"{s.fpr:.4f}",
        f"{s.imlm:.4f}",
        f"{s.pct_adapt:.2f}",
        f"{s.pct_target:.2f}",
        f"{s.pct_adapt_orig:.2f}",
        f"{s.pct_target_orig:.2f}",
    ]


def table_rows(runs: Sequence[ScoredRun]) -> list[list[str]]:
    """One row per run, then the pooled row when there is more than one run."""
    rows = [[r.name, str(r.summary.n_batches), *_cells(r.summary)] for r in runs]
    if len(runs) > 1:
        pooled = pooled_summary(r.summary for r in runs)
        rows.append(
            [
                f"pooled ({len(runs)} runs)",
                str(sum(r.summary.n_batches for r in runs)),
                *_cells(pooled),
            ]
        )
    return rows


def print_scores(runs: Sequence[ScoredRun], console: Console) -> None:
    table = Table(title="stream scores (IMLM = (FP + labelled) / N + FN / P; lower is better)")
    for i, h in enumerate(HEADER):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
    rows = table_rows(runs)
    for k, row in enumerate(rows):
        table.add_row(*row, style="bold" if len(runs) > 1 and k == len(rows) - 1 else None)
    console.print(table)


def scores_csv(runs: Sequence[ScoredRun]) -> str:
    """Machine-readable summary: the table's values plus the counts behind them."""
    rows: list[tuple[str, int, RunSummary | PooledSummary]] = [
        (r.name, r.summary.n_batches, r.summary) for r in runs
    ]
    if len(runs) > 1:
        pooled = pooled_summary(r.summary for r in runs)
        rows.append(("pooled", sum(r.summary.n_batches for r in runs), pooled))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for name, n_batches, s in rows:
        cells = _cells(s)  # rates, then the shares with and without the bootstrap
        n_labelled = s.n_al if isinstance(s, RunSummary) else s.n_adapt
        counts = [s.n_total, s.n_pos, s.n_fn, s.n_fp, n_labelled, s.n_boot]
        w.writerow([name, n_batches, *cells[:6], *counts, *cells[6:]])
    return buf.getvalue()


def _tex(text: str) -> str:
    return (
        text.replace("\\", r"\textbackslash{}")
        .replace("_", r"\_")
        .replace("%", r"\%")
        .replace("&", r"\&")
        .replace("#", r"\#")
    )


def scores_latex(runs: Sequence[ScoredRun]) -> str:
    """A booktabs ``tabular`` of the table (pooled row after a midrule)."""
    rows = table_rows(runs)
    lines = [
        r"\begin{tabular}{l" + "r" * (len(HEADER) - 1) + "}",
        r"\toprule",
        " & ".join(_tex(h) for h in HEADER) + r" \\",
        r"\midrule",
    ]
    for k, row in enumerate(rows):
        if len(runs) > 1 and k == len(rows) - 1:
            lines.append(r"\midrule")
        lines.append(" & ".join(_tex(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _paired_rows(a: list[ScoredRun], b: list[ScoredRun]) -> tuple[list[ScoreRow], list[ScoreRow]]:
    if len(a) == 1 and len(b) == 1:
        return a[0].rows, b[0].rows
    names_a, names_b = {r.name for r in a}, {r.name for r in b}
    if names_a != names_b:
        raise UserError(
            f"the two sides hold different runs ({sorted(names_a ^ names_b)})",
            None,
            "compare folders with the same run names (e.g. the same targets)",
        )
    by_b = {r.name: r for r in b}
    rows_a: list[ScoreRow] = []
    rows_b: list[ScoreRow] = []
    for r in sorted(a, key=lambda r: r.name):
        rows_a += r.rows
        rows_b += by_b[r.name].rows
    return rows_a, rows_b


def compare(
    a: str | Path, b: str | Path, metrics: Sequence[str] = COMPARE_METRICS
) -> list[Comparison]:
    """Paired Wilcoxon signed-rank test per metric over batches (runs matched by name)."""
    rows_a, rows_b = _paired_rows(collect_runs([a]), collect_runs([b]))
    try:
        return [compare_runs(rows_a, rows_b, m) for m in metrics]
    except ValueError as exc:
        raise UserError(
            f"cannot pair the runs: {exc}", None, "compare runs over the same stream (same batches)"
        ) from exc


def print_comparison(results: Sequence[Comparison], a: str, b: str, console: Console) -> None:
    table = Table(title=f"paired Wilcoxon signed-rank test per batch: A = {a}, B = {b}")
    for h in ("metric", "pairs", "mean A", "mean B", "median A-B", "W", "p"):
        table.add_column(h, justify="left" if h == "metric" else "right")
    for c in results:
        table.add_row(
            c.metric,
            str(c.n_pairs),
            f"{c.mean_a:.4f}",
            f"{c.mean_b:.4f}",
            f"{c.median_diff:+.4f}",
            f"{c.statistic:.1f}",
            f"{c.p_value:.4g}",
        )
    console.print(table)


def comparison_csv(results: Sequence[Comparison]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "pairs", "mean_a", "mean_b", "median_diff", "statistic", "p_value"])
    for c in results:
        w.writerow(
            [
                c.metric,
                c.n_pairs,
                f"{c.mean_a:.4f}",
                f"{c.mean_b:.4f}",
                f"{c.median_diff:.4f}",
                f"{c.statistic:.4f}",
                f"{c.p_value:.6g}",
            ]
        )
    return buf.getvalue()
