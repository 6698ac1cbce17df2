"""The pool store: one HDF5 file per split holding embeddings, frame targets and their ids.

Layout (datasets):
- ``embeddings`` (N, T, D) float32 — frame embeddings (T = 1 for utterance-level features);
- ``labels``     (N, T, C) uint8   — frame targets, 0/1;
- ``class_list`` (C,)      str
- ``ids``        (N,)      str     — source file and offset of each clip;
- ``derived/pooled_max_l2`` (N, D) float32 (float16 after ``pool convert``) — time-max-pooled,
  L2-normalised embeddings, the only array selection reads. Computed once, in blocks, when absent.
- optional ``labelled`` (N,) bool — which rows' labels are known (pools of the user's own
  recordings: annotated recordings True, the rest False). Absent = every row known. Unknown rows
  hold zeros in ``labels`` that are not negatives: :meth:`PoolStore.frame_labels` and
  :meth:`PoolStore.clip_labels` refuse them (see :meth:`PoolStore.require_known`);
- optional ``extra/<name>`` (N, ...) — a second output of the encoder kept next to the embeddings
  (e.g. ``extra/birdnet_logits`` (N, T, 6522) float16 species logits), with the names along its
  last axis in ``extra/<name>_names`` (K,) str; see :class:`ExtraDataset`. Nothing reads them for
  selection; ``PoolStore.extra(name)`` returns one.

Attributes describe how the embeddings were made (encoder, checkpoint hash, sample rate, clip and
hop seconds, frame layout, creation time, tool version).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from iml_tui import __version__
from iml_tui.errors import UserError

POOLED_KEY = "derived/pooled_max_l2"
KNOWN_KEY = "labelled"
REQUIRED = ("embeddings", "labels", "class_list", "ids")
_BLOCK_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class PoolMeta:
    """Descriptive attributes stored with a pool."""

    encoder: str = "unknown"
    checkpoint_hash: str = ""
    sample_rate: int = 0
    clip_seconds: float = 0.0
    hop_seconds: float = 0.0
    frame_layout: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtraDataset:
    """An optional per-clip array stored as ``extra/<name>`` (N, *shape) of ``dtype``.

    ``axis_names`` (K,) label the last axis (stored as ``extra/<name>_names``); ``doc`` is kept as
    the dataset's ``doc`` attribute.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    axis_names: tuple[str, ...] = ()
    doc: str = ""


EXTRA_GROUP = "extra"


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(x / norms, dtype=np.float32)


def write_pool(
    path: str | Path,
    embeddings: np.ndarray,
    labels: np.ndarray,
    class_list: Sequence[str],
    ids: Sequence[str],
    meta: PoolMeta | None = None,
    known: np.ndarray | None = None,
) -> Path:
    """Write a complete pool store to ``path`` (replaced atomically) and return the path.

    embeddings: (N, T, D) float; labels: (N, T, C) 0/1; known: optional (N,) bool mask of the
    rows whose labels are known (stored as ``labelled``).
    """
    path = Path(path)
    writer = PoolWriter(
        path,
        embeddings.shape[0],
        embeddings.shape[1],
        embeddings.shape[2],
        class_list,
        meta,
        known_mask=known is not None,
    )
    writer.write_block(0, embeddings, labels, ids, known=known)
    return writer.close()


