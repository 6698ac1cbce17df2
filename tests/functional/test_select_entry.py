"""`iml-tui select` through the console entry point (argparse, numpy and h5py only) against the
Typer command: same options, same picks, same one-line errors."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from typer.models import OptionInfo
from typer.testing import CliRunner

from iml_tui.cli import Strategy, app, select_cmd
from iml_tui.data.store import PoolStore
from iml_tui.data.synth import SynthConfig, synth_pools
from iml_tui.engine.strategies import STRATEGIES
from iml_tui.select_cli import build_parser

runner = CliRunner()


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pools")
    synth_pools(out, SynthConfig(n_train=400, n_valid=16, n_test=16, t=2, d=12, seed=8))
    return out / "train.h5"


def _entry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iml_tui", *args], capture_output=True, text=True, check=False
    )


def _typer_select_options() -> dict[str, tuple[object, bool]]:
    """Option string -> (default, required) of the Typer ``select`` command, from its signature."""
    hints = typing.get_type_hints(select_cmd, include_extras=True)
    out: dict[str, tuple[object, bool]] = {}
    for name, param in inspect.signature(select_cmd).parameters.items():
        info = next(m for m in typing.get_args(hints[name])[1:] if isinstance(m, OptionInfo))
        # with Annotated, a leading option name lands in OptionInfo.default
        given = (info.default, *(info.param_decls or ()))
        decls = [d for d in given if isinstance(d, str) and d.startswith("-")]
        required = param.default is inspect.Parameter.empty
        default = None if required else param.default
        for opt in decls or [f"--{name.replace('_', '-')}"]:
            out[opt] = (default, required)
    return out


def test_options_match_the_typer_command() -> None:
    parser_opts = {
        opt: (a.default, a.required) for a in build_parser()._actions for opt in a.option_strings
    }
    assert parser_opts == _typer_select_options()
    choices = next(a.choices for a in build_parser()._actions if "--strategy" in a.option_strings)
    assert list(choices or []) == [s.value for s in Strategy] == list(STRATEGIES)


def test_entry_prints_the_same_picks_as_the_typer_command(pool: Path, tmp_path: Path) -> None:
    store = PoolStore(pool)
    rng = np.random.default_rng(0)
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("".join(f"{i}\n" for i in rng.choice(store.n, 150, replace=False)))
    scores = tmp_path / "scores.npy"
    np.save(scores, rng.random((store.n, store.c)).astype(np.float32))
    cases = [
        ["--strategy", "ft", "-n", "20", "--labeled", str(labeled)],
        [
            "--strategy",
            "mfft",
            "-n",
            "20",
            "--labeled",
            str(labeled),
            "--scores",
            str(scores),
            "--threshold",
            "0.3",
        ],
        [
            "--strategy",
            "mp",
            "-n",
            "7",
            "--labeled",
            str(labeled),
            "--scores",
            str(scores),
            "--seed",
            "3",
        ],
        ["--strategy", "rand", "-n", "9", "--seed", "5"],
        ["--strategy", "ft", "-n", "12", "--warm-k", "2"],
    ]
    for case in cases:
        args = ["select", "--pool", str(pool), *case]
        proc = _entry(*args)
        assert proc.returncode == 0, proc.stderr
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert proc.stdout == res.stdout and proc.stdout.count("\n") == int(case[3]), case


def test_entry_state_file_carries_between_rounds(pool: Path, tmp_path: Path) -> None:
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("".join(f"{i}\n" for i in range(0, 400, 3)))
    state = tmp_path / "ft_state.npz"
    base = [
        "select",
        "--pool",
        str(pool),
        "--strategy",
        "ft",
        "-n",
        "10",
        "--labeled",
        str(labeled),
    ]
    first = _entry(*base, "--state", str(state))
    assert first.returncode == 0 and state.exists()
    labeled.write_text(labeled.read_text() + first.stdout)
    carried = _entry(*base, "--state", str(state))
    plain = _entry(*base)
    assert carried.returncode == plain.returncode == 0
    assert carried.stdout == plain.stdout and len(carried.stdout.split()) == 10


def test_entry_errors_are_one_line_and_exit_2(pool: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nfoo\n")
    cases = [
        (["select", "--strategy", "ft", "-n", "3"], "--pool"),
        (["select", "--pool", str(pool), "--strategy", "best", "-n", "3"], "best"),
        (["select", "--pool", str(pool), "--strategy", "ft", "-n", "three"], "three"),
        (
            ["select", "--pool", str(pool), "--strategy", "ft", "-n", "3", "--colour", "red"],
            "--colour",
        ),
        (
            ["select", "--pool", str(pool), "--labeled", str(bad), "--strategy", "ft", "-n", "3"],
            str(bad),
        ),
        (["select", "--pool", str(tmp_path / "nope.h5"), "--strategy", "ft", "-n", "3"], "nope.h5"),
        (
            [
                "select",
                "--pool",
                str(pool),
                "--labeled",
                str(bad.with_name("l2.txt")),
                "--strategy",
                "mfft",
                "-n",
                "3",
            ],
            "--scores",
        ),
        (["select", "--pool", str(pool), "--strategy", "ft", "-n", "0"], "-n"),
    ]
    bad.with_name("l2.txt").write_text("1\n2\n")
    for args, needle in cases:
        proc = _entry(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, proc.stderr)
        assert proc.stdout == ""


def test_help_and_other_commands_go_to_the_typer_app() -> None:
    proc = _entry("select", "--help")
    assert proc.returncode == 0 and "Select one round of clips" in proc.stdout
    assert "--warm-k" in proc.stdout
    proc = _entry("--help")
    assert proc.returncode == 0 and "simulate" in proc.stdout and "select" in proc.stdout


def test_select_process_imports_neither_typer_nor_torch(pool: Path) -> None:
    code = (
        "import sys; sys.argv = ['iml-tui', 'select', '--pool', sys.argv[1], '--strategy', "
        "'ft', '-n', '3']\n"
        "from iml_tui.entry import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = {'typer', 'click', 'rich', 'torch', 'pydantic', 'textual'}\n"
        "heavy &= set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(pool)], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_version_is_the_same_line_from_the_fast_path_and_the_typer_app() -> None:
    from importlib.metadata import version

    want = f"iml-tui {version('iml-tui')}\n"
    fast = _entry("--version")
    assert (fast.returncode, fast.stdout) == (0, want)
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, want)
    # after another option the fast path steps aside and the app answers the same
    result = runner.invoke(app, ["--version", "--help"])
    assert (result.exit_code, result.output) == (0, want)
