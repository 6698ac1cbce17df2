"""The stream section of a new labelling project (``iml-tui label --task lid|vtd``), checked
against the data before any folder is written.

``stream_options(task, given)`` takes what the command line gave (feat_root, target, env,
sim_type, samples_per_batch, and ``--set stream.KEY`` values) and returns the keys to store in
``project.yaml`` plus notes for the user:

- no ``feat_root``: the bundled demo (lid ``demo:caucasus``, vtd ``demo``); a demo feat_root is
  built on first use and brings the settings of the bundled ``demo_<task>`` preset (batches of
  96, a higher learning rate, capped fits) under whatever was given;
- lid: ``target`` must be one language of the split (the error lists them); a
  ``samples_per_batch`` that was not given and is larger than the split is clamped to it (noted);
  one that was given and is larger is an error saying how large the split is;
- vtd: ``env`` must be an environment of the feature root (the error lists them); when it was
  not given and the default is absent, the first environment is used (noted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iml_tui.config import StreamConfig, config_from_mapping
from iml_tui.demo.assets import DEMO, LID_REGIONS, ProgressFn, is_demo, resolve_feat_root
from iml_tui.errors import UserError
from iml_tui.presets import PRESETS

# keys of a demo preset that describe a simulation run, not a labelling project
_RUN_ONLY = frozenset(
    ("task", "feat_root", "target", "out", "jobs", "threads", "device", "seed", "env", "split")
)


@dataclass
class StreamSetup:
    """What to store under ``stream:`` in project.yaml, and what to tell the user about it."""

    stream: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def default_feat_root(task: str) -> str:
    """The demo feature root of a task (lid: the first demo region)."""
    return f"{DEMO}:{LID_REGIONS[0]}" if task == "lid" else DEMO


def demo_defaults(task: str) -> dict[str, Any]:
    """The demo preset's stream settings that differ from :class:`StreamConfig`'s defaults
    (the bundled ``demo_<task>`` preset), without the keys that only a simulation run has."""
    path = PRESETS / f"demo_{task}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    preset = dataclasses.asdict(config_from_mapping(StreamConfig, data, str(path)))
    base = dataclasses.asdict(StreamConfig())
    out = {k: v for k, v in preset.items() if k not in _RUN_ONLY and v != base.get(k)}
    if task == "vtd" and "env" in data:
        out["env"] = data["env"]
    return out


def stream_options(
    task: str, given: Mapping[str, Any], progress: ProgressFn | None = None
) -> StreamSetup:
    """The stream keys of a new ``task`` project from the ``given`` ones (see the module)."""
    given = {k: v for k, v in given.items() if v is not None}
    feat_root = str(given.get("feat_root") or default_feat_root(task))
    notes: list[str] = []
    stream: dict[str, Any] = {}
    if is_demo(feat_root):
        stream.update(demo_defaults(task))
        feat_root = resolve_feat_root(task, feat_root, progress)
    stream.update(given)
    stream["feat_root"] = feat_root
    cfg = config_from_mapping(StreamConfig, {**stream, "task": task}, "stream options")
    if task == "lid":
        _check_lid(cfg, given, stream, notes)
    else:
        _check_vtd(cfg, given, stream, notes)
    return StreamSetup(stream, notes)


def _check_lid(
    cfg: StreamConfig, given: Mapping[str, Any], stream: dict[str, Any], notes: list[str]
) -> None:
    from iml_tui.data.stream_data import load_lid_split

    table = load_lid_split(cfg.feat_root, cfg.features, cfg.split, cfg.rnn_layers > 0)
    langs = ", ".join(table.class_list)
    if cfg.target in ("", "all"):
        raise UserError(
            "stream labelling asks about one target language",
            table.paths[0],
            f"give --target, one of {langs}",
        )
    if cfg.target not in table.class_list:
        raise UserError(
            f"--target {cfg.target!r} is not a language of the {cfg.split} split",
            table.paths[0],
            f"use one of {langs}",
        )
    n = table.n
    if cfg.samples_per_batch > n:
        if "samples_per_batch" in given:
            raise UserError(
                f"--samples-per-batch {cfg.samples_per_batch} is larger than the "
                f"{n} samples of the {cfg.split} split",
                table.paths[0],
                f"give --samples-per-batch {n} or less (e.g. {max(2, n // 6)})",
            )
        stream["samples_per_batch"] = n
        notes.append(
            f"samples_per_batch {cfg.samples_per_batch} is larger than the {n} samples "
            f"of the {cfg.split} split: one batch of {n} (give --samples-per-batch "
            "for more, smaller batches)"
        )


def _check_vtd(
    cfg: StreamConfig, given: Mapping[str, Any], stream: dict[str, Any], notes: list[str]
) -> None:
    from iml_tui.data.stream_data import list_vtd_envs

    if "target" in given and given["target"] not in ("", "all"):
        raise UserError("--target is for --task lid", None, "pick the VTD environment with --env")
    envs = list_vtd_envs(cfg.feat_root, cfg.features[0])
    where = Path(cfg.feat_root) / cfg.features[0]
    if not envs:
        raise UserError("no environments found", where, "check --feat-root (and features)")
    if cfg.env not in envs:
        if "env" in given or cfg.env == "all":
            raise UserError(
                f"--env {cfg.env!r} is not an environment here (labelling streams one)",
                where,
                f"use one of {', '.join(envs)}",
            )
        stream["env"] = envs[0]
        notes.append(
            f"env {cfg.env} is not in {where}: streaming {envs[0]} (give --env, one "
            f"of {', '.join(envs)})"
        )
