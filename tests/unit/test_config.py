from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from iml_tui.config import (
    BioacousticConfig,
    StreamConfig,
    config_to_dict,
    load_config,
    parse_int_list,
    parse_seeds,
)
from iml_tui.errors import UserError
from iml_tui.presets import PRESETS, preset_names, resolve_preset


def test_paper_preset_equals_defaults_and_names_every_key() -> None:
    preset = yaml.safe_load((PRESETS / "bioacoustic.yaml").read_text())
    assert set(preset) == set(config_to_dict(BioacousticConfig()))
    assert load_config(BioacousticConfig, "bioacoustic") == BioacousticConfig()


def test_demo_presets_load_and_name_the_demo_data() -> None:
    cfg = load_config(BioacousticConfig, PRESETS / "demo_bioacoustic.yaml")
    assert cfg.pool_dir == "demo" and cfg.budgets[0] == 10
    lid = load_config(StreamConfig, "demo_lid")
    vtd = load_config(StreamConfig, "demo_vtd")
    assert (lid.task, lid.feat_root, lid.samples_per_batch) == ("lid", "demo:caucasus", 96)
    assert (vtd.task, vtd.feat_root, vtd.features) == ("vtd", "demo", ["ecapalang", "mfcc"])


def test_bare_names_are_bundled_presets_and_paths_stay_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert preset_names() == [
        "bioacoustic",
        "demo_bioacoustic",
        "demo_lid",
        "demo_vtd",
        "lid",
        "vtd",
    ]
    assert resolve_preset("lid") == PRESETS / "lid.yaml"
    assert resolve_preset(None) is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lid").write_text("lr: 0.5\n")  # a file named like a preset: ./lid reads it
    assert resolve_preset("./lid") == Path("./lid")
    assert load_config(StreamConfig, "./lid").lr == 0.5
    assert load_config(StreamConfig, "lid").lr == 1e-4
    (tmp_path / "mine.yaml").write_text("warm_k: 3\n")
    assert load_config(BioacousticConfig, "mine.yaml").warm_k == 3


def test_an_unknown_preset_name_lists_the_bundled_ones() -> None:
    with pytest.raises(UserError) as err:
        load_config(StreamConfig, "lidd")
    text = str(err.value)
    assert "unknown preset 'lidd'" in text and "\n" not in text
    assert "bioacoustic, demo_bioacoustic, demo_lid, demo_vtd, lid, vtd" in text


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("budgetz: [1, 2]\n")
    with pytest.raises(UserError) as err:
        load_config(BioacousticConfig, p)
    assert "budgetz" in str(err.value) and str(p) in str(err.value)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("warm_k: lots\n")
    with pytest.raises(UserError, match="warm_k"):
        load_config(BioacousticConfig, p)


def test_precedence_preset_set_flags(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("warm_k: 3\njobs: 4\nseeds: 1-3\n")
    cfg = load_config(BioacousticConfig, p, {"jobs": 2, "out": None}, ["lr=0.01", "full=true"])
    assert cfg.warm_k == 3 and cfg.jobs == 2 and cfg.lr == 0.01 and cfg.full is True
    assert cfg.seeds == [1, 2, 3]
    with pytest.raises(UserError, match="nope"):
        load_config(BioacousticConfig, None, None, ["nope=1"])


def test_parsers() -> None:
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("2-3,9") == [2, 3, 9]
    assert parse_int_list("50,100") == [50, 100]
    with pytest.raises(ValueError):
        parse_seeds("5-1")
