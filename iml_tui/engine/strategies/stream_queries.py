"""Active-learning ranking of one stream batch (SPEC B.5).

Shapes: n samples in the batch, raw ``logits`` (n, 2) (before LogSoftmax; class 1 = target),
inputs ``x`` (n, D), ``labelled_x`` (m, D). :func:`rank_queries` returns a permutation of
``range(n)``, best query first; ties go to the lowest index. Base methods score every sample
(:func:`query_scores`, higher = asked earlier):

- ``smax``: lowest max-softmax first (score = -max p)
- ``ent``: highest entropy of p
- ``necs``: highest -logsumexp(logits) (negative energy)
- ``rand``: uniform random scores from ``rng``
- ``egl``: expected gradient length of the NLL w.r.t. the last Linear layer (weights and bias),
  expectation under the model's own p: sum_k p_k ||p - e_k|| sqrt(||h||^2 + 1), h = its input
- ``pert``: share of ``n_pert`` random +-``pert_eps`` sign perturbations of x that flip the
  model's decision
- ``cover``: greedy coverage (farthest-first): repeatedly the sample farthest (Euclidean) from
  the labelled pool and the samples already picked
Combos: ``rank`` (sum of the ranks of two methods, default smax + necs), ``split`` (the two
methods alternate, so the top n_q holds half of each), ``plateau`` (necs when the batch's mean
max-softmax > 0.9, else smax).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from iml_tui.engine.feedback import interleave
from iml_tui.errors import UserError

BASE_METHODS: tuple[str, ...] = ("smax", "ent", "necs", "rand", "egl", "pert", "cover")
COMBO_METHODS: tuple[str, ...] = ("rank", "split", "plateau")
METHODS: tuple[str, ...] = BASE_METHODS + COMBO_METHODS
PLATEAU_SMAX = 0.9
_CHUNK = 8192
_PERT_ROWS = 4096


class ScoringModel(Protocol):
    """What ``egl`` and ``pert`` need of a model (CompClassModel fits)."""

    @property
    def head(self) -> nn.Linear: ...

    def head_input(self, x: torch.Tensor) -> torch.Tensor: ...

    def logits(self, x: torch.Tensor) -> torch.Tensor: ...


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax (n, C) in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    mx = z.max(axis=1)
    return np.asarray(mx + np.log(np.exp(z - mx[:, None]).sum(axis=1)))


def order_by_score(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score; ties by lowest index."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable").astype(np.int64)


def _device(model: object) -> torch.device:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


class _EvalMode:
    """Context: a torch module in eval mode and no autograd; its mode restored after."""

    def __init__(self, model: object) -> None:
        self.model = model if isinstance(model, nn.Module) else None
        self.was_training = False
        self._grad = torch.inference_mode()

    def __enter__(self) -> None:
        if self.model is not None:
            self.was_training = self.model.training
            self.model.eval()
        self._grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._grad.__exit__(None, None, None)
        if self.model is not None:
            self.model.train(self.was_training)


def _as_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)


def egl_scores(model: ScoringModel, x: np.ndarray) -> np.ndarray:
    """Expected gradient length (n,) w.r.t. the last Linear layer, from the model's own p."""
    dev = _device(model)
    out = np.empty(len(x), dtype=np.float64)
    with _EvalMode(model):
        for s in range(0, len(x), _CHUNK):
            h = model.head_input(_as_tensor(x[s : s + _CHUNK], dev))
            p = torch.softmax(model.head(h).double(), dim=1)
            h = h.double()
            eye = torch.eye(p.shape[1], dtype=p.dtype, device=p.device)
            # ||p - e_k|| for each k: (B, C)
            dist = (p[:, None, :] - eye[None]).norm(dim=2)
            scale = torch.sqrt(h.pow(2).sum(dim=1) + 1.0)
            out[s : s + len(h)] = ((p * dist).sum(dim=1) * scale).cpu().numpy()
    return out


def pert_scores(
    model: ScoringModel,
    x: np.ndarray,
    rng: np.random.Generator,
    n_pert: int = 10,
    eps: float = 1e-3,
) -> np.ndarray:
    """Share (n,) of ``n_pert`` perturbations x + eps * s, s in {-1, +1}^D, flipping argmax.

    Signs are drawn from ``rng`` a few perturbations at a time (memory stays ~4096 rows).
    """
    xa = np.asarray(x, dtype=np.float32)
    n, d = xa.shape
    dev = _device(model)
    flips = np.zeros(n, dtype=np.float64)
    with _EvalMode(model):
        base = np.empty(n, dtype=np.int64)
        for s in range(0, n, _CHUNK):
            base[s : s + _CHUNK] = model.logits(_as_tensor(xa[s : s + _CHUNK], dev)).argmax(1).cpu()
        per = max(1, _PERT_ROWS // max(1, n))
        for k in range(0, n_pert, per):
            m = min(per, n_pert - k)
            signs = rng.integers(0, 2, size=(m, n, d)).astype(np.float32) * 2.0 - 1.0
            xp = (xa[None] + np.float32(eps) * signs).reshape(-1, d)
            dec = model.logits(_as_tensor(xp, dev)).argmax(1).cpu().numpy().reshape(-1, n)
            flips += (dec != base[None]).sum(axis=0)
    return flips / max(1, n_pert)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), float64, clipped at 0."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    d = (a64 * a64).sum(1)[:, None] + (b64 * b64).sum(1)[None] - 2.0 * a64 @ b64.T
    return np.maximum(d, 0.0)


