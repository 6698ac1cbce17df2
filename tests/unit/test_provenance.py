"""The one writer of run manifests."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iml_tui import __version__, provenance


@dataclass
class _Cfg:
    lr: float = 0.01
    budgets: list[int] = field(default_factory=lambda: [10, 20])


def test_write_manifest_has_body_config_and_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance, "git_revision", lambda: "abc123")
    path = tmp_path / "run" / "manifest.json"
    path.parent.mkdir()
    written = provenance.write_manifest(path, {"task": "lid", "n_boot": 8}, _Cfg(), device="cpu")
    on_disk = json.loads(path.read_text())
    assert on_disk == written
    assert on_disk["task"] == "lid" and on_disk["n_boot"] == 8
    assert on_disk["config"] == {"lr": 0.01, "budgets": [10, 20]}
    assert on_disk["tool_version"] == __version__ == on_disk["versions"]["iml_tui"]
    assert on_disk["git_revision"] == "abc123" and on_disk["device"] == "cpu"
    assert on_disk["versions"]["numpy"] == sys.modules["numpy"].__version__
    created = dt.datetime.fromisoformat(on_disk["created"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    assert on_disk["host"]["cpus"] >= 1
    assert list(on_disk)[:3] == ["task", "n_boot", "config"]  # the caller's fields first


def test_provenance_names_only_loaded_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "h5py", raising=False)
    versions = provenance.provenance()["versions"]
    assert "h5py" not in versions and "python" in versions
    assert "device" not in provenance.provenance()
