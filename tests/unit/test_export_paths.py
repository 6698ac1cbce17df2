"""Exports never clobber: refused targets, --force, and failed writes that leave nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from labelling_data import FAST_TRAIN, make_audio_pool
from typer.testing import CliRunner

from iml_tui import atomic
from iml_tui.cli import app
from iml_tui.engine.session import Session, answer_with_oracle
from iml_tui.errors import UserError

runner = CliRunner()


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export_paths")
    pool = make_audio_pool(root / "pool")
    sets = [a for k, v in FAST_TRAIN.items() for a in ("--set", f"{k}={v}")]
    res = runner.invoke(
        app,
        [
            "project",
            "new",
            str(root / "proj"),
            "--pool-dir",
            str(pool),
            "--strategy",
            "ft",
            "--budgets",
            "4,8",
            "--seed",
            "3",
            *sets,
        ],
    )
    assert res.exit_code == 0, res.output
    with Session.open(root / "proj", "ana") as s:
        answer_with_oracle(s, lambda item: [0], limit=4, seconds=1.0)
    return root / "proj"


def _export(proj: Path, fmt: str, out: Path, *extra: str) -> UserError | None:
    res = runner.invoke(app, ["export", str(proj), "--format", fmt, "--out", str(out), *extra])
    if res.exit_code == 0:
        return None
    assert isinstance(res.exception, UserError), res.output
    assert "\n" not in str(res.exception)
    return res.exception


def _listing(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


def test_check_output_path_kinds(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    assert atomic.check_output_path(tmp_path, kind="folder") == tmp_path
    assert atomic.check_output_path(tmp_path / "new" / "deeper", kind="folder")
    for target, kind, needle in [
        (f, "folder", "is a file, not a folder"),
        (link, "folder", "symbolic link"),
        (Path(os.devnull), "folder", "not a regular file"),
        (tmp_path, "file", "is a folder"),
        (f / "out.csv", "file", "is a file, not a folder"),
        (f / "a" / "out.csv", "file", "is a file, not a folder"),
    ]:
        with pytest.raises(UserError, match=needle) as info:
            atomic.check_output_path(target, kind=kind)  # type: ignore[arg-type]
        assert info.value.path == str(target) and info.value.fix
    assert f.read_text() == "x"


@pytest.mark.parametrize("fmt", ["csv", "raven", "audacity"])
def test_refused_targets_are_left_untouched(tmp_path: Path, proj: Path, fmt: str) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep\n")
    link = tmp_path / "link"
    link.symlink_to(precious if fmt == "csv" else tmp_path)
    cases = [
        (Path(os.devnull), "not a regular file"),
        (link, "symbolic link"),
        (precious / "out", "is a file, not a folder"),
    ]
    cases.append(
        (tmp_path, "is a folder") if fmt == "csv" else (precious, "is a file, not a folder")
    )
    if fmt == "csv":
        cases.append((precious, "already exists — choose another path, or add --force"))
    before = _listing(tmp_path)
    for target, needle in cases:
        err = _export(proj, fmt, target)
        assert err is not None and needle in str(err) and str(target) in str(err), (target, err)
        err = _export(proj, fmt, target, "--force")
        if target == precious and fmt == "csv":
            assert err is None
            assert precious.read_text().startswith("id,labels")
            precious.write_text("keep\n")
        else:
            assert err is not None and needle.split(" —")[0] in str(err)
    assert _listing(tmp_path) == before
    assert Path(os.devnull).is_char_device()


@pytest.mark.parametrize("fmt", ["raven", "audacity"])
def test_folder_exports_refuse_existing_files_unless_forced(
    tmp_path: Path, proj: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    assert _export(proj, fmt, out) is None
    first = _listing(out)
    assert first and all(not n.startswith(".") for n in first)
    name = sorted(first)[0]
    for n in first:
        if n != name:
            (out / n).unlink()
    (out / name).write_text("edited by hand\n")
    err = _export(proj, fmt, out)
    assert err is not None and str(err).startswith(f"{out / name}: already exists")
    assert sorted(p.name for p in out.iterdir()) == [name]  # all or none: nothing new
    assert (out / name).read_text() == "edited by hand\n"
    # a symlink among the files is refused even with --force
    other = sorted(first)[-1]
    (out / other).symlink_to(tmp_path / "elsewhere")
    err = _export(proj, fmt, out, "--force")
    assert err is not None and "symbolic link" in str(err)
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([name, other])
    (out / other).unlink()
    assert _export(proj, fmt, out, "--force") is None
    assert _listing(out) == first


@pytest.mark.parametrize("fmt", ["csv", "raven", "audacity"])
def test_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, proj: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def full(fd: int, data: bytes) -> None:
        calls.append(fd)
        if len(calls) > 1 or fmt == "csv":  # folder exports: the second file hits the limit
            raise OSError(errno.ENOSPC, "No space left on device")
        os.write(fd, data)

    monkeypatch.setattr(atomic, "_write_all", full)
    out = tmp_path / "new" / ("labels.csv" if fmt == "csv" else "tables")
    err = _export(proj, fmt, out)
    assert err is not None and "the disk is full; nothing was written" in str(err)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary, no folder made
    assert len(calls) == (1 if fmt == "csv" else 2)


def test_unwritable_and_denied_paths_exit_2_without_traceback(
    tmp_path: Path, proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    blocker = tmp_path / "somefile"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "iml_tui", "export", str(proj), "--out", str(blocker / "out.csv")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "is a file, not a folder" in proc.stderr
    assert blocker.read_text() == "x"

    real_open = os.open

    def denied(path: object, flags: int, mode: int = 0o777) -> int:
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "open", denied)
    err = _export(proj, "csv", tmp_path / "out.csv")
    assert err is not None and "Permission denied" in str(err)
    assert "choose a folder you can write to" in str(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile"]
