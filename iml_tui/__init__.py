"""iml-tui: label audio with a model in the loop."""

__version__ = "0.1.0"


def version_line() -> str:
    """``iml-tui X.Y.Z``: the installed distribution's version (this package's when it runs
    from a folder that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("iml-tui")
    except PackageNotFoundError:
        number = __version__
    return f"iml-tui {number}"
