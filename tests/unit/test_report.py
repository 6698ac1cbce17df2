"""al_results.csv aggregation against hand-computed means and standard deviations."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from iml_tui.bench.report import al_results_columns, write_al_results
from iml_tui.bench.sweep import SweepResult
from iml_tui.engine.paradigms.pool import FullRecord, PoolRunSpec, RoundRecord


def _rec(budget: int, test_map: float, counts: list[int], neg: int, rare: int) -> RoundRecord:
    return RoundRecord(
        budget=budget,
        n_new=10,
        test_map=test_map,
        test_f1=0.5,
        valid_map=0.25,
        valid_f1=0.125,
        threshold=0.5,
        counts=counts,
        negatives=neg,
        rare_found=rare,
        select_seconds=0.1,
        train_seconds=1.0,
        epochs=3,
        best_epoch=2,
        test_ap=[0.0, 0.0],
        valid_ap=[0.0, 0.0],
    )


def test_al_results_rows_by_hand(tmp_path: Path) -> None:
    s1 = PoolRunSpec("mfft", "warm", 1, (10, 20), warm_k=5)
    s2 = PoolRunSpec("mfft", "warm", 2, (10, 20), warm_k=5)
    result = SweepResult(
        records={
            s1: [_rec(10, 0.30, [2, 0], 8, 0), _rec(20, 0.40, [3, 1], 16, 1)],
            s2: [_rec(10, 0.50, [4, 0], 6, 0), _rec(20, 0.60, [5, 2], 13, 2)],
        },
        full=[
            FullRecord(1, 0.70, 0.6, 0.7, 0.6, 0.5, 9.0),
            FullRecord(2, 0.80, 0.6, 0.7, 0.6, 0.5, 9.0),
        ],
        class_list=["A", "B"],
        totals=[40, 3],
        total_negative=57,
        seconds=1.0,
    )
    path = tmp_path / "al.csv"
    write_al_results(result, 5, path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == al_results_columns(["A", "B"])
    assert al_results_columns(["A"])[:9] == [
        "sampling_method",
        "pos_init_num",
        "num_annotated_samples",
        "A_mean",
        "A_std",
        "Total_A",
        "Negative_mean",
        "Negative_std",
        "Total_Negative",
    ]
    r10, r20 = rows
    assert (r10["sampling_method"], r10["pos_init_num"], r10["num_annotated_samples"]) == (
        "mfft",
        "5",
        "10",
    )
    # per strategy: ddof 1 (pandas), |a - b| / sqrt 2 for two seeds
    assert (r10["A_mean"], r10["A_std"], r10["Total_A"]) == ("3.00", "1.41", "40")  # 2, 4
    assert (r20["B_mean"], r20["B_std"], r20["Total_B"]) == ("1.50", "0.71", "3")  # 1, 2
    assert (r20["Negative_mean"], r20["Negative_std"]) == ("14.50", "2.12")  # 16, 13
    assert (r10["test_cmap_mean"], r10["test_cmap_std"]) == ("40.00", "14.14")
    assert (r20["test_cmap_mean"], r20["test_cmap_std"]) == ("50.00", "14.14")
    assert (r20["valid_f1_mean"], r20["valid_f1_std"]) == ("12.50", "0.00")
    # the fully supervised reference keeps ddof 0: 70, 80 -> 5
    assert (r10["full_test_cmap_mean"], r10["full_test_cmap_std"]) == ("75.00", "5.00")
    assert r20["rare_found_mean"] == "1.50" and r20["n_runs"] == "2"
    assert float(r20["test_f1_mean"]) == pytest.approx(50.0)


def test_results_table_explains_the_rare_column() -> None:
    import io

    from rich.console import Console

    from iml_tui.bench.report import print_results

    s1 = PoolRunSpec("mfft", "warm", 1, (10, 20), warm_k=5)
    result = SweepResult(
        records={s1: [_rec(10, 0.30, [2, 0], 8, 0), _rec(20, 0.4567, [3, 1], 16, 3)]},
        full=[],
        class_list=["A", "B"],
        totals=[40, 3],
        total_negative=57,
        seconds=1.0,
        rare_classes=["B"],
    )
    buf = io.StringIO()
    print_results(result, Console(file=buf, width=100))
    text = buf.getvalue()
    assert "test mAP (%)" in text and "45.7" in text  # one unit: percent
    assert "rare: annotated clips holding a rare class (B) at budget 20" in text
    assert "rare_classes=A,B" in text
