"""The built wheel, installed into a folder of its own, runs every kind of command.

The wheel is built from a copy of the package sources (so no ``build/`` folder of the checkout
leaks into it), installed with ``pip install --target`` and imported from there first
(``PYTHONPATH``), from a working folder outside the repository, with this interpreter's
dependencies. Nothing of the checkout (``demo_data/``, ``models/``) is reachable from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from iml_tui.data.store import write_pool

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the wheel was installed into."""
    pytest.importorskip("setuptools")
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for pkg in ("iml_tui", "demo_build"):
        shutil.copytree(
            REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
        check=True,
        cwd=root,
        capture_output=True,
    )
    (wheel,) = (root / "dist").glob("iml_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "iml_tui/presets/lid.yaml" in names and "iml_tui/tui/app.tcss" in names
    outside = ("demo_data/", "models/", "tests/", "demo_build/")
    assert not [n for n in names if n.startswith(outside)]
    site = root / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        cwd=root,
        capture_output=True,
    )
    return site


def _env(site: Path, *extra: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("IML_TUI_DEMO_DATA", "IML_TUI_MODELS", "IML_TUI_DEMO_CACHE")
    }
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site, *extra))
    env["COLUMNS"] = "200"
    return env


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_copy_is_what_runs(installed: Path, tmp_path: Path) -> None:
    proc = _run(
        installed,
        tmp_path,
        "-c",
        "import iml_tui, iml_tui.presets as p; print(iml_tui.__file__); print(p.PRESETS)",
    )
    assert proc.returncode == 0, proc.stderr
    module, presets = proc.stdout.splitlines()
    assert Path(module).is_relative_to(installed) and Path(presets).is_relative_to(installed)


def test_version_from_the_console_script_and_the_app(installed: Path, tmp_path: Path) -> None:
    from iml_tui import __version__

    script = installed / "bin" / "iml-tui"
    fast = subprocess.run(
        [sys.executable, str(script), "--version"],
        cwd=tmp_path,
        env=_env(installed),
        capture_output=True,
        text=True,
        check=False,
    )
    typer_app = _run(installed, tmp_path, "-m", "iml_tui.cli", "--version")
    assert fast.returncode == 0 and typer_app.returncode == 0, fast.stderr + typer_app.stderr
    assert fast.stdout == typer_app.stdout == f"iml-tui {__version__}\n"


def test_simulate_help(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, tmp_path, "-m", "iml_tui", "simulate", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--config" in proc.stdout and "demo_bioacoustic" in proc.stdout


def test_a_bundled_preset_by_name_runs_a_simulation(installed: Path, tmp_path: Path) -> None:
    """``--config demo_bioacoustic`` brings its keys (hidden 256, the rare classes, which these
    pools must hold) under the flags given."""
    rng = np.random.default_rng(3)
    classes = ["FM_sweep", "Harmonic_stack"]
    for split, n in (("train", 40), ("valid", 16), ("test", 16)):
        lab = (rng.random((n, 1, 2)) < 0.4).repeat(3, axis=1).astype(np.uint8)
        emb = (rng.normal(size=(n, 3, 6)) + 2.0 * lab @ rng.normal(size=(2, 6))).astype(np.float32)
        write_pool(
            tmp_path / "pools" / f"{split}.h5", emb, lab, classes, [f"{split}{i}" for i in range(n)]
        )
    proc = _run(
        installed,
        tmp_path,
        "-m",
        "iml_tui",
        "simulate",
        "--config",
        "demo_bioacoustic",
        "--pool-dir",
        "pools",
        "--strategy",
        "mfft",
        "--start",
        "cold",
        "--seeds",
        "1",
        "--budgets",
        "10",
        "--jobs",
        "1",
        "--no-full",
        "--max-epochs",
        "5",
        "--threads",
        "1",
        "--out",
        "run",
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]
    assert config["hidden"] == 256 and config["rare_classes"] == classes
    assert (config["budgets"], config["max_epochs"]) == ([10], 5)
    bad = _run(installed, tmp_path, "-m", "iml_tui", "simulate", "--config", "demo_bird")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown preset 'demo_bird'" in bad.stderr and "demo_bioacoustic, demo_lid" in bad.stderr


def test_the_demo_without_its_folders_names_the_variable(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, tmp_path, "-m", "iml_tui", "simulate", "--task", "bioacoustic")
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1].startswith("iml-tui: error:")
    assert "set IML_TUI_DEMO_DATA" in proc.stderr
    assert not (tmp_path / "runs").exists()


PILOT = """
import asyncio, sys
from pathlib import Path

import iml_tui
from labelling_data import make_audio_pool, make_project

from iml_tui.engine.journal import Journal
from iml_tui.engine.session import Session
from iml_tui.tui.app import make_app


class Silent:
    name = "file"

    def play(self, x, sr, item_id, start=0.0):
        pass

    def stop(self):
        pass

    def position(self):
        return None

    def describe(self):
        return "silent"

    def close(self):
        pass


async def label_one(project: Path) -> None:
    with Session.open(project, annotator="ana") as session:
        app = make_app(session, Silent(), cursor=False, audio_thread=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert app.main.current is not None
            await pilot.press("1", "enter")
            await pilot.pause()


root = Path(sys.argv[1])
project = make_project(root / "project", make_audio_pool(root), budgets=(4, 8)).dir
asyncio.run(label_one(project))
with Journal(project / "journal.sqlite") as journal:
    labels = [tuple(e.labels or ()) for e in journal.current_labels().values()]
print(iml_tui.__file__)
print(labels)
"""


def test_the_labelling_tui_starts_from_the_installed_copy(installed: Path, tmp_path: Path) -> None:
    script = tmp_path / "pilot.py"
    script.write_text(textwrap.dedent(PILOT))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data")],
        cwd=tmp_path,
        env=_env(installed, TESTS),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    module, labels = proc.stdout.splitlines()[-2:]
    assert Path(module).is_relative_to(installed)
    assert labels == "[(0,)]"
