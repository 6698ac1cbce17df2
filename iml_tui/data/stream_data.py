"""Features of the streaming paradigm (SPEC B.1 to B.3): LID splits and VTD sessions.

Layout under ``feat_root`` (every file a pool store, see :mod:`iml_tui.data.store`; T = 1
frame per sample, or T > 1 frames for sequence features, read with ``sequences=True``):

- **LID**: ``<feat_root>/<feature>/{train,dev,test}.h5``; labels one-hot over the corpus's
  languages (N, 1, C), ``class_list`` = language codes (``ha``, ``yo``, ...). The target language is
  chosen per run; its binary label is 1 for the target, 0 for every other language.
- **VTD**: per environment either a folder ``<feat_root>/<feature>/<env>/<session>.h5`` (one file
  per session, sessions in file-name order) or one store ``<feat_root>/<feature>/<env>.h5`` whose
  ids are ``<session>/<segment>`` (sessions in order of first appearance). Labels (N, 1, 1): 1 =
  live speech, 0 = not. One session = one batch of the stream.

Several feature sets (``features: [ecapalang, wavlm]``) are concatenated along D; their ids must
name the same samples (the order may differ: later sets are aligned to the first).

Sequence features: a store's (N, T, D) embeddings become rows (N, T D), frame-major (frame 0's
D values, then frame 1's, ...), so everything that works on rows (context stacking, the AL
methods, drift detectors) works on them unchanged and the GRU views them as (N, T, D) again;
several feature sets must have the same T and are concatenated per frame. A sample's label is
its clip label (the max over its frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iml_tui.data.orders import with_context
from iml_tui.data.store import PoolStore
from iml_tui.errors import UserError

LID_SPLITS: tuple[str, ...] = ("train", "dev", "test")
SRI_PREFIX = "rm"


@dataclass
class FeatureTable:
    """Samples of one split or environment: x (N, T D) float32 (``frames`` T per sample,
    frame-major; T = 1 for utterance-level features), classes (N,) int64 class index,
    ``class_list`` (C,), ids (N,), and per sample the session index ``session`` (N,) int64
    (LID: all 0) with ``sessions`` its names."""

    x: np.ndarray
    classes: np.ndarray
    class_list: list[str]
    ids: list[str]
    session: np.ndarray
    sessions: list[str]
    paths: list[Path]
    frames: int = 1

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def session_batches(self) -> list[np.ndarray]:
        """Index arrays (one per session, in session order) of the samples of each session."""
        return [np.flatnonzero(self.session == s) for s in range(len(self.sessions))]


def _check_root(feat_root: str | Path, features: Sequence[str]) -> Path:
    root = Path(feat_root)
    if not features:
        raise UserError("no feature set given", None, "set --features, e.g. --features ecapalang")
    if not root.is_dir():
        raise UserError(
            "feature root not found",
            root,
            "point --feat-root at the folder holding one sub-folder per feature set",
        )
    return root


def _read_store(
    path: Path, fix: str, sequences: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(x (N, T, D), labels (N, C) (max over frames), class_list, ids) of a pool store; T = 1
    unless ``sequences``, then T > 1."""
    if not path.is_file():
        raise UserError("feature file not found", path, fix)
    store = PoolStore(path)
    if store.t != 1 and not sequences:
        raise UserError(
            f"T = {store.t} frames per sample: sequence features need the GRU",
            path,
            "add --rnn-layers N (config rnn_layers, e.g. 1), or store one mean embedding per "
            "utterance or segment",
        )
    if store.t == 1 and sequences:
        raise UserError(
            "T = 1 frame per sample: rnn_layers reads sequence features (T > 1)",
            path,
            "set rnn_layers 0 for utterance-level features, or extract frame-level ones",
        )
    store.require_known(None, "a stream run (its oracle answers from the labels)")
    x = store.embeddings()
    lab = store.frame_labels().max(axis=1)
    return x, lab, store.class_list, store.ids


