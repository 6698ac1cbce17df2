"""Synthetic train / valid / test pools shaped like the paper's AL set (SPEC A.1).

Why: the real pool (DCASE 2024 Task 5 validation set through a fine-tuned CNN14) is 5.6 GB that
users must build themselves. Tests, benchmarks and the demo need pools on which the selection
strategies behave as they do on real data: clips come from a few dozen recordings, each class
lives in the recordings of its site, two classes are rare, events are short runs of frames, some
sounds resemble the target classes, and the annotations are a little noisy.

The generative model (all randomness from ``SynthConfig.seed``)
----------------------------------------------------------------
Everything happens in a small latent space (``latent_dim``) that a fixed random affine map plus a
ReLU lifts to the D-dimensional, non-negative frame embeddings (like post-ReLU CNN features)::

    x[i, t] = relu(b + W^T z[i, t] + iso_noise * u[i, t])          u: uniform, unit variance
    z[i, t] = centre[k_i] + clip_offset[i] + ar1_noise[i, t]
              + sum over the clip's events e:  env_e[t] * pattern_e[i]

- **Recordings**: ``n_clusters`` centres (std ``cluster_spread``) with Dirichlet sizes. The
  classes are grouped into sites as in the DCASE data (HB: Mosquito, RD: Red_Deer, ME: both
  meerkat classes, PB: Song_thrush and Blackbird, PW: Pilot_whale). The site with the most
  positives owns ``clusters_per_site`` recordings, a smaller site fewer (with the square root of
  its share, at least 2; ``site_recordings``): the common classes are spread over many recordings,
  the rare meerkats live in two. Positive clips of a class are drawn only from its site's
  recordings; negative clips from all recordings, so some recordings hold background only.
- **Clip labels**: per pool exactly ``round(prior * N)`` positive clips per class (at least
  ``min_positives`` for a class with a non-zero prior), one positive class per clip as in the
  paper's AL set; ``overlap`` (default 0) gives that share of positive clips a second event class
  from the same site.
- **Events**: 1 to ``max_events`` contiguous frame runs per positive clip; the run length is a
  class-specific share of the clip (within ``event_len``), the amplitude log-uniform in ``snr``
  (weak events are hard). Each run spills ``edge`` of its amplitude onto the frame before and after
  it (the encoder's temporal pooling), unlabelled. The pattern is the class's direction, varied per
  recording (``site_var``: a call sounds different in each recording) and per clip
  (``class_var``).
- **Confusers** (other species, noise): ``n_confusers`` sound types, each a near-miss of one class
  pattern (cosine drawn from ``confuser_mix``) and, like the classes, varied per recording
  (``site_var``). A ``confuser_rate`` share of all clips carries unlabelled events of a random
  type.
- **Frame labels** ``(N, T, C)`` uint8 mark the events' runs. Label noise: each event is missed by
  the annotator (signal present, label 0) with probability ``label_noise`` -- except that a
  positive clip always keeps at least one labelled event, so clip-level counts stay exact -- and,
  independently with the same probability, its labelled run is off by one frame at one end.
  Label noise changes no random draw: the embeddings do not depend on it.

What the defaults are tuned for: on the small pool ``iml_tui.data.demo.DEMO_POOL`` the frame
signal is clean enough for a fully supervised ceiling near the paper's 75 % frame mAP (events at
least ``snr[0]`` strong, small spill, confuser types at most ``confuser_mix[1]`` cosine-close to a
class), while the variation between recordings (many recordings per common class, strong
``site_var``, confusers that differ per recording) keeps labelled clips from further recordings
useful, so the learning curves keep rising from a warm start, and farthest-first selection, which
covers recordings and outlying events, beats random selection from a cold start and finds the rare
clips. (At t = 32 events span more frames and the task is easier: about 88 % on a 3000-clip,
d = 256 pool.)

Reproducibility: the world (centres, patterns, map) comes from ``[seed, 0]``, each split's plan
(clip classes, recordings, confusers) from ``[seed, 1, split]``, each block of ``BLOCK_ROWS`` clips
from ``[seed, 2, split, block]``. The same config gives bit-identical arrays; valid and test are
drawn from the same distribution as train with different streams.

Generation is vectorised and block-wise (``BLOCK_ROWS`` clips at a time), so the paper-scale train
pool (21414 x 32 x 2048 float32 = 5.6 GB) never sits in memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iml_tui.callbacks import ProgressFn
from iml_tui.data.dcase import AL_CLASSES
from iml_tui.data.store import PoolMeta, PoolWriter

#: The 7 classes of the paper's AL set, in SPEC A.1 order (those of the DCASE AL division).
PAPER_CLASSES: tuple[str, ...] = AL_CLASSES
#: Clip-level positives per class in the paper's train pool of 21414 clips (SPEC A.1).
PAPER_TRAIN_POSITIVES: tuple[int, ...] = (1207, 1024, 19, 6, 193, 196, 1089)
PAPER_TRAIN_CLIPS = 21414
#: Recording site of each class (HB, RD, ME, ME, PB, PB, PW in the DCASE validation set).
PAPER_SITES: tuple[int, ...] = (0, 1, 2, 2, 3, 3, 4)

SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Clips generated (and written) per step; also the unit of the random streams, so changing it
#: changes the data.
BLOCK_ROWS = 1000


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic pools (see the module docstring for the model).

    Sizes: ``n_train`` is the paper's train pool. The paper does not report its valid / test pool
    sizes; ``n_valid = n_test = 4600`` is our choice, about 15/70 of the train pool, matching the
    70 / 15 / 15 temporal split of each file (SPEC A.1).
    Latent-space scales are in units of the class-pattern norm (1).
    """

    n_train: int = 21414
    n_valid: int = 4600
    n_test: int = 4600
    t: int = 32
    d: int = 2048
    class_list: tuple[str, ...] = PAPER_CLASSES
    priors: tuple[float, ...] = tuple(p / PAPER_TRAIN_CLIPS for p in PAPER_TRAIN_POSITIVES)
    sites: tuple[int, ...] = PAPER_SITES
    n_clusters: int = 40
    clusters_per_site: int = 6
    min_positives: int = 1
    label_noise: float = 0.02
    latent_dim: int = 32
    cluster_spread: float = 0.4
    clip_spread: float = 0.1
    frame_noise: float = 0.3
    frame_corr: float = 0.5
    iso_noise: float = 0.3
    bias: float = 0.3
    snr: tuple[float, float] = (1.5, 6.0)
    event_len: tuple[float, float] = (0.05, 0.25)
    max_events: int = 3
    edge: float = 0.2
    class_var: float = 0.5
    site_var: float = 1.0
    confuser_rate: float = 0.3
    n_confusers: int = 12
    confuser_mix: tuple[float, float] = (0.3, 0.7)
    overlap: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        c = len(self.class_list)
        if c == 0:
            raise ValueError("class_list is empty")
        if len(self.priors) != c or len(self.sites) != c:
            raise ValueError(
                f"priors ({len(self.priors)}) and sites ({len(self.sites)}) need "
                f"one entry per class ({c})"
            )
        if any(p < 0 for p in self.priors) or sum(self.priors) > 1:
            raise ValueError("priors must be >= 0 and sum to at most 1")
        if min(self.n_train, self.n_valid, self.n_test) < 1 or self.t < 1 or self.d < 1:
            raise ValueError("n_train, n_valid, n_test, t and d must be >= 1")
        if self.n_clusters < 1 or self.clusters_per_site < 1 or self.latent_dim < 1:
            raise ValueError("n_clusters, clusters_per_site and latent_dim must be >= 1")
        if self.max_events < 1 or self.min_positives < 0:
            raise ValueError("max_events must be >= 1 and min_positives >= 0")
        for name in ("label_noise", "confuser_rate", "overlap", "frame_corr"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.n_confusers < 1:
            raise ValueError("n_confusers must be >= 1")
        if not 0.0 <= self.confuser_mix[0] <= self.confuser_mix[1] <= 1.0:
            raise ValueError("confuser_mix must be (low, high) cosines with 0 <= low <= high <= 1")
        if not 0 < self.snr[0] <= self.snr[1]:
            raise ValueError("snr must be (low, high) with 0 < low <= high")
        if not 0 < self.event_len[0] <= self.event_len[1] <= 1:
            raise ValueError("event_len must be (low, high) shares of the clip in (0, 1]")

    def size(self, split: str) -> int:
        return {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}[split]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SynthConfig:
        """The config stored in a pool's ``synth_config`` attribute."""
        raw: dict[str, Any] = json.loads(text)
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**fields)


