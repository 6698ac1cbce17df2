"""The Python API: what the commands run, importable from one module.

- pools: :func:`write_pool` writes an HDF5 pool store (embeddings (N, T, D) float32, frame
  targets (N, T, C) 0/1), :class:`PoolStore` reads one;
- from audio to pools: :func:`prepare_recordings` cuts recordings into a prepared split folder
  (``iml-tui prepare recordings``) and :func:`extract_features` encodes prepared splits into
  pool stores (``iml-tui extract``);
- the bioacoustic simulator (``iml-tui simulate --task bioacoustic``): :func:`load_config` of a
  :class:`BioacousticConfig` (a bundled preset by name, a YAML file, overrides) and
  :func:`run_sweep`, which returns a :class:`SweepResult` of per-round scores;
- labelling projects (``iml-tui label``): :func:`project_config` and :func:`open_or_create`
  give a :class:`Project`; :meth:`Session.open` labels it (``next_item``, ``submit``, ``undo``,
  ``retrain_now``);
- metrics: :func:`frame_map`, the frame-level macro mAP of (N, T, C) scores.

Bad input raises :class:`UserError` (its message names the file and the fix).
"""

from __future__ import annotations

from iml_tui.bench.sweep import SweepResult, run_sweep
from iml_tui.config import BioacousticConfig, StreamConfig, load_config
from iml_tui.data.recordings import prepare_recordings
from iml_tui.data.store import PoolMeta, PoolStore, write_pool
from iml_tui.engine.metrics import frame_map
from iml_tui.engine.project import Project, ProjectConfig, open_or_create, project_config
from iml_tui.engine.session import Item, Session
from iml_tui.errors import UserError
from iml_tui.features.extract import extract_features
from iml_tui.presets import preset_names

__all__ = [
    "BioacousticConfig",
    "Item",
    "PoolMeta",
    "PoolStore",
    "Project",
    "ProjectConfig",
    "Session",
    "StreamConfig",
    "SweepResult",
    "UserError",
    "extract_features",
    "frame_map",
    "load_config",
    "open_or_create",
    "prepare_recordings",
    "preset_names",
    "project_config",
    "run_sweep",
    "write_pool",
]