def _join(xs: list[np.ndarray], paths: list[Path]) -> np.ndarray:
    """(N, T, D_k) per feature set -> rows (N, T sum D_k), frame-major, float32 contiguous."""
    t0 = xs[0].shape[1]
    for x, path in zip(xs[1:], paths[1:], strict=True):
        if x.shape[1] != t0:
            raise UserError(
                f"T = {x.shape[1]} frames per sample, but {paths[0]} has T = {t0}",
                path,
                "extract every feature set with the same frames per sample",
            )
    x_all = np.concatenate(xs, axis=2) if len(xs) > 1 else xs[0]
    return np.ascontiguousarray(x_all.reshape(len(x_all), -1), dtype=np.float32)


def _align(ids: list[str], other: list[str], x_other: np.ndarray, path: Path) -> np.ndarray:
    """Rows of x_other reordered so its ids match ``ids``; UserError when they differ."""
    if other == ids:
        return x_other
    pos = {s: i for i, s in enumerate(other)}
    if len(pos) != len(other) or len(other) != len(ids) or any(s not in pos for s in ids):
        missing = next((s for s in ids if s not in pos), None)
        what = f"id {missing!r} is missing" if missing else "ids repeat or differ in number"
        raise UserError(
            f"the feature sets name different samples ({what})",
            path,
            "extract every feature set from the same audio files",
        )
    return x_other[np.array([pos[s] for s in ids], dtype=np.int64)]


def _one_hot_classes(lab: np.ndarray, path: Path) -> np.ndarray:
    sums = lab.sum(axis=1)
    if (sums != 1).any():
        row = int(np.flatnonzero(sums != 1)[0])
        raise UserError(
            f"sample {row} has {int(sums[row])} languages, expected exactly one",
            path,
            "LID labels are one-hot over the class_list of languages",
        )
    return lab.argmax(axis=1).astype(np.int64)


_LOADED: dict[tuple[object, ...], FeatureTable] = {}
_KEEP = 4  # tables kept per process (a run reads its streamed split and its bootstrap split)


def _file_key(path: Path) -> tuple[object, ...]:
    """What changes when a store is rewritten: path, size, mtime and inode (None if absent)."""
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def load_lid_split(
    feat_root: str | Path, features: Sequence[str], split: str, sequences: bool = False
) -> FeatureTable:
    """Concatenated features of one LID split; labels one-hot over the languages.
    ``sequences``: the stores hold T > 1 frames per sample (for the GRU), else T = 1.

    Read from disk once per process while its stores are unchanged (checking options, naming
    the runs and preparing each run all ask for the same split): the table and its arrays are
    shared, so they are read-only.
    """
    root = _check_root(feat_root, features)
    if split not in LID_SPLITS:
        raise UserError(f"unknown LID split {split!r}", None, f"use one of {', '.join(LID_SPLITS)}")
    key = (split, sequences, *(_file_key(root / f / f"{split}.h5") for f in features))
    table = _LOADED.get(key)
    if table is None:
        table = _read_lid_split(root, features, split, sequences)
        for array in (table.x, table.classes, table.session):
            array.setflags(write=False)
        while len(_LOADED) >= _KEEP:
            del _LOADED[next(iter(_LOADED))]
        _LOADED[key] = table
    return table


