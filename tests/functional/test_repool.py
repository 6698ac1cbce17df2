"""A pool that changes under a project (re-prepared with one more recording, so every row moves)
is refused by every reader of the journal, one line, exit 2; ``project repool`` carries the
labels and marked extents over to the new pool by id, and the new project trains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.data.store import PoolStore
from iml_tui.engine.journal import Journal
from iml_tui.errors import UserError

SR = 8000
SECONDS = 6.0


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.output


def _repool(proj: Path, pool: Path, out: Path) -> Any:
    return CliRunner().invoke(
        app, ["project", "repool", str(proj), "--pool-dir", str(pool), "--out", str(out)]
    )


def _pool(root: Path, audio: Path, name: str, classes: str = "call,song") -> Path:
    _ok(
        [
            "prepare",
            "recordings",
            "--source",
            str(audio),
            "--classes",
            classes,
            "--out",
            str(root / f"prep_{name}"),
            "--clip",
            "2",
            "--hop",
            "1",
        ]
    )
    pool = root / f"pool_{name}"
    _ok(["extract", "--input", str(root / f"prep_{name}"), "--out", str(pool / "train.h5")])
    return pool


def _write(audio: Path, rel: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = audio / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.05 * rng.standard_normal(int(SECONDS * SR))).astype(np.float32), SR)


def _state(proj: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, list[tuple]], dict[str, int]]:
    """Labels and extents in force by clip id, and each id's row as the journal names it."""
    with Journal(proj / "journal.sqlite") as j:
        labels = {str(e.item_id): tuple(e.labels or ()) for e in j.current_labels().values()}
        extents = {
            str(evs[0].item_id): sorted(
                (e.payload["onset"], e.payload["offset"], tuple(e.labels or ())) for e in evs
            )
            for evs in j.current_extents().values()
        }
        rows = {name: index for index, name in j.item_names()}
    return labels, extents, rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("repool")
    audio = root / "audio"
    _write(audio, "site1/dawn.wav", 1)
    _write(audio, "site2/noon.wav", 2)
    pool = _pool(root, audio, "old")
    proj = root / "proj"
    _ok(
        [
            "project",
            "new",
            str(proj),
            "--pool-dir",
            str(pool),
            "--budgets",
            "6,12",
            "--set",
            "hidden=16",
            "--set",
            "max_epochs=20",
        ]
    )
    tables = root / "tables"
    tables.mkdir()
    (tables / "calls.csv").write_text(
        "file,onset,offset,label\nsite1/dawn.wav,0.5,1.5,call\nsite2/noon.wav,3.2,4.0,song\n"
    )
    _ok(["import-labels", str(proj), str(tables / "calls.csv")])
    _write(audio, "site0/aaa.wav", 3)  # sorts first: every old row moves by 5 clips
    grown = _pool(root, audio, "grown")
    (audio / "site1" / "dawn.wav").unlink()
    shrunk = _pool(root, audio, "shrunk")
    return {"root": root, "proj": proj, "old": pool, "grown": grown, "shrunk": shrunk}


def _moved_project(world: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the project whose pool_dir now names the grown pool (rows moved)."""
    import shutil

    proj = tmp_path / "moved"
    shutil.copytree(world["proj"], proj)
    yaml = proj / "project.yaml"
    yaml.write_text(
        yaml.read_text().replace(str(world["old"].resolve()), str(world["grown"].resolve()))
    )
    return proj


@pytest.mark.parametrize(
    "command",
    [
        ["train", "{proj}"],
        ["export", "{proj}", "--format", "csv", "--out", "{tmp}/labels.csv"],
        ["import-labels", "{proj}", "{tables}/calls.csv"],
    ],
)
def test_a_moved_pool_is_refused_in_one_line(
    world: dict[str, Path], tmp_path: Path, command: list[str]
) -> None:
    proj = _moved_project(world, tmp_path)
    before = (proj / "journal.sqlite").read_bytes()
    args = [a.format(proj=proj, tmp=tmp_path, tables=world["root"] / "tables") for a in command]
    proc = subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "the pool changed under the project" in proc.stderr
    assert "row 0, but the pool row 0 is 'site0/aaa.wav@0'" in proc.stderr
    assert "iml-tui project repool" in proc.stderr
    assert (proj / "journal.sqlite").read_bytes() == before


def test_repool_carries_labels_and_extents_by_id(world: dict[str, Path], tmp_path: Path) -> None:
    labels, extents, _ = _state(world["proj"])
    res = _repool(world["proj"], world["grown"], tmp_path / "new")
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"{len(labels)} label(s) and {sum(map(len, extents.values()))} extent(s)" in out
    new_labels, new_extents, rows = _state(tmp_path / "new")
    assert new_labels == labels and new_extents == extents
    ids = PoolStore(world["grown"] / "train.h5").ids
    assert all(ids[row] == name for name, row in rows.items())
    assert min(rows.values()) >= 5  # site0/aaa.wav's 5 clips come first
    assert _state(world["proj"])[0] == labels  # the old project is only read
    assert "trained on" in _ok(["train", str(tmp_path / "new")])
    status = _ok(["project", "status", str(tmp_path / "new")])
    assert f"model 1 trained on {len(labels)} labels (mAP " in status and "%)" in status
    assert "up to date" in status and f"import:calls.csv: {len(labels)} label(s)" in status


def test_repool_onto_a_smaller_pool_lists_what_stays_behind(
    world: dict[str, Path], tmp_path: Path
) -> None:
    res = _repool(world["proj"], world["shrunk"], tmp_path / "new")
    assert res.exit_code == 0, res.output
    assert "note: 5 labelled clip(s) are not in the new pool, e.g. site1/dawn.wav@0" in res.output
    labels, _, _ = _state(tmp_path / "new")
    assert labels and all(name.startswith("site2/") for name in labels)


def test_repool_refuses_other_classes_and_a_used_folder(
    world: dict[str, Path], tmp_path: Path
) -> None:
    other = _pool(tmp_path, world["root"] / "audio", "other", classes="song,call")
    res = _repool(world["proj"], other, tmp_path / "a")
    assert isinstance(res.exception, UserError) and "are not the project's" in str(res.exception)
    res = _repool(world["proj"], world["grown"], world["proj"])
    assert isinstance(res.exception, UserError) and "not empty" in str(res.exception)
