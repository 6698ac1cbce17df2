"""Widgets of the labelling screen, one module per domain."""