def _read_lid_split(
    root: Path, features: Sequence[str], split: str, sequences: bool
) -> FeatureTable:
    xs: list[np.ndarray] = []
    paths: list[Path] = []
    ids: list[str] = []
    classes = np.zeros(0, dtype=np.int64)
    class_list: list[str] = []
    for k, feature in enumerate(features):
        path = root / feature / f"{split}.h5"
        fix = (
            f"extract {feature} features into {root / feature}/{{train,dev,test}}.h5, "
            "or fix --feat-root / --features"
        )
        x, lab, cl, fid = _read_store(path, fix, sequences)
        if k == 0:
            ids, class_list = fid, cl
            classes = _one_hot_classes(lab, path)
            xs.append(x)
        else:
            if cl != class_list:
                raise UserError(
                    f"languages {cl} differ from {class_list} of {paths[0]}",
                    path,
                    "every feature set must use the same class_list",
                )
            xs.append(_align(ids, fid, x, path))
        paths.append(path)
    return FeatureTable(
        x=_join(xs, paths),
        classes=classes,
        class_list=class_list,
        ids=ids,
        session=np.zeros(len(ids), np.int64),
        sessions=[split],
        paths=paths,
        frames=int(xs[0].shape[1]),
    )


def lid_targets(table: FeatureTable, target: str) -> list[str]:
    """The target languages of a run: every language for "all", else the one named."""
    if target == "all":
        return list(table.class_list)
    if target not in table.class_list:
        raise UserError(
            f"target language {target!r} is not in the corpus",
            table.paths[0] if table.paths else None,
            f"use one of {', '.join(table.class_list)} or all",
        )
    return [target]


def binary_labels(table: FeatureTable, target: str) -> np.ndarray:
    """(N,) int64: 1 where the sample's class is ``target``, else 0."""
    return (table.classes == table.class_list.index(target)).astype(np.int64)


# --- VTD ---------------------------------------------------------------------------------------
def list_vtd_envs(feat_root: str | Path, feature: str) -> list[str]:
    """Environments of a feature set: its sub-folders holding .h5 files and its .h5 files."""
    base = Path(feat_root) / feature
    if not base.is_dir():
        return []
    envs = {p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.h5"))}
    envs |= {p.stem for p in base.glob("*.h5")}
    return sorted(envs)


def _session_of(sample_id: str) -> str:
    return sample_id.rsplit("/", 1)[0] if "/" in sample_id else ""


def _read_vtd_env(
    base: Path, env: str, sequences: bool
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], list[int], list[Path]]:
    """(x, y, ids, session names, session index per sample, paths) of one feature set."""
    folder, single = base / env, base / f"{env}.h5"
    fix = (
        f"put one pool store per session in {folder}/ or one store {single} with ids "
        "<session>/<segment>"
    )
    if folder.is_dir():
        files = sorted(folder.glob("*.h5"))
        if not files:
            raise UserError("no session files (*.h5) in the environment folder", folder, fix)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        ids: list[str] = []
        sess: list[int] = []
        for s, f in enumerate(files):
            x, lab, _, fid = _read_store(f, fix, sequences)
            _check_vtd_labels(lab, f)
            if xs and x.shape[1] != xs[0].shape[1]:
                raise UserError(
                    f"T = {x.shape[1]} frames per sample, but {files[0]} has T = {xs[0].shape[1]}",
                    f,
                    "extract every session with the same frames per sample",
                )
            xs.append(x)
            ys.append(lab[:, 0])
            ids.extend(fid)
            sess.extend([s] * len(fid))
        return (
            np.concatenate(xs),
            np.concatenate(ys).astype(np.int64),
            ids,
            [f.stem for f in files],
            sess,
            files,
        )
    if single.is_file():
        x, lab, _, fid = _read_store(single, fix, sequences)
        _check_vtd_labels(lab, single)
        names = list(dict.fromkeys(_session_of(i) for i in fid))
        if names == [""]:
            raise UserError("ids carry no session (expected <session>/<segment>)", single, fix)
        index = {n: k for k, n in enumerate(names)}
        return (
            x,
            lab[:, 0].astype(np.int64),
            fid,
            names,
            [index[_session_of(i)] for i in fid],
            [single],
        )
    raise UserError(f"environment {env!r} not found", base, fix)


def _check_vtd_labels(lab: np.ndarray, path: Path) -> None:
    if lab.shape[1] != 1:
        raise UserError(
            f"{lab.shape[1]} classes, expected one (1 = live speech)",
            path,
            "VTD stores hold one 0/1 label per segment",
        )


