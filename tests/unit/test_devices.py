"""One device parser for training, scoring and extraction."""

from __future__ import annotations

import pytest
import torch

from iml_tui import devices
from iml_tui.devices import resolve_device
from iml_tui.errors import UserError


def test_cpu_auto_and_passthrough() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_auto_picks_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("name", ["quantum", "tpu", "cuda:x", "gpu"])
def test_unknown_names(name: str) -> None:
    with pytest.raises(UserError, match="unknown device"):
        resolve_device(name)


def test_cuda_without_cuda_is_one_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0", "CUDA:1"):
        with pytest.raises(UserError, match="CUDA is not available") as err:
            resolve_device(name)
        assert "\n" not in str(err.value)


def test_cuda_index_past_the_last_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices.torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(UserError, match="only 2 CUDA device"):
        resolve_device("cuda:2")


def test_training_and_extraction_share_the_parser() -> None:
    from iml_tui.engine import trainer
    from iml_tui.features import encoders

    assert trainer.resolve_device is resolve_device
    assert encoders.resolve_device is resolve_device
