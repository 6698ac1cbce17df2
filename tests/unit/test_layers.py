"""The engine, data, audio and features layers never import a terminal UI library."""

from __future__ import annotations

import subprocess
import sys


def test_engine_import_does_not_pull_textual_or_rich() -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        "import iml_tui.audio, iml_tui.data, iml_tui.engine, iml_tui.features\n"
        "for pkg in (iml_tui.engine, iml_tui.data, iml_tui.audio, iml_tui.features):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_is_light() -> None:
    code = "import sys, iml_tui.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
