"""Where a result came from: the source tree's revision, for run manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision() -> str:
    """The source tree's git revision, or "" outside a checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