def class_counts(cfg: SynthConfig, n: int) -> np.ndarray:
    """Positive clips per class in a pool of ``n`` clips: round(prior * n), at least
    ``min_positives`` for a class with a non-zero prior, trimmed (largest first) to fit ``n``."""
    priors = np.asarray(cfg.priors, dtype=np.float64)
    counts = np.rint(priors * n).astype(np.int64)
    counts = np.where(priors > 0, np.maximum(counts, cfg.min_positives), 0)
    while counts.sum() > n:
        counts[int(np.argmax(counts))] -= 1
    return counts


def site_recordings(cfg: SynthConfig) -> dict[int, int]:
    """Recordings per site: ``clusters_per_site`` for the site with the most positives, fewer
    (with the square root of the site's share of positives, at least 2) for smaller sites."""
    share: dict[int, float] = {}
    for s, p in zip(cfg.sites, cfg.priors, strict=True):
        share[s] = share.get(s, 0.0) + p
    top = max(share.values())
    cps = cfg.clusters_per_site
    return {
        s: int(np.clip(round(cps * math.sqrt(v / top)) if top > 0 else cps, min(2, cps), cps))
        for s, v in sorted(share.items())
    }


# --- the shared world ------------------------------------------------------------------------
@dataclass(frozen=True)
class _World:
    centres: np.ndarray  # (K, r)
    weights: np.ndarray  # (K,) recording sizes
    site_clusters: list[np.ndarray]  # per class: the recordings it lives in
    patterns: np.ndarray  # (C, K, r) class pattern as heard in each recording
    confusers: np.ndarray  # (J, K, r) other sounds, near-misses of class patterns, per recording
    len_share: np.ndarray  # (C,) typical event length as a share of the clip
    w: np.ndarray  # (r, D)
    b: np.ndarray  # (D,)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.where(n == 0, 1.0, n))


