"""Active-learning ranking of one stream batch (SPEC B.5).

Shapes: n samples in the batch, raw ``logits`` (n, 2) (before LogSoftmax; class 1 = target),
inputs ``x`` (n, D), ``labelled_x`` (m, D). :func:`rank_queries` returns a permutation of
``range(n)``, best query first; ties go to the lowest index. Base methods score every sample
(:func:`query_scores`, higher = asked earlier):

- ``smax``: lowest max-softmax first (score = -max p)
- ``ent``: highest entropy of p
- ``necs``: highest -logsumexp(logits) (negative energy)
- ``rand``: uniform random scores from ``rng``
- ``egl``: expected gradient length over every parameter of the model (eval mode): for each
  candidate label k the norm of the NLL's gradient, expected under the model's own p
- ``egl-last``: the same w.r.t. the last Linear layer only, in closed form:
  sum_k p_k ||p - e_k|| sqrt(||h||^2 + 1), h = its input
- ``pert``: the 2D single-coordinate perturbations x +- ``pert_eps`` e_j plus x itself; score =
  the share of those 2D + 1 decisions that differ from the unperturbed one
- ``pert-rand``: share of ``n_pert`` random +-``pert_eps`` sign perturbations of all of x that
  flip the model's decision (cheaper on wide inputs)
- ``cover``: greedy facility location (k-median) over the batch: repeatedly the sample that
  minimises the batch's summed distance (Euclidean) to the nearest pick
- ``cover-kcenter``: greedy coverage (farthest-first): repeatedly the sample farthest from the
  labelled pool and the samples already picked
Combos: ``rank`` (sum of the ranks of every listed method, default smax + necs), ``split`` (the two
methods alternate, so the top n_q holds half of each), ``plateau`` (necs when the batch's mean
max-softmax > 0.9, else smax), ``combo-rand`` (per batch a fair coin picks the first or the
second method), ``combo-clf`` (a classifier picks: its ``predict`` on [[mean max softmax, mean
negative energy, labelled items + n_q]] gives 0 for the first method, else the second; the
original's ``combo clf``). ``split``, ``plateau``, ``combo-rand`` and ``combo-clf`` take the top
n_q of their order without ``adapt_distr``, as the original; ``rank`` honours it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from iml_tui.engine.feedback import interleave
from iml_tui.errors import UserError

BASE_METHODS: tuple[str, ...] = (
    "smax",
    "ent",
    "necs",
    "rand",
    "egl",
    "egl-last",
    "pert",
    "pert-rand",
    "cover",
    "cover-kcenter",
)
COMBO_METHODS: tuple[str, ...] = ("rank", "split", "plateau", "combo-rand", "combo-clf")
# combos that bypass adapt_distr in the original (their order is cut at n_q directly)
NO_ADAPT_COMBOS: frozenset[str] = frozenset({"split", "plateau", "combo-rand", "combo-clf"})
SWITCH_COMBOS: frozenset[str] = frozenset({"combo-rand", "combo-clf"})
METHODS: tuple[str, ...] = BASE_METHODS + COMBO_METHODS
PLATEAU_SMAX = 0.9
_CHUNK = 8192
_PERT_ROWS = 4096
_EGL_FLOATS = 1 << 25  # Jacobian floats held at once by egl (128 MiB in float32)


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


class _LogitsOf(nn.Module):
    """``model.logits`` as a module's forward, so :func:`torch.func.functional_call` can run it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model.logits(x)  # type: ignore[operator]
        return out


