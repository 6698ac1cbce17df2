"""Where torch work runs: one parser of ``--device`` for training, scoring and extraction."""

from __future__ import annotations

import re

import torch

from iml_tui.errors import UserError

_CUDA_RE = re.compile(r"cuda(?::(\d+))?")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    A ``torch.device`` passes through. An unknown name, or CUDA asked for where there is none
    (or a ``cuda:N`` past the last device), is a :class:`UserError`.
    """
    if isinstance(device, torch.device):
        return device
    key = str(device).strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    match = _CUDA_RE.fullmatch(key)
    if match is None:
        raise UserError(f"unknown device {device!r}", None, "use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(
            f"device {device!r} asked for but CUDA is not available",
            None,
            "use --device cpu or auto",
        )
    if match.group(1) is not None:
        count = torch.cuda.device_count()
        if int(match.group(1)) >= count:
            raise UserError(
                f"device {device!r} asked for but only {count} CUDA device(s) exist",
                None,
                f"use cuda:0 .. cuda:{count - 1}",
            )
    return torch.device(key)


__all__ = ["resolve_device"]
