"""Import torchaudio and speechbrain on a machine where torchaudio's native libraries cannot load.

The PyPI torchaudio 2.11 wheel is a CUDA build: ``import torchaudio`` runs
``torchaudio/_extension/__init__.py``, which calls ``_load_lib("_torchaudio")`` ->
``torch.ops.load_library(...)``; with a CPU-only torch that raises
``OSError: libc10_cuda.so: cannot open shared object file`` and the whole import fails (and with it
``import speechbrain``). torchaudio 2.11 has no environment variable to skip the native load.

Everything we use from torchaudio is pure Python on top of torch (``transforms.MelSpectrogram``,
``compliance.kaldi.fbank``, ``functional.resample``, ``models.wavlm_*``): it only needs the
package to import. :func:`import_torchaudio` therefore pre-loads ``torchaudio._extension.utils``
(a stdlib + torch module) and wraps its ``_load_lib`` so that an ``OSError`` while loading a
native library makes it return ``False`` — the code path torchaudio itself takes when the library
file is absent ("extension not available") — instead of propagating. Where the libraries load (a
matching CUDA torch, or a CPU torchaudio build) the wrapper returns what the original returns and
nothing changes. The operators that really need the extension (``lfilter``'s fast loop, RNN-T loss,
forced alignment, CUDA CTC decoding) then fail when called, not at import.

Never use ``torchaudio.load``/``torchaudio.save`` (they need torchcodec, also a CUDA build here):
read and write audio with :mod:`iml_tui.audio.io`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from types import ModuleType

_LG = logging.getLogger(__name__)
_UTILS = "torchaudio._extension.utils"

#: Native libraries whose load failed and was skipped, with the reason (empty when none was).
SKIPPED_NATIVE: dict[str, str] = {}


def _guard_load_lib(utils: ModuleType) -> None:
    """Wrap ``utils._load_lib`` so that an OSError (missing CUDA runtime) means "not available"."""
    original: Callable[[str], bool] = utils._load_lib
    if getattr(original, "_iml_tui_guarded", False):
        return

    def _load_lib(lib: str) -> bool:
        try:
            return bool(original(lib))
        except OSError as err:
            cause = err.__cause__ or err
            SKIPPED_NATIVE[lib] = (
                str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            )
            _LG.debug("torchaudio native library %s not loaded: %s", lib, err)
            return False

    _load_lib._iml_tui_guarded = True  # type: ignore[attr-defined]
    utils._load_lib = _load_lib  # type: ignore[attr-defined]


def _preload_extension_utils() -> None:
    """Execute ``torchaudio/_extension/utils.py`` without running ``torchaudio/__init__.py``.

    The module imports only the stdlib and torch. Registered in ``sys.modules`` under its real
    name, it is the object that ``from .utils import _load_lib`` in ``torchaudio._extension``
    picks up later, so our guard is in place before the first native load.
    """
    utils = sys.modules.get(_UTILS)
    if utils is None:
        spec = importlib.util.find_spec("torchaudio")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("torchaudio is not installed")
        root = next(iter(spec.submodule_search_locations))
        path = os.path.join(root, "_extension", "utils.py")
        uspec = importlib.util.spec_from_file_location(_UTILS, path)
        if uspec is None or uspec.loader is None:
            raise ImportError(f"cannot locate {path}")
        utils = importlib.util.module_from_spec(uspec)
        sys.modules[_UTILS] = utils
        try:
            uspec.loader.exec_module(utils)
        except BaseException:
            del sys.modules[_UTILS]
            raise
    _guard_load_lib(utils)


def import_torchaudio() -> ModuleType:
    """Return the ``torchaudio`` module, importing it with failing native loads skipped.

    Idempotent. Raises ImportError only when torchaudio is not installed or is broken in a way
    other than a native library that cannot be loaded.
    """
    mod = sys.modules.get("torchaudio")
    if mod is not None and hasattr(mod, "transforms"):
        return mod
    # A previous plain ``import torchaudio`` may have failed half-way: drop its leftovers so the
    # package initialises again from the start.
    for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
        if name != _UTILS:
            del sys.modules[name]
    _preload_extension_utils()
    ta = importlib.import_module("torchaudio")
    ext = sys.modules.get("torchaudio._extension")
    if ext is not None and not hasattr(ext, "utils"):
        ext.utils = sys.modules[_UTILS]  # type: ignore[attr-defined]
    return ta


def native_available() -> bool:
    """Whether torchaudio's native extension was loaded (imports torchaudio if needed)."""
    import_torchaudio()
    ext = importlib.import_module("torchaudio._extension")
    return bool(getattr(ext, "_IS_TORCHAUDIO_EXT_AVAILABLE", False))


def set_hub_offline() -> None:
    """Forbid Hugging Face Hub downloads in this process (``HF_HUB_OFFLINE=1``).

    huggingface_hub reads the variable once, at import: when it is already imported its constant
    is set too.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def import_speechbrain() -> ModuleType:
    """Return ``speechbrain``, imported after :func:`import_torchaudio` with the hub offline."""
    set_hub_offline()
    import_torchaudio()
    return importlib.import_module("speechbrain")
