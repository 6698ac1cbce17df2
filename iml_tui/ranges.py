"""The allowed range or choices of every numeric setting and flag, and the one check of them.

One table serves every config class (:mod:`iml_tui.config`: presets, ``--set``, ``project.yaml``
on open) and every command-line flag (the CLI checks each option against it before a command
runs; ``select``'s fast parser through :func:`iml_tui.engine.one_round.select_from_files`). A
value outside is a :class:`UserError` naming the key, the range and where it came from (one line,
exit status 2). Imports nothing heavy: the fast ``select`` path uses it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from iml_tui.errors import UserError

INF = None
# key -> (low, high, low inclusive, high inclusive); None = unbounded. Applies to every config
# class and command that has the key, to scalars and to each element of a list value.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    # pool rounds and selection (SPEC A)
    "warm_k": (1, INF, True, True),
    "budgets": (1, INF, True, True),
    "n": (1, INF, True, True),  # select -n: clips per round
    "k": (1, INF, True, True),  # search -k: neighbours
    "shards": (1, INF, True, True),
    "threshold": (0, 1, True, True),
    "seed": (0, INF, True, True),
    "seeds": (0, INF, True, True),
    "lease_seconds": (0, INF, False, True),
    # execution
    "jobs": (1, INF, True, True),
    "threads": (0, INF, True, True),
    "cpus_per_run": (0, INF, False, True),
    "gpus_per_run": (0, INF, True, True),
    "port": (0, 65535, True, True),  # 0: any free port
    # classifier training (SPEC A.3)
    "hidden": (1, INF, True, True),
    "lr": (0, INF, False, True),
    "batch_size": (1, INF, True, True),
    "lr_factor": (0, 1, False, False),
    "lr_patience": (0, INF, True, True),
    "lr_threshold": (0, INF, True, True),
    "min_lr": (0, INF, True, True),
    "max_epochs": (1, INF, True, True),
    # encoder training
    "epochs": (1, INF, True, True),
    "steps_per_epoch": (1, INF, True, True),
    "channels": (1, INF, True, True),
    "embedding_dim": (1, INF, True, True),
    # generated pools
    "n_train": (1, INF, True, True),
    "n_valid": (1, INF, True, True),
    "n_test": (1, INF, True, True),
    "t": (1, INF, True, True),  # frames per clip
    "d": (1, INF, True, True),  # embedding dimension
    # audio cutting and detection (seconds)
    "clip": (0, INF, False, True),
    "hop": (0, INF, False, True),
    "min_duration": (0, INF, True, True),
    "merge_gap": (0, INF, True, True),
    # stream (SPEC B)
    "samples_per_batch": (1, INF, True, True),
    "context": (0, INF, True, True),
    "bootstrap": (0, INF, True, True),
    "n_queries": (0, INF, True, True),
    "min_al_samples": (0, INF, True, True),
    "plateau_thresh": (0, 1, True, True),
    "n_pert": (1, INF, True, True),
    "pert_eps": (0, INF, False, True),
    "adapt_distr": (0, 1, True, True),
    "max_fb_samples": (0, INF, True, True),
    "drift_mult": (0, INF, False, True),
    "warn_mult": (0, INF, False, True),
    "calm_mult": (0, INF, False, True),
    "adwin_delta": (0, 1, False, False),
    "adwin_warn_clock": (1, INF, True, True),
    "adwin_drift_clock": (1, INF, True, True),
    "adwin_log_clock": (1, INF, True, True),
    "hdddm_alpha": (0, 1, False, False),
    "hdddm_warn_alpha": (0, 1, False, False),
    "forget_n_batches": (0, INF, True, True),
    "memory_cap": (0, INF, True, True),
    "comp_hidden": (1, INF, True, True),
    "comp_layers": (1, INF, True, True),
    "embed_dim": (1, INF, True, True),
    "class_hidden": (1, INF, True, True),
    "class_layers": (1, INF, True, True),
    "rnn_layers": (0, INF, True, True),
    "rnn_hidden": (1, INF, True, True),
    "target_weight": (0, INF, False, True),
    "xent_weight": (0, INF, True, True),
    "margin": (0, INF, True, True),
    "gamma": (0, INF, True, True),
    "beta": (0, 1, True, False),
    "cb_beta": (0, 1, True, False),
    "dsmax_mult": (0, INF, True, True),
    "auto_mult": (0, INF, False, True),
    "lrs_patience": (0, INF, True, True),
    "wd": (0, INF, True, True),
    "patience": (1, INF, True, True),
    "min_delta": (0, INF, True, True),
    "epochs_per_pass": (0, INF, True, True),
    # budget plans (iml-tui budget plan)
    "initial_value": (0, INF, True, True),
    "p": (0, 1, False, False),  # exponential decay per batch
    "lam_r": (0, INF, True, True),
    "a": (0, INF, False, True),  # skew width
}
# key -> the values it may take (every config class that has the key).
CHOICES: dict[str, tuple[str, ...]] = {
    "executor": ("local", "ray"),
    "eval_precision": ("fp32", "bf16"),
    "annotation": ("frames", "clips"),
    "monitor": ("train/loss", "train/acc"),
    "mode": ("min", "max"),
}
INCREASING = {"budgets"}
# (config class or command, key) -> a value outside RANGES that it gives a meaning of its own.
SENTINELS: dict[tuple[str, str], Any] = {
    ("StreamConfig", "max_epochs"): -1,  # no cap: patience alone
    ("simulate", "max_epochs"): -1,  # the stream's; the bioacoustic config refuses it
    ("select", "warm_k"): 0,  # a cold start
}


def _bounds_text(low: float | None, high: float | None, lo_in: bool, hi_in: bool) -> str:
    left = "(-inf" if low is None else ("[" if lo_in else "(") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + ("]" if hi_in else ")")
    return f"{left}, {right}"


def check_range(
    key: str,
    value: Any,
    source: str | None,
    owner: str | type | None = None,
    name: str | None = None,
) -> None:
    """Raise :class:`UserError` when ``value`` (or an element of it) is outside ``RANGES[key]``.

    NaN is never in range; ``INCREASING`` keys must also be strictly increasing lists; a value
    ``SENTINELS`` declares for ``owner`` (a config class or command name, e.g. the stream's
    ``max_epochs = -1``, no cap) passes. ``name``: how the message calls the key (a flag)."""
    if key not in RANGES or value is None:
        return
    who = owner.__name__ if isinstance(owner, type) else owner
    if who is not None and SENTINELS.get((who, key), object()) == value:
        return
    shown = name or key
    low, high, lo_in, hi_in = RANGES[key]
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        bad = item != item  # NaN
        if low is not None:
            bad = bad or (item < low if lo_in else item <= low)
        if high is not None:
            bad = bad or (item > high if hi_in else item >= high)
        if bad:
            raise UserError(
                f"{shown}={item} is out of range {_bounds_text(low, high, lo_in, hi_in)}",
                source,
                f"give {shown} a value in that range",
            )
    if (
        key in INCREASING
        and isinstance(value, list | tuple)
        and any(b <= a for a, b in itertools.pairwise(value))
    ):
        raise UserError(
            f"{shown} must be strictly increasing, got {list(value)}",
            source,
            f"list {shown} from smallest to largest without repeats",
        )


def check_choice(key: str, value: Any, source: str | None, name: str | None = None) -> None:
    """Raise :class:`UserError` when ``value`` is not one of ``CHOICES[key]``; ``ray_address``
    must be empty, ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``."""
    shown = name or key
    if key in CHOICES and value is not None and value not in CHOICES[key]:
        raise UserError(
            f"{shown}={value!r} is not one of {', '.join(CHOICES[key])}",
            source,
            f"give {shown} one of those values",
        )
    if key == "ray_address" and value and not _is_ray_address(str(value)):
        raise UserError(
            f"{shown}={value!r} is not auto or HOST:PORT",
            source,
            "give auto (the running cluster), HOST:PORT of the head node, or "
            "nothing (a local Ray instance)",
        )


def check_values(
    values: Mapping[str, Any],
    source: str | None,
    owner: str | None = None,
    names: Mapping[str, str] | None = None,
) -> None:
    """:func:`check_range` and :func:`check_choice` of every ``key: value`` (unknown keys pass;
    an enum's ``.value`` is checked). ``names``: key -> how to call it (a flag)."""
    for key, value in values.items():
        v = getattr(value, "value", value)
        shown = (names or {}).get(key)
        check_range(key, v, source, owner, shown)
        check_choice(key, v, source, shown)


def _is_ray_address(text: str) -> bool:
    if text == "auto":
        return True
    rest = text.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
