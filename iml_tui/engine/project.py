"""A labelling project: a folder holding ``project.yaml``, the journal and model checkpoints.

Layout::

    <project>/project.yaml       what is labelled and how (ProjectConfig; written once)
    <project>/journal.sqlite     every event (iml_tui.engine.journal); the labels live here
    <project>/models/            model checkpoints (temporary file, fsync, rename)
    <project>/stream/scores.csv  stream mode: one row per finished batch (SPEC B.6)

``iml-tui project new DIR --task bioacoustic --pool-dir D --strategy mfft`` writes the folder;
``iml-tui label DIR`` (or ``open_or_create`` with the same options) opens or resumes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iml_tui.atomic import atomic_write_text
from iml_tui.config import PAPER_BUDGETS, StreamConfig, config_from_mapping
from iml_tui.engine.journal import Journal
from iml_tui.engine.strategies import STRATEGIES
from iml_tui.errors import UserError

PROJECT_FILE = "project.yaml"
JOURNAL_FILE = "journal.sqlite"
MODELS_DIR = "models"
POOL_TASKS: tuple[str, ...] = ("bioacoustic",)
STREAM_TASKS: tuple[str, ...] = ("lid", "vtd")
TASKS = POOL_TASKS + STREAM_TASKS


@dataclass
class ProjectConfig:
    """What a project labels and how.

    Pool mode (task bioacoustic): ``pool_dir`` holds ``train.h5`` (the pool to label) and
    optionally a labelled ``valid.h5`` (scores the model and sets its threshold; without it the
    labels themselves do, out of fold: :mod:`iml_tui.engine.self_validated`); rounds grow the
    labelled set to each of ``budgets`` with ``strategy``; the classifier trains with the SPEC
    A.3 settings below.
    Stream mode (task lid / vtd): ``stream`` holds :class:`~iml_tui.config.StreamConfig` keys
    (feat_root, features, split and one target language, or env; n_queries, sim_type, ...).
    ``audio_root``: where the audio is when it moved since the pool was made ("" = as stored).
    ``lease_seconds``: how long an item handed to one annotator is kept from the others.
    """

    task: str = "bioacoustic"
    pool_dir: str = ""
    strategy: str = "mfft"
    budgets: list[int] = field(default_factory=lambda: list(PAPER_BUDGETS))
    seed: int = 0
    audio_root: str = ""
    lease_seconds: float = 900.0
    # classifier training, pool mode (SPEC A.3)
    hidden: int = 1024
    lr: float = 5e-4
    batch_size: int = 128
    lr_factor: float = 0.5
    lr_patience: int = 5
    lr_threshold: float = 1e-4
    min_lr: float = 5e-6
    max_epochs: int = 5000
    device: str = "cpu"
    threads: int = 0  # torch threads of a retraining; 0 = torch's default
    eval_precision: str = "fp32"  # validation and pool scoring: fp32 (the paper) or bf16
    # stream mode (SPEC B): StreamConfig keys
    stream: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "pool" if self.task in POOL_TASKS else "stream"

    def stream_config(self) -> StreamConfig:
        """The StreamConfig of a stream-mode project (task and seed from this config)."""
        values = {"seed": self.seed, **self.stream, "task": self.task}
        return config_from_mapping(StreamConfig, values, f"{PROJECT_FILE}: stream")


def validate(cfg: ProjectConfig, source: str) -> None:
    """Check a config before anything is read (UserError naming the key)."""
    if cfg.task not in TASKS:
        raise UserError(f"unknown task {cfg.task!r}", source, f"use one of {', '.join(TASKS)}")
    if cfg.lease_seconds <= 0:
        raise UserError("lease_seconds must be > 0", source, "fix lease_seconds")
    if cfg.mode == "pool":
        if not cfg.pool_dir:
            raise UserError(
                "a bioacoustic project needs a pool folder",
                source,
                "give --pool-dir (a folder with train.h5, and valid.h5 if labelled)",
            )
        if cfg.strategy not in STRATEGIES:
            raise UserError(
                f"unknown strategy {cfg.strategy!r}", source, f"use one of {', '.join(STRATEGIES)}"
            )
        b = list(cfg.budgets)
        if not b or b != sorted(b) or len(set(b)) != len(b) or b[0] <= 0:
            raise UserError(
                f"budgets {b} must be positive and strictly increasing",
                source,
                "e.g. --budgets 50,100,150",
            )
        return
    from iml_tui.engine.paradigms.stream import validate_config

    scfg = cfg.stream_config()
    validate_config(scfg)
    if scfg.task == "lid" and scfg.target in ("", "all"):
        raise UserError(
            "a labelling project streams one target language",
            source,
            "give --target with one language code, e.g. --target ha",
        )


@dataclass
class Project:
    """An existing project folder and its config."""

    dir: Path
    config: ProjectConfig

    @property
    def journal_path(self) -> Path:
        return self.dir / JOURNAL_FILE

    @property
    def models_dir(self) -> Path:
        return self.dir / MODELS_DIR

    @property
    def mode(self) -> str:
        return self.config.mode

    def has_state(self) -> bool:
        """Whether anything beside the journal shows the project was used (a checkpoint in
        ``models/``, or the journal's ``-wal`` file)."""
        wal = self.journal_path.with_name(self.journal_path.name + "-wal")
        models = self.models_dir.is_dir() and any(self.models_dir.iterdir())
        return models or wal.exists()

    def open_journal(self) -> Journal:
        """The project's journal. It is made with ``project.yaml`` (:meth:`create`), so a
        missing, empty or damaged one is refused, never replaced by a new one."""
        return Journal(self.journal_path, expected=True)

    @classmethod
    def load(cls, folder: str | Path) -> Project:
        """Open ``folder`` (UserError when it is not a project)."""
        d = Path(folder)
        path = d / PROJECT_FILE
        if not path.is_file():
            raise UserError(
                f"no {PROJECT_FILE} here",
                d,
                "make a project with `iml-tui project new DIR --pool-dir ...`",
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UserError(
                f"not valid YAML ({exc.__class__.__name__})", path, "fix the syntax"
            ) from exc
        if not isinstance(data, dict):
            raise UserError(
                "a project file must be a mapping of key: value",
                path,
                "write one 'key: value' per line",
            )
        cfg = config_from_mapping(ProjectConfig, data, str(path))
        validate(cfg, str(path))
        return cls(d, cfg)

    @classmethod
    def create(cls, folder: str | Path, cfg: ProjectConfig) -> Project:
        """Write a new project folder. An existing project with the same config is opened;
        one with another config is a UserError."""
        d = Path(folder)
        validate(cfg, "project options")
        cfg = _absolute(cfg)
        path = d / PROJECT_FILE
        if path.exists():
            have = cls.load(d)
            if dataclasses.asdict(have.config) != dataclasses.asdict(cfg):
                raise UserError(
                    "this folder holds a project with other settings",
                    d,
                    "open it with `iml-tui label DIR`, or choose a new folder",
                )
            return have
        models = d / MODELS_DIR
        if models.is_dir() and any(models.iterdir()):
            raise UserError(
                f"{PROJECT_FILE} is missing but {MODELS_DIR}/ holds checkpoints",
                d,
                f"restore {PROJECT_FILE} from a backup, or move the folder away to "
                "start a new project",
            )
        journal = d / JOURNAL_FILE
        if journal.exists() and journal.stat().st_size > 0:
            with Journal(journal) as j:
                if j.last_id():
                    raise UserError(
                        f"{PROJECT_FILE} is missing but {JOURNAL_FILE} holds labels",
                        d,
                        f"restore {PROJECT_FILE} from a backup, or "
                        "move the folder away to start a new project",
                    )
        d.mkdir(parents=True, exist_ok=True)
        models.mkdir(exist_ok=True)
        Journal(journal).close()  # before project.yaml: a project always has its journal
        text = yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)
        atomic_write_text(path, text)
        return cls(d, cfg)


def _absolute(cfg: ProjectConfig) -> ProjectConfig:
    """Paths made absolute, so the project works from any working directory."""
    changes: dict[str, Any] = {}
    for key in ("pool_dir", "audio_root"):
        value = getattr(cfg, key)
        if value:
            changes[key] = str(Path(value).expanduser().resolve())
    stream = dict(cfg.stream)
    for key in ("feat_root", "budget_plan", "init_weights"):
        value = stream.get(key)
        if value and Path(str(value)).exists():
            stream[key] = str(Path(str(value)).resolve())
    changes["stream"] = stream
    return dataclasses.replace(cfg, **changes)


def project_config(options: Mapping[str, Any], sets: list[str] | None = None) -> ProjectConfig:
    """A config from CLI options (None = default) and ``--set key=value`` strings; ``stream.KEY``
    sets a key of the stream section."""
    given = {k: v for k, v in options.items() if v is not None}
    stream: dict[str, Any] = dict(given.pop("stream", {}) or {})
    top: dict[str, Any] = {}
    for item in sets or []:
        if "=" not in item:
            raise UserError(f"--set '{item}' is not key=value", None, "write --set key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        key = key.strip()
        if key.startswith("stream."):
            stream[key[len("stream.") :]] = value
        else:
            top[key] = value
    cfg = config_from_mapping(ProjectConfig, {**top, **given}, "command line")
    if stream:
        config_from_mapping(StreamConfig, stream, "--set stream.*")  # check the keys now
        cfg = dataclasses.replace(cfg, stream=stream)
    return cfg


def open_or_create(
    folder: str | Path,
    options: Mapping[str, Any] | None = None,
    sets: list[str] | None = None,
    existing: Project | None = None,
) -> Project:
    """The project in ``folder``: opened when it exists (options must then be absent or agree),
    else created from ``options`` (what ``iml-tui label --task ... --pool-dir ...`` does).
    ``existing``: that project, when the caller has already loaded it."""
    d = Path(folder)
    given = {k: v for k, v in (options or {}).items() if v is not None}
    if existing is None and not (d / PROJECT_FILE).is_file():
        return Project.create(d, project_config(given, sets))
    project = existing if existing is not None else Project.load(d)
    if given or sets:
        want = dataclasses.asdict(_absolute(project_config(given, sets)))
        have = dataclasses.asdict(project.config)
        asked = set(given) | {s.split("=", 1)[0].strip().split(".", 1)[0] for s in sets or []}
        for key in sorted(asked):
            norm = key.replace("-", "_")
            if norm == "stream":
                differ = any(have["stream"].get(k) != v for k, v in want["stream"].items())
            else:
                differ = norm in have and have[norm] != want[norm]
            if differ:
                raise UserError(
                    f"this project was made with {norm} = {have.get(norm)!r}, not "
                    f"{want.get(norm)!r}",
                    d / PROJECT_FILE,
                    "leave the option out to resume it, or choose a new folder",
                )
    return project
