"""Callback types every layer shares (the layers below the faces report through them)."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]
"""``progress(label, done, total)``: ``done`` of ``total`` units of the step ``label`` are
finished (a split's clips, an extraction's files); the faces draw it
(:func:`iml_tui.bench.progress.rate_progress`)."""
