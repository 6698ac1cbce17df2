"""Range checks of settings and flags: one table in config.py, one line, exit 2."""

from __future__ import annotations

import dataclasses
import math

import pytest
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.config import BioacousticConfig, StreamConfig, check_range, config_from_mapping
from iml_tui.errors import UserError


@pytest.mark.parametrize("cls", [BioacousticConfig, StreamConfig])
def test_defaults_are_in_range(cls: type) -> None:
    for f in dataclasses.fields(cls()):
        check_range(f.name, getattr(cls(), f.name), "defaults", cls)


def test_sentinel_only_for_its_config() -> None:
    check_range("max_epochs", -1, "x", StreamConfig)
    with pytest.raises(UserError):
        check_range("max_epochs", -1, "x", BioacousticConfig)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_epochs", 0),
        ("lr", 0.0),
        ("lr", -1e-3),
        ("lr", math.nan),
        ("hidden", 0),
        ("warm_k", 0),
        ("budgets", [0, 10]),
        ("budgets", [50, 50]),
        ("budgets", [100, 50]),
        ("lr_factor", 1.0),
    ],
)
def test_bioacoustic_out_of_range(key: str, value: object) -> None:
    with pytest.raises(UserError, match=key):
        config_from_mapping(BioacousticConfig, {key: value}, "x.yaml")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("samples_per_batch", 0),
        ("plateau_thresh", 1.5),
        ("adapt_distr", math.nan),
        ("beta", 1.0),
        ("n_queries", -1),
    ],
)
def test_stream_out_of_range(key: str, value: object) -> None:
    with pytest.raises(UserError, match=key):
        config_from_mapping(StreamConfig, {key: value}, "x.yaml")


def test_in_range_values_pass() -> None:
    cfg = config_from_mapping(
        BioacousticConfig, {"max_epochs": 1, "lr": 1e-6, "budgets": [1, 2, 3]}, "x.yaml"
    )
    assert cfg.budgets == [1, 2, 3]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_select_threshold_range_is_a_user_error(tmp_path, value: str) -> None:
    # main() turns a UserError into one stderr line and exit 2 (tests/functional/test_select_entry)
    res = CliRunner().invoke(
        app,
        [
            "select",
            "--pool",
            str(tmp_path / "p.h5"),
            "--strategy",
            "mp",
            "-n",
            "1",
            "--threshold",
            value,
        ],
    )
    assert isinstance(res.exception, UserError), res.output
    assert "threshold" in str(res.exception) and "p.h5" not in str(res.exception)


def _numeric(tp: object) -> bool:
    import types
    import typing

    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Annotated:
        return _numeric(args[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType, list):
        return any(_numeric(a) for a in args if a is not type(None))
    return tp in (int, float)


def test_every_numeric_key_and_flag_has_a_range() -> None:
    import typing

    from iml_tui.cli.checked import commands
    from iml_tui.engine.project import ProjectConfig
    from iml_tui.ranges import RANGES

    missing = [
        f"{cls.__name__}.{k}"
        for cls in (BioacousticConfig, StreamConfig, ProjectConfig)
        for k, tp in typing.get_type_hints(cls).items()
        if _numeric(tp) and k not in RANGES
    ]
    for name, info in commands(app):
        hints = typing.get_type_hints(info.callback, include_extras=True)
        missing += [f"{name} --{k}" for k, tp in hints.items() if _numeric(tp) and k not in RANGES]
        assert getattr(info.callback, "range_checked", False), name
    assert missing == []


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["search", "P", "--example", "x", "-k", "0"], "-k=0"),
        (["pool", "synth", "--out", "o", "--n-train", "0"], "--n-train=0"),
        (["pool", "synth", "--out", "o", "--d", "-3"], "--d=-3"),
        (["budget", "plan", "uniform", "r", "n", "--p", "1.5"], "--p=1.5"),
        (["detect", "P", "--recordings", "r", "--out", "o", "--min-duration", "-1"], "--min"),
        (["encoder", "train", "--data", "d", "--out", "o", "--epochs", "0"], "--epochs=0"),
        (["encoder", "train", "--data", "d", "--out", "o", "--lr", "nan"], "--lr=nan"),
        (
            [
                "prepare",
                "recordings",
                "--source",
                "s",
                "--classes",
                "A",
                "--out",
                "o",
                "--hop",
                "0",
            ],
            "--hop",
        ),
        (["doctor", "--port", "70000"], "--port=70000"),
        (["label", "--task", "lid", "--samples-per-batch", "0"], "--samples-per-batch=0"),
        (["project", "new", "P", "--seed", "-1"], "--seed=-1"),
        (["simulate", "--task", "bioacoustic", "--warm-k", "0"], "--warm-k=0"),
        (["simulate", "--task", "lid", "--n-queries", "-2"], "--n-queries=-2"),
        (["select", "--pool", "p.h5", "--strategy", "mp", "-n", "0"], "-n=0"),
    ],
)
def test_flags_out_of_range_are_one_line(tmp_path, args: list[str], flag: str) -> None:
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, UserError), res.output
    assert flag in str(res.exception) and "out of range" in str(res.exception)
    assert "\n" not in str(res.exception)


def test_fast_select_path_checks_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    from iml_tui.select_cli import run_select

    argv = ["--pool", "p.h5", "--strategy", "mp", "-n", "1", "--threshold", "nan"]
    assert run_select(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threshold=nan is out of range [0, 1]" in err
    assert run_select([*argv[:-1], "0.5", "--shards", "0"]) == 2
    assert "--shards=0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("lr: -0.001\n", "lr"),
        ("max_epochs: 0\n", "max_epochs"),
        ("hidden: 0\n", "hidden"),
        ("lease_seconds: .nan\n", "lease_seconds"),
        ("seed: -4\n", "seed"),
    ],
)
def test_project_yaml_out_of_range_on_open(tmp_path, text: str, key: str) -> None:
    from iml_tui.engine.project import Project

    (tmp_path / "project.yaml").write_text(f"task: bioacoustic\npool_dir: /x\n{text}")
    with pytest.raises(UserError, match=key) as exc:
        Project.load(tmp_path)
    assert "project.yaml" in str(exc.value)


def test_project_yaml_stream_section_out_of_range(tmp_path) -> None:
    from iml_tui.engine.project import Project

    (tmp_path / "project.yaml").write_text("task: lid\nstream:\n  target: ha\n  n_queries: -1\n")
    with pytest.raises(UserError, match="n_queries=-1 is out of range"):
        Project.load(tmp_path)


def test_out_of_range_flag_exits_2_with_one_line(tmp_path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "iml_tui.cli", "pool", "synth", "--out", str(tmp_path / "p"),
         "--n-train", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "iml-tui: error: command line: --n-train=0 is out of range [1, inf) — give --n-train a "
        "value in that range\n"
    )
    assert not (tmp_path / "p").exists()
