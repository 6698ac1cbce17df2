"""The README's Python API example, run as written on its own tiny generated pools."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

import iml_tui.api as api

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the Python API section has no python block"
    return match.group(1)


def test_every_exported_name_exists() -> None:
    assert sorted(api.__all__) == api.__all__
    for name in api.__all__:
        assert getattr(api, name) is not None
    assert callable(api.Session.open)


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_example(), "README.md", "exec"), {"__name__": "readme_example"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "80"
    name, scores = lines[1].split(" ", 1)
    assert name == "mfft_cold_seed1" and len(eval(scores)) == 2  # one score per budget
    assert "labelled=5" in lines[2] and "mine=5" in lines[2]
    assert float(lines[3]) == 1.0
    manifest = json.loads((tmp_path / "runs" / "api" / "manifest.json").read_text())
    assert "mfft_cold_seed1" in json.dumps(manifest)
    with api.Session.open(tmp_path / "project", annotator="me") as session:
        assert session.progress().labelled == 5  # the journal kept every answer
