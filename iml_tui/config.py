"""Typed run configurations, YAML presets and ``key=value`` overrides.

Every CLI flag of a command maps to one key of its config dataclass. A preset file may set any
subset of the keys; an unknown key, or a value of the wrong type, is a :class:`UserError` that
names the key and the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from iml_tui.errors import UserError
from iml_tui.presets import resolve_preset
from iml_tui.ranges import CHOICES, RANGES, SENTINELS, check_choice, check_range

__all__ = [
    "CHOICES",
    "PAPER_BUDGETS",
    "RANGES",
    "SENTINELS",
    "BioacousticConfig",
    "StreamConfig",
    "check_choice",
    "check_range",
    "config_from_mapping",
    "config_to_dict",
    "load_config",
    "parse_int_list",
    "parse_seeds",
]

PAPER_BUDGETS = [50, 100, 150, 200, 250, 300, 350, 400, 450, 500]


@dataclass
class BioacousticConfig:
    """Pool-based active learning (SPEC Part A): the EUSIPCO 2025 protocol."""

    pool_dir: str = "pools"
    strategy: list[str] = field(default_factory=lambda: ["rand", "ft", "mp", "mfft"])
    start: list[str] = field(default_factory=lambda: ["cold", "warm"])
    warm_k: int = 5
    budgets: list[int] = field(default_factory=lambda: list(PAPER_BUDGETS))
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    jobs: int = 1
    out: str = "runs/bioacoustic"
    device: str = "auto"
    threads: int = 0
    eval_precision: str = "fp32"  # validation and test scoring: fp32 (the paper) or bf16
    # what the simulated annotator gives: frames (event extents, the paper) or clips (whether
    # each class occurs; trained by multiple-instance learning, as a session's clip labels)
    annotation: str = "frames"
    # where runs execute: local (in-process / `jobs` processes) or ray (one Ray task per run)
    executor: str = "local"
    ray_address: str = ""  # "": a local Ray instance; auto: the running cluster; HOST:PORT
    cpus_per_run: float = 1.0  # Ray's CPU request per run (also its torch threads, rounded up)
    gpus_per_run: float = 0.0  # Ray's GPU request per run (fractions share a GPU)
    # hold each run's selection array in this many row shards (a process each, with executor
    # ray a Ray actor each); the picks are those of one process
    shards: int = 1
    full: bool = False
    rare_classes: list[str] = field(default_factory=list)
    # classifier training (SPEC A.3)
    hidden: int = 1024
    lr: float = 5e-4
    batch_size: int = 128
    lr_factor: float = 0.5
    lr_patience: int = 5
    lr_threshold: float = 1e-4
    min_lr: float = 5e-6
    max_epochs: int = 5000


C = TypeVar("C")


def parse_seeds(text: str) -> list[int]:
    """'1-5' -> [1, 2, 3, 4, 5]; '1,3,7' -> [1, 3, 7]; '2-4,9' -> [2, 3, 4, 9]."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            a, b = int(lo), int(hi)
            if b < a:
                raise ValueError(f"empty seed range '{part}'")
            seeds.extend(range(a, b + 1))
        else:
            seeds.append(int(part))
    if not seeds:
        raise ValueError("no seeds given")
    return seeds


