"""Where a result came from, and the one writer of run manifests.

Every ``manifest.json`` a run or a preparation writes (a pool sweep, a stream run, a prepared
DCASE / Common Voice / VTD corpus) goes through :func:`write_manifest`: the caller's own fields,
the config it ran with, then :func:`provenance` (tool and library versions, git revision, host,
time), written atomically.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iml_tui import __version__
from iml_tui.atomic import atomic_write_text

LIBRARIES = ("numpy", "torch", "h5py", "scipy", "soundfile")
"""Libraries whose versions a manifest records when the run has loaded them."""


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


def provenance(device: str | None = None) -> dict[str, Any]:
    """``tool_version``, ``created`` (UTC, ISO 8601 to the second), ``versions`` (iml_tui,
    python and the loaded :data:`LIBRARIES`), ``git_revision`` and ``host`` (platform, cpus,
    and cuda where torch is loaded); ``device`` where the run names one."""
    versions = {"iml_tui": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", ""))
    host: dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        host["cuda"] = bool(torch.cuda.is_available())
    out: dict[str, Any] = {
        "tool_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": versions,
        "git_revision": git_revision(),
        "host": host,
    }
    if device is not None:
        out["device"] = device
    return out


def write_manifest(
    path: str | Path, body: Mapping[str, Any], config: Any = None, device: str | None = None
) -> dict[str, Any]:
    """Write ``path`` (a run's ``manifest.json``) atomically: ``body``, then ``config`` (a
    config dataclass, as a dict) when given, then :func:`provenance`. Returns what it wrote."""
    manifest = dict(body)
    if config is not None:
        manifest["config"] = dataclasses.asdict(config)
    manifest.update(provenance(device))
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return manifest
