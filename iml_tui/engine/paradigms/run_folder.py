"""What both paradigms' run folders share: the ``spec.json`` that ties a folder to one run."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from iml_tui.atomic import atomic_write_text
from iml_tui.errors import UserError


def check_run_spec(run_dir: Path, spec: Mapping[str, Any], ignore: Collection[str] = ()) -> None:
    """Write ``run_dir/spec.json`` (making the folder) for a new run; for an existing one,
    a UserError unless the stored spec equals ``spec`` (compared as JSON), so that a resumed
    run never continues one made with another configuration. Keys in ``ignore`` (how a run is
    executed, not what it computes) are left out of the comparison, also in older files."""
    path = run_dir / "spec.json"
    if path.is_file():
        have = {k: v for k, v in json.loads(path.read_text()).items() if k not in ignore}
        want = {k: v for k, v in json.loads(json.dumps(spec)).items() if k not in ignore}
        if have != want:
            raise UserError(
                "this run folder was made with a different configuration",
                run_dir,
                "use another --out folder or delete this one",
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(spec, indent=2))