def min_sq_dist(x: np.ndarray, ref: np.ndarray, block: int = 1024) -> np.ndarray:
    """Squared distance (n,) of each row of x to its nearest row of ref (inf if ref is empty)."""
    xa = np.asarray(x, dtype=np.float64)
    out = np.full(len(xa), np.inf)
    r = np.asarray(ref, dtype=np.float64)
    if r.size == 0:
        return out
    r = r.reshape(len(r), -1)
    for s in range(0, len(r), block):
        out = np.minimum(out, _sq_dists(xa, r[s : s + block]).min(axis=1))
    return out


def cover_order(
    x: np.ndarray, labelled_x: np.ndarray | None, n_select: int | None = None
) -> np.ndarray:
    """Greedy coverage: pick the sample farthest from labelled + picked, ``n_select`` times.

    The rest follow by their then distance, farthest first. Ties by lowest index.
    """
    xa = np.asarray(x, dtype=np.float64)
    n = len(xa)
    ref = np.zeros((0, xa.shape[1])) if labelled_x is None else labelled_x
    mind = min_sq_dist(xa, ref)
    k = n if n_select is None else min(n, max(0, n_select))
    picked: list[int] = []
    free = np.ones(n, dtype=bool)
    for _ in range(k):
        cand = np.where(free, mind, -1.0)
        i = int(np.argmax(cand))  # first maximum: lowest index on ties (inf included)
        picked.append(i)
        free[i] = False
        mind = np.minimum(mind, ((xa - xa[i]) ** 2).sum(axis=1))
    rest = np.flatnonzero(free)
    rest = rest[order_by_score(mind[rest])]
    return np.concatenate([np.array(picked, dtype=np.int64), rest]).astype(np.int64)


def query_scores(
    method: str,
    logits: np.ndarray,
    x: np.ndarray | None = None,
    labelled_x: np.ndarray | None = None,
    model: ScoringModel | None = None,
    rng: np.random.Generator | None = None,
    *,
    n_pert: int = 10,
    pert_eps: float = 1e-3,
) -> np.ndarray:
    """Per-sample score (n,) of a base method, higher = asked earlier (``cover``: min distance
    to the labelled pool). The mean is the ``metric`` column of scores.csv."""
    lg = np.asarray(logits, dtype=np.float64)
    if method == "smax":
        return np.asarray(-softmax(lg).max(axis=1))
    if method == "ent":
        p = softmax(lg)
        return np.asarray(-(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1))
    if method == "necs":
        return np.asarray(-_logsumexp(lg))
    if method == "rand":
        if rng is None:
            raise ValueError("rand needs an rng")
        return rng.random(len(lg))
    if method == "cover":
        if x is None:
            raise ValueError("cover needs x")
        ref = np.zeros((0, np.asarray(x).shape[1])) if labelled_x is None else labelled_x
        return np.sqrt(min_sq_dist(x, ref))
    if method in ("egl", "pert"):
        if model is None or x is None:
            raise ValueError(f"{method} needs the model and x")
        if method == "egl":
            return egl_scores(model, x)
        if rng is None:
            raise ValueError("pert needs an rng")
        return pert_scores(model, x, rng, n_pert=n_pert, eps=pert_eps)
    raise UserError(f"unknown AL method {method!r}", fix=f"use one of {', '.join(METHODS)}")


def rank_queries(
    method: str,
    logits: np.ndarray,
    x: np.ndarray | None,
    labelled_x: np.ndarray | None,
    model: ScoringModel | None,
    rng: np.random.Generator | None,
    *,
    combo: Sequence[str] = ("smax", "necs"),
    n_select: int | None = None,
    n_pert: int = 10,
    pert_eps: float = 1e-3,
) -> np.ndarray:
    """Order (n,) int64 of the batch's samples, best query first; ties by lowest index.

    ``combo`` names the two methods of ``rank`` and ``split``. ``n_select`` bounds the greedy
    part of ``cover`` (the top n_select are exact; the rest follow by distance).
    """
    n = len(logits)

    def base(m: str) -> np.ndarray:
        if m in COMBO_METHODS:
            raise UserError(f"combo {method!r} cannot contain the combo {m!r}")
        if m == "cover":
            if x is None:
                raise ValueError("cover needs x")
            return cover_order(x, labelled_x, n_select)
        scores = query_scores(
            m, logits, x, labelled_x, model, rng, n_pert=n_pert, pert_eps=pert_eps
        )
        return order_by_score(scores)

    if method in BASE_METHODS:
        return base(method)
    if method == "plateau":
        mean_smax = float(softmax(np.asarray(logits)).max(axis=1).mean()) if n else 0.0
        return base("necs" if mean_smax > PLATEAU_SMAX else "smax")
    if method in ("rank", "split"):
        if len(combo) != 2:
            raise UserError(f"{method} combines exactly two methods, got {list(combo)}")
        orders = [base(m) for m in combo]
        if method == "split":
            return interleave(orders)
        ranks = np.zeros(n, dtype=np.int64)
        for o in orders:
            ranks[o] += np.arange(n)
        return np.argsort(ranks, kind="stable").astype(np.int64)
    raise UserError(f"unknown AL method {method!r}", fix=f"use one of {', '.join(METHODS)}")
