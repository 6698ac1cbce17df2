"""Durable file replacement: write a temporary file, fsync it, rename it over the target, fsync
the folder. A reader sees the old file or the new one, never half of either.

Result files a user names (exports, reports) are checked first with :func:`check_output_path`
and written with :func:`atomic_write_files`: a symlink, a device, a folder where a file is
expected (or a file where a folder is), or an existing file without ``force`` is refused, and a
failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from iml_tui.errors import UserError

OutputKind = Literal["file", "folder"]


def check_output_path(path: str | Path, force: bool = False, kind: OutputKind = "file") -> Path:
    """Refuse an output ``path`` that is a symlink or a device, a folder when ``kind`` is
    "file", a file when it is "folder", an existing file without ``force``, or one below a
    file; returns the path."""
    path = Path(path)
    if path.is_symlink():
        raise UserError(
            "is a symbolic link; refusing to write through it", path, f"give a plain {kind} path"
        )
    if path.exists():
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            if kind == "folder":
                return path
            raise UserError("is a folder", path, "give a file path, e.g. FOLDER/labels.csv")
        if not stat.S_ISREG(mode):
            raise UserError(
                "is not a regular file (device, pipe or socket)", path, f"give a plain {kind} path"
            )
        if kind == "folder":
            raise UserError(
                "is a file, not a folder", path, "give a folder path (it is created when missing)"
            )
        if not force:
            raise UserError(
                "already exists", path, "choose another path, or add --force to replace it"
            )
        return path
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise UserError(
            f"cannot write here: {parent} is a file, not a folder",
            path,
            "choose a path inside a folder",
        )
    return path


def check_output_file(path: str | Path, force: bool = False) -> Path:
    """:func:`check_output_path` for a file."""
    return check_output_path(path, force, "file")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_error(exc: OSError, path: Path) -> UserError:
    if exc.errno == errno.ENOSPC:
        return UserError(
            "the disk is full; nothing was written",
            path,
            "free some space and run the command again",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(
            f"cannot write ({exc.strerror or exc})", path, "choose a folder you can write to"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return UserError(
            "cannot write: part of the path is a file, not a folder",
            path,
            "choose a path inside a folder",
        )
    return UserError(
        f"cannot write ({exc.strerror or exc})", path, "check the path and its permissions"
    )


def _stage(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``path`` (fsync'd); returns its path."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    missing.reverse()
    for d in missing:
        d.mkdir()
    return missing


def atomic_write_files(
    files: Mapping[Path, bytes], force: bool = False, check: bool = True
) -> list[Path]:
    """Write every file of ``files`` (path -> bytes) durably, all or none: each path is checked
    (``check``: :func:`check_output_path`), every file is staged beside its target before any
    is renamed into place; on failure the staged files and the folders made are removed."""
    paths = [Path(p) for p in files]
    if check:
        for p in paths:
            check_output_path(p, force, "file")
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    current = paths[0] if paths else Path()
    done = False
    try:
        for p, data in zip(paths, files.values(), strict=True):
            current = p
            created += _make_parents(p.parent)
            staged.append((_stage(p, bytes(data)), p))
        for tmp, p in staged:
            current = p
            os.replace(tmp, p)
        done = True
    except OSError as exc:
        raise _write_error(exc, current) from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if not done:
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    d.rmdir()
    for folder in {p.parent for p in paths}:
        _fsync_dir(folder)
    return paths


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` durably; creates the parent folder."""
    return atomic_write_files({Path(path): data}, check=False)[0]


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with UTF-8 ``text`` (newlines written as given) durably."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` durably."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | Path, array: Any) -> Path:
    """``np.save`` of ``array`` to ``path`` durably (no pickles)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npz(path: str | Path, **arrays: Any) -> Path:
    """``np.savez`` of ``arrays`` to ``path`` durably (no pickles)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
