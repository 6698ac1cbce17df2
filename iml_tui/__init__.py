"""iml-tui: label audio with a model in the loop."""

__version__ = "0.1.0"
