"""One training config for both paradigms, filled from any run config."""

from __future__ import annotations

import dataclasses

from iml_tui.config import BioacousticConfig, StreamConfig
from iml_tui.engine.models.comp_class import StreamFitConfig
from iml_tui.engine.paradigms.stream import fit_config
from iml_tui.engine.project import ProjectConfig
from iml_tui.engine.train_settings import TrainSettings
from iml_tui.engine.trainer import TrainConfig

SHARED = [f.name for f in dataclasses.fields(TrainSettings)]


def test_both_paradigms_extend_the_shared_settings() -> None:
    for cls in (TrainConfig, StreamFitConfig):
        assert issubclass(cls, TrainSettings)
        assert [f.name for f in dataclasses.fields(cls)][: len(SHARED)] == SHARED
    # each keeps its paradigm's defaults (SPEC A.3, B.4)
    assert (TrainConfig().lr, TrainConfig().batch_size, TrainConfig().weight_decay) == (
        5e-4,
        128,
        0.0,
    )
    assert (StreamFitConfig().lr, StreamFitConfig().batch_size) == (1e-4, 256)
    assert StreamFitConfig().weight_decay == 1e-5


def test_pool_settings_from_a_sweep_and_a_project() -> None:
    sweep = BioacousticConfig(lr=1e-3, batch_size=32, max_epochs=7, device="cpu", min_lr=1e-4)
    cfg = TrainConfig.from_config(sweep, seed=4, threads=2)
    assert (cfg.lr, cfg.batch_size, cfg.max_epochs, cfg.min_lr) == (1e-3, 32, 7, 1e-4)
    assert (cfg.seed, cfg.threads, cfg.device) == (4, 2, "cpu")
    assert cfg.betas == (0.9, 0.999) and not cfg.keep_last  # not in the run config: defaults
    project = ProjectConfig(seed=9, threads=0, eval_precision="bf16", hidden=64)
    cfg = TrainConfig.from_config(project)
    assert (cfg.seed, cfg.threads, cfg.eval_precision, cfg.hidden) == (9, None, "bf16", 64)


def test_stream_settings_spell_weight_decay_wd() -> None:
    run = StreamConfig(lr=3e-3, wd=0.25, batch_size=16, seed=5, threads=3, max_epochs=-1)
    cfg = fit_config(run)
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size) == (3e-3, 0.25, 16)
    assert (cfg.seed, cfg.threads, cfg.device, cfg.eval_precision) == (5, 3, "auto", "fp32")
    assert cfg.loss.kind == "default" and cfg.patience == run.patience
    per_pass = fit_config(dataclasses.replace(run, epochs_per_pass=4))
    assert (per_pass.max_epochs, per_pass.patience) == (4, 5)
