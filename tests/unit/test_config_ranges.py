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
