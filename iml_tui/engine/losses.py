"""Losses of the streaming paradigm's binary detector (SPEC B.4).

Shapes: B items per minibatch; ``logp`` (B, 2) log-probabilities (LogSoftmax output), ``y`` (B,)
int64 labels in {0, 1} (1 = target), embeddings ``e`` (B, E).

- ``default``: 0.09 [NLL(x1) + NLL(x2)] + contrastive(e1, e2), NLL class weights [1, 4]; each item
  x1 is paired with a random partner x2 from the labelled pool.
  contrastive = sum over pairs / 2 / B; x1 and x2 go through separate forward passes (SPEC D.3).
- ``nll``: weighted NLL alone.
- ``dcf``, ``imlm``, ``focal``, ``adcf``, ``cb`` replace the NLL in the same formula
  0.09 [L(x1) + L(x2)] + contrastive:
  ``dcf``: 0.75 E[FNR] + 0.25 E[FPR] with expected counts from the target probability;
  ``imlm``: E[FP] / B + E[FNR] (the IMLM error terms; the label cost is not a function of the
  model). A rate whose denominator (class count in the minibatch) is 0 contributes 0.
  ``dsmax_mult`` m > 0 (both): the probabilities p become softmax(m s p) over the two classes
  first (s = 1, learned with ``learn_mult``); ``learn_error_weight``: the FNR weight 0.75 of
  ``dcf`` is learned too, clamped to [0.05, 0.95] before each step (the original's DcfLoss);
  ``focal``: unweighted focal loss, gamma 2, with the factor (1 - p_y)^gamma detached;
  ``adcf``: ``dcf`` with each decision smoothed by a sigmoid of the logit difference at
  temperature ``adcf_temperature`` (0.1): d = sigmoid((z1 - z0) / T). T -> 0 is the hard-decision
  DCF; T = 1 gives d = p_target, i.e. ``dcf``;
  ``cb``: class-balanced NLL, per item [1, target_weight][y] (1 - b) / (1 - b^n_y) NLL, then a
  plain mean; n_y = items of class y in the labelled pool, b = ``cb_beta`` (0.999).
Class weights: ``fixed`` [1, target_weight], ``balanced`` (class-balanced, beta 0.999) or
``inverse`` frequency (the original's ``auto_weight``: 1 / (2 p_c), the target's times
``auto_mult``); the last two are normalised to sum to the number of classes (the weighted NLL
is a weighted mean, so the scale does not matter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

LossKind = Literal["default", "nll", "dcf", "imlm", "focal", "adcf", "cb"]
WeightScheme = Literal["fixed", "balanced", "inverse"]
LOSS_KINDS: tuple[str, ...] = ("default", "nll", "dcf", "imlm", "focal", "adcf", "cb")
ADCF_TEMPERATURE = 0.1
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
    adcf_temperature: float = ADCF_TEMPERATURE
    cb_beta: float = 0.999
    dsmax_mult: float = 0.0  # dcf / imlm: > 0 sharpens p by softmax(dsmax_mult * s * p)
    learn_mult: bool = False  # dcf / imlm: learn s (starts at 1)
    learn_error_weight: bool = False  # dcf: learn the FNR weight (starts at 0.75)
    auto_mult: float = 1.0  # inverse weights: the target's weight times this

    def __post_init__(self) -> None:
        if self.dsmax_mult < 0.0:
            raise ValueError(f"dsmax_mult {self.dsmax_mult} must be >= 0")
        if self.auto_mult <= 0.0:
            raise ValueError(f"auto_mult {self.auto_mult} must be > 0")
        if not 0.0 <= self.cb_beta < 1.0:
            raise ValueError(f"cb_beta {self.cb_beta} must be in [0, 1)")
        if self.adcf_temperature <= 0.0:
            raise ValueError(f"adcf_temperature {self.adcf_temperature} must be > 0")
        if self.kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss {self.kind!r}: use one of {', '.join(LOSS_KINDS)}")
        if self.weights not in WEIGHT_SCHEMES:
            raise ValueError(
                f"unknown class weights {self.weights!r}: use one of {', '.join(WEIGHT_SCHEMES)}"
            )

    @property
    def learned(self) -> bool:
        """Whether the loss has parameters of its own that training updates."""
        return (self.learn_mult and self.kind in ("dcf", "imlm")) or (
            self.learn_error_weight and self.kind == "dcf"
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
    auto_mult: float = 1.0,
) -> np.ndarray:
    """Per-class weights (n_classes,) float32 from the labelled pool's labels y (n,).

    ``fixed``: [1, target_weight]; ``balanced``: (1 - beta) / (1 - beta^n_c) (Cui et al. 2019);
    ``inverse``: 1 / n_c, the target's (last class) times ``auto_mult``. The last two are scaled
    to sum to n_classes; an absent class counts as 1.
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
        w[-1] *= auto_mult
    else:
        raise ValueError(f"unknown class weights {scheme!r}")
    return (w * n_classes / w.sum()).astype(np.float32)


