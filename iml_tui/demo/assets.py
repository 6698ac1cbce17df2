"""The bundled demo data and models, and the feature pools built from them on first use.

``demo_data/`` holds the three small corpora (audio + labels, see its README) and ``models/`` the
two demo encoders trained on separate demo audio by the project's own commands. Both are folders
of the source checkout, not of the installed package: ``$IML_TUI_DEMO_DATA`` and
``$IML_TUI_MODELS`` point at them from anywhere (an installed wheel has no default). The pools that
``simulate`` and ``label`` read are made from them by the real pipeline (``prepare`` then
``extract``) the first time they are asked for, into a cache folder (``demo_data/.cache`` or
``$IML_TUI_DEMO_CACHE``), and made again when the corpus, the model or the tool version changes.

Config values naming the demo instead of a folder:

- ``pool_dir: demo`` (bioacoustic): ``<cache>/birds/pools`` with ``train/valid/test.h5``;
- ``feat_root: demo:caucasus`` / ``demo:africa`` (lid): ``<cache>/lid/<region>/features`` with
  ``ecapalang/{train,dev,test}.h5``;
- ``feat_root: demo`` (vtd): ``<cache>/vtd/features`` with ``{ecapalang,mfcc}/<env>.h5``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from iml_tui import __version__
from iml_tui.atomic import atomic_write_text
from iml_tui.callbacks import ProgressFn
from iml_tui.errors import UserError

REPO = Path(__file__).resolve().parents[2]  # the checkout, when the package runs from one
DEMO_DATA_ENV = "IML_TUI_DEMO_DATA"
MODELS_ENV = "IML_TUI_MODELS"
BIRD_ENCODER = "demo-birds-cnn14.pt"
LID_ENCODER = "demo-lid-ecapa"
LID_REGIONS: tuple[str, ...] = ("caucasus", "africa")
DEMO = "demo"
_RECIPE = 3  # bumped when the build steps below change
_REBUILD = "rebuild it with demo_data/rebuild.sh (see demo_data/README.md)"


def _located(variable: str, folder: str, what: str) -> Path:
    """``$variable`` when set, else ``folder`` of the checkout; a clear error when neither is."""
    env = os.environ.get(variable)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise UserError(
                f"${variable} is not a folder",
                path,
                f"point {variable} at the {folder}/ folder of an iml-tui checkout",
            )
        return path
    path = REPO / folder
    if (REPO / "pyproject.toml").is_file() and path.is_dir():
        return path
    raise UserError(
        f"the demo {what} are not installed with the package",
        None,
        f"set {variable} to the {folder}/ folder of an iml-tui source checkout",
    )


def demo_data_dir() -> Path:
    """The demo corpora: ``$IML_TUI_DEMO_DATA``, else ``demo_data/`` of the checkout."""
    return _located(DEMO_DATA_ENV, "demo_data", "corpora (demo_data/)")


def models_dir() -> Path:
    """The demo encoders: ``$IML_TUI_MODELS``, else ``models/`` of the checkout."""
    return _located(MODELS_ENV, "models", "encoders (models/)")


def cache_root() -> Path:
    """Where built demo pools go: ``$IML_TUI_DEMO_CACHE`` or ``<demo data>/.cache``."""
    env = os.environ.get("IML_TUI_DEMO_CACHE")
    return Path(env).expanduser() if env else demo_data_dir() / ".cache"


def is_demo(value: str | None) -> bool:
    """True for ``demo`` and ``demo:<region>``."""
    return bool(value) and (value == DEMO or str(value).startswith(DEMO + ":"))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserError(f"the demo {what} is missing", path, _REBUILD)
    return path


def _fingerprint(*paths: Path) -> str:
    """sha256 over the relative names and bytes of every file under ``paths`` and the version."""
    h = hashlib.sha256(f"{__version__} recipe {_RECIPE}".encode())
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for f in files:
            if ".cache" in f.parts:
                continue
            h.update(f.relative_to(base.parent).as_posix().encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One builder at a time per cache folder (other processes wait, then reuse the result)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_once(folder: Path, fingerprint: str, build: Callable[[Path], None]) -> Path:
    """``folder`` built by ``build(folder)`` unless its stamp matches ``fingerprint``.

    Built in place (the pools record the absolute path of their prepared clips, which the
    labelling UI plays); the stamp is written last, so an interrupted build is redone.
    """
    stamp = folder / "fingerprint.json"
    with _locked(folder):
        if stamp.is_file() and json.loads(stamp.read_text()).get("sha256") == fingerprint:
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build(folder)
        atomic_write_text(stamp, json.dumps({"sha256": fingerprint, "version": __version__}))
    return folder


def bird_pools(progress: ProgressFn | None = None) -> Path:
    """The demo bird pool folder (``train/valid/test.h5``, CNN14 frame embeddings)."""
    from iml_tui.data.dcase import prepare_dcase
    from iml_tui.features.extract import extract_features

    corpus = _need(demo_data_dir() / "birds", "bird corpus")
    model = _need(models_dir() / BIRD_ENCODER, "bird encoder")

    def build(dst: Path) -> None:
        prepare_dcase(corpus, dst / "prepared", "al", progress)
        extract_features(
            dst / "prepared" / "al", dst / "pools", "cnn14", model, device="cpu", progress=progress
        )

    return _build_once(cache_root() / "birds", _fingerprint(corpus, model), build) / "pools"


def lid_features(region: str = "caucasus", progress: ProgressFn | None = None) -> Path:
    """The demo LID feature root of a region (``ecapalang/{train,dev,test}.h5``)."""
    from iml_tui.data.commonvoice import prepare_lid
    from iml_tui.features.extract import extract_features

    if region not in LID_REGIONS:
        raise UserError(
            f"unknown demo region {region!r}",
            None,
            f"use feat_root demo:{' or demo:'.join(LID_REGIONS)}",
        )
    corpus = _need(demo_data_dir() / "lid" / region, f"{region} speech corpus")
    model = _need(models_dir() / LID_ENCODER, "language encoder")

    def build(dst: Path) -> None:
        prepare_lid(corpus, dst / "prepared")
        extract_features(
            dst / "prepared",
            dst / "features" / "ecapalang",
            "ecapa",
            model,
            device="cpu",
            progress=progress,
        )

    folder = cache_root() / "lid" / region
    return _build_once(folder, _fingerprint(corpus, model), build) / "features"


def vtd_features(progress: ProgressFn | None = None) -> Path:
    """The demo VTD feature root (``ecapalang/<env>.h5`` and ``mfcc/<env>.h5``)."""
    from iml_tui.data.vtd import prepare_vtd
    from iml_tui.features.extract import extract_features

    corpus = _need(demo_data_dir() / "vtd", "live / played-back speech corpus")
    model = _need(models_dir() / LID_ENCODER, "language encoder")

    def build(dst: Path) -> None:
        prepare_vtd(corpus, dst / "prepared")
        extract_features(
            dst / "prepared",
            dst / "features" / "ecapalang",
            "ecapa",
            model,
            device="cpu",
            progress=progress,
        )
        extract_features(
            dst / "prepared",
            dst / "features" / "mfcc",
            "mfcc-stats",
            device="cpu",
            progress=progress,
        )

    return _build_once(cache_root() / "vtd", _fingerprint(corpus, model), build) / "features"


def resolve_pool_dir(value: str, progress: ProgressFn | None = None) -> str:
    """``value``, or the built demo bird pools when it names the demo."""
    return str(bird_pools(progress)) if is_demo(value) else value


def resolve_feat_root(task: str, value: str, progress: ProgressFn | None = None) -> str:
    """``value``, or the built demo features of ``task`` when it names the demo."""
    if not is_demo(value):
        return value
    region = value.split(":", 1)[1] if ":" in value else ""
    if task == "vtd":
        if region:
            raise UserError(
                f"feat_root {value!r}: the VTD demo has no regions", None, "use feat_root demo"
            )
        return str(vtd_features(progress))
    return str(lid_features(region or LID_REGIONS[0], progress))