def _world(cfg: SynthConfig) -> _World:
    rng = np.random.default_rng([cfg.seed, 0])
    k, r, c = cfg.n_clusters, cfg.latent_dim, len(cfg.class_list)
    centres = rng.standard_normal((k, r)) * cfg.cluster_spread
    weights = rng.dirichlet(np.full(k, 2.0))
    order = rng.permutation(k)
    n_rec = site_recordings(cfg)
    ends = np.cumsum(list(n_rec.values()))
    per_site = {
        s: np.sort(np.take(order, np.arange(e - m, e), mode="wrap"))
        for (s, m), e in zip(n_rec.items(), ends.tolist(), strict=True)
    }
    site_clusters = [per_site[s] for s in cfg.sites]
    base = _unit(rng.standard_normal((c, r)))
    variants = base[:, None, :] + cfg.site_var * _unit(rng.standard_normal((c, k, r)))
    patterns = _unit(variants)
    j = cfg.n_confusers
    mix = rng.uniform(*cfg.confuser_mix, (j, 1))
    near = base[np.arange(j) % c]
    conf_base = _unit(mix * near + np.sqrt(1 - mix * mix) * _unit(rng.standard_normal((j, r))))
    confusers = _unit(conf_base[:, None, :] + cfg.site_var * _unit(rng.standard_normal((j, k, r))))
    lo, hi = cfg.event_len
    len_share = rng.uniform(lo, hi, c)
    w = rng.standard_normal((r, cfg.d)) / math.sqrt(r)
    b = cfg.bias + 0.5 * cfg.bias * rng.standard_normal(cfg.d)
    return _World(
        centres,
        weights,
        site_clusters,
        patterns,
        confusers,
        len_share,
        w.astype(np.float32),
        b.astype(np.float32),
    )


# --- a split's plan --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    cls: np.ndarray  # (N,) positive class or -1
    cls2: np.ndarray  # (N,) second (overlapping) class or -1
    cluster: np.ndarray  # (N,) recording
    confuser: np.ndarray  # (N,) confuser type or -1
    ids: list[str]


