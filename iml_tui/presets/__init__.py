"""The YAML presets installed with the package (``iml_tui/presets/<name>.yaml``).

``--config NAME`` (no ``.yaml``, no slash) names one of them, e.g. ``--config lid`` or
``--config demo_bioacoustic``; anything else is a path to a YAML file (``./NAME`` for a file
without a suffix in the current folder).
"""

from __future__ import annotations

from pathlib import Path

from iml_tui.errors import UserError

PRESETS = Path(__file__).resolve().parent


def preset_names() -> list[str]:
    """The bundled preset names, sorted (file stems under :data:`PRESETS`)."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def is_preset_name(value: str | Path) -> bool:
    """True when ``value`` is a bare name: no folder part and no suffix."""
    text = str(value)
    return (
        bool(text)
        and "/" not in text
        and "\\" not in text
        and not Path(text).suffix
        and text not in (".", "..")
    )


def preset_path(name: str) -> Path:
    """The file of the bundled preset ``name``; an unknown name lists the bundled ones."""
    path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        raise UserError(
            f"unknown preset {name!r}; bundled presets: {', '.join(preset_names())}",
            None,
            "give one of them, or a path to a YAML file",
        )
    return path


def resolve_preset(value: str | Path | None) -> Path | None:
    """``--config`` as a file: a bundled preset for a bare name, else the path itself."""
    if value is None:
        return None
    return preset_path(str(value)) if is_preset_name(value) else Path(value)
