"""Durable file replacement: write a temporary file, fsync it, rename it over the target, fsync
the folder. A reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from iml_tui.errors import UserError


def check_output_file(path: str | Path, force: bool = False) -> Path:
    """Refuse an output path that is a symlink, a device, a folder, or (without ``force``) an
    existing file; returns the path."""
    path = Path(path)
    if path.is_symlink():
        raise UserError("is a symbolic link; refusing to write through it", path,
                        "give a plain file path")
    if path.exists():
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise UserError("is a folder", path, "give a file path")
        if not stat.S_ISREG(mode):
            raise UserError("is not a regular file (device, pipe or socket)", path,
                            "give a plain file path")
        if not force:
            raise UserError("already exists", path, "choose another path or add --force")
    return path


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


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` durably; creates the parent folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UserError("the disk is full; nothing was written", path,
                            "free some space and run the command again") from exc
        raise UserError(f"cannot write ({exc.strerror or exc})", path,
                        "check the path and its permissions") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


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
