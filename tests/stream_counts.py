"""Count what the stream path does twice when it should once: config checks and LID store reads."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import iml_tui.bench.stream_runs as stream_runs
import iml_tui.data.stream_data as sd
import iml_tui.engine.paradigms.stream as st


def count_checks_and_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """From now on, ``validate`` counts config checks and ``read <feature>/<split>.h5`` each
    read of a store from disk (the table cache starts empty)."""
    counts: Counter[str] = Counter()
    read, check = sd._read_store, st.validate_config

    def counted_read(path: Path, fix: str, sequences: bool) -> Any:
        counts[f"read {path.parent.name}/{path.name}"] += 1
        return read(path, fix, sequences)

    def counted_check(cfg: Any) -> None:
        counts["validate"] += 1
        check(cfg)

    monkeypatch.setattr(sd, "_LOADED", {})
    monkeypatch.setattr(sd, "_read_store", counted_read)
    for module in (st, stream_runs):
        monkeypatch.setattr(module, "validate_config", counted_check)
    return counts
