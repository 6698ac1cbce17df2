"""Losses of the streaming paradigm's binary detector (SPEC B.4).

Shapes: B items per minibatch; ``logp`` (B, 2) log-probabilities (LogSoftmax output), ``y`` (B,)
int64 labels in {0, 1} (1 = target), embeddings ``e`` (B, E).

- ``default``: 0.09 [NLL(x1) + NLL(x2)] + contrastive(e1, e2), NLL class weights [1, 4]; each item
  x1 is paired with a random partner x2 from the labelled pool.
  contrastive = sum over pairs / 2 / B; x1 and x2 go through separate forward passes (SPEC D.3).
- ``nll``: weighted NLL alone.
- ``dcf``, ``imlm``, ``focal`` replace the NLL in the same formula 0.09 [L(x1) + L(x2)] +
  contrastive:
  ``dcf``: 0.75 E[FNR] + 0.25 E[FPR] with expected counts from the target probability;
  ``imlm``: E[FP] / B + E[FNR] (the IMLM error terms; the label cost is not a function of the
  model). A rate whose denominator (class count in the minibatch) is 0 contributes 0;
  ``focal``: unweighted focal loss, gamma 2, with the factor (1 - p_y)^gamma detached.
Class weights: ``fixed`` [1, target_weight], ``balanced`` (class-balanced, beta 0.999) or
``inverse`` frequency; the last two are normalised to sum to the number of classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

LossKind = Literal["default", "nll", "dcf", "imlm", "focal"]
WeightScheme = Literal["fixed", "balanced", "inverse"]
LOSS_KINDS: tuple[str, ...] = ("default", "nll", "dcf", "imlm", "focal")
WEIGHT_SCHEMES: tuple[str, ...] = ("fixed", "balanced", "inverse")


@dataclass(frozen=True)
class LossConfig:
    """Which loss and its constants (defaults: SPEC B.4)."""

    kind: LossKind = "default"
    weights: WeightScheme = "fixed"
    target_weight: float = 4.0
    nll_scale: float = 0.09
    margin: float = 1.0
    gamma: float = 2.0
    beta: float = 0.999

    def __post_init__(self) -> None:
        if self.kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss {self.kind!r}: use one of {', '.join(LOSS_KINDS)}")
        if self.weights not in WEIGHT_SCHEMES:
            raise ValueError(
                f"unknown class weights {self.weights!r}: use one of {', '.join(WEIGHT_SCHEMES)}"
            )

    @property
    def paired(self) -> bool:
        """Whether training items need a random partner (the contrastive default)."""
        return self.kind != "nll"


def class_weights(
    y: np.ndarray,
    scheme: WeightScheme = "fixed",
    *,
    n_classes: int = 2,
    target_weight: float = 4.0,
    beta: float = 0.999,
) -> np.ndarray:
    """Per-class weights (n_classes,) float32 from the labelled pool's labels y (n,).

    ``fixed``: [1, target_weight]; ``balanced``: (1 - beta) / (1 - beta^n_c) (Cui et al. 2019);
    ``inverse``: 1 / n_c. The last two are scaled to sum to n_classes; an absent class counts as 1.
    """
    if scheme == "fixed":
        w = np.ones(n_classes, dtype=np.float64)
        w[-1] = target_weight
        return w.astype(np.float32)
    counts = np.bincount(np.asarray(y, dtype=np.int64).ravel(), minlength=n_classes)
    counts = np.maximum(counts[:n_classes], 1).astype(np.float64)
    if scheme == "balanced":
        w = (1.0 - beta) / (1.0 - np.power(beta, counts))
    elif scheme == "inverse":
        w = 1.0 / counts
    else:
        raise ValueError(f"unknown class weights {scheme!r}")
    return (w * n_classes / w.sum()).astype(np.float32)


def weighted_nll(logp: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Class-weighted NLL, mean over items weighted as torch does: sum(w_y l) / sum(w_y)."""
    return F.nll_loss(logp, y, weight=weight)


def contrastive(
    e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Sum over pairs of d^2 (same class) or max(0, margin - d)^2 (different), / 2 / B."""
    d2 = (e1 - e2).pow(2).sum(dim=1)
    d = torch.sqrt(d2 + 1e-12)  # eps: finite gradient at d = 0
    s = same.to(d2.dtype)
    terms = s * d2 + (1.0 - s) * torch.clamp(margin - d, min=0.0).pow(2)
    return terms.sum() / 2.0 / e1.shape[0]


def _expected_errors(
    logp: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(E[FN], E[FP], P, N) from target probabilities exp(logp[:, 1])."""
    p1 = logp[:, 1].exp()
    pos = (y == 1).to(p1.dtype)
    neg = 1.0 - pos
    return ((1.0 - p1) * pos).sum(), (p1 * neg).sum(), pos.sum(), neg.sum()


def _safe_rate(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den for a class count den; den = 0 implies num = 0, so the rate is 0 (no sync)."""
    return num / den.clamp(min=1.0)


def dcf_loss(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable DCF 0.75 E[FN]/P + 0.25 E[FP]/N (a term is 0 when its class is absent)."""
    efn, efp, p, n = _expected_errors(logp, y)
    return 0.75 * _safe_rate(efn, p) + 0.25 * _safe_rate(efp, n)


def imlm_loss(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable IMLM error terms E[FP] / B + E[FN] / P."""
    efn, efp, p, _ = _expected_errors(logp, y)
    return efp / logp.shape[0] + _safe_rate(efn, p)


def focal_loss(
    logp: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss -w_y (1 - p_y)^gamma log p_y, the factor detached; weighted mean like
    :func:`weighted_nll` (the stream loss calls it unweighted)."""
    logp_y = logp.gather(1, y[:, None]).squeeze(1)
    term = -((1.0 - logp_y.exp()).pow(gamma)).detach() * logp_y
    if weight is None:
        return term.mean()
    w = weight[y]
    return (w * term).sum() / w.sum()


def stream_loss(
    cfg: LossConfig,
    logp1: torch.Tensor,
    y1: torch.Tensor,
    weight: torch.Tensor | None = None,
    e1: torch.Tensor | None = None,
    logp2: torch.Tensor | None = None,
    y2: torch.Tensor | None = None,
    e2: torch.Tensor | None = None,
) -> torch.Tensor:
    """The configured loss of one minibatch; paired kinds need the partners (logp2, y2, e1, e2)."""
    if cfg.kind == "nll":
        return weighted_nll(logp1, y1, weight)
    if logp2 is None or y2 is None or e1 is None or e2 is None:
        raise ValueError(f"the {cfg.kind} loss needs partner items and embeddings")

    def term(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if cfg.kind == "dcf":
            return dcf_loss(logp, y)
        if cfg.kind == "imlm":
            return imlm_loss(logp, y)
        if cfg.kind == "focal":
            return focal_loss(logp, y, None, cfg.gamma)
        return weighted_nll(logp, y, weight)

    pair = term(logp1, y1) + term(logp2, y2)
    return cfg.nll_scale * pair + contrastive(e1, e2, y1 == y2, cfg.margin)
