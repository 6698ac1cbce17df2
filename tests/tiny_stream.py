"""Command-line flags for a stream model small enough to train in a test, on one thread."""

from __future__ import annotations


def tiny_stream_flags(
    *, max_epochs: int = 10, lr: float | None = 0.003, **extra: int | float
) -> list[str]:
    """``--set`` pairs for the tiny model (plus ``extra`` keys) and ``--threads 1``."""
    keys: dict[str, int | float] = {
        "comp_hidden": 16,
        "embed_dim": 8,
        "class_hidden": 16,
        **extra,
        "max_epochs": max_epochs,
        "patience": 2,
    }
    if lr is not None:
        keys["lr"] = lr
    flags: list[str] = []
    for key, value in keys.items():
        flags += ["--set", f"{key}={value}"]
    return [*flags, "--threads", "1"]
