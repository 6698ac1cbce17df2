"""Synthetic pools from command-line options (`iml-tui pool synth`), and the small generated pool
the synthesiser's defaults are tuned on."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from iml_tui.data.synth import SynthConfig
from iml_tui.errors import UserError

#: The small generated pool: the paper's classes and priors, small enough for a laptop CPU. At
#: this size the priors give the meerkats 3 and 1 train clips and 1 valid / test clip each;
#: ``min_positives=3`` gives each rare class 3 clips per split, so its test AP is not decided by a
#: single clip.
DEMO_POOL = SynthConfig(
    n_train=3000, n_valid=600, n_test=600, t=8, d=64, min_positives=3, seed=2025
)


def synth_config_from_options(
    n_train: int,
    n_valid: int,
    n_test: int,
    t: int,
    d: int,
    classes: Sequence[str] | None,
    priors: Sequence[float] | None,
    seed: int,
) -> SynthConfig:
    """A :class:`SynthConfig`; custom classes each get a site of their own."""
    base = SynthConfig()
    kwargs: dict[str, object] = {
        "n_train": n_train,
        "n_valid": n_valid,
        "n_test": n_test,
        "t": t,
        "d": d,
        "seed": seed,
    }
    if classes is not None:
        names = tuple(classes)
        if priors is None:
            raise UserError(
                "--classes needs --priors (one clip-level share per class)",
                None,
                "e.g. --classes a,b,c --priors 0.05,0.02,0.001",
            )
        kwargs.update(class_list=names, sites=tuple(range(len(names))))
    if priors is not None:
        kwargs["priors"] = tuple(priors)
    try:
        return dataclasses.replace(base, **kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UserError(
            f"invalid synthetic pool options: {exc}", None, "see `iml-tui pool synth --help`"
        ) from exc
