"""The stream presets: every key of StreamConfig, the original's defaults, loadable."""

from __future__ import annotations

import pytest
import yaml

from iml_tui.config import StreamConfig, config_to_dict, load_config
from iml_tui.engine.paradigms.stream import fit_config, validate_config
from iml_tui.errors import UserError
from iml_tui.presets import PRESETS


@pytest.mark.parametrize("task", ["lid", "vtd"])
def test_preset_names_every_key_and_loads(task: str) -> None:
    path = PRESETS / f"{task}.yaml"
    assert set(yaml.safe_load(path.read_text())) == set(config_to_dict(StreamConfig()))
    cfg = load_config(StreamConfig, path)
    assert cfg.task == task
    # the original's defaults (SPEC B.2 to B.5)
    assert (cfg.samples_per_batch, cfg.n_queries, cfg.bootstrap, cfg.context) == (720, 8, 8, 3)
    assert (cfg.sim_type, cfg.max_fb_samples, cfg.target_weight) == ("none", None, 4.0)
    assert (cfg.max_epochs, cfg.compat) == (-1, "ours")  # no cap, as the original
    assert (cfg.lr, cfg.wd, cfg.batch_size, cfg.patience) == (1e-4, 1e-5, 256, 15)
    assert (cfg.comp_hidden, cfg.embed_dim, cfg.class_hidden, cfg.class_layers) == (
        1024,
        256,
        1024,
        3,
    )


def test_lid_preset_is_the_defaults() -> None:
    cfg = load_config(StreamConfig, "lid", {"out": "runs/stream"})
    assert cfg == StreamConfig()


def test_overrides_and_nulls() -> None:
    cfg = load_config(
        StreamConfig,
        None,
        {"features": ["ecapalang", "wavlm"]},
        ["max_fb_samples=16", "adapt_distr=0.5", "combo=ent,necs"],
    )
    assert cfg.max_fb_samples == 16 and cfg.adapt_distr == 0.5
    assert cfg.combo == ["ent", "necs"] and cfg.features == ["ecapalang", "wavlm"]
    with pytest.raises(UserError, match="n_querys"):
        load_config(StreamConfig, None, None, ["n_querys=3"])


def test_cb_beta_key_reaches_the_loss_and_is_range_checked() -> None:
    cfg = load_config(StreamConfig, None, {"features": ["f"]}, ["loss=cb", "cb_beta=0.9"])
    validate_config(cfg)
    loss = fit_config(cfg).loss
    assert (loss.kind, loss.cb_beta) == ("cb", 0.9) and StreamConfig().cb_beta == 0.999
    for bad in ("cb_beta=1.0", "cb_beta=-0.1"):
        with pytest.raises(UserError, match="cb_beta"):
            load_config(StreamConfig, None, None, [bad])
    with pytest.raises(UserError, match="loss"):
        validate_config(load_config(StreamConfig, None, {"features": ["f"]}, ["loss=cbx"]))


def test_rank_takes_two_or_more_methods_split_two() -> None:
    three = ["al_method=rank", "combo=smax,necs,egl-last"]
    validate_config(load_config(StreamConfig, None, {"features": ["f"]}, three))
    for bad in (["al_method=split", "combo=smax,necs,ent"], ["al_method=rank", "combo=smax"]):
        with pytest.raises(UserError, match="combo"):
            validate_config(load_config(StreamConfig, None, {"features": ["f"]}, bad))
    with pytest.raises(UserError, match="combo"):
        validate_config(
            load_config(
                StreamConfig, None, {"features": ["f"]}, ["al_method=rank", "combo=smax,plateau"]
            )
        )