def cb_weights(
    y: np.ndarray, *, target_weight: float = 4.0, beta: float = 0.999, n_classes: int = 2
) -> np.ndarray:
    """Per-class factors (n_classes,) float32 of the ``cb`` loss from the pool's labels y (n,):
    [1, target_weight][c] (1 - beta) / (1 - beta^n_c), not normalised; an absent class counts
    as one item (factor [1, target_weight][c])."""
    counts = np.bincount(np.asarray(y, dtype=np.int64).ravel(), minlength=n_classes)
    counts = np.maximum(counts[:n_classes], 1).astype(np.float64)
    fixed = np.ones(n_classes, dtype=np.float64)
    fixed[-1] = target_weight
    return (fixed * (1.0 - beta) / (1.0 - np.power(beta, counts))).astype(np.float32)


def loss_weights(y: np.ndarray, cfg: LossConfig) -> np.ndarray:
    """The per-class weights (2,) the configured loss uses, from the pool's labels y (n,)."""
    if cfg.kind == "cb":
        return cb_weights(y, target_weight=cfg.target_weight, beta=cfg.cb_beta)
    return class_weights(
        y, cfg.weights, target_weight=cfg.target_weight, beta=cfg.beta, auto_mult=cfg.auto_mult
    )


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


def cb_nll(logp: torch.Tensor, y: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Class-balanced NLL: mean over the B items of factor[y] (-log p_y); factor (2,) from
    :func:`cb_weights`."""
    return (factor[y] * -logp.gather(1, y[:, None]).squeeze(1)).mean()


def _expected_errors(
    logp: torch.Tensor,
    y: torch.Tensor,
    temperature: float | None = None,
    sharpen: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(E[FN], E[FP], P, N) from soft target decisions: exp(logp[:, 1]), or with a
    ``temperature`` T sigmoid((logp1 - logp0) / T) (the logit difference z1 - z0), or with
    ``sharpen`` k (a scalar tensor) softmax(k exp(logp))[:, 1]."""
    if sharpen is not None:
        p1 = torch.softmax(sharpen * logp.exp(), dim=1)[:, 1]
    elif temperature is None:
        p1 = logp[:, 1].exp()
    else:
        p1 = torch.sigmoid((logp[:, 1] - logp[:, 0]) / temperature)
    pos = (y == 1).to(p1.dtype)
    neg = 1.0 - pos
    return ((1.0 - p1) * pos).sum(), (p1 * neg).sum(), pos.sum(), neg.sum()


def _safe_rate(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den for a class count den; den = 0 implies num = 0, so the rate is 0 (no sync)."""
    return num / den.clamp(min=1.0)


def dcf_loss(
    logp: torch.Tensor,
    y: torch.Tensor,
    fnr_weight: torch.Tensor | float = 0.75,
    sharpen: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differentiable DCF a E[FN]/P + (1 - a) E[FP]/N, a = ``fnr_weight`` (a term is 0 when its
    class is absent); ``sharpen``: see :func:`_expected_errors`."""
    efn, efp, p, n = _expected_errors(logp, y, sharpen=sharpen)
    return fnr_weight * _safe_rate(efn, p) + (1.0 - fnr_weight) * _safe_rate(efp, n)


def adcf_loss(
    logp: torch.Tensor, y: torch.Tensor, temperature: float = ADCF_TEMPERATURE
) -> torch.Tensor:
    """DCF 0.75 FN/P + 0.25 FP/N with decisions sigmoid((z1 - z0) / T) in place of the hard
    argmax (T = 1: :func:`dcf_loss`)."""
    efn, efp, p, n = _expected_errors(logp, y, temperature)
    return 0.75 * _safe_rate(efn, p) + 0.25 * _safe_rate(efp, n)


def imlm_loss(
    logp: torch.Tensor, y: torch.Tensor, sharpen: torch.Tensor | None = None
) -> torch.Tensor:
    """Differentiable IMLM error terms E[FP] / B + E[FN] / P; ``sharpen``: see
    :func:`_expected_errors`."""
    efn, efp, p, _ = _expected_errors(logp, y, sharpen=sharpen)
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


class LossParams(torch.nn.Module):
    """The loss's own parameters: ``mult`` s (1) and ``fnr_weight`` a (0.75) of ``dcf`` /
    ``imlm``; they need gradients only with ``learn_mult`` / ``learn_error_weight``."""

    def __init__(self, cfg: LossConfig, state: dict[str, float] | None = None) -> None:
        super().__init__()
        st = state or {}
        self.cfg = cfg
        self.mult = torch.nn.Parameter(
            torch.tensor(float(st.get("mult", 1.0))), requires_grad=cfg.learn_mult
        )
        self.fnr_weight = torch.nn.Parameter(
            torch.tensor(float(st.get("fnr_weight", 0.75))),
            requires_grad=cfg.learn_error_weight,
        )

    def clamp_(self) -> None:
        """Keep the FNR weight in [0.05, 0.95] (done before each forward, as the original)."""
        with torch.no_grad():
            self.fnr_weight.clamp_(0.05, 0.95)

    def sharpen(self) -> torch.Tensor | None:
        """dsmax_mult x s, or None when dsmax_mult is 0 (no sharpening)."""
        if self.cfg.dsmax_mult <= 0.0:
            return None
        return self.cfg.dsmax_mult * self.mult

    def state(self) -> dict[str, float]:
        """Plain floats, for checkpoints."""
        return {"mult": float(self.mult.detach()), "fnr_weight": float(self.fnr_weight.detach())}


def stream_loss(
    cfg: LossConfig,
    logp1: torch.Tensor,
    y1: torch.Tensor,
    weight: torch.Tensor | None = None,
    e1: torch.Tensor | None = None,
    logp2: torch.Tensor | None = None,
    y2: torch.Tensor | None = None,
    e2: torch.Tensor | None = None,
    params: LossParams | None = None,
) -> torch.Tensor:
    """The configured loss of one minibatch; paired kinds need the partners (logp2, y2, e1, e2).

    ``weight`` (2,): the NLL class weights, for ``cb`` the factors of :func:`cb_weights`
    (see :func:`loss_weights`); ``params``: the loss's own parameters (:class:`LossParams`)."""
    if cfg.kind == "nll":
        return weighted_nll(logp1, y1, weight)
    if logp2 is None or y2 is None or e1 is None or e2 is None:
        raise ValueError(f"the {cfg.kind} loss needs partner items and embeddings")

    if params is not None:
        params.clamp_()
    sharpen = None if params is None else params.sharpen()
    if params is None and cfg.dsmax_mult > 0.0:
        sharpen = torch.tensor(cfg.dsmax_mult, device=logp1.device)
    fnr_weight: torch.Tensor | float = 0.75 if params is None else params.fnr_weight

    def term(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if cfg.kind == "dcf":
            return dcf_loss(logp, y, fnr_weight, sharpen)
        if cfg.kind == "imlm":
            return imlm_loss(logp, y, sharpen)
        if cfg.kind == "focal":
            return focal_loss(logp, y, None, cfg.gamma)
        if cfg.kind == "adcf":
            return adcf_loss(logp, y, cfg.adcf_temperature)
        if cfg.kind == "cb":
            if weight is None:
                raise ValueError("the cb loss needs its class factors (cb_weights)")
            return cb_nll(logp, y, weight)
        return weighted_nll(logp, y, weight)

    pair = term(logp1, y1) + term(logp2, y2)
    return cfg.nll_scale * pair + contrastive(e1, e2, y1 == y2, cfg.margin)
