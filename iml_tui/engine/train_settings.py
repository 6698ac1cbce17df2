"""The training settings both paradigms share, and how a run's config fills them.

:class:`TrainSettings` holds what every classifier fit takes: the Adam step size and weight
decay, the minibatch size, the epoch cap, the seed, the device and torch threads, and the
precision of scoring during training. The pool trainer's
:class:`~iml_tui.engine.trainer.TrainConfig` and the stream model's
:class:`~iml_tui.engine.models.comp_class.StreamFitConfig` extend it with what only they have
(the plateau schedule; patience and the loss), each with its paradigm's defaults.
:meth:`TrainSettings.from_config` fills any of them from a run config (a sweep's
``BioacousticConfig``, a ``StreamConfig``, a project's ``ProjectConfig``), key by key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

S = TypeVar("S", bound="TrainSettings")

ALIASES = {"weight_decay": "wd"}
"""Settings a run config spells another way (``StreamConfig.wd``)."""


@dataclass(frozen=True)
class TrainSettings:
    """What every classifier fit takes (defaults: the pool trainer's, SPEC A.3)."""

    lr: float = 5e-4
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 5000
    seed: int = 0  # init of the classifier and batch order
    device: str = "auto"
    threads: int | None = None  # torch CPU threads during training; None leaves torch's setting
    eval_precision: str = "fp32"  # scoring during training: fp32 (the paper) or bf16 autocast

    @classmethod
    def from_config(cls: type[S], run: Any, **changes: Any) -> S:
        """``cls`` with every setting ``run`` has (by name, or its alias in :data:`ALIASES`;
        ``threads`` 0 means None), then ``changes``; the rest keep ``cls``'s defaults."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            for name in (f.name, ALIASES.get(f.name)):
                if name is not None and hasattr(run, name):
                    values[f.name] = getattr(run, name)
                    break
        if "threads" in values:
            values["threads"] = values["threads"] or None
        return cls(**{**values, **changes})