def _plan(cfg: SynthConfig, world: _World, split: str) -> _Plan:
    n = cfg.size(split)
    rng = np.random.default_rng([cfg.seed, 1, SPLITS.index(split)])
    counts = class_counts(cfg, n)
    cls = np.full(n, -1, dtype=np.int64)
    cls[: counts.sum()] = np.repeat(np.arange(len(counts)), counts)
    cls = cls[rng.permutation(n)]
    k = cfg.n_clusters
    cluster = rng.choice(k, size=n, p=world.weights)  # negatives: any recording
    for c, sites in enumerate(world.site_clusters):
        rows = np.flatnonzero(cls == c)
        p = world.weights[sites] / world.weights[sites].sum()
        cluster[rows] = sites[rng.choice(sites.size, size=rows.size, p=p)]
    cls2 = np.full(n, -1, dtype=np.int64)
    pos = np.flatnonzero(cls >= 0)
    extra = pos[rng.random(pos.size) < cfg.overlap]
    site_arr = np.asarray(cfg.sites)
    for i in extra:
        same = np.flatnonzero((site_arr == site_arr[cls[i]]) & (np.arange(site_arr.size) != cls[i]))
        others = same if same.size else np.delete(np.arange(site_arr.size), cls[i])
        if others.size:
            cls2[i] = others[rng.integers(others.size)]
    has_conf = rng.random(n) < cfg.confuser_rate
    confuser = np.where(has_conf, rng.integers(0, cfg.n_confusers, n), -1)
    # ids: recording name and the clip's offset in it (10 s windows, 5 s hop)
    order = np.argsort(cluster, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    starts = np.searchsorted(cluster[order], np.arange(k))
    rank[order] = np.arange(n) - np.repeat(starts, np.bincount(cluster, minlength=k))
    ids = [
        f"synth_{split}_rec{kk:03d}.wav@{5 * j}s"
        for kk, j in zip(cluster.tolist(), rank.tolist(), strict=True)
    ]
    return _Plan(cls, cls2, cluster, confuser, ids)


# --- dense generation ------------------------------------------------------------------------
def _events(
    rng: np.random.Generator,
    cfg: SynthConfig,
    active: np.ndarray,
    share: np.ndarray,
    labelled: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Envelope (B, T) float32 and labelled frames (B, T) bool of one event slot per clip.

    ``active``: (B,) clips with events in this slot; ``share``: (B,) typical length share.
    All draws happen for every clip so the stream does not depend on which clips are active.
    """
    bsz, t = active.size, cfg.t
    frames = np.arange(t)[None, :]
    n_ev = 1 + rng.binomial(cfg.max_events - 1, 0.35, bsz)
    env = np.zeros((bsz, t), dtype=np.float32)
    lab = np.zeros((bsz, t), dtype=bool)
    first_run = lab
    lo, hi = math.log(cfg.snr[0]), math.log(cfg.snr[1])
    for e in range(cfg.max_events):
        length = np.clip(np.rint(share * t * rng.uniform(0.5, 1.5, bsz)), 1, t).astype(np.int64)
        start = np.floor(rng.random(bsz) * (t - length + 1)).astype(np.int64)
        amp = np.exp(rng.uniform(lo, hi, bsz)).astype(np.float32)
        missed = rng.random(bsz) < cfg.label_noise
        jitter = rng.random(bsz) < cfg.label_noise
        side = rng.integers(0, 4, bsz)  # start -1 / start +1 / end -1 / end +1
        on = active & (e < n_ev)
        stop = start + length
        inside = (frames >= start[:, None]) & (frames < stop[:, None])
        spill = (frames == start[:, None] - 1) | (frames == stop[:, None])
        level = np.where(inside, 1.0, np.where(spill, cfg.edge, 0.0)) * amp[:, None]
        env = np.maximum(env, np.where(on[:, None], level, 0.0).astype(np.float32))
        if labelled:
            shift = np.where(side % 2 == 0, -1, 1) * jitter
            l0 = start + np.where(side < 2, shift, 0)
            l1 = stop + np.where(side >= 2, shift, 0)
            l0 = np.clip(np.minimum(l0, l1 - 1), 0, t - 1)
            l1 = np.clip(np.maximum(l1, l0 + 1), 1, t)
            run = (frames >= l0[:, None]) & (frames < l1[:, None])
            if e == 0:
                first_run = run
            lab |= run & (on & ~missed)[:, None]
    if labelled:
        # the annotator misses single events, never a whole positive clip: clip counts stay exact
        lost = active & ~lab.any(axis=1)
        lab[lost] = first_run[lost]
    return env, lab


def _block(
    cfg: SynthConfig,
    world: _World,
    plan: _Plan,
    split: str,
    block: int,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (B, T, D) float32 and frame labels (B, T, C) uint8 of one block of clips."""
    lo = block * BLOCK_ROWS
    hi = min(cfg.size(split), lo + BLOCK_ROWS)
    bsz, t, r, d, c = hi - lo, cfg.t, cfg.latent_dim, cfg.d, len(cfg.class_list)
    rng = np.random.default_rng([cfg.seed, 2, SPLITS.index(split), block])
    cls, cls2 = plan.cls[lo:hi], plan.cls2[lo:hi]
    cluster, conf = plan.cluster[lo:hi], plan.confuser[lo:hi]

    # background: recording centre + clip offset + AR(1) frame noise
    z = np.empty((bsz, t, r), dtype=np.float32)
    eps = rng.standard_normal((bsz, t, r)).astype(np.float32) * cfg.frame_noise
    rho = cfg.frame_corr
    z[:, 0] = eps[:, 0]
    for k in range(1, t):
        z[:, k] = rho * z[:, k - 1] + math.sqrt(1 - rho * rho) * eps[:, k]
    offset = world.centres[cluster] + cfg.clip_spread * rng.standard_normal((bsz, r))
    z += offset.astype(np.float32)[:, None, :]

    labels = np.zeros((bsz, t, c), dtype=np.uint8)
    rows = np.arange(bsz)
    for slot, (which, labelled) in enumerate(((cls, True), (cls2, True), (conf, False))):
        active = which >= 0
        safe = np.where(active, which, 0)
        share = world.len_share[safe] if slot < 2 else np.full(bsz, np.mean(cfg.event_len))
        env, lab = _events(rng, cfg, active, share, labelled)
        base = world.patterns[safe, cluster] if slot < 2 else world.confusers[safe, cluster]
        vec = base + cfg.class_var * _unit(rng.standard_normal((bsz, r))) * rng.random((bsz, 1))
        if active.any():
            z += env[:, :, None] * vec.astype(np.float32)[:, None, :]
        if labelled and active.any():
            labels[rows[active], :, safe[active]] |= lab[active].astype(np.uint8)

    # lift to D dims: relu(b + z W + iso noise); iso noise is uniform from raw random bits
    if out is None or out.shape != (bsz * t, d):
        out = np.empty((bsz * t, d), dtype=np.float32)
    np.matmul(z.reshape(bsz * t, r), world.w, out=out)
    out += world.b
    if cfg.iso_noise > 0:
        scale = np.float32(cfg.iso_noise / math.sqrt((256**2 - 1) / 12))
        step = max(1, (1 << 24) // d)  # ~16 MB of noise bytes at a time
        for s in range(0, bsz * t, step):
            e = min(bsz * t, s + step)
            raw = rng.bit_generator.random_raw(((e - s) * d + 7) // 8)
            noise = raw.astype("<u8", copy=False).view(np.int8)[: (e - s) * d]
            out[s:e] += noise.reshape(e - s, d) * scale
    np.maximum(out, 0, out=out)
    return out.reshape(bsz, t, d), labels


def iter_split(
    cfg: SynthConfig, split: str
) -> Iterator[tuple[int, np.ndarray, np.ndarray, list[str]]]:
    """Yield ``(start, embeddings, labels, ids)`` blocks of ``BLOCK_ROWS`` clips of one split.

    The embeddings array is a buffer reused by the next block: copy it to keep it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    world = _world(cfg)
    plan = _plan(cfg, world, split)
    n = cfg.size(split)
    buf: np.ndarray | None = None
    for block in range(math.ceil(n / BLOCK_ROWS)):
        emb, lab = _block(cfg, world, plan, split, block, buf)
        buf = emb.reshape(-1, cfg.d)
        lo = block * BLOCK_ROWS
        yield lo, emb, lab, plan.ids[lo : lo + emb.shape[0]]


def synth_split(cfg: SynthConfig, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One whole split in memory: embeddings (N, T, D) float32, labels (N, T, C) uint8, ids.

    For small configurations (tests); use ``synth_pools`` for paper-scale pools.
    """
    n = cfg.size(split)
    emb = np.empty((n, cfg.t, cfg.d), dtype=np.float32)
    lab = np.empty((n, cfg.t, len(cfg.class_list)), dtype=np.uint8)
    ids: list[str] = []
    for lo, e, lb, i in iter_split(cfg, split):
        emb[lo : lo + e.shape[0]] = e
        lab[lo : lo + e.shape[0]] = lb
        ids.extend(i)
    return emb, lab, ids


def synth_pools(
    out_dir: str | Path, cfg: SynthConfig | None = None, progress: ProgressFn | None = None
) -> dict[str, Path]:
    """Write ``train.h5``, ``valid.h5`` and ``test.h5`` into ``out_dir``; return their paths.

    Written block by block with ``PoolWriter`` (each file appears atomically when complete).
    """
    cfg = cfg or SynthConfig()
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for split in SPLITS:
        n = cfg.size(split)
        meta = PoolMeta(
            encoder="synth",
            clip_seconds=10.0,
            hop_seconds=5.0,
            frame_layout="T frames per 10 s clip",
            extra={"synth_config": cfg.to_json(), "synth_split": split},
        )
        writer = PoolWriter(out / f"{split}.h5", n, cfg.t, cfg.d, cfg.class_list, meta)
        try:
            for lo, emb, lab, ids in iter_split(cfg, split):
                writer.write_block(lo, emb, lab, ids)
                if progress is not None:
                    progress(split, lo + emb.shape[0], n)
        except BaseException:
            writer.abort()
            raise
        paths[split] = writer.close()
    return paths
