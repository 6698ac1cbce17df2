"""The one exception type for errors a user can cause and fix."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem with the user's input: bad path, bad file, bad option.

    The message names the file (when there is one) and says how to fix it. The CLI prints it on
    one line, without a traceback, and exits with status 2.
    """

    def __init__(self, message: str, path: str | Path | None = None, fix: str | None = None):
        self.path = None if path is None else str(path)
        self.fix = fix
        parts = [f"{self.path}: {message}" if self.path else message]
        if fix:
            parts.append(fix)
        super().__init__(" — ".join(parts))