def parse_int_list(text: str) -> list[int]:
    """'50,100,150' -> [50, 100, 150]."""
    values = [int(v) for v in str(text).split(",") if v.strip()]
    if not values:
        raise ValueError("empty list")
    return values


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = UserError(
        f"key '{key}' has value {value!r}, expected {_type_name(tp)}",
        source,
        f"fix the value of '{key}'",
    )
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is list:
        (item_tp,) = args
        if isinstance(value, str):
            parts: list[Any] = (
                parse_seeds(value)
                if key == "seeds"
                else [p.strip() for p in value.split(",") if p.strip()]
            )
        elif isinstance(value, list | tuple):
            parts = list(value)
        else:
            raise bad
        try:
            return [_coerce(v, item_tp, key, source) for v in parts]
        except ValueError as exc:
            raise bad from exc
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        try:
            if isinstance(value, float) and not value.is_integer():
                raise bad
            return int(value)
        except (TypeError, ValueError) as exc:
            raise bad from exc
    if tp is float:
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise bad from exc
    if tp is str:
        if isinstance(value, str | int | float):
            return str(value)
        raise bad
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def config_from_mapping(
    cls: type[C], values: Mapping[str, Any], source: str, base: C | None = None
) -> C:
    """Build ``cls`` from ``values`` on top of ``base`` (or the defaults); checks every key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    out = base if base is not None else cls()
    changes: dict[str, Any] = {}
    for key, value in values.items():
        norm = str(key).replace("-", "_")
        if norm not in names:
            raise UserError(
                f"unknown key '{key}'", source, f"valid keys: {', '.join(sorted(names))}"
            )
        changes[norm] = _coerce(value, hints[norm], norm, source)
        check_range(norm, changes[norm], source, cls.__name__)
        check_choice(norm, changes[norm], source)
    return dataclasses.replace(out, **changes)  # type: ignore[type-var]


def load_config(
    cls: type[C],
    preset: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: list[str] | None = None,
) -> C:
    """Defaults <- preset YAML <- ``--set key=value`` strings <- explicit CLI overrides.

    ``preset``: a YAML path, or the name of a bundled preset (:mod:`iml_tui.presets`)."""
    cfg = cls()
    path = resolve_preset(preset)
    if path is not None:
        if not path.is_file():
            raise UserError("config file not found", path, "check the --config path")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(
                f"not valid YAML ({exc.__class__.__name__})", path, "fix the syntax"
            ) from exc
        if not isinstance(data, dict):
            raise UserError(
                "a config file must be a mapping of key: value",
                path,
                "write one 'key: value' per line",
            )
        cfg = config_from_mapping(cls, data, str(path), cfg)
    if sets:
        pairs: dict[str, Any] = {}
        for item in sets:
            if "=" not in item:
                raise UserError(f"--set '{item}' is not key=value", None, "write --set key=value")
            key, raw = item.split("=", 1)
            pairs[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        cfg = config_from_mapping(cls, pairs, "--set", cfg)
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        cfg = config_from_mapping(cls, given, "command line", cfg)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (for manifests)."""
    return dataclasses.asdict(cfg)