def load_vtd_env(
    feat_root: str | Path, features: Sequence[str], env: str, sequences: bool = False
) -> FeatureTable:
    """Concatenated features of one VTD environment; ``classes`` are the 0/1 labels.
    ``sequences``: the stores hold T > 1 frames per sample (for the GRU), else T = 1."""
    root = _check_root(feat_root, features)
    first: tuple[np.ndarray, np.ndarray, list[str], list[str], list[int], list[Path]] | None
    first = None
    xs: list[np.ndarray] = []
    firsts: list[Path] = []
    for feature in features:
        base = root / feature
        if not base.is_dir():
            raise UserError(
                f"feature set {feature!r} not found", base, "fix --features or --feat-root"
            )
        x, y, ids, names, sess, paths = _read_vtd_env(base, env, sequences)
        firsts.append(paths[0])
        if first is None:
            first = (x, y, ids, names, sess, paths)
            xs.append(x)
        else:
            if names != first[3]:
                raise UserError(
                    f"sessions {names} differ from {first[3]}",
                    paths[0],
                    "every feature set must hold the same sessions",
                )
            xs.append(_align(first[2], ids, x, paths[0]))
    assert first is not None
    _, y0, ids0, names0, sess0, paths0 = first
    return FeatureTable(
        x=_join(xs, firsts),
        classes=y0,
        class_list=["live"],
        ids=ids0,
        session=np.asarray(sess0, np.int64),
        sessions=names0,
        paths=paths0,
        frames=int(xs[0].shape[1]),
    )


def other_corpus_envs(feat_root: str | Path, feature: str, env: str) -> list[str]:
    """Out-of-domain bootstrap environments for ``env``: SRI rooms (``rm*``) take the other
    corpus's environments and vice versa; when none exist, every other environment."""
    envs = [e for e in list_vtd_envs(feat_root, feature) if e != env]
    sri = env.startswith(SRI_PREFIX)
    other = [e for e in envs if e.startswith(SRI_PREFIX) != sri]
    return other or envs


# --- bootstrap ---------------------------------------------------------------------------------
@dataclass
class BootSource:
    """Labelled samples to draw the bootstrap from, already stacked with context:
    x (M, T D (2c+1)), y (M,) int64, ids (M,), and where they come from."""

    x: np.ndarray
    y: np.ndarray
    ids: list[str]
    name: str


def context_by_batches(x: np.ndarray, batches: Sequence[np.ndarray], context: int) -> np.ndarray:
    """(N, D) -> (N, D (2c+1)): each batch (index array, in order) stacked with its own context
    (for sequence rows, the neighbours' frames follow each other in time order)."""
    out = np.zeros((len(x), x.shape[1] * (2 * context + 1)), dtype=np.float32)
    for idx in batches:
        if len(idx):
            out[idx] = with_context(x[idx], context)
    return out


def draw_bootstrap(
    y: np.ndarray, n: int, rng: np.random.Generator, candidates: np.ndarray | None = None
) -> np.ndarray:
    """Indices (<= n,) int64: ceil(n/2) targets and the rest non-targets, drawn at random.

    A class with too few samples gives what it has; the other class fills up to n.
    """
    ya = np.asarray(y).astype(np.int64)
    cand = np.arange(len(ya)) if candidates is None else np.asarray(candidates, np.int64)
    pos = cand[ya[cand] == 1]
    neg = cand[ya[cand] == 0]
    want_pos = min(len(pos), (n + 1) // 2)
    want_neg = min(len(neg), n - want_pos)
    want_pos = min(len(pos), n - want_neg)
    picked = np.concatenate(
        [rng.choice(pos, want_pos, replace=False), rng.choice(neg, want_neg, replace=False)]
    )
    return np.sort(picked.astype(np.int64))