class PoolWriter:
    """Write a pool block by block (for pools larger than memory); publishes on ``close``.

    The file is written as ``<path>.partial`` and renamed into place once complete, so a reader
    never sees half a pool.
    """

    def __init__(
        self,
        path: str | Path,
        n: int,
        t: int,
        d: int,
        class_list: Sequence[str],
        meta: PoolMeta | None = None,
        extras: Sequence[ExtraDataset] = (),
        known_mask: bool = False,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.n = n
        self._f = h5py.File(self.tmp, "w")
        str_dt = h5py.string_dtype()
        self._f.create_dataset("embeddings", shape=(n, t, d), dtype=np.float32)
        self._f.create_dataset("labels", shape=(n, t, len(class_list)), dtype=np.uint8)
        self._f.create_dataset(
            "class_list", data=np.array(list(class_list), dtype=object), dtype=str_dt
        )
        self._f.create_dataset("ids", shape=(n,), dtype=str_dt)
        meta = meta or PoolMeta()
        attrs = self._f.attrs
        attrs["encoder"] = meta.encoder
        attrs["checkpoint_hash"] = meta.checkpoint_hash
        attrs["sample_rate"] = meta.sample_rate
        attrs["clip_seconds"] = meta.clip_seconds
        attrs["hop_seconds"] = meta.hop_seconds
        attrs["frame_layout"] = meta.frame_layout
        attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        attrs["tool_version"] = __version__
        for key, value in meta.extra.items():
            attrs[key] = value
        self._pooled = np.zeros((n, d), dtype=np.float32)
        self.known_mask = known_mask
        if known_mask:
            self._f.create_dataset(KNOWN_KEY, shape=(n,), dtype=bool)
        self.extras = {e.name: e for e in extras}
        for e in extras:
            ds = self._f.create_dataset(
                f"{EXTRA_GROUP}/{e.name}", shape=(n, *e.shape), dtype=np.dtype(e.dtype)
            )
            ds.attrs["doc"] = e.doc
            if e.axis_names:
                self._f.create_dataset(
                    f"{EXTRA_GROUP}/{e.name}_names",
                    data=np.array(list(e.axis_names), dtype=object),
                    dtype=str_dt,
                )

    def write_block(
        self,
        start: int,
        embeddings: np.ndarray,
        labels: np.ndarray,
        ids: Sequence[str],
        extras: dict[str, np.ndarray] | None = None,
        known: np.ndarray | None = None,
    ) -> None:
        """Write rows ``start:start+len(embeddings)``; embeddings (B, T, D), labels (B, T, C),
        ``extras`` {name: (B, *shape)} for every :class:`ExtraDataset` given at construction;
        ``known`` (B,) bool, required when the writer was made with ``known_mask``."""
        stop = start + embeddings.shape[0]
        if self.known_mask:
            if known is None or np.shape(known) != (embeddings.shape[0],):
                raise ValueError("a pool with a known-label mask needs known (B,) per block")
            self._f[KNOWN_KEY][start:stop] = np.asarray(known, dtype=bool)
        elif known is not None:
            raise ValueError("known given to a writer made without known_mask")
        if labels.shape[0] != embeddings.shape[0] or len(ids) != embeddings.shape[0]:
            raise ValueError("embeddings, labels and ids must have the same number of rows")
        extras = extras or {}
        if set(extras) != set(self.extras):
            raise ValueError(f"expected extras {sorted(self.extras)}, got {sorted(extras)}")
        for name, arr in extras.items():
            if arr.shape != (embeddings.shape[0], *self.extras[name].shape):
                raise ValueError(
                    f"extra {name!r} has shape {arr.shape}, expected "
                    f"{(embeddings.shape[0], *self.extras[name].shape)}"
                )
            self._f[f"{EXTRA_GROUP}/{name}"][start:stop] = arr.astype(self.extras[name].dtype)
        emb = np.asarray(embeddings, dtype=np.float32)
        self._f["embeddings"][start:stop] = emb
        self._f["labels"][start:stop] = np.asarray(labels, dtype=np.uint8)
        self._f["ids"][start:stop] = np.array(list(ids), dtype=object)
        self._pooled[start:stop] = _l2_normalise(emb.max(axis=1))

    def abort(self) -> None:
        """Close and delete the unfinished file; nothing is published."""
        self._f.close()
        self.tmp.unlink(missing_ok=True)

    def close(self) -> Path:
        """Write the derived pooled array, flush, and move the file into place."""
        self._f.create_dataset(POOLED_KEY, data=self._pooled)
        self._f.close()
        self.tmp.replace(self.path)
        return self.path


class PoolStore:
    """Read access to a validated pool file.

    ``embeddings`` are read lazily; ``pooled()`` returns the (N, D) selection array without ever
    touching the (N, T, D) dataset once the cache exists.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(
                "pool file not found",
                self.path,
                "check the path, or create pools with `iml-tui pool synth`",
            )
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise UserError(
                f"not a readable HDF5 pool file ({exc})",
                self.path,
                "re-create it with `iml-tui extract` or `iml-tui pool synth`",
            ) from exc
        with f:
            self._validate(f)
            self.class_list: list[str] = [_as_str(c) for c in f["class_list"][()]]
            self.n, self.t, self.d = (int(s) for s in f["embeddings"].shape)
            self.c = len(self.class_list)
            self.attrs: dict[str, Any] = {k: _attr_value(v) for k, v in f.attrs.items()}
            self._has_pooled = POOLED_KEY in f
            self._known: np.ndarray | None = (
                np.asarray(f[KNOWN_KEY][()], dtype=bool) if KNOWN_KEY in f else None
            )
            group = f.get(EXTRA_GROUP)
            self.extra_names: list[str] = sorted(
                k
                for k in (group.keys() if isinstance(group, h5py.Group) else ())
                if not (k.endswith("_names") and k[: -len("_names")] in group)
            )
        self._ids: list[str] | None = None
        self._frame_labels: np.ndarray | None = None
        self._pooled: np.ndarray | None = None
        self._pooled_scanned = False

    def _validate(self, f: h5py.File) -> None:
        for name in REQUIRED:
            if name not in f:
                raise UserError(
                    f"dataset '{name}' is missing",
                    self.path,
                    f"a pool store needs the datasets {', '.join(REQUIRED)}",
                )
        emb, lab = f["embeddings"], f["labels"]
        if emb.ndim != 3:
            raise UserError(
                f"dataset 'embeddings' has shape {emb.shape}, expected (N, T, D)",
                self.path,
                "re-extract the features into a fresh pool file",
            )
        if emb.dtype != np.float32:
            raise UserError(
                f"dataset 'embeddings' has dtype {emb.dtype}, expected float32",
                self.path,
                "re-extract the features into a fresh pool file",
            )
        n, t, _ = emb.shape
        ncls = f["class_list"].shape[0] if f["class_list"].ndim == 1 else -1
        if lab.ndim != 3 or lab.shape[:2] != (n, t) or lab.shape[2] != ncls:
            raise UserError(
                f"dataset 'labels' has shape {lab.shape}, expected ({n}, {t}, {ncls}) to match "
                "'embeddings' and 'class_list'",
                self.path,
                "re-create the pool so labels are (N, T, C) frame targets",
            )
        if f["ids"].shape != (n,):
            raise UserError(
                f"dataset 'ids' has shape {f['ids'].shape}, expected ({n},)",
                self.path,
                "re-create the pool with one id per clip",
            )
        if n == 0:
            raise UserError("the pool holds no clips", self.path, "re-create it with data")
        if KNOWN_KEY in f and f[KNOWN_KEY].shape != (n,):
            raise UserError(
                f"dataset '{KNOWN_KEY}' has shape {f[KNOWN_KEY].shape}, expected ({n},)",
                self.path,
                "re-extract the pool from its prepared split",
            )
        if POOLED_KEY in f and f[POOLED_KEY].dtype not in (np.float16, np.float32):
            raise UserError(
                f"dataset '{POOLED_KEY}' has dtype {f[POOLED_KEY].dtype}, expected "
                "float32 or float16",
                self.path,
                f"delete the '{POOLED_KEY}' dataset; it is rebuilt on next use",
            )
        if POOLED_KEY in f and f[POOLED_KEY].shape != (n, emb.shape[2]):
            raise UserError(
                f"dataset '{POOLED_KEY}' has shape {f[POOLED_KEY].shape}, expected "
                f"({n}, {emb.shape[2]})",
                self.path,
                f"delete the '{POOLED_KEY}' dataset; it is rebuilt on next use",
            )

    # --- lazily read parts -------------------------------------------------------------------
    def extra(self, name: str, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """The optional dataset ``extra/<name>`` (N, ...) as float32/its dtype; rows ``rows``."""
        if name not in self.extra_names:
            raise UserError(
                f"the pool has no extra output {name!r} (it has: "
                f"{', '.join(self.extra_names) or 'none'})",
                self.path,
                "extract with the encoder option that writes it (e.g. logits=true)",
            )
        with h5py.File(self.path, "r") as f:
            ds = f[f"{EXTRA_GROUP}/{name}"]
            if rows is None:
                return np.asarray(ds[()])
            if isinstance(rows, slice):
                return np.asarray(ds[rows])
            idx = np.asarray(rows, dtype=np.int64)
            order = np.argsort(idx, kind="stable")
            out = np.empty((idx.size, *ds.shape[1:]), dtype=ds.dtype)
            uniq, inverse = np.unique(idx[order], return_inverse=True)
            if uniq.size:
                out[order] = np.asarray(ds[uniq])[inverse]
            return out

    def extra_axis_names(self, name: str) -> list[str]:
        """Names along the last axis of ``extra/<name>`` ([] when not stored)."""
        with h5py.File(self.path, "r") as f:
            key = f"{EXTRA_GROUP}/{name}_names"
            return [_as_str(s) for s in f[key][()]] if key in f else []

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            with h5py.File(self.path, "r") as f:
                self._ids = [_as_str(s) for s in f["ids"][()]]
        return self._ids

    def clip_seconds(
        self, fix: str = "re-extract it from a prepared split with clip seconds"
    ) -> float:
        """Seconds per clip (the ``clip_seconds`` attribute); UserError saying ``fix`` when the
        store does not state it."""
        clip = float(self.attrs.get("clip_seconds") or 0.0)
        if clip <= 0:
            raise UserError("the pool does not state its clip length", self.path, fix)
        return clip

    def known(self) -> np.ndarray:
        """(N,) bool: True where the row's labels are known (all True without a mask)."""
        if self._known is None:
            return np.ones(self.n, dtype=bool)
        return self._known.copy()

    @property
    def has_known_mask(self) -> bool:
        """Whether the pool stores a ``labelled`` mask (made from the user's recordings)."""
        return self._known is not None

    @property
    def all_known(self) -> bool:
        return self._known is None or bool(self._known.all())

    @property
    def n_known(self) -> int:
        return self.n if self._known is None else int(self._known.sum())

    def require_known(self, rows: np.ndarray | None, purpose: str) -> None:
        """UserError naming the first row of ``rows`` (all rows if None) whose labels are unknown.

        ``purpose`` says what needed the labels (e.g. "the simulator's oracle")."""
        if self._known is None:
            return
        mask = self._known if rows is None else self._known[np.asarray(rows, dtype=np.int64)]
        if mask.all():
            return
        first = int(np.flatnonzero(~mask)[0])
        row = first if rows is None else int(np.asarray(rows, dtype=np.int64)[first])
        missing = int((~mask).sum())
        raise UserError(
            f"{purpose} needs known labels, but {missing} clip(s) are unlabelled (first: "
            f"{self.ids[row]!r}); unknown is not negative",
            self.path,
            "label them in a project (`iml-tui project new`, `iml-tui label`), or use a pool "
            "made from annotated recordings",
        )

    def frame_labels(self, allow_unknown: bool = False) -> np.ndarray:
        """(N, T, C) uint8 frame targets, validated to be 0/1.

        Refused (UserError) when some rows' labels are unknown, unless ``allow_unknown`` (the
        caller then masks with :meth:`known`)."""
        if not allow_unknown:
            self.require_known(None, "reading every clip's labels")
        if self._frame_labels is None:
            with h5py.File(self.path, "r") as f:
                lab = np.asarray(f["labels"][()])
            if lab.dtype.kind == "f" and np.isnan(lab).any():
                raise UserError(
                    "dataset 'labels' holds NaN", self.path, "frame targets must be 0/1"
                )
            bad = (lab != 0) & (lab != 1)  # also 0.5 of a float dataset
            if bad.any():
                row = int(np.argwhere(bad)[0, 0])
                raise UserError(
                    f"dataset 'labels' holds values other than 0 and 1 (e.g. "
                    f"{lab[bad][0].item()!r} in row {row})",
                    self.path,
                    "frame targets must be 0/1",
                )
            self._frame_labels = lab.astype(np.uint8, copy=False)
        return self._frame_labels

    def clip_labels(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(N, C) uint8 clip targets, max over frames; (R, C) of the pool indices ``rows`` (R,).

        The rows asked for must have known labels (UserError otherwise)."""
        self.require_known(rows, "reading clip labels")
        frames = self.frame_labels(allow_unknown=True)
        return (frames if rows is None else frames[rows]).max(axis=1)

    def embeddings(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """(n, T, D) float32 embeddings of the rows ``index`` (all rows if None)."""
        with h5py.File(self.path, "r") as f:
            ds = f["embeddings"]
            if index is None:
                out = np.asarray(ds[()])
            elif isinstance(index, slice):
                out = np.asarray(ds[index])
            else:
                idx = np.asarray(index, dtype=np.int64)
                order = np.argsort(idx, kind="stable")
                sorted_idx = idx[order]
                uniq, inverse = np.unique(sorted_idx, return_inverse=True)
                block = (
                    np.asarray(ds[uniq]) if uniq.size else np.zeros((0, *ds.shape[1:]), np.float32)
                )
                out = np.empty((idx.size, *ds.shape[1:]), dtype=np.float32)
                out[order] = block[inverse]
        if not np.isfinite(out).all():
            bad = int(np.argwhere(~np.isfinite(out).reshape(out.shape[0], -1).all(axis=1))[0, 0])
            raise UserError(
                f"dataset 'embeddings' holds NaN or inf (row {bad} of the request)",
                self.path,
                "re-extract the features",
            )
        return out

    def iter_blocks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, embeddings[start:start+rows])`` blocks of at most ~256 MB."""
        if rows is None:
            rows = max(1, _BLOCK_BYTES // (self.t * self.d * 4))
        for start in range(0, self.n, rows):
            yield start, self.embeddings(slice(start, min(self.n, start + rows)))

    def pooled(self, scan: bool = True) -> np.ndarray:
        """(N, D) float32 time-max-pooled, L2-normalised embeddings (the selection array).

        Read from the cache dataset (every row scanned for NaN and inf, unless ``scan`` is False:
        for callers that hold proof of an earlier scan of this same file, such as a selection state
        keyed to its size and mtime); computed in blocks and written into the file when absent
        (kept in memory only if the file is read-only).
        """
        if self._pooled is not None and (self._pooled_scanned or not scan):
            return self._pooled
        if self._has_pooled:
            pooled = self._pooled if self._pooled is not None else self._read_pooled()
            if scan and not np.isfinite(pooled).all():
                row = int(np.argwhere(~np.isfinite(pooled).all(axis=1))[0, 0])
                raise UserError(
                    f"dataset '{POOLED_KEY}' holds NaN or inf (row {row})",
                    self.path,
                    f"delete '{POOLED_KEY}' and the embedding row",
                )
            self._pooled_scanned = scan
        else:
            pooled = np.empty((self.n, self.d), dtype=np.float32)
            for start, block in self.iter_blocks():
                pooled[start : start + block.shape[0]] = _l2_normalise(block.max(axis=1))
            try:
                with h5py.File(self.path, "a") as f:
                    if POOLED_KEY not in f:
                        f.create_dataset(POOLED_KEY, data=pooled)
                self._has_pooled = True
            except OSError:
                pass  # read-only location: keep the derived array in memory only
            self._pooled_scanned = True  # from embeddings, which are scanned as they are read
        self._pooled = pooled
        return pooled

    def pooled_rows(self, lo: int, hi: int) -> np.ndarray:
        """(hi - lo, D) float32 rows [lo, hi) of the selection array, reading only that range of
        the cached dataset (stored float32 or float16); checked for NaN and inf. Without the
        cache the rows are pooled from that range of the embeddings."""
        if not 0 <= lo <= hi <= self.n:
            raise UserError(
                f"row range [{lo}, {hi}) is outside the pool (N = {self.n})",
                self.path,
                "give a range inside the pool",
            )
        if self._has_pooled:
            with h5py.File(self.path, "r") as f:
                rows = np.asarray(f[POOLED_KEY][lo:hi], dtype=np.float32)
            if not np.isfinite(rows).all():
                row = lo + int(np.argwhere(~np.isfinite(rows).all(axis=1))[0, 0])
                raise UserError(
                    f"dataset '{POOLED_KEY}' holds NaN or inf (row {row})",
                    self.path,
                    f"delete '{POOLED_KEY}' and the embedding row",
                )
            return rows
        return _l2_normalise(self.embeddings(slice(lo, hi)).max(axis=1))

    def pooled_dtype(self) -> np.dtype:
        """The on-disk dtype of the cached selection array (float32 when not cached yet)."""
        if not self._has_pooled:
            return np.dtype(np.float32)
        with h5py.File(self.path, "r") as f:
            return np.dtype(f[POOLED_KEY].dtype)

    def _read_pooled(self) -> np.ndarray:
        """The cached (N, D) array: memory-mapped when stored contiguous and uncompressed (no
        copy; pages come from the OS cache and are shared between processes), else read."""
        with h5py.File(self.path, "r") as f:
            ds = f[POOLED_KEY]
            offset = ds.id.get_offset()
            if (
                ds.chunks is None
                and ds.compression is None
                and offset is not None
                and ds.dtype == np.float32
            ):
                shape = ds.shape
            else:
                return np.asarray(ds[()], dtype=np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", offset=offset, shape=shape)


POOLED_DTYPES = ("float32", "float16")


def convert_pool(src: str | Path, dst: str | Path, dtype: str) -> Path:
    """Copy the pool ``src`` to ``dst`` with its selection array stored as ``dtype`` (float32 or
    float16; selection still computes distances in float32). Everything else is copied as is;
    ``dst`` appears complete or not at all (written as ``<dst>.partial``, then renamed)."""
    if dtype not in POOLED_DTYPES:
        raise UserError(f"unknown dtype {dtype!r}", None, f"use one of {', '.join(POOLED_DTYPES)}")
    store = PoolStore(src)
    dst = Path(dst)
    if dst.resolve() == store.path.resolve():
        raise UserError(
            "the converted pool would overwrite its source", dst, "give --out a new file"
        )
    pooled = store.pooled()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".partial")
    try:
        with h5py.File(store.path, "r") as fin, h5py.File(tmp, "w") as fout:
            for key, value in fin.attrs.items():
                fout.attrs[key] = value
            for name in fin:
                if name != POOLED_KEY.split("/")[0]:
                    fin.copy(fin[name], fout, name=name)
            out = fout.create_dataset(POOLED_KEY, shape=pooled.shape, dtype=np.dtype(dtype))
            rows = max(1, _BLOCK_BYTES // max(1, pooled.shape[1] * 4))
            for lo in range(0, pooled.shape[0], rows):
                out[lo : lo + rows] = pooled[lo : lo + rows].astype(dtype)
            fout.attrs["pooled_dtype"] = dtype
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
