"""The per-frame MLP classifier trained in every active-learning round (SPEC A.3)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class FrameMLP(nn.Module):
    """Per-frame Linear(d_in -> hidden), ReLU, Linear(hidden -> n_classes).

    forward: (B, T, D) float -> (B, T, C) logits (any leading shape works: (..., D) -> (..., C)).
    With ``seed`` set, the initial weights depend only on the seed (built under a forked RNG on
    the CPU, so the global torch RNG is left untouched and every round starts from the same init).
    """

    def __init__(self, d_in: int, n_classes: int, hidden: int = 1024, seed: int | None = 0) -> None:
        super().__init__()
        if d_in < 1 or n_classes < 1 or hidden < 1:
            raise ValueError(
                f"FrameMLP sizes must be positive: d_in={d_in}, n_classes={n_classes}, "
                f"hidden={hidden}"
            )
        self.d_in = d_in
        self.n_classes = n_classes
        self.hidden = hidden
        if seed is None:
            self.fc1 = nn.Linear(d_in, hidden)
            self.fc2 = nn.Linear(hidden, n_classes)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.fc1 = nn.Linear(d_in, hidden)
                self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) embeddings -> (B, T, C) logits."""
        h = torch.relu(self.fc1(x))
        out: torch.Tensor = self.fc2(h)
        return out

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> FrameMLP:
        """Build a model with the sizes implied by ``state`` and load it (CPU)."""
        try:
            hidden, d_in = state["fc1.weight"].shape
            n_classes = state["fc2.weight"].shape[0]
        except KeyError as exc:
            raise ValueError(f"not a FrameMLP state dict: missing {exc}") from None
        model = cls(int(d_in), int(n_classes), int(hidden), seed=0)  # seeded: global RNG untouched
        model.load_state_dict(dict(state))
        return model
