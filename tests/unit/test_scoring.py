"""Scores of the streaming paradigm: rows, helpers, run / pooled summaries (numbers by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iml_tui.engine import scoring as sc
from iml_tui.errors import UserError

SPEC_HEADER = (
    "pass, pre_dcf, pre_fnr, pre_fpr, dcf, fnr, fpr, pre_ns, pre_ps, ns, ps, pre_fns, pre_fps, "
    "fns, fps, p_target, p_nontarget, n_samples, cum_pre_dcf, cum_dcf, n_al, cf_tp, cf_fp, drift"
)

# Run A, two batches of 100, bootstrap 8 (4 targets), 8 queries per batch.
# Batch 0: pre P=10 N=90 FN=4 FP=6; post P=8 N=84 FN=3 FP=4; CF 2 TP + 4 FP; pool 22, 8 targets.
# Batch 1: pre P=20 N=80 FN=2 FP=8; post P=18 N=74 FN=2 FP=5; CF 3 + 3; pool 36, 14 targets.
RUN_A_CSV = (
    ",".join(sc.SCORE_COLUMNS) + "\n"
    "0,0.3167,0.4000,0.0667,0.2932,0.3750,0.0476,90,10,84,8,4,6,3,4,"
    "0.3636,0.6364,22,0.3167,0.2932,8,2,4,0\n"
    "1,0.1000,0.1000,0.1000,0.1002,0.1111,0.0676,80,20,74,18,2,8,2,5,"
    "0.3889,0.6111,36,0.1706,0.1585,8,3,3,0\n"
)
# Run B, one batch: model never fires; 4 queries (all non-targets); pool 12 (bootstrap 8).
RUN_B_CSV = (
    ",".join(sc.SCORE_COLUMNS) + "\n"
    "0,0.7500,1.0000,0.0000,0.7500,1.0000,0.0000,90,10,86,10,10,0,10,0,"
    "0.3333,0.6667,12,0.7500,0.7500,4,0,0,1\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_columns_are_the_spec_order() -> None:
    assert tuple(SPEC_HEADER.split(", ")) == sc.SCORE_COLUMNS


def test_rate_helpers_and_zero_denominators() -> None:
    assert sc.fnr(3, 8) == pytest.approx(0.375)
    assert sc.fpr(4, 84) == pytest.approx(4 / 84)
    assert sc.dcf(0.4, 0.2) == pytest.approx(0.35)
    assert sc.fnr(0, 0) == 0.0
    assert sc.fpr(5, 0) == 0.0
    assert sc.dcf_from_counts(0, 0, 0, 0) == 0.0
    assert sc.imlm(0, 0, 0, 0, 0) == 0.0


def test_imlm_by_hand() -> None:
    # (9 + 24) / 200 + 5 / 30
    assert sc.imlm(9, 24, 5, 200, 30) == pytest.approx(0.165 + 1 / 6)


def test_both_trivial_extremes_score_one() -> None:
    # The human labels everything: no FP, no FN, labelled = total.
    assert sc.imlm(n_fp=0, n_labelled=100, n_fn=0, n_total=100, n_pos=10) == 1.0
    # The model never fires and asks nothing: every positive missed.
    assert sc.imlm(n_fp=0, n_labelled=0, n_fn=10, n_total=100, n_pos=10) == 1.0
    # Same through rows and summaries (no bootstrap).
    label_all = sc.make_score_row(
        0,
        pre=sc.ConfusionCounts(ps=10, ns=90, fns=3, fps=7),
        post=sc.ConfusionCounts(),
        n_target_labelled=10,
        n_samples=100,
        n_al=100,
    )
    never_fire = sc.make_score_row(
        0,
        pre=sc.ConfusionCounts(ps=10, ns=90, fns=10, fps=0),
        post=sc.ConfusionCounts(ps=10, ns=90, fns=10, fps=0),
        n_target_labelled=0,
        n_samples=0,
        n_al=0,
    )
    assert sc.summarize_run([label_all], n_boot=0).imlm == 1.0
    assert sc.summarize_run([never_fire], n_boot=0).imlm == 1.0
    assert sc.pooled_summary([sc.summarize_run([never_fire], n_boot=0)]).imlm == 1.0


def test_confusion_counts_from_labels() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    pred = np.array([1, 0, 0, 1, 0, 0, 1])
    c = sc.ConfusionCounts.from_labels(y, pred)
    assert c == sc.ConfusionCounts(ps=3, ns=4, fns=2, fps=2)
    assert c.dcf == pytest.approx(0.75 * 2 / 3 + 0.25 * 0.5)


def test_make_score_row_matches_hand_row(tmp_path: Path) -> None:
    hand = sc.read_scores(_write(tmp_path, "scores.csv", RUN_A_CSV))
    r0 = sc.make_score_row(
        0,
        sc.ConfusionCounts(ps=10, ns=90, fns=4, fps=6),
        sc.ConfusionCounts(ps=8, ns=84, fns=3, fps=4),
        n_target_labelled=8,
        n_samples=22,
        n_al=8,
        cf_tp=2,
        cf_fp=4,
    )
    r1 = sc.make_score_row(
        1,
        sc.ConfusionCounts(ps=20, ns=80, fns=2, fps=8),
        sc.ConfusionCounts(ps=18, ns=74, fns=2, fps=5),
        previous=[r0],
        n_target_labelled=14,
        n_samples=36,
        n_al=8,
        cf_tp=3,
        cf_fp=3,
    )
    assert [r0, r1] == hand


def test_write_read_roundtrip_with_metric_and_extra(tmp_path: Path) -> None:
    rows = sc.read_scores(_write(tmp_path, "a.csv", RUN_A_CSV))
    rows[1] = sc.ScoreRow.from_mapping({**rows[1].as_dict(), "metric": "0.5", "secs": "1.25"})
    out = sc.write_scores(tmp_path / "b.csv", rows)
    header = out.read_text().splitlines()[0].split(",")
    assert tuple(header[: len(sc.SCORE_COLUMNS)]) == sc.SCORE_COLUMNS
    assert header[len(sc.SCORE_COLUMNS) :] == ["metric", "secs"]
    back = sc.read_scores(out)
    assert back == rows
    assert back[0].metric is None and back[1].metric == 0.5
    assert back[1].extra == {"secs": 1.25}


def test_run_summary_by_hand(tmp_path: Path) -> None:
    s = sc.summarize_run(_write(tmp_path, "scores.csv", RUN_A_CSV))
    assert (s.n_total, s.n_pos, s.n_neg, s.n_fn, s.n_fp) == (200, 30, 170, 5, 9)
    assert (s.n_al, s.n_boot, s.n_cf, s.n_pool) == (16, 8, 12, 36)
    assert s.fnr == pytest.approx(5 / 26)
    assert s.fpr == pytest.approx(9 / 158)
    assert s.dcf == pytest.approx(0.75 * 5 / 26 + 0.25 * 9 / 158)
    assert s.pct_adapt == pytest.approx(12.0)
    assert s.pct_target == pytest.approx(38.89)
    # the original's print_basic_results: last row 36 / (74 + 18 + 36); its p_target
    assert s.pct_adapt_orig == pytest.approx(100 * 36 / 128)
    assert s.pct_target_orig == pytest.approx(38.89)
    assert s.n_target_al_orig == 6  # int(0.3889 x 16)
    assert s.imlm == pytest.approx((9 + 16 + 8) / 200 + 5 / 30)
    # A folder holding scores.csv works too; an explicit bootstrap size overrides the inference.
    assert sc.summarize_run(tmp_path) == s
    assert sc.summarize_run(tmp_path, n_boot=0).imlm == pytest.approx(25 / 200 + 5 / 30)


def test_bootstrap_inference_excludes_first_batch_cf() -> None:
    row = sc.make_score_row(
        0,
        sc.ConfusionCounts(ps=1, ns=1),
        sc.ConfusionCounts(ps=1, ns=1),
        n_target_labelled=5,
        n_samples=20,
        n_al=4,
        cf_tp=3,
        cf_fp=5,
    )
    assert sc.infer_bootstrap_size([row]) == 8
    assert sc.infer_bootstrap_size([]) == 0


def test_pooled_summary_by_hand_and_consistent_with_runs(tmp_path: Path) -> None:
    a = sc.summarize_run(_write(tmp_path, "a.csv", RUN_A_CSV))
    b = sc.summarize_run(_write(tmp_path, "b.csv", RUN_B_CSV))
    assert b.n_boot == 8 and b.imlm == pytest.approx(12 / 100 + 1.0)
    pooled = sc.pooled_summary([a, b])
    assert (pooled.n_total, pooled.n_pos, pooled.n_fn, pooled.n_fp) == (300, 40, 15, 9)
    assert (pooled.n_adapt, pooled.n_boot) == (20, 16)
    assert pooled.imlm == pytest.approx((9 + 20 + 16) / 300 + 15 / 40)
    assert pooled.fnr == pytest.approx(15 / 40)
    assert pooled.fpr == pytest.approx(9 / 260)
    assert pooled.pct_adapt == pytest.approx(100 * 36 / 300)
    assert pooled.pct_target == pytest.approx(100 * (0.3889 * 36 + 0.3333 * 12) / 48)
    # the original's combo_scores: sum n_al / N; (int(0.3889 x 16) + int(0.3333 x 4)) / 20
    assert b.pct_adapt_orig == pytest.approx(100 * 12 / 108) and b.n_target_al_orig == 1
    assert pooled.pct_adapt_orig == pytest.approx(100 * 20 / 300)
    assert pooled.pct_target_orig == pytest.approx(100 * 7 / 20)
    # Pooling one run gives that run's IMLM, counts and shares.
    for run in (a, b):
        one = sc.pooled_summary([run])
        assert one.imlm == pytest.approx(run.imlm)
        assert one.pct_adapt == pytest.approx(run.pct_adapt)
        assert one.pct_target == pytest.approx(run.pct_target)
        assert (one.n_total, one.n_fn, one.n_fp) == (run.n_total, run.n_fn, run.n_fp)
    # Pooling is order-free.
    assert sc.pooled_summary([b, a]) == pooled


def test_read_scores_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no scores file"):
        sc.read_scores(tmp_path / "nope.csv")
    bad = _write(tmp_path, "bad.csv", "pass,dcf\n0,0.1\n")
    with pytest.raises(UserError, match="missing columns"):
        sc.read_scores(bad)
    junk = _write(tmp_path, "junk.csv", RUN_B_CSV.replace("0.7500,1.0000", "x,1.0000", 1))
    with pytest.raises(UserError, match="bad number"):
        sc.read_scores(junk)


def _rows_with(values: list[float]) -> list[sc.ScoreRow]:
    base = sc.ScoreRow.from_mapping(dict.fromkeys(sc.SCORE_COLUMNS, "0"))
    return [
        sc.ScoreRow.from_mapping({**base.as_dict(), "dcf": str(v), "pass": str(i)})
        for i, v in enumerate(values)
    ]


def test_compare_runs_wilcoxon() -> None:
    a = _rows_with([0.30, 0.25, 0.40, 0.35, 0.50, 0.45, 0.38, 0.33])
    b = _rows_with([0.20, 0.24, 0.30, 0.20, 0.30, 0.40, 0.28, 0.30])
    res = sc.compare_runs(a, b, "dcf")
    assert res.n_pairs == 8
    # Every difference is positive: exact two-sided p = 2 / 2**8.
    assert res.statistic == 0.0
    assert res.p_value == pytest.approx(2 / 256)
    assert res.mean_a > res.mean_b
    same = sc.compare_runs(a, a, "dcf")
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    with pytest.raises(ValueError, match="batch count"):
        sc.compare_runs(a, b[:3])
    with pytest.raises(KeyError):
        sc.compare_runs(a, b, "nope")


def test_compare_runs_on_per_batch_imlm(tmp_path: Path) -> None:
    rows = sc.read_scores(_write(tmp_path, "a.csv", RUN_A_CSV))
    assert rows[0].value("imlm") == pytest.approx((4 + 8) / 100 + 3 / 10)
    res = sc.compare_runs(rows, rows, "imlm")
    assert res.p_value == 1.0
