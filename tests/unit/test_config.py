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

ROOT = Path(__file__).resolve().parents[2]


def test_paper_preset_equals_defaults_and_names_every_key() -> None:
    preset = yaml.safe_load((ROOT / "configs" / "bioacoustic.yaml").read_text())
    assert set(preset) == set(config_to_dict(BioacousticConfig()))
    assert load_config(BioacousticConfig, ROOT / "configs" / "bioacoustic.yaml") == \
        BioacousticConfig()


def test_demo_presets_load_and_name_the_demo_data() -> None:
    cfg = load_config(BioacousticConfig, ROOT / "configs" / "demo_bioacoustic.yaml")
    assert cfg.pool_dir == "demo" and cfg.budgets[0] == 10
    lid = load_config(StreamConfig, ROOT / "configs" / "demo_lid.yaml")
    vtd = load_config(StreamConfig, ROOT / "configs" / "demo_vtd.yaml")
    assert (lid.task, lid.feat_root, lid.samples_per_batch) == ("lid", "demo:caucasus", 96)
    assert (vtd.task, vtd.feat_root, vtd.features) == ("vtd", "demo", ["ecapalang", "mfcc"])


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
