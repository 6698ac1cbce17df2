"""The one progress helper of the command-line faces."""

from __future__ import annotations

import pytest

from iml_tui.bench.progress import rate_progress, run_progress


def test_run_progress_counts_steps_and_runs() -> None:
    with run_progress("rounds", 5, 2) as bar:
        bar.step("a @ 10: test mAP 40.0")
        bar.step("a @ 20: test mAP 45.0")
        bar.run_done("a")
        task = bar.bars.tasks[0]
        assert (task.description, task.completed, task.total) == ("rounds", 2, 5)
        assert task.fields == {"last": "a @ 20: test mAP 45.0", "runs": "1/2"}
    assert task.completed == 5  # full at the end, whatever the steps said


def test_rate_progress_draws_a_bar_per_label(capsys: pytest.CaptureFixture[str]) -> None:
    with rate_progress("clips") as update:
        update("train", 0, 10)
        update("train", 10, 10)
        update("valid", 4, 4)
    err = capsys.readouterr().err
    assert "train" in err and "10/10" in err and "valid" in err and "4/4" in err
    assert "clips" in err


def test_rate_progress_prints_nothing_without_updates(capsys: pytest.CaptureFixture[str]) -> None:
    with rate_progress("items"):
        pass
    assert capsys.readouterr().err == ""
