"""Synthetic LID and VTD feature stores for tests, benchmarks and demos (layout of
:mod:`iml_tui.data.stream_data`).

The generative model (all randomness from the config's ``seed``): a small latent space
(``latent`` dims) that each feature set maps to its own D with a fixed random linear map plus
isotropic noise, so several feature sets describe the same samples::

    x_f[i] = W_f^T z[i] + feat_noise * u          W_f: (latent, D_f) ~ N(0, 1 / latent)
    z[i]   = mean[class_i] + mode[class_i, m_i] + shift[split or session] + drift * t_i * dir
             + noise * g

- **LID**: each language is a Gaussian cluster (means at distance ~ ``separation`` * sqrt 2 from
  each other) with ``modes`` sub-clusters (speakers, channels); every split gets its own offset
  (``split_shift``: train is out of domain for dev and test), and within a split each language
  drifts along its own direction with the sample's latent time t in [0, 1) (``drift``). Ids are
  ``common_voice_{lang}_{k:08d}.mp3`` with k increasing with t; rows are stored shuffled.
- **VTD**: live speech (1) vs playback (0), two clusters ``separation`` apart; each environment
  and each session get their own offset (``env_shift``, ``session_shift``: sessions drift), the
  live share of a session is uniform in ``live_share``, and labels come in runs (a two-state
  Markov chain that keeps its state with probability ``stay``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iml_tui.data.store import PoolMeta, write_pool

FeatureSpec = tuple[str, int]


@dataclass(frozen=True)
class LidSynthConfig:
    """Sizes are samples per language per split."""

    languages: tuple[str, ...] = ("ha", "yo", "bas")
    n_train: int = 200
    n_dev: int = 200
    n_test: int = 200
    features: tuple[FeatureSpec, ...] = (("ecapalang", 16),)
    latent: int = 8
    separation: float = 2.0
    modes: int = 3
    mode_spread: float = 0.8
    noise: float = 1.0
    feat_noise: float = 0.1
    split_shift: float = 0.7
    drift: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if len(set(self.languages)) != len(self.languages) or len(self.languages) < 2:
            raise ValueError("LID needs at least two distinct languages")
        if min(self.n_train, self.n_dev, self.n_test) < 1 or self.latent < 1 or self.modes < 1:
            raise ValueError("sizes must be positive")
        if not self.features or any(d < 1 for _, d in self.features):
            raise ValueError("features need positive dimensions")


@dataclass(frozen=True)
class VtdSynthConfig:
    """Environments x sessions x segments; ``single_file`` writes one store per environment."""

    envs: tuple[str, ...] = ("rm1_mc20", "apartment_mc19")
    sessions: int = 3
    segments: int = 720
    features: tuple[FeatureSpec, ...] = (("wavlm", 16),)
    latent: int = 8
    separation: float = 2.5
    noise: float = 1.0
    feat_noise: float = 0.1
    env_shift: float = 1.0
    session_shift: float = 0.5
    live_share: tuple[float, float] = (0.2, 0.6)
    stay: float = 0.95
    single_file: bool = False
    seed: int = 0
    extra_meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.envs or self.sessions < 1 or self.segments < 2:
            raise ValueError("need at least one environment, one session and two segments")
        lo, hi = self.live_share
        if not 0.0 <= lo <= hi <= 1.0 or not 0.0 < self.stay < 1.0:
            raise ValueError("live_share must be 0 <= lo <= hi <= 1 and stay in (0, 1)")


def _unit(rng: np.random.Generator, k: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(k, dim))
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))


def _maps(
    rng: np.random.Generator, latent: int, features: Sequence[FeatureSpec]
) -> list[np.ndarray]:
    return [rng.normal(scale=1.0 / np.sqrt(latent), size=(latent, d)) for _, d in features]


def _project(z: np.ndarray, w: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    x = z @ w + noise * rng.normal(size=(len(z), w.shape[1]))
    return np.asarray(x[:, None, :], dtype=np.float32)


def synth_lid(root: str | Path, cfg: LidSynthConfig = LidSynthConfig()) -> list[Path]:
    """Write ``<root>/<feature>/{train,dev,test}.h5`` for every feature set; returns the paths."""
    root = Path(root)
    world = np.random.default_rng([cfg.seed, 0])
    n_lang = len(cfg.languages)
    means = cfg.separation * _unit(world, n_lang, cfg.latent)
    modes = cfg.mode_spread * world.normal(size=(n_lang, cfg.modes, cfg.latent))
    dirs = _unit(world, n_lang, cfg.latent)
    domain = _unit(world, 1, cfg.latent)[0]
    maps = _maps(world, cfg.latent, cfg.features)
    paths: list[Path] = []
    sizes = {"train": cfg.n_train, "dev": cfg.n_dev, "test": cfg.n_test}
    for s, (split, per_lang) in enumerate(sizes.items()):
        rng = np.random.default_rng([cfg.seed, 1, s])
        # train is out of domain; dev and test share their domain but not their samples
        shift = 0.0 if split == "train" else cfg.split_shift * domain
        lang = np.repeat(np.arange(n_lang), per_lang)
        t = np.concatenate([np.sort(rng.random(per_lang)) for _ in range(n_lang)])
        mode = rng.integers(0, cfg.modes, size=len(lang))
        z = (
            means[lang]
            + modes[lang, mode]
            + shift
            + cfg.drift * t[:, None] * dirs[lang]
            + cfg.noise * rng.normal(size=(len(lang), cfg.latent))
        )
        ids = [
            f"common_voice_{cfg.languages[li]}_{k % per_lang:08d}.mp3" for k, li in enumerate(lang)
        ]
        perm = rng.permutation(len(lang))
        labels = np.zeros((len(lang), 1, n_lang), dtype=np.uint8)
        labels[np.arange(len(lang)), 0, lang] = 1
        for (feature, _), w in zip(cfg.features, maps, strict=True):
            x = _project(z, w, cfg.feat_noise, rng)
            meta = PoolMeta(
                encoder=f"synthetic-{feature}",
                frame_layout="utterance mean",
                extra={"synthetic": "lid", "seed": cfg.seed},
            )
            paths.append(
                write_pool(
                    root / feature / f"{split}.h5",
                    x[perm],
                    labels[perm],
                    list(cfg.languages),
                    [ids[i] for i in perm],
                    meta,
                )
            )
    return paths


def _runs(rng: np.random.Generator, n: int, share: float, stay: float) -> np.ndarray:
    """0/1 labels (n,) with long runs: a Markov chain whose stationary share of 1s is ``share``."""
    share = min(max(share, 1e-3), 1.0 - 1e-3)
    # switching probabilities with stationary distribution share and mean run ~ 1 / (1 - stay)
    leave = 1.0 - stay
    p10 = leave * (1.0 - share) / max(share, 1.0 - share)  # 1 -> 0
    p01 = leave * share / max(share, 1.0 - share)  # 0 -> 1
    y = np.zeros(n, dtype=np.int64)
    y[0] = int(rng.random() < share)
    u = rng.random(n)
    for i in range(1, n):
        y[i] = (u[i] >= p10) if y[i - 1] == 1 else (u[i] < p01)
    return y


def synth_vtd(root: str | Path, cfg: VtdSynthConfig = VtdSynthConfig()) -> list[Path]:
    """Write VTD sessions for every environment and feature set; returns the paths."""
    root = Path(root)
    world = np.random.default_rng([cfg.seed, 0])
    direction = _unit(world, 1, cfg.latent)[0]
    centre = 0.5 * cfg.separation * direction
    maps = _maps(world, cfg.latent, cfg.features)
    paths: list[Path] = []
    for e, env in enumerate(cfg.envs):
        rng = np.random.default_rng([cfg.seed, 1, e])
        env_off = cfg.env_shift * _unit(rng, 1, cfg.latent)[0]
        per_session: list[tuple[str, np.ndarray, np.ndarray, list[str]]] = []
        for s in range(cfg.sessions):
            name = f"{env}_s{s:03d}"
            share = rng.uniform(*cfg.live_share)
            y = _runs(rng, cfg.segments, share, cfg.stay)
            off = env_off + cfg.session_shift * rng.normal(size=cfg.latent)
            z = (
                np.where(y[:, None] == 1, centre, -centre)
                + off
                + cfg.noise * rng.normal(size=(cfg.segments, cfg.latent))
            )
            ids = [f"{name}/{k:05d}" for k in range(cfg.segments)]
            per_session.append((name, z, y, ids))
        for (feature, _), w in zip(cfg.features, maps, strict=True):
            meta = PoolMeta(
                encoder=f"synthetic-{feature}",
                frame_layout="segment mean",
                clip_seconds=5.0,
                hop_seconds=5.0,
                extra={"synthetic": "vtd", "seed": cfg.seed, **cfg.extra_meta},
            )
            xs = [
                (_project(z, w, cfg.feat_noise, rng), y, ids, name)
                for name, z, y, ids in per_session
            ]
            if cfg.single_file:
                x = np.concatenate([a for a, _, _, _ in xs])
                y_all = np.concatenate([b for _, b, _, _ in xs]).astype(np.uint8)
                ids_all = [i for _, _, c, _ in xs for i in c]
                paths.append(
                    write_pool(
                        root / feature / f"{env}.h5",
                        x,
                        y_all[:, None, None],
                        ["live"],
                        ids_all,
                        meta,
                    )
                )
            else:
                for x, y, ids, name in xs:
                    paths.append(
                        write_pool(
                            root / feature / env / f"{name}.h5",
                            x,
                            y.astype(np.uint8)[:, None, None],
                            ["live"],
                            ids,
                            meta,
                        )
                    )
    return paths