@dataclass
class StreamConfig:
    """The interactive / streaming paradigm (SPEC Part B): every parameter of the original.

    Keys map to ``iml-tui simulate --task lid|vtd`` flags (``n_queries`` <-> ``--n-queries``) and
    to ``--set key=value``. 0 / "" / null switch an option off where noted.
    """

    # task and data (SPEC B.1, B.2)
    task: str = "lid"  # lid | vtd
    feat_root: str = "features"  # <feat_root>/<feature>/{train,dev,test}.h5 or .../<env>/...
    features: list[str] = field(default_factory=lambda: ["ecapalang"])
    split: str = "dev"  # LID split streamed
    env: str = "rm1_mc20"  # VTD environment streamed
    target: str = "all"  # LID target language code, or all (one run per language)
    order: str = "random"  # random | cluster (LID) | sorted (VTD) | path to an order file
    reverse_order: bool = False  # run the stream backward
    samples_per_batch: int = 720  # LID; VTD: one batch per session file
    context: int = 3  # neighbours on each side (input dim = D x (2 context + 1))
    # bootstrap (SPEC B.3)
    bootstrap: int = 8  # half target, half non-target
    boot_in: bool = False  # take the bootstrap from the stream instead of out of domain
    boot_from: str = ""  # "": LID the train split, VTD the other corpus's environments
    # active learning (SPEC B.5)
    n_queries: int = 8
    min_al_samples: int = 2  # separate_class_al: at least this many queries per batch
    # smax ent necs rand egl egl-last pert pert-rand cover cover-kcenter
    # | rank split plateau combo-rand combo-clf
    al_method: str = "smax"
    # rank: two or more methods (a true rank sum); split, combo-rand, combo-clf: two
    combo: list[str] = field(default_factory=lambda: ["smax", "necs"])
    # combo-clf: a pickled classifier (trusted file) whose predict([[mean max softmax, mean
    # negative energy, labelled + n_q]]) gives 0 (the first combo method) or 1 (the second)
    combo_clf: str = ""
    plateau_thresh: float = 0.9  # plateau: necs when the batch's mean max-softmax exceeds it
    n_pert: int = 10  # pert-rand: random perturbations per sample
    pert_eps: float = 1e-3  # pert / pert-rand: perturbation size
    adapt_distr: float | None = None  # wanted target share of the labelled pool
    # queries for predicted targets, then non-targets, from a budget that carries over unspent
    # queries (the original's separate_class_al with est_class target / nontarget)
    separate_class_al: bool = False
    # corrective feedback
    sim_type: str = "none"  # tokens fps tps fns tns all, e.g. fpstps; none = plain online AL
    max_fb_samples: int | None = None  # null = no cap (the original's default)
    rank_cf: bool = False  # errors most-confident first, correct ones least-confident first
    # budgets and memory
    budget_plan: str = ""  # plan folder or file from `iml-tui budget plan`
    drift: str = "none"  # none | adwin | hdddm
    drift_mult: float = 5.0
    warn_mult: float = 2.5
    calm_mult: float = 0.5
    adwin_delta: float = 0.002
    adwin_warn_clock: int = 25  # one ADWIN: warning on these checks
    adwin_drift_clock: int = 50  # drift on these (a multiple of the warning clock)
    adwin_log_clock: int = 4  # the drift column's ADWIN without a drift budget
    hdddm_alpha: float = 0.05
    hdddm_warn_alpha: float = 0.1
    forget_n_batches: int = 0  # 0 = keep everything
    memory_cap: int = 0  # 0 = no cap (the original's ring buffer used 1000)
    # model (SPEC B.4)
    initial_bn: bool = True
    comp_hidden: int = 1024
    comp_layers: int = 2
    embed_dim: int = 256
    class_hidden: int = 1024
    class_layers: int = 3
    # sequence features (stores with T > 1 frames per sample): a bidirectional GRU of this many
    # layers reads the frames before the compression (the original's rnn_layers); 0 = none
    rnn_layers: int = 0
    rnn_hidden: int = 256  # GRU units per direction (ours: the original's size is not stated)
    init_weights: str = ""  # state dict to start from (the original's load_pretrained)
    # an adaptive random forest (river) in place of the MLP: learns item by item, epochs until
    # its training accuracy stops improving (the original's ensemble)
    ensemble: bool = False
    reset_weights: bool = False  # re-initialise before every fit
    # ours | original: reproduce the original's reset_weights (a no-op that skips the CF refit)
    # and forgetting (drops the bootstrap too, keeps AL items of batches with CF for good)
    compat: str = "ours"
    # loss and training
    loss: str = "default"  # default | nll | dcf | imlm | focal | adcf | cb
    class_weights: str = "fixed"  # fixed [1, target_weight] | balanced | inverse
    target_weight: float = 4.0
    xent_weight: float = 0.09  # NLL scale of the default loss
    margin: float = 1.0
    gamma: float = 2.0  # focal
    beta: float = 0.999  # class-balanced weights
    cb_beta: float = 0.999  # the cb loss: (1 - cb_beta) / (1 - cb_beta^n_c), in [0, 1)
    dsmax_mult: float = 0.0  # dcf / imlm: > 0 sharpens p as softmax(dsmax_mult * s * p)
    learn_mult: bool = False  # dcf / imlm: learn that s (starts at 1)
    learn_error_weight: bool = False  # dcf: learn the FNR weight (0.75, kept in [0.05, 0.95])
    auto_mult: float = 1.0  # class_weights inverse: the target's weight times this
    lr: float = 1e-4
    wd: float = 1e-5
    batch_size: int = 256
    monitor: str = "train/loss"  # train/loss | train/acc: what patience and load_best watch
    mode: str = "min"  # min | max
    schedule_lr: bool = False  # ReduceLROnPlateau on the monitor (factor 0.1, threshold 0)
    lrs_patience: int = 10
    load_best: bool = False  # after the AL fit, the weights of its best monitored epoch
    patience: int = 15  # epochs without a better monitored value before a fit stops
    min_delta: float = 0.0
    max_epochs: int = -1  # cap per fit; -1 = none, patience alone (the original's default)
    epochs_per_pass: int = 0  # > 0: exactly this many epochs per fit instead of patience
    # run
    seed: int = 18792
    jobs: int = 1
    threads: int = 0  # torch threads per run; 0 = cores / jobs (Ray: cpus_per_run)
    device: str = "auto"
    executor: str = "local"  # local | ray (one Ray task per run)
    ray_address: str = ""  # "": a local Ray instance; auto: the running cluster; HOST:PORT
    cpus_per_run: float = 1.0  # Ray's CPU request per run
    gpus_per_run: float = 0.0  # Ray's GPU request per run
    out: str = "runs/stream"
