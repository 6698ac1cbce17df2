"""Output files are never clobbered and write failures are one user error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from iml_tui import atomic
from iml_tui.errors import UserError


def test_refuses_symlink_folder_device_and_existing(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("keep\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    for target, needle in [
        (link, "symbolic"),
        (tmp_path, "folder"),
        (Path(os.devnull), "regular"),
        (real, "exists"),
    ]:
        with pytest.raises(UserError, match=needle):
            atomic.check_output_file(target)
    assert atomic.check_output_file(real, force=True) == real
    assert real.read_text() == "keep\n"


def test_full_disk_is_reported_and_old_file_kept(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out.csv"
    out.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(UserError, match="disk is full"):
        atomic.atomic_write_text(out, "new\n")
    assert out.read_text() == "old\n"
    assert not (tmp_path / ".out.csv.tmp").exists()