def egl_scores(model: ScoringModel, x: np.ndarray, max_floats: int = _EGL_FLOATS) -> np.ndarray:
    """Expected gradient length (n,) over every parameter of the model, in eval mode.

    For item x: sum_k p_k ||grad_theta NLL(x, k)|| with p = the model's softmax, theta all
    parameters (BatchNorm affine included, running statistics fixed). Per-item Jacobians of
    log p (C x P floats each) are formed ``max_floats`` // (C P) items at a time.
    """
    if not isinstance(model, nn.Module):
        raise ValueError("egl needs a torch model (gradients over its parameters)")
    dev = _device(model)
    wrapper = _LogitsOf(model)
    params = {k: v.detach() for k, v in wrapper.named_parameters()}
    buffers = {k: v.detach() for k, v in wrapper.named_buffers()}
    n_par = sum(v.numel() for v in params.values())

    def logp_one(p: dict[str, torch.Tensor], x1: torch.Tensor) -> torch.Tensor:
        z = torch.func.functional_call(wrapper, (p, buffers), (x1[None],))
        return torch.log_softmax(z, dim=1)[0]

    jac_fn = torch.func.vmap(torch.func.jacrev(logp_one), in_dims=(None, 0))
    out = np.empty(len(x), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            n_cls = int(model.logits(_as_tensor(x[:1], dev)).shape[1]) if len(x) else 2
        step = max(1, max_floats // max(1, n_cls * n_par))
        for s in range(0, len(x), step):
            xt = _as_tensor(x[s : s + step], dev)
            jac = jac_fn(params, xt)  # name -> (b, C, *shape): d log p_k / d theta
            sq = sum(j.detach().double().pow(2).flatten(2).sum(2) for j in jac.values())
            with torch.no_grad():
                prob = torch.softmax(model.logits(xt).double(), dim=1)
            # ||grad NLL(x, k)|| = ||d log p_k / d theta||
            out[s : s + len(xt)] = (prob * torch.as_tensor(sq).sqrt()).sum(1).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def egl_last_scores(model: ScoringModel, x: np.ndarray) -> np.ndarray:
    """``egl-last``: expected gradient length (n,) w.r.t. the last Linear layer only (weights and
    bias), in closed form: sum_k p_k ||p - e_k|| sqrt(||h||^2 + 1), h = that layer's input."""
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


def _decisions(model: ScoringModel, x: np.ndarray, dev: torch.device) -> np.ndarray:
    """argmax decisions (n,) of ``model.logits`` on x (n, D), in chunks."""
    out = np.empty(len(x), dtype=np.int64)
    for s in range(0, len(x), _CHUNK):
        out[s : s + _CHUNK] = model.logits(_as_tensor(x[s : s + _CHUNK], dev)).argmax(1).cpu()
    return out


def pert_scores(model: ScoringModel, x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Share (n,) of the 2D + 1 decisions that differ from the unperturbed one.

    The 2D + 1 inputs of item x (D,): x itself and x +- eps e_j for every coordinate j; the
    unperturbed input never differs, so the share is (flips among the 2D) / (2D + 1). Costs
    2D model rows per item, formed about 4096 rows at a time.
    """
    xa = np.asarray(x, dtype=np.float32)
    n, d = xa.shape
    dev = _device(model)
    flips = np.zeros(n, dtype=np.float64)
    steps = np.concatenate([np.eye(d), -np.eye(d)]).astype(np.float32) * np.float32(eps)
    with _EvalMode(model):
        base = _decisions(model, xa, dev)
        per = max(1, _PERT_ROWS // (2 * d))
        for s in range(0, n, per):
            xs = xa[s : s + per]
            xp = (xs[:, None, :] + steps[None]).reshape(-1, d)
            dec = _decisions(model, xp, dev).reshape(len(xs), 2 * d)
            flips[s : s + len(xs)] = (dec != base[s : s + len(xs), None]).sum(axis=1)
    return flips / (2 * d + 1)


def pert_rand_scores(
    model: ScoringModel,
    x: np.ndarray,
    rng: np.random.Generator,
    n_pert: int = 10,
    eps: float = 1e-3,
) -> np.ndarray:
    """``pert-rand``: share (n,) of ``n_pert`` random perturbations x + eps * s,
    s in {-1, +1}^D, that flip argmax (a cheaper stand-in for ``pert`` on wide inputs).

    Signs are drawn from ``rng`` a few perturbations at a time (memory stays ~4096 rows).
    """
    xa = np.asarray(x, dtype=np.float32)
    n, d = xa.shape
    dev = _device(model)
    flips = np.zeros(n, dtype=np.float64)
    with _EvalMode(model):
        base = _decisions(model, xa, dev)
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


def cover_order(x: np.ndarray, n_select: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy facility location (k-median) over the batch x (n, D), Euclidean distances d.

    Each of the first ``n_select`` picks (all n when None) is the free candidate c minimising
    the objective sum_i min(d(i, chosen), d(i, c)) over the whole batch (the first pick: the
    medoid); the chosen set starts empty. The rest follow by that objective after the greedy
    part, lowest first. Ties by lowest index.
    Returns (order (n,) int64, gain (n,) float64): the objective decrease each item brings when
    taken (the rest: if taken after the greedy part), the empty set's objective being n d_max
    (d_max: the batch's largest distance). Gains are non-increasing along the order.
    """
    xa = np.asarray(x, dtype=np.float64)
    n = len(xa)
    dist = np.sqrt(_sq_dists(xa, xa))  # (n, n), symmetric
    np.fill_diagonal(dist, 0.0)
    d_max = float(dist.max()) if n else 0.0
    k = n if n_select is None else min(n, max(0, n_select))
    cur = np.full(n, d_max)  # each item's distance to the chosen set (capped at d_max)
    prev = n * d_max
    free = np.ones(n, dtype=bool)
    picked: list[int] = []
    gain = np.zeros(n, dtype=np.float64)
    for _ in range(k):
        obj = np.minimum(cur[:, None], dist).sum(axis=0)  # (n,): the objective if c joins
        obj[~free] = np.inf
        c = int(np.argmin(obj))  # first minimum: lowest index on ties
        gain[c] = prev - float(obj[c])
        prev = float(obj[c])
        picked.append(c)
        free[c] = False
        cur = np.minimum(cur, dist[:, c])
    rest = np.flatnonzero(free)
    if len(rest):
        obj = np.minimum(cur[:, None], dist[:, rest]).sum(axis=0)
        gain[rest] = prev - obj
        rest = rest[np.argsort(obj, kind="stable")]
    order = np.concatenate([np.array(picked, dtype=np.int64), rest]).astype(np.int64)
    return order, gain


def kcenter_order(
    x: np.ndarray, labelled_x: np.ndarray | None, n_select: int | None = None
) -> np.ndarray:
    """``cover-kcenter``: greedy coverage (farthest-first): pick the sample farthest from the
    labelled pool + picked, ``n_select`` times (all n when None).

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
    """Per-sample score (n,) of a base method, higher = asked earlier. ``cover``: the gain of
    :func:`cover_order` (full greedy); ``cover-kcenter``: the distance to the labelled pool."""
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
    if method in ("cover", "cover-kcenter"):
        if x is None:
            raise ValueError(f"{method} needs x")
        if method == "cover":
            return cover_order(x)[1]
        ref = np.zeros((0, np.asarray(x).shape[1])) if labelled_x is None else labelled_x
        return np.sqrt(min_sq_dist(x, ref))
    if method in ("egl", "egl-last", "pert", "pert-rand"):
        if model is None or x is None:
            raise ValueError(f"{method} needs the model and x")
        if method == "egl":
            return egl_scores(model, x)
        if method == "egl-last":
            return egl_last_scores(model, x)
        if method == "pert":
            return pert_scores(model, x, eps=pert_eps)
        if rng is None:
            raise ValueError("pert-rand needs an rng")
        return pert_rand_scores(model, x, rng, n_pert=n_pert, eps=pert_eps)
    raise UserError(f"unknown AL method {method!r}", fix=f"use one of {', '.join(METHODS)}")


class Chooser(Protocol):
    """What ``combo-clf`` needs of a classifier (scikit-learn's ``predict``)."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


def switch_method(
    method: str,
    combo: Sequence[str],
    logits: np.ndarray,
    n_labelled: int,
    n_q: int,
    rng: np.random.Generator | None = None,
    clf: Chooser | None = None,
) -> str:
    """The base method ``combo-rand`` / ``combo-clf`` use for this batch: combo[0] or combo[1].

    ``combo-rand``: combo[rng.integers(2)]; ``combo-clf``: combo[0] when clf.predict([[mean max
    softmax, mean -logsumexp(logits), n_labelled + n_q]])[0] == 0, else combo[1]."""
    if len(combo) != 2:
        raise UserError(f"{method} switches between exactly two methods, got {list(combo)}")
    if method == "combo-rand":
        if rng is None:
            raise ValueError("combo-rand needs an rng")
        return combo[int(rng.integers(2))]
    if method != "combo-clf":
        raise ValueError(f"{method!r} is not a switching combo")
    if clf is None:
        raise UserError("combo-clf needs its classifier", fix="set combo_clf to the pickled file")
    lg = np.asarray(logits, dtype=np.float64)
    smax = float(softmax(lg).max(axis=1).mean()) if len(lg) else 0.0
    necs = float((-_logsumexp(lg)).mean()) if len(lg) else 0.0
    feat = np.array([[smax, necs, float(n_labelled + n_q)]])
    return combo[0] if int(np.asarray(clf.predict(feat)).ravel()[0]) == 0 else combo[1]


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
    n_labelled: int = 0,
    clf: Chooser | None = None,
) -> np.ndarray:
    """Order (n,) int64 of the batch's samples, best query first; ties by lowest index.

    ``combo`` names the methods of ``rank`` (two or more) and ``split``, ``combo-rand``,
    ``combo-clf`` (two). ``n_select`` bounds the greedy part of ``cover`` and ``cover-kcenter``
    (the top n_select are exact); ``n_labelled`` and ``clf`` feed ``combo-clf``.
    """
    n = len(logits)

    def base(m: str) -> np.ndarray:
        if m in COMBO_METHODS:
            raise UserError(f"combo {method!r} cannot contain the combo {m!r}")
        if m in ("cover", "cover-kcenter"):
            if x is None:
                raise ValueError(f"{m} needs x")
            if m == "cover":
                return cover_order(x, n_select)[0]
            return kcenter_order(x, labelled_x, n_select)
        scores = query_scores(
            m, logits, x, labelled_x, model, rng, n_pert=n_pert, pert_eps=pert_eps
        )
        return order_by_score(scores)

    if method in BASE_METHODS:
        return base(method)
    if method == "plateau":
        mean_smax = float(softmax(np.asarray(logits)).max(axis=1).mean()) if n else 0.0
        return base("necs" if mean_smax > PLATEAU_SMAX else "smax")
    if method in SWITCH_COMBOS:
        return base(switch_method(method, combo, logits, n_labelled, n_select or 0, rng, clf))
    if method == "split":
        if len(combo) != 2:
            raise UserError(f"split combines exactly two methods, got {list(combo)}")
        return interleave([base(m) for m in combo])
    if method == "rank":
        if len(combo) < 2:
            raise UserError(f"rank combines two or more methods, got {list(combo)}")
        return rank_sum([base(m) for m in combo])
    raise UserError(f"unknown AL method {method!r}", fix=f"use one of {', '.join(METHODS)}")


def rank_sum(orders: Sequence[np.ndarray]) -> np.ndarray:
    """Order (n,) by the sum of each item's rank (its position) in every order; ties by lowest
    index. (The original summed the argsort outputs, the items at each position.)"""
    n = len(orders[0]) if orders else 0
    ranks = np.zeros(n, dtype=np.int64)
    for o in orders:
        ranks[np.asarray(o, dtype=np.int64)] += np.arange(n)
    return np.argsort(ranks, kind="stable").astype(np.int64)
