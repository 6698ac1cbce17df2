"""Results of a pool-based sweep: the paper's ``al_results.csv``, a console table, curves."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from iml_tui.atomic import atomic_write_text
from iml_tui.bench.sweep import SweepResult
from iml_tui.engine.paradigms.pool import RoundRecord

SPLIT_METRICS = [(split, metric) for split in ("valid", "test") for metric in ("f1", "cmap")]


def al_results_columns(class_list: list[str]) -> list[str]:
    """The original ``al_results.csv`` columns (SPEC A.6), then ours."""
    cols = ["sampling_method", "pos_init_num", "num_annotated_samples"]
    for c in [*class_list, "Negative"]:
        cols += [f"{c}_mean", f"{c}_std", f"Total_{c}"]
    for prefix in ("", "full_"):
        for split, metric in SPLIT_METRICS:
            cols += [f"{prefix}{split}_{metric}_mean", f"{prefix}{split}_{metric}_std"]
    cols += [
        "rare_found_mean",
        "rare_found_std",
        "threshold_mean",
        "select_seconds_mean",
        "train_seconds_mean",
        "n_runs",
    ]
    return cols


def _value(r: RoundRecord, split: str, metric: str) -> float:
    return float(getattr(r, f"{split}_{'map' if metric == 'cmap' else 'f1'}"))


def sample_std(a: np.ndarray, ddof: int = 1) -> float:
    """Standard deviation with ``ddof`` (pandas' default 1; nan with fewer than ddof + 1)."""
    return float(a.std(ddof=ddof)) if len(a) > ddof else math.nan


def _ms(values: list[float], scale: float = 1.0, ddof: int = 1) -> tuple[str, str]:
    """(mean, std) cells; std with ``ddof`` as the original's al_results.csv: ddof 1 (pandas)
    per strategy, ddof 0 for the fully supervised reference; an empty cell when undefined."""
    a = np.asarray(values, dtype=np.float64) * scale
    sd = sample_std(a, ddof)
    return f"{a.mean():.2f}", "" if math.isnan(sd) else f"{sd:.2f}"


Group = tuple[str, str, int]


def group_rounds(result: SweepResult) -> dict[Group, list[RoundRecord]]:
    """(strategy, start, budget) -> the round records of every seed."""
    groups: dict[Group, list[RoundRecord]] = defaultdict(list)
    for spec, recs in result.records.items():
        for r in recs:
            groups[(spec.strategy, spec.start, r.budget)].append(r)
    return groups


def al_results_rows(result: SweepResult, warm_k: int) -> list[list[str]]:
    """One row per (strategy, start, budget): means and stds over seeds (ddof 1; the fully
    supervised columns ddof 0, as the original), in percent."""
    rows = []
    full_cells: list[str] = []
    for split, metric in SPLIT_METRICS:
        if result.full:
            key = f"{split}_{'map' if metric == 'cmap' else 'f1'}"
            full_cells += list(_ms([getattr(f, key) for f in result.full], 100.0, ddof=0))
        else:
            full_cells += ["", ""]
    for (strategy, start, budget), recs in group_rounds(result).items():
        row = [strategy, str(warm_k if start == "warm" else 0), str(budget)]
        for ci, total in enumerate(result.totals):
            row += [*_ms([r.counts[ci] for r in recs]), str(total)]
        row += [*_ms([r.negatives for r in recs]), str(result.total_negative)]
        for split, metric in SPLIT_METRICS:
            row += list(_ms([_value(r, split, metric) for r in recs], 100.0))
        row += full_cells
        row += [
            *_ms([r.rare_found for r in recs]),
            f"{np.mean([r.threshold for r in recs]):.4f}",
            f"{np.mean([r.select_seconds for r in recs]):.4f}",
            f"{np.mean([r.train_seconds for r in recs]):.3f}",
            str(len(recs)),
        ]
        rows.append(row)
    return rows


def write_al_results(result: SweepResult, warm_k: int, path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(al_results_columns(result.class_list))
    w.writerows(al_results_rows(result, warm_k))
    atomic_write_text(path, buf.getvalue())


def results_table(result: SweepResult, metric: str = "test_map", with_std: bool = True) -> Table:
    """Test mAP (%) mean +- std per strategy/start (rows) and budget (columns), like Table I."""
    groups = group_rounds(result)
    budgets = sorted({b for (_, _, b) in groups})
    label = metric.replace("_map", " mAP").replace("_f1", " F1")
    spread = "mean ± std" if with_std else "mean (std in al_results.csv)"
    table = Table(title=f"{label} (%), {spread} over seeds", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("strategy", no_wrap=True)
    table.add_column("start", no_wrap=True)
    for b in budgets:
        table.add_column(str(b), justify="right", no_wrap=True)
    table.add_column("rare", justify="right")
    keys = list(dict.fromkeys((s, st) for (s, st, _) in groups))
    for s, st in keys:
        cells = []
        for b in budgets:
            recs = groups.get((s, st, b), [])
            if recs:
                a = np.asarray([getattr(r, metric) for r in recs]) * 100.0
                sd = sample_std(a)
                cells.append(
                    f"{a.mean():.1f}±{sd:.1f}"
                    if with_std and not math.isnan(sd)
                    else f"{a.mean():.1f}"
                )
            else:
                cells.append("")
        last = groups.get((s, st, budgets[-1]), [])
        rare = f"{np.mean([r.rare_found for r in last]):.1f}" if last else ""
        table.add_row(s, st, *cells, rare)
    if result.full:
        full_m, full_sd = _ms([getattr(f, metric) for f in result.full], 100.0, ddof=0)
        table.caption = f"fully supervised: {full_m} ± {full_sd} ({len(result.full)} seeds)"
    return table


def rare_note(result: SweepResult) -> str:
    """What the results table's ``rare`` column counts (printed under the table)."""
    budget = max((b for (_, _, b) in group_rounds(result)), default=0)
    names = ", ".join(result.rare_classes) or "none in this pool"
    return (
        f"rare: annotated clips holding a rare class ({names}) at budget {budget}, mean over "
        "seeds; rare classes: --set rare_classes=A,B (default: Meerkat*, else classes in under "
        "0.5 % of the pool's clips)"
    )


def print_results(result: SweepResult, console: Console | None = None) -> None:
    """Print the results table; on a pipe or file it is never cut to 80 columns."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=240)
    table = results_table(result)
    if Console(width=10_000).measure(table).maximum > console.width:
        table = results_table(result, with_std=False)
    console.print(table)
    console.print(rare_note(result), highlight=False, soft_wrap=True)


def plot_learning_curves(result: SweepResult, path: Path) -> None:
    """One panel per start: test mAP against budget, one line per strategy, std shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_rounds(result)
    starts = list(dict.fromkeys(st for (_, st, _) in groups))
    fig, axes = plt.subplots(
        1, len(starts), figsize=(5.5 * len(starts), 4), squeeze=False, sharey=True
    )
    for ax, st in zip(axes[0], starts, strict=True):
        for s in dict.fromkeys(s for (s, st2, _) in groups if st2 == st):
            budgets = sorted(b for (s2, st2, b) in groups if s2 == s and st2 == st)
            vals = [np.array([r.test_map for r in groups[(s, st, b)]]) * 100 for b in budgets]
            mean = np.array([v.mean() for v in vals])
            std = np.array([0.0 if len(v) < 2 else v.std(ddof=1) for v in vals])
            ax.plot(budgets, mean, marker="o", label=s)
            ax.fill_between(budgets, mean - std, mean + std, alpha=0.15)
        if result.full:
            ax.axhline(
                np.mean([f.test_map for f in result.full]) * 100,
                color="k",
                linestyle="--",
                label="full",
            )
        ax.set_title(f"{st} start")
        ax.set_xlabel("annotated clips")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("test frame mAP (%)")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
